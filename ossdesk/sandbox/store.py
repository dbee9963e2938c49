"""The sandbox's storage: a SQLite index plus blob files named by random ids.

Object keys are arbitrary UTF-8 (up to 1023 bytes), so they never become file names. An
object is a list of segments (blob id, size): a single PUT gives one segment, a completed
multipart upload keeps its parts' blobs as segments, so completing is instant whatever the
size. Incoming bodies are written under ``incoming/`` and moved into ``blobs/`` only once
they are whole, so a crash never leaves a half blob referenced.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STALE_INCOMING_SECONDS = 600

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    crc64 TEXT NOT NULL,
    modified REAL NOT NULL,
    type TEXT NOT NULL,
    meta TEXT NOT NULL,
    segments TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated REAL NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    crc64 TEXT NOT NULL,
    modified REAL NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE IF NOT EXISTS garbage (
    blob TEXT PRIMARY KEY
);
"""


@dataclass(frozen=True)
class ObjectRecord:
    bucket: str
    key: str
    size: int
    etag: str  # uppercase hex, without quotes (multipart: "<hex>-<N>")
    crc64: str  # decimal
    modified: float
    type: str  # "Normal" or "Multipart"
    meta: dict[str, Any]  # content-type, storage-class, x-oss-meta-*, other kept headers
    segments: list[tuple[str, int]] = field(repr=False)


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class PartRecord:
    part_number: int
    blob: str
    size: int
    etag: str
    crc64: str
    modified: float


