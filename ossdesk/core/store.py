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
small companion file (``<database>.owner``, an operating-system file lock taken with
``filelock``: it works the same on Windows, macOS and Linux, is released by the OS when the
process dies, and of two owners starting in the same instant exactly one gets it; an
ossdesk of an earlier version, which held an SQLite lock on ``<database>.lock``, keeps the
list too while it runs). A second owner gets :class:`StoreBusy` with a clear message. Readers
(``ossdesk status``) open without the lock; WAL lets them read while the owner writes.

Threads: one connection guarded by a lock; every write is one short ``BEGIN IMMEDIATE``
transaction. ``synchronous=NORMAL`` in WAL mode: a commit survives a crash of the process
(SIGKILL); after a power cut the last commits may be lost, which costs at most re-sending
those parts (an upload id lost that way stays on the server as an incomplete upload until
the bucket's lifecycle rule or ``ossdesk`` cleans it).

Where things are: this module holds :class:`Store` (its operations); the file itself (the
schema and its migrations, creating, checking and setting aside, the lock) is in
:mod:`ossdesk.core.store_schema`, the values it holds (rows, requests, folders) in
:mod:`ossdesk.core.store_rows`. Every public name of both is importable from here.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ossdesk import config
from ossdesk.core import store_schema
from ossdesk.core.object_options import ObjectOptions
from ossdesk.core.store_rows import (
    _FOLDER_COLUMNS,
    _ROW_COLUMNS,
    ENVIRONMENT,
    HISTORY,
    OVERWRITE,
    SKIP,
    SKIPPED,
    UNFINISHED,
    Fingerprint,
    Folder,
    NewUpload,
    PartRecord,
    Request,
    State,
    UploadRow,
    WatchedFolder,
    _folder,
    _row,
    _to_i64,
    _to_u64,
)
from ossdesk.core.store_schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    StoreBusy,
    StoreError,
)

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


def _drop_empty_folders(conn: sqlite3.Connection) -> None:
    """Forget the folders none of whose files is in the list any more, except those whose
    walk is still going on (its next files go into the same folder)."""
    conn.execute("DELETE FROM folders WHERE NOT EXISTS "
                 "(SELECT 1 FROM uploads u WHERE u.folder = folders.id) "
                 "AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = folders.request "
                 "AND r.walk_finished = 0)")


