"""The checkpoint and queue store: one SQLite file that remembers every upload's place.

What is in it:

* ``uploads``: one row per queued file: the source (path, size, mtime_ns), the destination
  (endpoint, bucket, region, key, signature version, and *which* credentials to use: a
  profile name or ``"environment"``, never a secret), the multipart upload id, the part size,
  the state, the last error, the queue position, and when done the object's CRC64 and ETag.
* ``parts``: one row per part the server has *confirmed* (number, size, ETag, CRC64),
  written in one transaction right after the server's answer was checked.

Rules the engine relies on:

* the multipart upload id is committed before the first part is sent
  (:meth:`Store.begin_multipart`), so a crash never leaves an upload the store forgot;
* a part is recorded only after its CRC64 matched the server's (:meth:`Store.confirm_part`);
* starting a file over deletes its parts and its upload id in one transaction
  (:meth:`Store.reset`), so old parts are never spliced with new content.

Opening: a file that is not an SQLite database, is damaged, belongs to another program or
comes from a newer ossdesk is *set aside* (renamed, never deleted) and a fresh store is
created; :attr:`Store.notice` then carries a message for the user.

One process at a time: an owner (the process that uploads) holds an exclusive lock on a
small companion file (``<database>.lock``, an SQLite file in exclusive locking mode, so the
lock works the same on Windows, macOS and Linux and is released by the OS when the process
dies). A second owner gets :class:`StoreBusy` with a clear message. Readers
(``ossdesk status``) open without the lock; WAL lets them read while the owner writes.

Threads: one connection guarded by a lock; every write is one short ``BEGIN IMMEDIATE``
transaction. ``synchronous=NORMAL`` in WAL mode: a commit survives a crash of the process
(SIGKILL); after a power cut the last commits may be lost, which costs at most re-sending
those parts (an upload id lost that way stays on the server as an incomplete upload until
the bucket's lifecycle rule or ``ossdesk`` cleans it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ossdesk import config
from ossdesk.core.object_options import ObjectOptions

__all__ = [
    "APPLICATION_ID",
    "ENVIRONMENT",
    "HISTORY",
    "MIGRATIONS",
    "OVERWRITE",
    "SCHEMA_VERSION",
    "SKIP",
    "SKIPPED",
    "UNFINISHED",
    "Fingerprint",
    "Folder",
    "NewUpload",
    "PartRecord",
    "Request",
    "State",
    "Store",
    "StoreBusy",
    "StoreError",
    "UploadRow",
    "WatchedFolder",
]

#: ``PRAGMA application_id`` of an ossdesk store ("OSSd").
APPLICATION_ID = 0x4F535364
#: ``NewUpload.existing``: send the file even if the key already exists (the default) ...
OVERWRITE = "overwrite"
#: ... or skip it when the object there has the same size and CRC-64 (checked before any
#: byte is sent); an object with different content is overwritten.
SKIP = "skip"
#: ``UploadRow.reason`` of a done row whose identical object was already in OSS.
SKIPPED = "skipped"
#: The credentials source meaning "OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET from the environment".
ENVIRONMENT = "environment"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS = 10_000
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

# Each entry moves the schema from version i to i + 1. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    # 1: the queue and the confirmed parts.
    """
    CREATE TABLE uploads (
        id            INTEGER PRIMARY KEY,
        source        TEXT    NOT NULL,
        size          INTEGER NOT NULL CHECK (size >= 0),
        mtime_ns      INTEGER NOT NULL,
        credentials   TEXT    NOT NULL,
        endpoint      TEXT    NOT NULL,
        bucket        TEXT    NOT NULL,
        region        TEXT,
        signature     TEXT    NOT NULL DEFAULT 'v4',
        key           TEXT    NOT NULL,
        upload_id     TEXT,
        part_size     INTEGER,
        state         TEXT    NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'running', 'paused', 'done', 'failed')),
        reason        TEXT,
        error         TEXT,
        error_code    TEXT,
        position      INTEGER NOT NULL,
        content_type  TEXT,
        metadata      TEXT,
        storage_class TEXT,
        crc64         INTEGER,
        etag          TEXT,
        created_at    REAL    NOT NULL,
        updated_at    REAL    NOT NULL,
        finished_at   REAL
    );
    CREATE TABLE parts (
        upload        INTEGER NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
        number        INTEGER NOT NULL CHECK (number BETWEEN 1 AND 10000),
        size          INTEGER NOT NULL CHECK (size >= 0),
        etag          TEXT    NOT NULL,
        crc64         INTEGER NOT NULL,
        confirmed_at  REAL    NOT NULL,
        PRIMARY KEY (upload, number)
    ) WITHOUT ROWID;
    """,
    # 2: the queue is read in order, and by state.
    """
    CREATE INDEX uploads_position ON uploads(position);
    CREATE INDEX uploads_state ON uploads(state, position);
    """,
    # 3: when an Initiate was sent whose upload id is not saved yet (a crash in between
    # leaves an upload on the server that only this time stamp can find again).
    """
    ALTER TABLE uploads ADD COLUMN initiating_at REAL;
    """,
    # 4: what to do when the key already exists in OSS: "overwrite" it, or "skip" the file
    # when the object has the same size and CRC-64 (then the row is done, reason "skipped").
    """
    ALTER TABLE uploads ADD COLUMN existing TEXT NOT NULL DEFAULT 'overwrite'
        CHECK (existing IN ('overwrite', 'skip'));
    """,
    # 5: rows are looked up by destination, so that two sources never share one key.
    """
    CREATE INDEX uploads_destination ON uploads(key, bucket, endpoint);
    """,
    # 6: the source's change time and identity (device, inode / file index), so a file
    # rewritten in place with the same size and mtime is noticed (NULL: not known, a row
    # queued by an older version); and whether the file was read again before "done"
    # (1 = its CRC-64 re-read matched, 0 = not read again, NULL = not finished).
    """
    ALTER TABLE uploads ADD COLUMN ctime_ns INTEGER;
    ALTER TABLE uploads ADD COLUMN file_dev INTEGER;
    ALTER TABLE uploads ADD COLUMN file_ino INTEGER;
    ALTER TABLE uploads ADD COLUMN reread INTEGER;
    """,
    # 7: how the data was verified: "crc64" (the server's CRC-64 equals ours) or "md5" (the
    # server sent no CRC-64: each request carried Content-MD5 and each ETag is that MD5).
    # Set to "md5" as soon as one part is verified that way, so that a resume sends Content-MD5
    # from its first request; the final check is written when the row is done.
    """
    ALTER TABLE uploads ADD COLUMN checked_by TEXT
        CHECK (checked_by IS NULL OR checked_by IN ('crc64', 'md5'));
    """,
    # 8: what the user asked for (the roots and the destination), written before the walk
    # starts and marked finished when it ends, so an interrupted walk is finished later;
    # each row knows the request that queued it.
    """
    CREATE TABLE requests (
        id            INTEGER PRIMARY KEY,
        roots         TEXT    NOT NULL,
        credentials   TEXT    NOT NULL,
        endpoint      TEXT    NOT NULL,
        bucket        TEXT    NOT NULL,
        region        TEXT,
        signature     TEXT    NOT NULL DEFAULT 'v4',
        prefix        TEXT    NOT NULL DEFAULT '',
        part_size     INTEGER,
        metadata      TEXT,
        storage_class TEXT,
        existing      TEXT    NOT NULL DEFAULT 'overwrite'
                      CHECK (existing IN ('overwrite', 'skip')),
        walk_finished INTEGER NOT NULL DEFAULT 0 CHECK (walk_finished IN (0, 1)),
        created_at    REAL    NOT NULL,
        finished_at   REAL
    );
    ALTER TABLE uploads ADD COLUMN request INTEGER REFERENCES requests(id) ON DELETE SET NULL;
    CREATE INDEX uploads_request ON uploads(request);
    """,
    # 9: the window's watched folders (a table of their own: nothing else refers to it).
    # includes / excludes: JSON lists of glob patterns (relative paths, as sync's filters).
    """
    CREATE TABLE watched_folders (
        id          INTEGER PRIMARY KEY,
        folder      TEXT    NOT NULL,
        credentials TEXT    NOT NULL,
        endpoint    TEXT    NOT NULL,
        bucket      TEXT    NOT NULL,
        region      TEXT,
        signature   TEXT    NOT NULL DEFAULT 'v4',
        prefix      TEXT    NOT NULL DEFAULT '',
        includes    TEXT    NOT NULL DEFAULT '[]',
        excludes    TEXT    NOT NULL DEFAULT '[]',
        paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
        created_at  REAL    NOT NULL
    );
    """,
    # 10: what a done row's details show after its parts are forgotten: when it was first
    # started, and the multipart upload id and number of parts it was completed with
    # (0 parts: sent in one request; NULL: skipped, or done before this version).
    """
    ALTER TABLE uploads ADD COLUMN started_at REAL;
    ALTER TABLE uploads ADD COLUMN done_upload_id TEXT;
    ALTER TABLE uploads ADD COLUMN done_parts INTEGER;
    """,
    # 11: how the object is written besides its bytes (ACL, Content-Type, Cache-Control,
    # Content-Disposition, tags, server-side encryption): JSON of ObjectOptions, NULL for
    # none; kept so that a resume sends the same headers.
    """
    ALTER TABLE uploads ADD COLUMN options TEXT;
    ALTER TABLE requests ADD COLUMN options TEXT;
    """,
    # 12: a cancelled row stays in the list as history ("cancelled") until the user clears
    # it. SQLite cannot change a CHECK constraint in place: the table is made again (with
    # foreign keys off while it is, see _migrate), same columns in the same order.
    """
    CREATE TABLE uploads_new (
        id            INTEGER PRIMARY KEY,
        source        TEXT    NOT NULL,
        size          INTEGER NOT NULL CHECK (size >= 0),
        mtime_ns      INTEGER NOT NULL,
        credentials   TEXT    NOT NULL,
        endpoint      TEXT    NOT NULL,
        bucket        TEXT    NOT NULL,
        region        TEXT,
        signature     TEXT    NOT NULL DEFAULT 'v4',
        key           TEXT    NOT NULL,
        upload_id     TEXT,
        part_size     INTEGER,
        state         TEXT    NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'running', 'paused', 'done', 'failed',
                                       'cancelled')),
        reason        TEXT,
        error         TEXT,
        error_code    TEXT,
        position      INTEGER NOT NULL,
        content_type  TEXT,
        metadata      TEXT,
        storage_class TEXT,
        crc64         INTEGER,
        etag          TEXT,
        created_at    REAL    NOT NULL,
        updated_at    REAL    NOT NULL,
        finished_at   REAL,
        initiating_at REAL,
        existing      TEXT    NOT NULL DEFAULT 'overwrite'
                      CHECK (existing IN ('overwrite', 'skip')),
        ctime_ns      INTEGER,
        file_dev      INTEGER,
        file_ino      INTEGER,
        reread        INTEGER,
        checked_by    TEXT
                      CHECK (checked_by IS NULL OR checked_by IN ('crc64', 'md5')),
        request       INTEGER REFERENCES requests(id) ON DELETE SET NULL,
        started_at    REAL,
        done_upload_id TEXT,
        done_parts    INTEGER,
        options       TEXT
    );
    INSERT INTO uploads_new SELECT * FROM uploads;
    DROP TABLE uploads;
    ALTER TABLE uploads_new RENAME TO uploads;
    CREATE INDEX uploads_position ON uploads(position);
    CREATE INDEX uploads_state ON uploads(state, position);
    CREATE INDEX uploads_destination ON uploads(key, bucket, endpoint);
    CREATE INDEX uploads_request ON uploads(request);
    """,
    # 13: a dropped folder is one transfer in the window: the folders of the requests, and
    # the folder each row was found in. root: the folder's path, as ASCII JSON (a name that
    # is not UTF-8 is kept, as in requests.roots); prefix: the key prefix its files go
    # under (the destination's folder plus the folder's own name and "/").
    """
    CREATE TABLE folders (
        id          INTEGER PRIMARY KEY,
        request     INTEGER REFERENCES requests(id) ON DELETE SET NULL,
        root        TEXT    NOT NULL,
        credentials TEXT    NOT NULL,
        endpoint    TEXT    NOT NULL,
        bucket      TEXT    NOT NULL,
        prefix      TEXT    NOT NULL,
        created_at  REAL    NOT NULL
    );
    CREATE INDEX folders_request ON folders(request, root);
    ALTER TABLE uploads ADD COLUMN folder INTEGER REFERENCES folders(id) ON DELETE SET NULL;
    CREATE INDEX uploads_folder ON uploads(folder);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The store cannot be used; ``str(exc)`` is a message for the user."""


class StoreBusy(StoreError):
    """Another ossdesk process owns the store."""


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

    @property
    def finished(self) -> bool:
        return self.state is State.DONE

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
    "u.done_upload_id, u.done_parts, u.options, u.folder"
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
    )


class _Unusable(Exception):
    """The file at the database path cannot be used as our store (reason in args[0])."""


def _connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """``create=False``: open an existing file only (SQLite would otherwise make an empty
    one, which the owner would then find and take for a damaged list)."""
    target, uri = (str(path), False) if create else (path.resolve().as_uri() + "?mode=rw", True)
    conn = sqlite3.connect(
        target, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False,
        uri=uri,
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return conn


#: Why an empty file where the store should be is damage, and what it may have left behind.
_EMPTY = "it is empty (0 bytes): it was cut off and what it listed is lost"


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    if not head:
        # A new store is created under another name and renamed into place when complete
        # (:func:`_create`), so an empty file here is not a store being born: it was cut.
        raise _Unusable(_EMPTY)
    if head != _SQLITE_MAGIC:
        raise _Unusable("it is not an ossdesk database (damaged or written by another program)")


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be written in ``folder`` (read-only file system, no permission), or
    None when a file can be made there. Tried for real: permission bits alone do not say
    it (an administrator, a read-only mount, access lists on Windows)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _folder_error(path: Path, why: str) -> StoreError:
    return StoreError(
        f"the folder of the upload list, {path.parent}, cannot be written ({why}); ossdesk "
        "writes there even to read the list: make it writable, or set OSSDESK_HOME to a "
        "folder that is")


def _create(path: Path) -> None:
    """A new, complete store at ``path``: made under a temporary name in the same folder and
    renamed into place, so a crash while it is made never leaves a half-made file there."""
    for stale in path.parent.glob(f"{path.name}.*.creating*"):  # from a crash while creating
        stale.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".creating", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        conn = _connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, 0)
        finally:
            conn.close()  # the last connection: the WAL is written back and removed
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        raise


def _inspect(conn: sqlite3.Connection) -> tuple[int, int, bool]:
    """(application_id, user_version, has_tables) of an open database; raises _Unusable."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise _Unusable("it is damaged") from exc
    if check != "ok":
        raise _Unusable("it is damaged")
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
        raise _Unusable("it belongs to another program")
    if version > SCHEMA_VERSION:
        raise _Unusable("it was written by a newer version of ossdesk")
    return app_id, version, bool(tables)