class Store:
    """Thread-safe: one SQLite connection behind a lock; blob I/O happens outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.incoming_dir = root / "incoming"
        root.mkdir(parents=True, exist_ok=True)
        self.blob_dir.mkdir(exist_ok=True)
        self.incoming_dir.mkdir(exist_ok=True)
        self._drop_stale_incoming()
        self._lock = threading.Lock()
        # The timeout covers a second server process sharing the same root.
        self._db = sqlite3.connect(root / "index.sqlite3", check_same_thread=False,
                                   isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._collect_garbage()

    def _drop_stale_incoming(self) -> None:
        """Bodies left half-received by an earlier run are deleted. A file written to in
        the last ten minutes may belong to another server on the same root: left alone."""
        cutoff = time.time() - STALE_INCOMING_SECONDS
        for entry in self.incoming_dir.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except OSError:
                continue

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------ blobs

    def new_incoming(self) -> tuple[str, Path]:
        blob = uuid.uuid4().hex
        return blob, self.incoming_dir / blob

    def blob_path(self, blob: str) -> Path:
        return self.blob_dir / blob

    def commit_incoming(self, blob: str) -> None:
        os.replace(self.incoming_dir / blob, self.blob_dir / blob)

    def discard_incoming(self, blob: str) -> None:
        (self.incoming_dir / blob).unlink(missing_ok=True)

    def _delete_blobs(self, blobs: list[str]) -> None:
        leftover = []
        for blob in blobs:
            try:
                (self.blob_dir / blob).unlink(missing_ok=True)
            except OSError:  # e.g. still open by a reader on Windows: retry next start
                leftover.append(blob)
        if leftover:
            with self._tx() as db:
                db.executemany("INSERT OR IGNORE INTO garbage (blob) VALUES (?)",
                               [(b,) for b in leftover])

    def _collect_garbage(self) -> None:
        with self._lock:
            blobs = [r[0] for r in self._db.execute("SELECT blob FROM garbage")]
            self._db.execute("DELETE FROM garbage")
        self._delete_blobs(blobs)

    # ------------------------------------------------------------ buckets

    def ensure_bucket(self, name: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO buckets (name, created) VALUES (?, ?)",
                       (name, time.time()))

    def buckets(self) -> dict[str, float]:
        with self._lock:
            return dict(self._db.execute("SELECT name, created FROM buckets ORDER BY name"))

    def bucket_created(self, name: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT created FROM buckets WHERE name = ?",
                                   (name,)).fetchone()
        return None if row is None else float(row[0])

    # ------------------------------------------------------------ objects

    @staticmethod
    def _object(row: tuple[Any, ...]) -> ObjectRecord:
        return ObjectRecord(
            bucket=row[0], key=row[1], size=row[2], etag=row[3], crc64=row[4], modified=row[5],
            type=row[6], meta=json.loads(row[7]),
            segments=[(b, int(s)) for b, s in json.loads(row[8])],
        )

    _OBJ_COLS = "bucket, key, size, etag, crc64, modified, type, meta, segments"

    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket = ? AND key = ?",  # noqa: S608
                (bucket, key),
            ).fetchone()
        return None if row is None else self._object(row)

    def object_exists(self, bucket: str, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM objects WHERE bucket = ? AND key = ?",
                                   (bucket, key)).fetchone()
        return row is not None

    def put_object(self, rec: ObjectRecord) -> None:
        with self._tx() as db:
            old = self._replace_object(db, rec)
        self._delete_blobs(old)

    @staticmethod
    def _replace_object(db: sqlite3.Connection, rec: ObjectRecord) -> list[str]:
        row = db.execute("SELECT segments FROM objects WHERE bucket = ? AND key = ?",
                         (rec.bucket, rec.key)).fetchone()
        old = [b for b, _ in json.loads(row[0])] if row else []
        db.execute(
            f"INSERT OR REPLACE INTO objects ({Store._OBJ_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (rec.bucket, rec.key, rec.size, rec.etag, rec.crc64, rec.modified, rec.type,
             json.dumps(rec.meta), json.dumps(rec.segments)),
        )
        return old

    def delete_object(self, bucket: str, key: str) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT segments FROM objects WHERE bucket = ? AND key = ?",
                             (bucket, key)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        self._delete_blobs([b for b, _ in json.loads(row[0])])
        return True

    def iter_objects(self, bucket: str, prefix: str, after: str | None) -> Iterator[ObjectRecord]:
        """Objects with ``prefix`` whose key sorts after ``after``, in UTF-8 byte order."""
        cursor = after
        while True:
            with self._lock:
                if cursor is None or cursor < prefix:
                    rows = self._db.execute(
                        f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket = ? AND key >= ? "  # noqa: S608
                        "ORDER BY key LIMIT 500", (bucket, prefix)).fetchall()
                else:
                    rows = self._db.execute(
                        f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket = ? AND key > ? "  # noqa: S608
                        "ORDER BY key LIMIT 500", (bucket, cursor)).fetchall()
            if not rows:
                return
            for row in rows:
                if not row[1].startswith(prefix):
                    return
                yield self._object(row)
            cursor = rows[-1][1]

    # ------------------------------------------------------------ uploads

    def create_upload(self, bucket: str, key: str, meta: dict[str, Any]) -> UploadRecord:
        # Upload ids sort in initiation order (time first, then random), as upload-id-marker
        # compares them: the uploads of a key listed after the marker are the later ones.
        upload_id = f"{time.time_ns():016X}{uuid.uuid4().hex[:16].upper()}"
        rec = UploadRecord(upload_id, bucket, key, time.time(), meta)
        with self._tx() as db:
            db.execute(
                "INSERT INTO uploads (upload_id, bucket, key, initiated, meta) VALUES (?,?,?,?,?)",
                (rec.upload_id, bucket, key, rec.initiated, json.dumps(meta)),
            )
        return rec

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT upload_id, bucket, key, initiated, meta FROM uploads WHERE upload_id = ?",
                (upload_id,),
            ).fetchone()
        if row is None:
            return None
        return UploadRecord(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def list_uploads(self, bucket: str) -> list[UploadRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT upload_id, bucket, key, initiated, meta FROM uploads WHERE bucket = ? "
                "ORDER BY key, upload_id", (bucket,)).fetchall()
        return [UploadRecord(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def put_part(self, upload_id: str, part: PartRecord) -> bool:
        """Record a part whose blob is committed; False (blob deleted) if the upload is gone."""
        old: list[str] = []
        with self._tx() as db:
            if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone():
                row = db.execute(
                    "SELECT blob FROM parts WHERE upload_id = ? AND part_number = ?",
                    (upload_id, part.part_number)).fetchone()
                if row:
                    old.append(row[0])
                db.execute(
                    "INSERT OR REPLACE INTO parts (upload_id, part_number, blob, size, etag, "
                    "crc64, modified) VALUES (?,?,?,?,?,?,?)",
                    (upload_id, part.part_number, part.blob, part.size, part.etag, part.crc64,
                     part.modified),
                )
                ok = True
            else:
                old.append(part.blob)
                ok = False
        self._delete_blobs(old)
        return ok

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT part_number, blob, size, etag, crc64, modified FROM parts "
                "WHERE upload_id = ? ORDER BY part_number", (upload_id,)).fetchall()
        return [PartRecord(*r) for r in rows]

    def delete_upload(self, upload_id: str) -> bool:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id = ?",
                              (upload_id,)).fetchone():
                return False
            blobs = [r[0] for r in db.execute("SELECT blob FROM parts WHERE upload_id = ?",
                                              (upload_id,))]
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        self._delete_blobs(blobs)
        return True

    def complete_upload(self, upload_id: str, used: list[PartRecord],
                        rec: ObjectRecord) -> bool:
        """Turn an upload into an object made of ``used`` parts; False if the upload is gone
        or a used part changed meanwhile."""
        with self._tx() as db:
            current = {
                r[0]: r[1] for r in db.execute(
                    "SELECT part_number, blob FROM parts WHERE upload_id = ?", (upload_id,))
            }
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id = ?",
                              (upload_id,)).fetchone():
                return False
            if any(current.get(p.part_number) != p.blob for p in used):
                return False
            keep = {p.blob for p in used}
            unused = [b for b in current.values() if b not in keep]
            old = self._replace_object(db, rec)
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        self._delete_blobs(unused + old)
        return True