class Store:
    """The SQLite checkpoint and queue store. Safe to use from several threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: store_schema.OwnerLock | None,
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
        lock = store_schema.take_lock(path) if owner else None
        try:
            conn, notice = store_schema.open_checked(path, allow_repair=owner)
        except BaseException:
            if lock is not None:
                lock.close()
            raise
        return cls(conn, path, lock, notice)

    @classmethod
    def open_reader(cls, path: Path | None = None) -> Store:
        """Open the store at ``path`` for a quick read, without the checks :meth:`open` makes
        of the whole file (its owner made them when it opened it): for the window, which
        reads a page of rows at a time while the engine writes."""
        path = Path(path) if path is not None else config.paths().database
        if not path.exists():
            raise StoreError("there is no upload list yet")
        try:
            conn = store_schema.connect_reader(path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the upload list {path}: {exc}") from exc
        return cls(conn, path, None, None)

    @staticmethod
    def owner_running(path: Path | None = None) -> bool:
        """Whether a process holds the one-process lock of the store at ``path`` right now
        (see :func:`ossdesk.core.store_schema.owner_running`)."""
        return store_schema.owner_running(path)

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
        folders: dict[int, int | None] = {}  # a folder id asked for -> itself, or None if gone
        with self._write() as conn:
            position = conn.execute("SELECT COALESCE(MAX(position), 0) FROM uploads").fetchone()[0]
            for item in items:
                folder = item.folder
                if folder is not None and folder not in folders:
                    # A folder forgotten meanwhile (its last file removed): the file is
                    # queued on its own rather than refused.
                    folders[folder] = folder if conn.execute(
                        "SELECT 1 FROM folders WHERE id = ?", (folder,)).fetchone() else None
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
                     item.options.to_json(),
                     None if folder is None else folders[folder]),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    def unfinished_for(self, items: Sequence[NewUpload], *, request: Request | None = None,
                       finished_since: float | None = None) -> list[UploadRow | None]:
        """For each of ``items``: the unfinished row (queued, running, paused or failed) of
        the same source, endpoint, bucket and key, the first in queue order; None where there
        is none. With ``request``, only rows queued before it began and not its own (those
        :meth:`add` leaves out already). Such a row is the same file queued before (a run
        that was stopped, killed or failed): it is continued, or cancelled when the new one
        is to be written differently, never queued twice. With ``finished_since``, rows done
        since then count too (a run that resumes rows before it walks: done meanwhile)."""
        states = [s.value for s in UNFINISHED]
        marks = ",".join("?" * len(states))
        rid = request.id if request is not None else None
        before = request.created_at if request is not None else float("inf")
        keys: dict[tuple[str, str], list[str]] = {}
        for item in items:
            keys.setdefault((item.endpoint, item.bucket), []).append(item.key)
        found: dict[tuple[str, str, str, str], UploadRow] = {}
        for (endpoint, bucket), listed in keys.items():
            wanted = list(dict.fromkeys(listed))
            for start in range(0, len(wanted), 500):  # through the key index, 500 at a time
                chunk = wanted[start:start + 500]
                sql = (f"SELECT {_ROW_COLUMNS} FROM uploads u WHERE u.key IN ("  # noqa: S608
                       + ",".join("?" * len(chunk)) + ") AND u.bucket = ? AND u.endpoint = ? "
                       f"AND (u.state IN ({marks}) OR (u.state = 'done' AND "
                       "u.finished_at >= ?)) AND (u.request IS NOT ? OR ? IS NULL) "
                       "AND u.created_at < ? ORDER BY u.position")
                for values in self._query(sql, [*chunk, bucket, endpoint, *states,
                                                finished_since, rid, rid, before]):
                    row = _row(values)
                    found.setdefault((str(row.source), row.key, bucket, endpoint), row)
        return [found.get((str(i.source), i.key, i.bucket, i.endpoint)) for i in items]

    def done_since(self) -> list[tuple[UploadRow, UploadRow]]:
        """``(unfinished row, done row)`` pairs of the same source, endpoint, bucket and key
        where the done one finished after the unfinished one was queued (the last such for
        each): the same file queued twice, as an older ossdesk did for a file uploaded again
        before its first upload had finished. One query through the key index."""
        states = [s.value for s in UNFINISHED]
        marks = ",".join("?" * len(states))
        pairs = self._query(
            f"SELECT u.id, (SELECT d.id FROM uploads d WHERE d.key = u.key "  # noqa: S608
            "AND d.bucket = u.bucket AND d.endpoint = u.endpoint AND d.source = u.source "
            "AND d.state = 'done' AND d.finished_at > u.created_at "
            "ORDER BY d.finished_at DESC LIMIT 1) AS done "
            f"FROM uploads u WHERE u.state IN ({marks}) AND done IS NOT NULL "
            "ORDER BY u.position", states)
        if not pairs:
            return []
        rows = {r.id: r for r in self.rows_for([i for pair in pairs for i in pair])}
        return [(rows[a], rows[b]) for a, b in pairs if a in rows and b in rows]

    def join_request(self, uploads: Iterable[int], request: int) -> None:
        """Make these rows part of ``request`` (an earlier run's rows it continues): its walk,
        run again, leaves them out, and its count of queued files includes them."""
        with self._write() as conn:
            conn.executemany("UPDATE uploads SET request = ? WHERE id = ?",
                             [(request, u) for u in uploads])

    def unfinished_outside(self, request: int) -> int:
        """How many unfinished rows are not part of ``request``."""
        states = [s.value for s in UNFINISHED]
        marks = ",".join("?" * len(states))
        sql = (f"SELECT COUNT(*) FROM uploads WHERE state IN ({marks}) "  # noqa: S608
               "AND request IS NOT ?")
        return int(self._query(sql, [*states, request])[0][0])

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

    def folder_rows(self, folder: int) -> list[UploadRow]:
        """The rows of a dropped folder (in no set order)."""
        return [_row(r) for r in self._query(
            f"SELECT {_ROW_COLUMNS} FROM uploads u WHERE u.folder = ?",  # noqa: S608
            (folder,))]

    def folder_paths(self, folder: int) -> list[tuple[int, str, str]]:
        """Each row of a dropped folder as (id, source, key), in no set order: what a
        search by name or a sort by name reads, without the rest of the rows."""
        return [(int(i), str(source), str(key)) for i, source, key in self._query(
            "SELECT id, source, key FROM uploads WHERE folder = ?", (folder,))]

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

    def begin_multipart(self, upload: int, upload_id: str, part_size: int, *,
                        grows: bool = False) -> None:
        """Record a new multipart upload id (before any part is sent); forgets old parts.
        ``grows``: its ``part_size`` parts were chosen before the link's speed was known,
        and the rest of the file may be cut anew (:meth:`grow_plan`)."""
        with self._write() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload,))
            conn.execute(
                "UPDATE uploads SET upload_id = ?, part_size = ?, head_size = ?, "
                "head_parts = NULL, updated_at = ?, "
                "initiating_at = NULL, started_at = COALESCE(started_at, updated_at), "
                "state = CASE WHEN state = 'queued' THEN 'running' ELSE state END WHERE id = ?",
                (upload_id, part_size, part_size if grows else None, time.time(), upload),
            )

    def grow_plan(self, upload: int, upload_id: str, head_parts: int, part_size: int) -> bool:
        """Record that the multipart upload ``upload_id`` keeps its first ``head_parts``
        parts and cuts the rest of the file into ``part_size`` parts (before any part of
        that size is sent). False, and nothing written, when the row no longer has that
        upload, or its plan cannot grow (fixed, or grown already)."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE uploads SET head_parts = ?, part_size = ?, updated_at = ? "
                "WHERE id = ? AND upload_id = ? AND head_size IS NOT NULL "
                "AND head_parts IS NULL",
                (head_parts, part_size, time.time(), upload, upload_id))
            return cursor.rowcount == 1

    def reset(self, upload: int, *, size: int, mtime_ns: int,
              source: Fingerprint | None = None) -> None:
        """Start a file over: no upload id, no parts, the source as it is now (``source``
        adds its change time and identity, else they become unknown). A plan that could
        grow had no part size of its own: the new upload chooses again."""
        source = source or Fingerprint(size, mtime_ns)
        with self._write() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (upload,))
            conn.execute(
                "UPDATE uploads SET upload_id = NULL, size = ?, mtime_ns = ?, ctime_ns = ?, "
                "file_dev = ?, file_ino = ?, crc64 = NULL, etag = NULL, reread = NULL, "
                "part_size = CASE WHEN head_size IS NULL THEN part_size END, "
                "head_size = NULL, head_parts = NULL, "
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
