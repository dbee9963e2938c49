"""What the upload list holds, as Python values: a row of the queue (:class:`UploadRow`),
a file to queue (:class:`NewUpload`), a request (:class:`Request`), a dropped folder, a
confirmed part, a watched folder, a source's :class:`Fingerprint`, and how a row is read
from its columns."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ossdesk.core.object_options import ObjectOptions

__all__ = [
    "ENVIRONMENT",
    "HISTORY",
    "OVERWRITE",
    "SKIP",
    "SKIPPED",
    "UNFINISHED",
    "Fingerprint",
    "Folder",
    "NewUpload",
    "PartRecord",
    "Request",
    "State",
    "UploadRow",
    "WatchedFolder",
]
#: ``NewUpload.existing``: send the file even if the key already exists (the default) ...
OVERWRITE = "overwrite"
#: ... or skip it when the object there has the same size and CRC-64 (checked before any
#: byte is sent); an object with different content is overwritten.
SKIP = "skip"
#: ``UploadRow.reason`` of a done row whose identical object was already in OSS.
SKIPPED = "skipped"
#: The credentials source meaning "OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET from the environment".
ENVIRONMENT = "environment"
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


class State(StrEnum):
    """Where an upload is. ``running`` rows found at start belonged to a process that died."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    #: Given up by the user (its multipart upload aborted on the server): kept as history,
    #: like a done row, until "Clear finished"; never resumed by itself.
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


UNFINISHED = (State.QUEUED, State.RUNNING, State.PAUSED, State.FAILED)
#: What "Clear finished" removes: the history of done and cancelled rows.
HISTORY = (State.DONE, State.CANCELLED)


def _to_i64(crc: int | None) -> int | None:
    """SQLite integers are signed: keep the 64 bits, shown again unsigned by :func:`_to_u64`."""
    if crc is None:
        return None
    return crc - _U64 if crc > _I64_MAX else crc


def _to_u64(value: int | None) -> int | None:
    if value is None:
        return None
    return value + _U64 if value < 0 else value


def _fold64(value: int) -> int:
    while value >= _U64:
        value = (value & (_U64 - 1)) ^ (value >> 64)
    return value


@dataclass(frozen=True)
class Fingerprint:
    """What a source file looked like: size, mtime, change time and identity.

    ``ctime_ns``, ``dev`` and ``ino`` are None when not known (a row queued by an older
    version, or an OS that reports 0). Two fingerprints *differ* when the size or the mtime
    differ, or a field both know differs: a file rewritten in place and its mtime put back
    (``cp -p``, ``rsync -t``) keeps size and mtime, but its change time moves; a file
    replaced by another has another identity.
    """

    size: int
    mtime_ns: int
    ctime_ns: int | None = None
    dev: int | None = None
    ino: int | None = None

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        # 0: the OS or the file system does not say. A 128-bit file id (ReFS on Windows) is
        # folded into the 64 bits an SQLite integer holds.
        ino = _fold64(st.st_ino) or None
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns or None,
                   dev=_fold64(st.st_dev) if ino is not None else None, ino=ino)

    def same_as(self, other: Fingerprint) -> bool:
        if (self.size, self.mtime_ns) != (other.size, other.mtime_ns):
            return False
        if self.ctime_ns is not None and other.ctime_ns is not None \
                and self.ctime_ns != other.ctime_ns:
            return False
        return self.ino is None or other.ino is None or \
            (self.dev, self.ino) == (other.dev, other.ino)

    def only_change_time_differs(self, other: Fingerprint) -> bool:
        """Size, mtime and identity the same (or not known), the change time (known on
        both sides) not: its attributes changed (``chmod``, a new hard link, extended
        attributes), or its content was rewritten and its mtime put back; only reading it
        can tell which."""
        return not self.same_as(other) and replace(self, ctime_ns=None).same_as(other)


