"""The upload list's file: its schema and migrations, opening and checking it, setting a
damaged one aside, and the one-process lock (see :mod:`ossdesk.core.store` for the rules).

``MIGRATIONS`` is the schema's history: entry ``i`` moves a file from version ``i`` to
``i + 1`` (``PRAGMA user_version``); a new version is one more entry at the end.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

import filelock

from ossdesk import config

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "OwnerLock",
    "StoreBusy",
    "StoreError",
    "open_checked",
    "owner_running",
    "take_lock",
]

#: ``PRAGMA application_id`` of an ossdesk store ("OSSd").
APPLICATION_ID = 0x4F535364

_BUSY_TIMEOUT_MS = 10_000

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
    # 14: a new upload begun before the link's speed was known is cut into parts of
    # head_size; once the speed is known the rest of the file is cut anew into part_size
    # parts, after the first head_parts (NULL: not yet, every part is head_size and the
    # rest may still grow). head_size NULL: every part is part_size (an explicit part
    # size, a speed known at the start, or a row of an older version).
    """
    ALTER TABLE uploads ADD COLUMN head_size INTEGER CHECK (head_size IS NULL OR head_size > 0);
    ALTER TABLE uploads ADD COLUMN head_parts INTEGER
        CHECK (head_parts IS NULL OR head_parts BETWEEN 0 AND 10000);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The store cannot be used; ``str(exc)`` is a message for the user."""


class StoreBusy(StoreError):
    """Another ossdesk process owns the store."""


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


def connect_reader(path: Path) -> sqlite3.Connection:
    """A connection to read an existing store of this version (no check of the whole file:
    its owner makes them); raises :class:`StoreError` if it is older or newer."""
    conn = _connect(path, create=False)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except BaseException:
        conn.close()
        raise
    if version != SCHEMA_VERSION:
        conn.close()
        raise StoreError("there is no upload list of this version of ossdesk yet"
                         if version < SCHEMA_VERSION else
                         "the upload list was written by a newer version of ossdesk")
    return conn


#: Why an empty file where the store should be is damage, and what it may have left behind.
_EMPTY = "it is empty (0 bytes): it was cut off and what it listed is lost"


def _check_header(path: Path) -> None:
    """An empty file where the store should be is damage. (Whether it is an SQLite file at
    all is SQLite's to say: :func:`_inspect`. The file is never opened here: closing a
    file a process opened drops every POSIX lock that process holds on it, those of its
    own SQLite connections too, and another process would then take itself for the
    list's last user and take the write-ahead log away.)"""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        # A new store is created under another name and renamed into place when complete
        # (:func:`_create`), so an empty file here is not a store being born: it was cut.
        raise _Unusable(_EMPTY)


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


#: SQLite's primary result codes that mean the file itself is damaged (SQLITE_CORRUPT,
#: SQLITE_FORMAT, SQLITE_NOTADB).
_DAMAGED = frozenset({11, 24, 26})
_NOTADB = 26


def _inspect(conn: sqlite3.Connection) -> tuple[int, int, bool]:
    """(application_id, user_version, has_tables) of an open database; raises _Unusable."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        # Only what SQLite calls damage is damage: a full disk, an I/O error, a lock or a
        # missing permission say nothing about the file, which must never be set aside
        # for them (the list would look empty while everything in it is intact).
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code not in _DAMAGED:
            raise
        if code == _NOTADB:
            raise _Unusable("it is not an ossdesk database (damaged or written by another "
                            "program)") from exc
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


def _set_aside(path: Path) -> Path:
    target = config.set_aside(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


#: How long a starting owner waits for the lock before it is refused: long enough that a
#: moment's look by ``ossdesk status`` (:func:`owner_running`) never refuses it.
_LOCK_WAIT_S = 0.5


class OwnerLock:
    """The one-process lock of a store, held until :meth:`close` (or until the process ends:
    the operating system releases it, so a crash never leaves it taken)."""

    def __init__(self, lock: filelock.BaseFileLock) -> None:
        self._lock = lock

    def close(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)


def _file_lock(lock_path: Path) -> filelock.BaseFileLock:
    # An operating-system lock (flock on Unix, LockFileEx on Windows), never a marker file
    # a dead process would leave behind; one instance per taker, so it is exclusive within
    # a process as well as between processes.
    return filelock.FileLock(lock_path, thread_local=False, is_singleton=False,
                             fallback_to_soft=False)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".owner")


def _earlier_owner(path: Path) -> bool:
    """Whether an ossdesk of an earlier version owns the list: those held an exclusive
    SQLite lock on ``<list>.lock`` (which a moment's shared read of it is refused by). A
    new owner only looks at that file, never writes it."""
    earlier = path.with_name(path.name + ".lock")
    if not earlier.exists():
        return False
    try:
        conn = sqlite3.connect(f"{earlier.as_uri()}?mode=ro", uri=True, timeout=0,
                               isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return False
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    except sqlite3.DatabaseError:
        return False  # not a lock an earlier version holds
    finally:
        conn.close()
    return False


_BUSY = ("another ossdesk is already uploading with this upload list; wait for it to finish "
         "(or pause it), then try again")


def take_lock(path: Path) -> OwnerLock:
    """Take the one-process lock of the store at ``path`` (held until the returned
    :class:`OwnerLock` is closed); :class:`StoreBusy` when another process holds it (or an
    ossdesk of an earlier version, which locked another file, still runs). Two processes
    that start in the same instant: exactly one of them gets it."""
    lock_path = _lock_path(path)
    lock = _file_lock(lock_path)
    try:
        lock.acquire(timeout=_LOCK_WAIT_S, poll_interval=0.02)
    except filelock.Timeout as exc:
        raise StoreBusy(_BUSY) from exc
    except OSError as exc:
        if (why := _unwritable(path.parent)) is not None:
            raise _folder_error(path, why) from exc
        raise StoreError(f"cannot lock the upload list {lock_path}: "
                         f"{exc.strerror or exc}") from exc
    if _earlier_owner(path):
        lock.release(force=True)
        raise StoreBusy(_BUSY)
    return OwnerLock(lock)


def owner_running(path: Path | None = None) -> bool:
    """Whether a process holds the one-process lock of the store at ``path`` right now
    (an upload or a window is running). A moment's try of the lock, given back at once
    (a starting owner waits :data:`_LOCK_WAIT_S` for it, so the look never refuses one).
    ``running`` rows when this is False belong to a process that died: they were
    interrupted."""
    path = Path(path) if path is not None else config.paths().database
    lock_path = _lock_path(path)
    if lock_path.exists():
        probe = _file_lock(lock_path)
        try:
            probe.acquire(timeout=0)
        except filelock.Timeout:
            return True
        except OSError:
            pass  # a lock file this user cannot open: nothing can be told from it
        else:
            probe.release(force=True)
    return _earlier_owner(path)


def open_checked(path: Path, *, allow_repair: bool) -> tuple[sqlite3.Connection, str | None]:
    """An open connection to the store at ``path``, made, checked and migrated, and a notice
    for the user when a damaged file had to be set aside (else None). ``allow_repair``
    (the owner) creates, migrates and sets aside; a reader only opens what is there."""
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
