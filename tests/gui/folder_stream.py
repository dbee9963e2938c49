"""The engine's events of a dropped folder, built here until the engine sends them itself.

One place builds what the engine says of a folder (``FoldersAdded`` before its first
``Queued``, each file's ``Queued`` with ``folder=``, then each file's progress and end, or
``RowsRestored`` rows with ``folder=`` after a restart), so the tests that feed these streams
into the window can switch to the real engine in one place.

As the engine does before it announces them, a stream records the folder and its files in
the real upload list of the test's ``OSSDESK_HOME`` (:func:`record`), with the ids the
events name: the window reads from it what it does not keep of a folder's files.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ossdesk import config
from ossdesk.core import events as ev
from ossdesk.core.store import NewUpload, Store, StoreBusy
from ossdesk.ui.engine_types import FolderInfo, FoldersAdded, RowsRestored, TransferRow

MIB = 1024 * 1024


@dataclass(frozen=True)
class DroppedFolder:
    """A folder as dropped: its id, where it is, where it goes, and its files (paths inside
    it, with ``/``) with their sizes."""

    id: int
    source: str
    bucket: str
    prefix: str
    profile: str
    files: tuple[tuple[str, int], ...]
    #: The upload id of its first file (the others follow).
    first_upload: int = 1

    @property
    def name(self) -> str:
        return self.source.rstrip("/").rsplit("/", 1)[-1]

    @property
    def info(self) -> FolderInfo:
        return FolderInfo(
            id=self.id, name=self.name, source_path=self.source,
            destination=f"oss://{self.bucket}/{self.prefix}{self.name}/",
            bucket=self.bucket, profile=self.profile, added_at=time.time(),
        )

    def upload(self, n: int) -> int:
        """The upload id of its ``n``-th file."""
        return self.first_upload + n

    @property
    def uploads(self) -> list[int]:
        return [self.upload(n) for n in range(len(self.files))]

    def key(self, n: int) -> str:
        return f"{self.prefix}{self.name}/{self.files[n][0]}"


def folder(
    folder_id: int = 7,
    files: Sequence[tuple[str, int]] | int = 3,
    *,
    source: str = "/home/ann/相册 folder",
    bucket: str = "photos",
    prefix: str = "2024/",
    profile: str = "work",
    first_upload: int = 1,
) -> DroppedFolder:
    """A dropped folder; ``files`` as a count makes ``img 00001.jpg``... of 1 MiB each."""
    if isinstance(files, int):
        files = [(f"img {n:05d}.jpg", MIB) for n in range(files)]
    return DroppedFolder(folder_id, source, bucket, prefix, profile, tuple(files),
                         first_upload)


ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"


def record(dropped: DroppedFolder) -> None:
    """Write the folder and its files in the upload list (those not there yet), with the
    ids the events name, as the engine writes them before it announces them."""
    path = config.paths().database
    try:
        store = Store.open(path)
    except StoreBusy:  # a window's engine holds it: write beside it, as it allows readers
        store = Store.open(path, owner=False)
    with store:
        there = {row.id for row in store.rows_for(dropped.uploads)}
        made = None if store.folders([dropped.id]) else store.folder_for(
            None, Path(dropped.source), credentials=dropped.profile, endpoint=ENDPOINT,
            bucket=dropped.bucket, prefix=f"{dropped.prefix}{dropped.name}/")
    if made is not None:
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE folders SET id = ? WHERE id = ?", (dropped.id, made.id))
    wanted = [n for n in range(len(dropped.files)) if dropped.upload(n) not in there]
    with Store.open(path, owner=False) as store:
        added = store.add(
            NewUpload(source=Path(f"{dropped.source}/{dropped.files[n][0]}"),
                      size=dropped.files[n][1], mtime_ns=0, key=dropped.key(n),
                      endpoint=ENDPOINT, bucket=dropped.bucket, credentials=dropped.profile,
                      folder=dropped.id)
            for n in wanted)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        # Their ids as the events name them (by way of free ones: no two rows share one).
        for old in added:
            conn.execute("UPDATE uploads SET id = ? WHERE id = ?", (-old, old))
        for n, old in zip(wanted, added, strict=True):
            conn.execute("UPDATE uploads SET id = ? WHERE id = ?", (dropped.upload(n), -old))


def queued(dropped: DroppedFolder) -> list[object]:
    """What the engine says when the folder is added: the folder, then each file."""
    record(dropped)
    events: list[object] = [FoldersAdded((dropped.info,))]
    events += [
        ev.Queued(upload=dropped.upload(n), source=f"{dropped.source}/{rel}",
                  key=dropped.key(n), size=size, bucket=dropped.bucket,
                  account=dropped.profile, folder=dropped.id)
        for n, (rel, size) in enumerate(dropped.files)
    ]
    return events


def restored(dropped: DroppedFolder, states: dict[int, TransferRow] | None = None) -> list[object]:
    """What the engine says at start of a folder it still has: the folder, then its rows
    (``states`` replaces some rows by file number)."""
    record(dropped)
    rows = []
    for n, (rel, size) in enumerate(dropped.files):
        row = TransferRow(
            id=dropped.upload(n), name=rel.rsplit("/", 1)[-1],
            source_path=f"{dropped.source}/{rel}", size=size,
            destination=f"oss://{dropped.bucket}/{dropped.key(n)}", bucket=dropped.bucket,
            key=dropped.key(n), profile=dropped.profile, folder=dropped.id,
        )
        rows.append((states or {}).get(n, row))
    return [FoldersAdded((dropped.info,)), RowsRestored(tuple(rows))]


def started(dropped: DroppedFolder, n: int) -> ev.Started:
    return ev.Started(upload=dropped.upload(n), key=dropped.key(n), size=dropped.files[n][1],
                      confirmed_bytes=0, resumed=False, multipart=True)


def progress(dropped: DroppedFolder, n: int, confirmed: int, sent: int, speed: float,
             eta: float | None) -> ev.Progress:
    """``sent``: sent and not yet confirmed (as the engine counts it)."""
    return ev.Progress(upload=dropped.upload(n), confirmed_bytes=confirmed, sent_bytes=sent,
                       total=dropped.files[n][1], speed=speed, eta=eta)


def done(dropped: DroppedFolder, n: int, *, check: str = "crc64",
         skipped: bool = False) -> ev.Done:
    return ev.Done(upload=dropped.upload(n), key=dropped.key(n), size=dropped.files[n][1],
                   crc64=1, etag="e", seconds=1.0, skipped=skipped, check=check)


def failed(dropped: DroppedFolder, n: int, message: str = "AccessDenied: no permission",
           ) -> ev.Failed:
    return ev.Failed(upload=dropped.upload(n), message=message, code="AccessDenied",
                     retryable=False, error_kind="permanent")


def paused(dropped: DroppedFolder, n: int) -> ev.Paused:
    return ev.Paused(upload=dropped.upload(n), reason=ev.PauseReason.USER, message="")


def cancelled(dropped: DroppedFolder, n: int) -> ev.Cancelled:
    return ev.Cancelled(upload=dropped.upload(n))