def _check_foreign_keys(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise StoreError("the upload list could not be updated: its rows do not agree with "
                         "each other")


def _migrate(conn: sqlite3.Connection, start: int) -> None:
    # Foreign keys off while the schema changes (a table made again must not cascade its
    # drop into ``parts``); each step checks them before it commits.
    enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for version in range(start, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                _check_foreign_keys(conn)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {version + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")


def _drop_empty_folders(conn: sqlite3.Connection) -> None:
    """Forget the folders none of whose files is in the list any more (a folder whose walk
    is still going on is recorded again with its next file)."""
    conn.execute("DELETE FROM folders WHERE NOT EXISTS "
                 "(SELECT 1 FROM uploads u WHERE u.folder = folders.id)")


def _set_aside(path: Path) -> Path:
    target = config.set_aside(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


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


class Store:
    """The SQLite checkpoint and queue store. Safe to use from several threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: sqlite3.Connection | None,
                 notice: str | None) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self._owner_lock = lock
        self.path = path
        #: A message for the user when the previous file had to be set aside, else None.
        self.notice = notice
        self._closed = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None, *, owner: bool = True) -> Store:
        """Open (or create) the store at ``path`` (default: :func:`config.paths`).

        ``owner=True`` takes the one-process lock (raises :class:`StoreBusy` if another
        process holds it); ``owner=False`` opens for reading the queue only.
        """
        path = Path(path) if path is not None else config.paths().database
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the upload list {path.parent}: "
                             f"{exc.strerror or exc}") from exc
        lock = cls._take_lock(path) if owner else None
        try:
            conn, notice = cls._open_checked(path, allow_repair=owner)
        except BaseException:
            if lock is not None:
                lock.close()
            raise
        return cls(conn, path, lock, notice)

    @staticmethod
    def _take_lock(path: Path) -> sqlite3.Connection:
        lock_path = path.with_name(path.name + ".lock")
        conn = sqlite3.connect(str(lock_path), timeout=0.2, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("CREATE TABLE IF NOT EXISTS owner (pid INTEGER)")
            conn.execute("DELETE FROM owner")
            conn.execute("INSERT INTO owner VALUES (?)", (os.getpid(),))
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.close()
            if (why := _unwritable(path.parent)) is not None:
                raise _folder_error(path, why) from exc
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreBusy(
                    "another ossdesk is already uploading with this upload list; wait for it to "
                    "finish (or pause it), then try again"
                ) from exc
            raise StoreError(f"cannot lock the upload list {lock_path}: {exc}") from exc
        except sqlite3.DatabaseError:
            # The lock file itself is damaged: it holds nothing of value, start it again.
            conn.close()
            lock_path.unlink(missing_ok=True)
            return Store._take_lock(path)
        return conn

    @staticmethod
    def owner_running(path: Path | None = None) -> bool:
        """Whether a process holds the one-process lock of the store at ``path`` right now
        (an upload or a window is running). Takes nothing: a moment's shared read of the
        lock file, which an owner's exclusive lock refuses. ``running`` rows when this is
        False belong to a process that died: they were interrupted."""
        path = Path(path) if path is not None else config.paths().database
        lock_path = path.with_name(path.name + ".lock")
        if not lock_path.exists():
            return False
        try:
            conn = sqlite3.connect(f"{lock_path.as_uri()}?mode=ro", uri=True, timeout=0,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return False
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc) or "busy" in str(exc)
        except sqlite3.DatabaseError:
            return False  # a damaged lock file holds no lock
        finally:
            conn.close()
        return False

    @classmethod
    def _open_checked(cls, path: Path, *, allow_repair: bool) -> tuple[sqlite3.Connection,
                                                                        str | None]:
        notice: str | None = None
        for attempt in range(2):
            conn: sqlite3.Connection | None = None
            try:
                if allow_repair and not path.exists():
                    try:
                        _create(path)
                    except OSError as exc:
                        raise _folder_error(path, _unwritable(path.parent)
                                            or exc.strerror or str(exc)) from exc
                _check_header(path)
                if not allow_repair and not path.exists():
                    raise StoreError("there is no upload list yet")
                conn = _connect(path, create=allow_repair)
                _, version, _ = _inspect(conn)
                if allow_repair:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                if version < SCHEMA_VERSION:
                    if not allow_repair:
                        conn.close()
                        if version == 0:
                            raise StoreError("there is no upload list yet")
                        raise StoreError("the upload list needs an update; run an upload first")
                    _migrate(conn, version)
                return conn, notice  # noqa: TRY300
            except _Unusable as exc:
                if conn is not None:
                    conn.close()
                # A file SQLite cannot open in a folder it cannot write is not damaged.
                if (why := _unwritable(path.parent)) is not None:
                    raise _folder_error(path, why) from exc
                if not allow_repair or attempt:
                    raise StoreError(f"the upload list {path} cannot be used: {exc.args[0]}") \
                        from exc
                aside = _set_aside(path)
                notice = (
                    f"The upload list {path} could not be used ({exc.args[0]}), so it was set "
                    f"aside as {aside.name} and a new, empty list was started. Uploads already "
                    "finished are not affected; add unfinished ones again. Their unfinished "
                    "uploads may remain in their buckets, stored and billed until aborted: "
                    "`ossdesk uploads --endpoint URL --bucket BUCKET` lists them and can "
                    "abort them."
                )
                if exc.args[0] == _EMPTY:
                    notice += (" Which uploads were unfinished cannot be known from an empty "
                               "file: look in each bucket you were uploading to.")
            except sqlite3.OperationalError as exc:
                if conn is not None:
                    conn.close()
                if (why := _unwritable(path.parent)) is not None:
                    raise _folder_error(path, why) from exc
                raise StoreError(f"cannot open the upload list {path}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
            if self._owner_lock is not None:
                self._owner_lock.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError("the upload list is closed")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise StoreError(self._why(exc)) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise StoreError(self._why(exc)) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # A failed COMMIT (disk full, I/O error) may have rolled back already.
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.DatabaseError):
                self._conn.execute("ROLLBACK")

    def _why(self, exc: sqlite3.DatabaseError) -> str:
        text = str(exc)
        if "full" in text:
            return (f"the disk holding the upload list ({self.path.parent}) is full: free some "
                    "space, then resume; nothing already recorded was lost")
        if "locked" in text or "busy" in text:
            return ("the upload list is in use by another ossdesk; wait for it to finish, "
                    "then try again")
        return f"cannot write the upload list {self.path}: {text}"

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            if self._closed:
                raise StoreError("the upload list is closed")
            return self._conn.execute(sql, params).fetchall()

    # -- the queue -------------------------------------------------------------------------

    def add(self, items: Iterable[NewUpload], *, request: Request | None = None) -> list[int]:
        """Queue files at the end, in one transaction; returns their row ids in order.

        With ``request`` (one begun with :meth:`begin_request`) the rows belong to it, and a
        file already queued for the same key (by this request, or by anything queued since
        it began) is not added again: its id is not in the result.
        """
        now = time.time()
        ids: list[int] = []
        rid = request.id if request is not None else None
        with self._write() as conn:
            position = conn.execute("SELECT COALESCE(MAX(position), 0) FROM uploads").fetchone()[0]
            for item in items:
                if request is not None and conn.execute(
                        "SELECT 1 FROM uploads WHERE source = ? AND key = ? AND bucket = ? "
                        "AND endpoint = ? AND (request = ? OR created_at >= ?) LIMIT 1",
                        (str(item.source), item.key, item.bucket, item.endpoint, rid,
                         request.created_at)).fetchone():
                    continue
                position += 1
                cur = conn.execute(
                    "INSERT INTO uploads (source, size, mtime_ns, credentials, endpoint, bucket, "
                    "region, signature, key, part_size, state, position, content_type, metadata, "
                    "storage_class, created_at, updated_at, existing, ctime_ns, file_dev, "
                    "file_ino, request, options, folder) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', "
                    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(item.source), item.size, item.mtime_ns, item.credentials, item.endpoint,
                     item.bucket, item.region, item.signature, item.key, item.part_size,
                     position, item.content_type,
                     json.dumps(item.metadata, sort_keys=True) if item.metadata else None,
                     item.storage_class, now, now, item.existing, item.ctime_ns,
                     _to_i64(item.file_dev), _to_i64(item.file_ino), rid,
                     item.options.to_json(), item.folder),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    # -- requests: what the user asked for, kept until the walk has queued all of it --------

    def begin_request(self, request: Request) -> Request:
        """Record a request before its walk starts; returns it with its id."""
        now = time.time()
        roots = [str(p) for p in request.roots]
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO requests (roots, credentials, endpoint, bucket, region, signature, "
                "prefix, part_size, metadata, storage_class, existing, created_at, options) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                # ASCII JSON: a name that is not UTF-8 (kept by Python as lone surrogates)
                # is stored escaped and read back as it was, for the walk to report it.
                (json.dumps(roots, ensure_ascii=True), request.credentials, request.endpoint,
                 request.bucket, request.region, request.signature, request.prefix,
                 request.part_size,
                 json.dumps(request.metadata, sort_keys=True) if request.metadata else None,
                 request.storage_class, request.existing, now, request.options.to_json()),
            )
            assert cur.lastrowid is not None
            rid = cur.lastrowid
        return replace(request, id=rid, created_at=now, walk_finished=False, queued=0)

    def set_request_existing(self, request: int, existing: str) -> None:
        """The policy for objects already there, decided while the walk goes on (the window
        asks once per drop): the rest of the walk, finished later, keeps it."""
        with self._write() as conn:
            conn.execute("UPDATE requests SET existing = ? WHERE id = ?", (existing, request))

    def finish_request(self, request: int) -> None:
        """Every file the request's walk found is queued (or was reported).

        An earlier unfinished request for the same roots and destination is finished too:
        this walk has just queued everything it asked for.
        """
        now = time.time()
        with self._write() as conn:
            conn.execute("UPDATE requests SET walk_finished = 1, finished_at = ? WHERE id = ?",
                         (now, request))
            conn.execute(
                "UPDATE requests SET walk_finished = 1, finished_at = ? "
                "WHERE walk_finished = 0 AND id < ? AND EXISTS (SELECT 1 FROM requests r "
                "WHERE r.id = ? AND r.roots = requests.roots AND r.endpoint = requests.endpoint "
                "AND r.bucket = requests.bucket AND r.prefix = requests.prefix)",
                (now, request, request))

    def queued_by(self, request: int) -> int:
        """How many rows the request has queued so far."""
        return int(self._query("SELECT COUNT(*) FROM uploads WHERE request = ?",
                               (request,))[0][0])

    def request_ids(self, request: int) -> list[int]:
        """The ids of every row the request has queued, in queue order."""
        return [r[0] for r in self._query(
            "SELECT id FROM uploads WHERE request = ? ORDER BY position", (request,))]

    # -- dropped folders: one transfer each in the window ------------------------------------

    def folder_for(self, request: int | None, root: Path, *, credentials: str, endpoint: str,
                   bucket: str, prefix: str) -> Folder:
        """The folder ``root`` of ``request`` (recorded the first time it is asked for)."""
        stored = json.dumps(str(root), ensure_ascii=True)
        with self._write() as conn:
            found = conn.execute(
                f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE request IS ? AND root = ? "  # noqa: S608
                "AND endpoint = ? AND bucket = ? AND prefix = ? ORDER BY id LIMIT 1",
                (request, stored, endpoint, bucket, prefix)).fetchone()
            if found is not None:
                return _folder(found)
            now = time.time()
            cur = conn.execute(
                "INSERT INTO folders (request, root, credentials, endpoint, bucket, prefix, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (request, stored, credentials, endpoint, bucket, prefix, now))
            assert cur.lastrowid is not None
            return Folder(id=cur.lastrowid, root=root, credentials=credentials,
                          endpoint=endpoint, bucket=bucket, prefix=prefix, request=request,
                          created_at=now)

    def folders(self, ids: Iterable[int]) -> list[Folder]:
        """The folders of these ids that are recorded, oldest first."""
        wanted = sorted(set(ids))
        found: list[Folder] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found.extend(_folder(v) for v in self._query(
                f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE id IN ({marks})",  # noqa: S608
                chunk))
        return sorted(found, key=lambda f: f.id)

    def unfinished_requests(self) -> list[Request]:
        """Requests whose walk has not finished, oldest first, with the rows queued so far."""
        rows = self._query(
            "SELECT r.id, r.roots, r.credentials, r.endpoint, r.bucket, r.region, r.signature, "
            "r.prefix, r.part_size, r.metadata, r.storage_class, r.existing, r.created_at, "
            "(SELECT COUNT(*) FROM uploads u WHERE u.request = r.id), r.options "
            "FROM requests r WHERE r.walk_finished = 0 ORDER BY r.id")
        return [
            Request(roots=tuple(Path(p) for p in json.loads(v[1])), credentials=v[2],
                    endpoint=v[3], bucket=v[4], region=v[5], signature=v[6], prefix=v[7],
                    part_size=v[8], metadata=json.loads(v[9]) if v[9] else {},
                    storage_class=v[10], existing=v[11], id=v[0], walk_finished=False,
                    created_at=v[12], queued=v[13], options=ObjectOptions.from_json(v[14]))
            for v in rows
        ]

    def move_endpoint(self, credentials: str, endpoint: str) -> int:
        """Point every row and request that uses ``credentials`` at ``endpoint`` (a local
        server that moved to another port); returns how many rows changed."""
        with self._write() as db:
            moved = db.execute("UPDATE uploads SET endpoint = ? WHERE credentials = ? "
                               "AND endpoint != ?", (endpoint, credentials, endpoint)).rowcount
            db.execute("UPDATE requests SET endpoint = ? WHERE credentials = ? AND endpoint != ?",
                       (endpoint, credentials, endpoint))
        return int(moved)

    def unfinished_sources(self, endpoint: str, bucket: str,
                           keys: Iterable[str]) -> dict[str, list[Path]]:
        """For each of ``keys`` that an unfinished row (queued, running, paused, failed) of
        ``endpoint`` and ``bucket`` goes to: the sources of those rows, in queue order."""
        wanted = list(dict.fromkeys(keys))
        states = [s.value for s in UNFINISHED]
        found: dict[str, list[Path]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            sql = ("SELECT key, source FROM uploads WHERE key IN ("  # noqa: S608
                   + ",".join("?" * len(chunk)) + ") AND bucket = ? AND endpoint = ? "
                   "AND state IN (" + ",".join("?" * len(states)) + ") ORDER BY position")
            for key, source in self._query(sql, [*chunk, bucket, endpoint, *states]):
                found.setdefault(key, []).append(Path(source))
        return found

    # -- watched folders -------------------------------------------------------------------

    def watched_folders(self) -> list[WatchedFolder]:
        """The watched folders, in the order they were added."""
        return [WatchedFolder(Path(r[1]), r[2], r[3], r[4], r[7], r[5], r[6],
                              tuple(json.loads(r[8])), tuple(json.loads(r[9])), bool(r[10]),
                              r[0])
                for r in self._query(
                    "SELECT id, folder, credentials, endpoint, bucket, region, signature, "
                    "prefix, includes, excludes, paused FROM watched_folders ORDER BY id")]

    def add_watched_folder(self, watched: WatchedFolder) -> WatchedFolder:
        """Save a watched folder; returns it with its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO watched_folders (folder, credentials, endpoint, bucket, region, "
                "signature, prefix, includes, excludes, paused, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (str(watched.folder), watched.credentials, watched.endpoint, watched.bucket,
                 watched.region, watched.signature, watched.prefix,
                 json.dumps(list(watched.includes)), json.dumps(list(watched.excludes)),
                 int(watched.paused), time.time()))
            new_id = cursor.lastrowid
        return replace(watched, id=new_id)

    def set_watched_paused(self, watched_id: int, paused: bool) -> None:
        with self._write() as db:
            db.execute("UPDATE watched_folders SET paused = ? WHERE id = ?",
                       (int(paused), watched_id))

    def remove_watched_folder(self, watched_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM watched_folders WHERE id = ?", (watched_id,))

    def last_done(self, endpoint: str, bucket: str,
                  keys: Iterable[str]) -> dict[str, UploadRow]:
        """For each of ``keys`` that a ``done`` row of ``endpoint`` and ``bucket`` has: the
        row that finished last."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, UploadRow] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            sql = (f"SELECT {_ROW_COLUMNS} FROM uploads u WHERE u.key IN ("  # noqa: S608
                   + ",".join("?" * len(chunk)) + ") AND u.bucket = ? AND u.endpoint = ? "
                   "AND u.state = 'done' ORDER BY u.finished_at, u.id")
            for values in self._query(sql, [*chunk, bucket, endpoint]):
                row = _row(values)
                found[row.key] = row
        return found

    # The f-strings below only splice fixed column lists and "?" marks, never values.
    def get(self, upload: int) -> UploadRow | None:
        rows = self._query(f"SELECT {_ROW_COLUMNS} FROM uploads u WHERE u.id = ?", (upload,))  # noqa: S608
        return _row(rows[0]) if rows else None

    def rows_for(self, ids: Sequence[int]) -> list[UploadRow]:
        """The rows with these ids (missing ones left out), in the order given."""
        found: dict[int, UploadRow] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_ROW_COLUMNS} FROM uploads u WHERE u.id IN ({marks})"  # noqa: S608
            for values in self._query(sql, chunk):
                row = _row(values)
                found[row.id] = row
        return [found[i] for i in ids if i in found]

    def rows(self, states: Iterable[State] | None = None) -> list[UploadRow]:
        """Rows in queue order, optionally only those in ``states``."""
        if states is None:
            rows = self._query(f"SELECT {_ROW_COLUMNS} FROM uploads u ORDER BY u.position")  # noqa: S608
        else:
            wanted = [State(s).value for s in states]
            marks = ",".join("?" * len(wanted))
            rows = self._query(
                f"SELECT {_ROW_COLUMNS} FROM uploads u WHERE u.state IN ({marks}) "  # noqa: S608
                "ORDER BY u.position", wanted)
        return [_row(r) for r in rows]

    def count(self, states: Iterable[State] | None = None) -> int:
        """How many rows (in ``states``), without reading them."""
        if states is None:
            return int(self._query("SELECT COUNT(*) FROM uploads")[0][0])
        wanted = [State(s).value for s in states]
        marks = ",".join("?" * len(wanted))
        sql = "SELECT COUNT(*) FROM uploads WHERE state IN (" + marks + ")"  # noqa: S608
        return int(self._query(sql, wanted)[0][0])

    def unfinished(self) -> list[UploadRow]:
        return self.rows(UNFINISHED)

    def set_state(self, upload: int, state: State, *, reason: str | None = None,
                  error: str | None = None, error_code: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE uploads SET state = ?, reason = ?, error = ?, error_code = ?, "
                "updated_at = ? WHERE id = ?",
                (State(state).value, reason, error, error_code, time.time(), upload),
            )

    def set_states(self, uploads: Iterable[int], state: State, *, reason: str | None = None,
                   only: Iterable[State] | None = None) -> None:
        """Set many rows at once (one transaction); ``only`` limits it to rows in those states."""
        now = time.time()
        filt = ""
        extra: list[Any] = []
        if only is not None:
            wanted = [State(s).value for s in only]
            filt = f" AND state IN ({','.join('?' * len(wanted))})"
            extra = wanted
        with self._write() as conn:
            sql = ("UPDATE uploads SET state = ?, reason = ?, error = NULL, "  # noqa: S608
                   "error_code = NULL, updated_at = ? WHERE id = ?" + filt)
            conn.executemany(sql, [(State(state).value, reason, now, u, *extra) for u in uploads])

    def mark_running(self, upload: int) -> None:
        """queued -> running (a pause or failure recorded meanwhile is left alone)."""
        with self._write() as conn:
            now = time.time()
            conn.execute("UPDATE uploads SET state = 'running', updated_at = ?, "
                         "started_at = COALESCE(started_at, ?) "
                         "WHERE id = ? AND state IN ('queued', 'running')", (now, now, upload))

    def source_seen(self, upload: int, size: int, mtime_ns: int,
                    source: Fingerprint | None = None) -> None:
        """Record the source as it is now (the file is being started from scratch);
        ``source`` adds its change time and identity (else they become unknown)."""
        source = source or Fingerprint(size, mtime_ns)
        with self._write() as conn:
            conn.execute("UPDATE uploads SET size = ?, mtime_ns = ?, ctime_ns = ?, file_dev = ?, "
                         "file_ino = ?, updated_at = ? WHERE id = ?",
                         (source.size, source.mtime_ns, source.ctime_ns, _to_i64(source.dev),
                          _to_i64(source.ino), time.time(), upload))

    def initiating(self, upload: int, when: float | None) -> None:
        """Record that an Initiate is about to be sent (``when``), or that none is pending."""
        with self._write() as conn:
            conn.execute("UPDATE uploads SET initiating_at = ? WHERE id = ?", (when, upload))

    def begin_multipart(self, upload: int, upload_id: str, part_size: int) -> None:
        """Record a new multipart upload id (before any part is sent); forgets old parts."""
        with self._write() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload,))
            conn.execute(
                "UPDATE uploads SET upload_id = ?, part_size = ?, updated_at = ?, "
                "initiating_at = NULL, started_at = COALESCE(started_at, updated_at), "
                "state = CASE WHEN state = 'queued' THEN 'running' ELSE state END WHERE id = ?",
                (upload_id, part_size, time.time(), upload),
            )

    def reset(self, upload: int, *, size: int, mtime_ns: int,
              source: Fingerprint | None = None) -> None:
        """Start a file over: no upload id, no parts, the source as it is now (``source``
        adds its change time and identity, else they become unknown)."""
        source = source or Fingerprint(size, mtime_ns)
        with self._write() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload,))
            conn.execute(
                "UPDATE uploads SET upload_id = NULL, size = ?, mtime_ns = ?, ctime_ns = ?, "
                "file_dev = ?, file_ino = ?, crc64 = NULL, etag = NULL, reread = NULL, "
                "finished_at = NULL, updated_at = ? WHERE id = ?",
                (source.size, source.mtime_ns, source.ctime_ns, _to_i64(source.dev),
                 _to_i64(source.ino), time.time(), upload),
            )

    def confirm_part(self, upload: int, number: int, size: int, etag: str, crc64: int) -> None:
        """Record one part the server confirmed (CRC already checked), in one transaction."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO parts (upload, number, size, etag, crc64, confirmed_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (upload, number, size, etag, _to_i64(crc64), time.time()),
            )

    def checked_by_md5(self, upload: int) -> None:
        """A part of this row was verified by MD5 (the server gave no CRC-64): remembered,
        so that every later request of the row carries Content-MD5."""
        with self._write() as conn:
            conn.execute("UPDATE uploads SET checked_by = 'md5', updated_at = ? WHERE id = ?",
                         (time.time(), upload))

    def forget_parts(self, upload: int, numbers: Iterable[int]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM parts WHERE upload = ? AND number = ?",
                             [(upload, n) for n in numbers])

    def parts(self, upload: int) -> dict[int, PartRecord]:
        rows = self._query(
            "SELECT number, size, etag, crc64, confirmed_at FROM parts WHERE upload = ? "
            "ORDER BY number", (upload,))
        return {
            r[0]: PartRecord(number=r[0], size=r[1], etag=r[2], crc64=_to_u64(r[3]) or 0,
                             confirmed_at=r[4])
            for r in rows
        }

    def finish(self, upload: int, *, crc64: int | None, etag: str | None,
               skipped: bool = False, reread: bool | None = None,
               checked_by: str = "crc64") -> None:
        """The object is verified: state done; the parts are no longer needed.

        ``skipped``: nothing was sent, an identical object was there (reason ``skipped``).
        ``reread``: whether the file was read again and matched (False: left out).
        ``checked_by``: ``crc64`` or ``md5``, how it was verified.
        """
        if checked_by not in ("crc64", "md5"):
            raise ValueError(f"checked_by must be 'crc64' or 'md5', not {checked_by!r}")
        now = time.time()
        with self._write() as conn:
            # The upload id and part count are kept for the row's details (the update reads
            # the old upload_id before it is cleared).
            conn.execute(
                "UPDATE uploads SET state = 'done', reason = ?, error = NULL, "
                "error_code = NULL, crc64 = ?, etag = ?, done_upload_id = upload_id, "
                "done_parts = CASE WHEN ? THEN NULL WHEN upload_id IS NULL THEN 0 ELSE "
                "(SELECT COUNT(*) FROM parts p WHERE p.upload = uploads.id) END, "
                "upload_id = NULL, finished_at = ?, "
                "updated_at = ?, reread = ?, checked_by = ? WHERE id = ?",
                (SKIPPED if skipped else None, _to_i64(crc64), etag, int(skipped), now, now,
                 None if reread is None else int(reread), checked_by, upload),
            )
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload,))

    def known_upload_ids(self, upload_ids: Sequence[str]) -> dict[str, int]:
        """Which of these multipart upload ids a row of this store records (id -> row):
        those uploads were started by this installation."""
        known: dict[str, int] = {}
        for start in range(0, len(upload_ids), 500):
            chunk = list(upload_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT upload_id, id FROM uploads WHERE upload_id IN ({marks})"  # noqa: S608
            known.update({r[0]: r[1] for r in self._query(sql, chunk)})
        return known

    def remove(self, uploads: Iterable[int]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM uploads WHERE id = ?", [(u,) for u in uploads])
            _drop_empty_folders(conn)

    def cancelled(self, upload: int) -> None:
        """The user gave the upload up and its multipart upload (if any) is aborted: the row
        stays as history, without its upload id and parts; trying it again starts over."""
        with self._write() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload,))
            conn.execute(
                "UPDATE uploads SET state = 'cancelled', reason = NULL, error = NULL, "
                "error_code = NULL, upload_id = NULL, initiating_at = NULL, checked_by = NULL, "
                "updated_at = ? WHERE id = ?", (time.time(), upload))

    def clear_finished(self) -> list[int]:
        """Remove the history: done and cancelled rows."""
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM uploads WHERE state IN ('done', 'cancelled')")]
            conn.execute("DELETE FROM uploads WHERE state IN ('done', 'cancelled')")
            _drop_empty_folders(conn)
        return ids

    def move_to_top(self, upload: int) -> int:
        with self._write() as conn:
            low = conn.execute("SELECT COALESCE(MIN(position), 1) FROM uploads").fetchone()[0]
            conn.execute("UPDATE uploads SET position = ? WHERE id = ?", (low - 1, upload))
        return int(low - 1)

    def move_to_bottom(self, upload: int) -> int:
        with self._write() as conn:
            high = conn.execute("SELECT COALESCE(MAX(position), 0) FROM uploads").fetchone()[0]
            conn.execute("UPDATE uploads SET position = ? WHERE id = ?", (high + 1, upload))
        return int(high + 1)

    # -- facts -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def journal_mode(self) -> str:
        return str(self._query("PRAGMA journal_mode")[0][0])