@dataclass(frozen=True)
class NewUpload:
    """A file to queue. ``credentials`` is a profile name or :data:`ENVIRONMENT`."""

    source: Path
    size: int
    mtime_ns: int
    key: str
    endpoint: str
    bucket: str
    credentials: str = ENVIRONMENT
    region: str | None = None
    signature: str = "v4"
    part_size: int | None = None
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str | None = None
    existing: str = OVERWRITE
    #: The source's change time and identity when it was queued (None: not known).
    ctime_ns: int | None = None
    file_dev: int | None = None
    file_ino: int | None = None
    options: ObjectOptions = field(default_factory=ObjectOptions)
    #: The dropped folder (:meth:`Store.folder_for`) the file was found in, if any.
    folder: int | None = None

    def __post_init__(self) -> None:
        if self.existing not in (OVERWRITE, SKIP):
            raise ValueError(f"existing must be {OVERWRITE!r} or {SKIP!r}, not {self.existing!r}")

    def written_differently(self, row: UploadRow) -> tuple[str, ...]:
        """What this file's object would be written with that ``row`` (an earlier upload of
        it) would not write: ``("another storage class", ...)``; empty when the same."""
        mine, theirs = self.options, row.options
        checks = (
            ("another account", self.credentials != row.credentials),
            ("other metadata", self.metadata != row.metadata),
            ("another storage class", self.storage_class != row.storage_class),
            ("another Content-Type", (self.content_type, mine.content_type)
             != (row.content_type, theirs.content_type)),
            ("another ACL", mine.acl != theirs.acl),
            ("another Cache-Control", mine.cache_control != theirs.cache_control),
            ("another Content-Disposition",
             mine.content_disposition != theirs.content_disposition),
            ("other tags", mine.tags != theirs.tags),
            ("another server-side encryption", (mine.encryption, mine.kms_key_id)
             != (theirs.encryption, theirs.kms_key_id)),
            ("another policy for an object already there", self.existing != row.existing),
        )
        return tuple(what for what, differs in checks if differs)


@dataclass(frozen=True)
class Request:
    """What the user asked for: files and folders (``roots``, absolute) to one destination.

    Recorded before the walk starts (:meth:`Store.begin_request`) and marked finished when
    every file found is queued (:meth:`Store.finish_request`); until then the list holds
    only part of what was asked for, and the walk is run again to finish it. ``queued``
    (when read back) is how many rows the request has queued so far.
    """

    roots: tuple[Path, ...]
    endpoint: str
    bucket: str
    credentials: str = ENVIRONMENT
    region: str | None = None
    signature: str = "v4"
    prefix: str = ""
    part_size: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str | None = None
    existing: str = OVERWRITE
    options: ObjectOptions = field(default_factory=ObjectOptions)
    id: int | None = None
    walk_finished: bool = False
    created_at: float = 0.0
    queued: int = 0

    def upload(self, source: Path, size: int, mtime_ns: int, key: str, *,
               ctime_ns: int | None = None, file_dev: int | None = None,
               file_ino: int | None = None) -> NewUpload:
        """The row to queue for one file this request found (with its change time and
        identity where the walk knows them)."""
        return NewUpload(source=source, size=size, mtime_ns=mtime_ns, key=key,
                         endpoint=self.endpoint, bucket=self.bucket,
                         credentials=self.credentials, region=self.region,
                         signature=self.signature, part_size=self.part_size,
                         metadata=dict(self.metadata), storage_class=self.storage_class,
                         existing=self.existing, ctime_ns=ctime_ns, file_dev=file_dev,
                         file_ino=file_ino, options=self.options)


@dataclass(frozen=True)
class UploadRow:
    """One row of the queue, as stored (plus the sum of its confirmed parts)."""

    id: int
    source: Path
    size: int
    mtime_ns: int
    credentials: str
    endpoint: str
    bucket: str
    region: str | None
    signature: str
    key: str
    upload_id: str | None
    part_size: int | None
    state: State
    reason: str | None
    error: str | None
    error_code: str | None
    position: int
    content_type: str | None
    metadata: dict[str, str]
    storage_class: str | None
    crc64: int | None
    etag: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    confirmed_bytes: int = 0
    confirmed_parts: int = 0
    initiating_at: float | None = None
    existing: str = OVERWRITE
    ctime_ns: int | None = None
    file_dev: int | None = None
    file_ino: int | None = None
    #: Done rows: True when the file was read again and matched what was sent, False when
    #: that re-read was left out (a file above the re-read limit); None otherwise.
    reread: bool | None = None

    @property
    def fingerprint(self) -> Fingerprint:
        """The source as recorded (change time and identity None when not known)."""
        return Fingerprint(self.size, self.mtime_ns, self.ctime_ns, self.file_dev,
                           self.file_ino)
    checked_by: str | None = None
    """``crc64`` or ``md5``: how the data was (or is being) verified; None before that."""
    #: When the upload was first started (None: not yet, or before migration 10).
    started_at: float | None = None
    #: Done rows: the multipart upload id and part count it was completed with (no id and
    #: 0 parts: sent in one request; None: skipped, or done before migration 10).
    done_upload_id: str | None = None
    done_parts: int | None = None
    options: ObjectOptions = field(default_factory=ObjectOptions)
    #: The dropped folder the file was found in (None: queued on its own).
    folder: int | None = None
    #: A multipart upload begun before the link's speed was known: its first parts'
    #: size, and how many parts of it open the plan (None: every part so far, and the rest
    #: may still grow); ``part_size`` is the size of the parts after them. None: every part
    #: is ``part_size``.
    head_size: int | None = None
    head_parts: int | None = None

    @property
    def finished(self) -> bool:
        return self.state is State.DONE

    def writes_like(self, other: UploadRow) -> bool:
        """Whether both rows write the object the same way (account, metadata, storage
        class, Content-Type, options, policy for an object already there)."""
        def how(row: UploadRow) -> tuple[object, ...]:
            return (row.credentials, row.metadata, row.storage_class, row.content_type,
                    row.options, row.existing)
        return how(self) == how(other)

    @property
    def skipped(self) -> bool:
        """Done without sending: an identical object was already there."""
        return self.state is State.DONE and self.reason == SKIPPED


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    etag: str
    crc64: int
    confirmed_at: float


_ROW_COLUMNS = (
    "u.id, u.source, u.size, u.mtime_ns, u.credentials, u.endpoint, u.bucket, u.region, "
    "u.signature, u.key, u.upload_id, u.part_size, u.state, u.reason, u.error, u.error_code, "
    "u.position, u.content_type, u.metadata, u.storage_class, u.crc64, u.etag, u.created_at, "
    "u.updated_at, u.finished_at, "
    "COALESCE((SELECT SUM(p.size) FROM parts p WHERE p.upload = u.id), 0), "
    "(SELECT COUNT(*) FROM parts p WHERE p.upload = u.id), u.initiating_at, u.existing, "
    "u.ctime_ns, u.file_dev, u.file_ino, u.reread, u.checked_by, u.started_at, "
    "u.done_upload_id, u.done_parts, u.options, u.folder, u.head_size, u.head_parts"
)


def _row(values: Sequence[Any]) -> UploadRow:
    metadata = json.loads(values[18]) if values[18] else {}
    return UploadRow(
        id=values[0],
        source=Path(values[1]),
        size=values[2],
        mtime_ns=values[3],
        credentials=values[4],
        endpoint=values[5],
        bucket=values[6],
        region=values[7],
        signature=values[8],
        key=values[9],
        upload_id=values[10],
        part_size=values[11],
        state=State(values[12]),
        reason=values[13],
        error=values[14],
        error_code=values[15],
        position=values[16],
        content_type=values[17],
        metadata=metadata,
        storage_class=values[19],
        crc64=_to_u64(values[20]),
        etag=values[21],
        created_at=values[22],
        updated_at=values[23],
        finished_at=values[24],
        confirmed_bytes=values[25],
        confirmed_parts=values[26],
        initiating_at=values[27],
        existing=values[28],
        ctime_ns=values[29],
        file_dev=_to_u64(values[30]),
        file_ino=_to_u64(values[31]),
        reread=None if values[32] is None else bool(values[32]),
        checked_by=values[33],
        started_at=values[34],
        done_upload_id=values[35],
        done_parts=values[36],
        options=ObjectOptions.from_json(values[37]),
        folder=values[38],
        head_size=values[39],
        head_parts=values[40],
    )


@dataclass(frozen=True)
class Folder:
    """A dropped folder: the files a request found in it are one transfer (their rows'
    ``folder``). ``prefix`` is the key prefix they go under."""

    id: int
    root: Path
    credentials: str
    endpoint: str
    bucket: str
    prefix: str
    request: int | None
    created_at: float

    @property
    def name(self) -> str:
        return self.prefix.rstrip("/").rsplit("/", 1)[-1] or self.root.name


def _folder(values: Sequence[Any]) -> Folder:
    return Folder(id=values[0], root=Path(json.loads(values[1])), credentials=values[2],
                  endpoint=values[3], bucket=values[4], prefix=values[5], request=values[6],
                  created_at=values[7])


_FOLDER_COLUMNS = "id, root, credentials, endpoint, bucket, prefix, request, created_at"


@dataclass(frozen=True)
class WatchedFolder:
    """A folder the window watches: each file that appears or changes in it goes to
    ``oss://bucket/prefix/`` (see :mod:`ossdesk.core.watch`)."""

    folder: Path
    credentials: str
    endpoint: str
    bucket: str
    prefix: str = ""
    region: str | None = None
    signature: str = "v4"
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    paused: bool = False
    id: int | None = None
