"""The SQLite checkpoint store: schema, migrations, damaged files, one owner, the records."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ossdesk import config
from ossdesk.core.object_options import ObjectOptions
from ossdesk.core.store import (
    APPLICATION_ID,
    HISTORY,
    MIGRATIONS,
    OVERWRITE,
    SCHEMA_VERSION,
    SKIP,
    SKIPPED,
    UNFINISHED,
    Fingerprint,
    NewUpload,
    Request,
    State,
    Store,
    StoreBusy,
    StoreError,
    WatchedFolder,
)


def _item(tmp_path: Path, name: str = "a.bin", size: int = 10, **kw: object) -> NewUpload:
    return NewUpload(source=tmp_path / name, size=size, mtime_ns=123, key=f"k/{name}",
                     endpoint="http://127.0.0.1:1", bucket="b", **kw)  # type: ignore[arg-type]


def test_new_store_has_schema_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Store.open() as store:
        assert store.path == config.paths().database
        assert store.schema_version() == SCHEMA_VERSION
        assert store.journal_mode() == "wal"
        assert store.notice is None
    conn = sqlite3.connect(config.paths().database)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_rows_round_trip_in_queue_order(tmp_path: Path) -> None:
    with Store.open() as store:
        ids = store.add([_item(tmp_path, "a"), _item(tmp_path, "b", metadata={"x": "1"}),
                         _item(tmp_path, "c", storage_class="IA")])
        assert [r.key for r in store.rows()] == ["k/a", "k/b", "k/c"]
        store.move_to_top(ids[2])
        store.move_to_bottom(ids[0])
        assert [r.key for r in store.rows()] == ["k/c", "k/b", "k/a"]
        assert [r.id for r in store.rows_for([ids[1], 999, ids[0]])] == [ids[1], ids[0]]
        row = store.get(ids[1])
        assert row is not None
        assert row.metadata == {"x": "1"}
        assert row.state is State.QUEUED
        assert store.get(ids[2]).storage_class == "IA"  # type: ignore[union-attr]
        store.set_state(ids[0], State.FAILED, error="boom", error_code="X")
        assert [r.id for r in store.rows([State.FAILED])] == [ids[0]]
        assert {r.id for r in store.unfinished()} == set(ids)


def test_parts_big_crc_and_cascade(tmp_path: Path) -> None:
    big_crc = (1 << 64) - 5  # above the signed 64-bit range of SQLite integers
    with Store.open() as store:
        (upload,) = store.add([_item(tmp_path, size=300)])
        store.begin_multipart(upload, "UPLOAD-1", 100)
        store.confirm_part(upload, 1, 100, "E1", big_crc)
        store.confirm_part(upload, 2, 100, "E2", 7)
        parts = store.parts(upload)
        assert parts[1].crc64 == big_crc and parts[2].etag == "E2"
        row = store.get(upload)
        assert row is not None
        assert (row.upload_id, row.part_size, row.state) == ("UPLOAD-1", 100, State.RUNNING)
        assert (row.confirmed_bytes, row.confirmed_parts) == (200, 2)
        store.forget_parts(upload, [2])
        assert list(store.parts(upload)) == [1]
        store.reset(upload, size=301, mtime_ns=5)
        row = store.get(upload)
        assert row is not None and row.upload_id is None and row.size == 301
        assert store.parts(upload) == {}
        store.begin_multipart(upload, "UPLOAD-2", 100)
        store.confirm_part(upload, 1, 100, "E1", 1)
        store.remove([upload])
        assert store.get(upload) is None
        # ON DELETE CASCADE: no orphan parts left behind.
        assert store.parts(upload) == {}
        (done,) = store.add([_item(tmp_path)])
        store.finish(done, crc64=big_crc, etag="E")
        row = store.get(done)
        assert row is not None and row.state is State.DONE and row.crc64 == big_crc
        assert store.clear_finished() == [done]


def test_upload_id_is_committed_before_anything_else(tmp_path: Path) -> None:
    """Another connection sees the upload id right after begin_multipart returns."""
    with Store.open() as store:
        (upload,) = store.add([_item(tmp_path)])
        store.begin_multipart(upload, "ID-9", 100)
        other = sqlite3.connect(store.path)
        try:
            assert other.execute("SELECT upload_id FROM uploads WHERE id = ?",
                                 (upload,)).fetchone() == ("ID-9",)
        finally:
            other.close()


def test_migration_from_version_1_keeps_rows(tmp_path: Path) -> None:
    path = config.paths().database
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO uploads (source, size, mtime_ns, credentials, endpoint, bucket, "
                 "key, state, position, created_at, updated_at) VALUES "
                 "('/x', 1, 2, 'environment', 'http://e', 'b', 'k', 'paused', 1, 0, 0)")
    conn.commit()
    conn.close()
    with Store.open() as store:
        assert store.notice is None
        assert store.schema_version() == SCHEMA_VERSION == 14
        assert [(r.key, r.state, r.initiating_at, r.existing) for r in store.rows()] == [
            ("k", State.PAUSED, None, OVERWRITE)]
        # A row from an older version: change time and identity not known, no re-read yet.
        [row] = store.rows()
        assert row.fingerprint == Fingerprint(1, 2, None, None, None)
        assert row.reread is None
        indexes = store._query("SELECT name FROM sqlite_master WHERE type = 'index'")
        assert ("uploads_position",) in indexes
        assert ("uploads_destination",) in indexes
        assert store.unfinished_sources("http://e", "b", ["k", "other"]) == {"k": [Path("/x")]}
        assert store.unfinished_sources("http://e", "elsewhere", ["k"]) == {}


@pytest.mark.parametrize("damage", ["garbage", "foreign", "newer", "truncated", "empty"])
def test_unusable_file_is_set_aside_with_a_notice(tmp_path: Path, damage: str) -> None:
    path = config.paths().database
    path.parent.mkdir(parents=True)
    if damage == "empty":
        with Store.open() as store:
            store.add([_item(tmp_path)])
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"this is not a database at all\n" * 100)
    elif damage == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE photos (id INTEGER)")
        conn.commit()
        conn.close()
    else:
        with Store.open() as store:
            store.add([_item(tmp_path)])
        if damage == "newer":
            conn = sqlite3.connect(path)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
            conn.commit()
            conn.close()
        else:
            data = path.read_bytes()
            path.write_bytes(data[:100] + b"\xff" * 200 + data[300:])
    original = path.read_bytes()
    with Store.open() as store:
        assert store.notice is not None
        assert "set aside" in store.notice
        assert store.rows() == []
        assert store.schema_version() == SCHEMA_VERSION
        assert "ossdesk uploads --endpoint URL --bucket BUCKET" in store.notice
        assert ("cannot be known from an empty file" in store.notice) == (damage == "empty")
    aside = path.with_name(path.name + ".corrupt-1")
    assert aside.read_bytes() == original  # kept, never deleted


def test_second_owner_is_refused_but_a_reader_may_look(tmp_path: Path) -> None:
    with Store.open() as store:
        store.add([_item(tmp_path)])
        with pytest.raises(StoreBusy, match="another ossdesk"):
            Store.open()
        with Store.open(owner=False) as reader:
            assert [r.key for r in reader.rows()] == ["k/a.bin"]
    with Store.open() as again:  # the lock went with the first owner
        assert len(again.rows()) == 1


_RACER = """
import sys
from pathlib import Path
from ossdesk.core import store_schema
go = Path(sys.argv[2])
while not go.exists():
    pass  # spins, so both racers leave in the same instant
try:
    lock = store_schema.take_lock(Path(sys.argv[1]))
except store_schema.StoreBusy:
    print("refused", flush=True)
    sys.exit(3)
print("owner", flush=True)
sys.stdin.read()  # holds the lock until the test closes stdin
"""


@pytest.mark.parametrize("made", [False, True], ids=["new-list", "list-there"])
def test_two_owners_starting_together_one_of_them_wins(tmp_path: Path, made: bool) -> None:
    """Two ossdesk processes that start in the same instant: one takes the list, the other
    is refused, never both (each round starts both racers on one signal)."""
    import subprocess
    import sys

    for round_ in range(6):
        folder = tmp_path / f"round-{round_}"
        folder.mkdir()
        path = folder / "ossdesk.sqlite3"
        if made:
            with Store.open(path):
                pass
        go = folder / "go"
        racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(path), str(go)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                  for _ in range(2)]
        try:
            go.touch()
            first = [r.stdout.readline().strip() for r in racers if r.stdout is not None]
        finally:
            for r in racers:
                assert r.stdin is not None and r.stdout is not None
                r.stdin.close()
                r.stdout.close()
            codes = sorted(r.wait(30) for r in racers)
        assert sorted(first) == ["owner", "refused"], (round_, first)
        assert codes == [0, 3]


def test_existing_policy_and_skipped_rows_are_kept(tmp_path: Path) -> None:
    with Store.open() as store:
        default, skip = store.add([_item(tmp_path), dataclasses.replace(_item(tmp_path),
                                                                        existing=SKIP)])
        store.finish(skip, crc64=(1 << 64) - 1, etag="E", skipped=True)
    with Store.open() as store:
        first, second = store.rows_for([default, skip])
        assert (first.existing, first.skipped) == (OVERWRITE, False)
        assert (second.existing, second.state, second.reason, second.skipped) == (
            SKIP, State.DONE, SKIPPED, True)
        assert second.crc64 == (1 << 64) - 1
        with pytest.raises(sqlite3.IntegrityError):
            store._conn.execute("UPDATE uploads SET existing = 'ask' WHERE id = ?", (skip,))
    with pytest.raises(ValueError, match="existing"):
        dataclasses.replace(_item(tmp_path), existing="ask")


def test_owner_running_sees_the_lock_without_taking_it(tmp_path: Path) -> None:
    assert not Store.owner_running()  # no list yet
    with Store.open():
        assert Store.owner_running()
        with Store.open(owner=False):
            assert Store.owner_running()
    assert not Store.owner_running()
    with Store.open():  # the probe took nothing
        assert Store.owner_running()


def test_reader_does_not_repair(tmp_path: Path) -> None:
    path = config.paths().database
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        Store.open(owner=False)
    assert path.read_bytes() == b"garbage" * 100


def test_a_reader_before_the_first_owner_leaves_no_file_to_be_taken_for_damage(
    tmp_path: Path,
) -> None:
    """The window reads the list (its watched folders) while its engine process may not have
    made it yet: the reader must not leave an empty file, which the engine would then set
    aside as a damaged list and say so."""
    path = config.paths().database
    path.parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(StoreError, match="no upload list yet"):
        Store.open(owner=False)
    assert not path.exists()
    with Store.open() as owner:
        assert owner.notice is None
    assert not list(path.parent.glob("*.corrupt*"))


def test_closed_store_raises_a_clear_error(tmp_path: Path) -> None:
    store = Store.open()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.rows()


def test_source_fingerprint_round_trip_and_comparison(tmp_path: Path) -> None:
    big = (1 << 64) - 5  # inode numbers and device ids are unsigned 64-bit
    with Store.open() as store:
        [upload] = store.add([NewUpload(source=tmp_path / "f", size=3, mtime_ns=4, key="f",
                                        endpoint="http://e", bucket="b", ctime_ns=5,
                                        file_dev=big, file_ino=big - 1)])
        row = store.get(upload)
        assert row is not None
        assert row.fingerprint == Fingerprint(3, 4, 5, big, big - 1)
        store.reset(upload, size=6, mtime_ns=7, source=Fingerprint(6, 7, 8, 9, 10))
        row = store.get(upload)
        assert row is not None and row.fingerprint == Fingerprint(6, 7, 8, 9, 10)
        store.finish(upload, crc64=1, etag="e", reread=False)
        row = store.get(upload)
        assert row is not None and row.reread is False

    known = Fingerprint(10, 20, 30, 1, 2)
    assert known.same_as(Fingerprint(10, 20, 30, 1, 2))
    assert not known.same_as(Fingerprint(10, 20, 31, 1, 2))  # rewritten, mtime put back
    assert not known.same_as(Fingerprint(10, 20, 30, 1, 3))  # another file
    assert not known.same_as(Fingerprint(11, 20, 30, 1, 2))
    # Unknown (an older row, an OS that reports 0) is never a difference on its own.
    assert known.same_as(Fingerprint(10, 20))
    assert Fingerprint(10, 20).same_as(known)
    # Only the change time differs (chmod, a hard link, xattrs): the parts are read again.
    assert Fingerprint(10, 20, 31, 1, 2).only_change_time_differs(known)
    assert not known.only_change_time_differs(known)
    assert not Fingerprint(10, 20, 31, 1, 3).only_change_time_differs(known)
    assert not Fingerprint(10, 21, 31, 1, 2).only_change_time_differs(known)
    assert not Fingerprint(11, 20, 31, 1, 2).only_change_time_differs(known)
    assert not Fingerprint(10, 20, 31).only_change_time_differs(Fingerprint(10, 20))
    path = tmp_path / "real"
    path.write_bytes(b"x")
    assert Fingerprint.of(path.stat()).same_as(Fingerprint.of(path.stat()))
    # 0 is "not known"; a 128-bit file id (ReFS) is folded to 64 bits and stored.
    unknown = os.stat_result((0o100644, 0, 0, 1, 0, 0, 3, 1, 2, 3, 1.0, 2.0, 3.0, 1, 2, 0))
    assert Fingerprint.of(unknown) == Fingerprint(3, 2, None, None, None)
    wide = os.stat_result((0o100644, (7 << 100) | 5, 9, 1, 0, 0, 3, 1, 2, 3, 1.0, 2.0, 3.0,
                           1, 2, 3))
    folded = Fingerprint.of(wide)
    assert folded.ino is not None and 0 < folded.ino < 1 << 64 and folded.dev == 9
    with Store.open() as store:
        [upload] = store.add([NewUpload(source=path, size=3, mtime_ns=2, key="w",
                                        endpoint="http://e", bucket="b", ctime_ns=3,
                                        file_dev=folded.dev, file_ino=folded.ino)])
        row = store.get(upload)
        assert row is not None and row.fingerprint == folded


def test_a_request_is_kept_until_its_walk_finishes(tmp_path: Path) -> None:
    with Store.open() as store:
        asked = Request(roots=(tmp_path / "folder",), endpoint="http://127.0.0.1:1",
                        bucket="b", prefix="p/", metadata={"m": "1"}, existing=SKIP)
        request = store.begin_request(asked)
        assert request.id is not None
        [waiting] = store.unfinished_requests()
        assert waiting.roots == asked.roots and waiting.prefix == "p/"
        assert waiting.metadata == {"m": "1"} and waiting.existing == SKIP
        assert waiting.queued == 0
        first = store.add([_item(tmp_path, "a"), _item(tmp_path, "b")], request=request)
        # Walked again: the files already queued are not added twice.
        again = store.add([_item(tmp_path, "a"), _item(tmp_path, "b"), _item(tmp_path, "c")],
                          request=request)
        assert len(first) == 2 and len(again) == 1
        assert store.queued_by(request.id) == 3
        assert store.request_ids(request.id) == [*first, *again]
        assert store.unfinished_requests()[0].queued == 3
        # A later request for the same roots that finishes its walk finishes this one too.
        later = store.begin_request(asked)
        assert later.id is not None
        # Asked again: queued again (as a new upload always is), once.
        assert len(store.add([_item(tmp_path, "a")], request=later)) == 1
        assert store.add([_item(tmp_path, "a")], request=later) == []
        store.finish_request(later.id)
        assert store.unfinished_requests() == []
        # Without a request, nothing is left out.
        assert len(store.add([_item(tmp_path, "a")])) == 1


def test_migration_from_version_5_adds_requests(tmp_path: Path) -> None:
    db = config.paths().database
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    for version in range(5):
        conn.executescript(MIGRATIONS[version])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO uploads (source, size, mtime_ns, credentials, endpoint, bucket, "
                 "key, position, created_at, updated_at) "
                 "VALUES ('/x', 1, 1, 'environment', 'e', 'b', 'k', 1, 0, 0)")
    conn.commit()
    conn.close()
    with Store.open() as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        assert [r.key for r in store.rows()] == ["k"]
        assert store.unfinished_requests() == []


def test_a_crash_while_the_first_store_is_made_leaves_nothing_called_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first store is made under another name and renamed into place: a crash in the
    middle leaves no file (let alone an empty one) where the store belongs."""
    from ossdesk.core import store_schema

    path = config.paths().database

    def crash(conn: sqlite3.Connection, start: int) -> None:
        assert not path.exists()  # nothing at the store's name while it is being made
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(store_schema, "_migrate", crash)
        with pytest.raises(KeyboardInterrupt):
            Store.open()
    assert not path.exists()
    assert [p.name for p in path.parent.iterdir() if "creating" in p.name] == []
    with Store.open() as store:
        assert store.notice is None
        assert store.schema_version() == SCHEMA_VERSION
    assert path.stat().st_size > 0
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".owner"]


def test_move_endpoint_moves_only_the_rows_of_those_credentials(tmp_path: Path) -> None:
    with Store.open() as store:
        ids = store.add([_item(tmp_path, "a", credentials="sandbox"),
                         _item(tmp_path, "b", credentials="work"),
                         dataclasses.replace(_item(tmp_path, "c", credentials="sandbox"),
                                             endpoint="http://127.0.0.1:2")])
        assert store.move_endpoint("sandbox", "http://127.0.0.1:3") == 2
        assert [store.get(i).endpoint for i in ids] == [  # type: ignore[union-attr]
            "http://127.0.0.1:3", "http://127.0.0.1:1", "http://127.0.0.1:3"]
        assert store.move_endpoint("sandbox", "http://127.0.0.1:3") == 0


def test_watched_folders_are_kept_across_opens_and_reader_writes_them(tmp_path: Path) -> None:
    folder = tmp_path / "renders"
    with Store.open() as store:
        assert store.watched_folders() == []
        saved = store.add_watched_folder(WatchedFolder(
            folder, "work", "https://oss-cn-hangzhou.aliyuncs.com", "b", "renders/",
            "cn-hangzhou", "v4", ("*.exr",), ("*.lock", "cache")))
        assert saved.id is not None
    # The window writes the list while its engine process owns the upload list.
    with Store.open() as owner, Store.open(owner=False) as window:
        second = window.add_watched_folder(WatchedFolder(tmp_path / "b", "environment",
                                                         "http://e", "b2"))
        window.set_watched_paused(saved.id, True)
        assert [w.id for w in owner.watched_folders()] == [saved.id, second.id]
    with Store.open() as store:
        first, other = store.watched_folders()
        assert first == dataclasses.replace(saved, paused=True)
        assert (other.folder, other.prefix, other.includes, other.paused) == \
            (tmp_path / "b", "", (), False)
        assert other.id is not None
        store.remove_watched_folder(other.id)
        assert [w.id for w in store.watched_folders()] == [saved.id]


def test_object_options_are_kept_with_the_row_and_the_request(tmp_path: Path) -> None:
    """A resume (or the walk finished later) writes the object as first asked."""
    options = ObjectOptions(acl="private", content_type="text/csv", cache_control="no-cache",
                            content_disposition="inline", tags=(("a", "1"), ("b c", "d")),
                            encryption="KMS", kms_key_id="k-1").checked()
    with Store.open() as store:
        request = store.begin_request(Request(roots=(tmp_path,), endpoint="http://e",
                                              bucket="b", options=options))
        [upload] = store.add([request.upload(tmp_path / "x", 1, 2, "x")], request=request)
        [plain] = store.add([NewUpload(source=tmp_path / "y", size=1, mtime_ns=2, key="y",
                                       endpoint="http://e", bucket="b")])
    with Store.open() as store:
        row = store.get(upload)
        assert row is not None and row.options == options
        other = store.get(plain)
        assert other is not None and other.options == ObjectOptions()
        [unfinished] = store.unfinished_requests()
        assert unfinished.options == options


def test_migration_from_version_11_keeps_rows_parts_and_requests(tmp_path: Path) -> None:
    """Version 12 makes the uploads table again (for the "cancelled" state): every row,
    its confirmed parts and its request stay as they were."""
    db = config.paths().database
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    for version in range(11):
        conn.executescript(MIGRATIONS[version])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 11")
    conn.execute("INSERT INTO requests (roots, credentials, endpoint, bucket, created_at) "
                 "VALUES ('[\"/x\"]', 'environment', 'e', 'b', 0)")
    conn.execute("INSERT INTO uploads (source, size, mtime_ns, credentials, endpoint, bucket, "
                 "key, upload_id, part_size, state, position, created_at, updated_at, request, "
                 "options) VALUES ('/x', 20, 1, 'environment', 'e', 'b', 'k', 'ID-1', 10, "
                 "'paused', 1, 0, 0, 1, '{\"acl\": \"private\"}')")
    conn.execute("INSERT INTO parts VALUES (1, 1, 10, 'etag', 77, 0)")
    conn.commit()
    conn.close()
    with Store.open() as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        [row] = store.rows()
        assert (row.key, row.state, row.upload_id, row.confirmed_bytes) == (
            "k", State.PAUSED, "ID-1", 10)
        assert list(store.parts(row.id)) == [1]
        assert store.request_ids(1) == [row.id]
        # Foreign keys hold again after the migration: removing the row removes its parts.
        store.remove([row.id])
    check = sqlite3.connect(db)
    try:
        assert check.execute("SELECT COUNT(*) FROM parts").fetchone() == (0,)
        indexes = {r[0] for r in check.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'uploads'")}
        assert {"uploads_position", "uploads_state", "uploads_destination",
                "uploads_request"} <= indexes
    finally:
        check.close()


def test_a_cancelled_row_is_history_until_cleared(tmp_path: Path) -> None:
    with Store.open() as store:
        done, cancelled, waiting = store.add(
            [_item(tmp_path, "done"), _item(tmp_path, "cancelled"), _item(tmp_path, "waiting")])
        store.finish(done, crc64=1, etag="e")
        store.begin_multipart(cancelled, "ID-2", 5)
        store.confirm_part(cancelled, 1, 5, "etag", 9)
        store.cancelled(cancelled)
        row = store.get(cancelled)
        assert row is not None
        assert (row.state, row.upload_id, row.confirmed_bytes) == (State.CANCELLED, None, 0)
        assert store.parts(cancelled) == {}
        # Not unfinished: nothing resumes it, nothing counts it as left to do.
        assert State.CANCELLED not in UNFINISHED and State.CANCELLED in HISTORY
        assert [r.id for r in store.unfinished()] == [waiting]
        assert store.count(UNFINISHED) == 1
        assert store.unfinished_sources("http://127.0.0.1:1", "b", ["k/cancelled"]) == {}
        assert store.known_upload_ids(["ID-2"]) == {}
        # It keeps its place in the queue.
        assert [r.id for r in store.rows()] == [done, cancelled, waiting]
        assert sorted(store.clear_finished()) == [done, cancelled]
        assert [r.id for r in store.rows()] == [waiting]


def test_a_dropped_folder_is_recorded_once_and_forgotten_with_its_last_file(
        tmp_path: Path) -> None:
    with Store.open() as store:
        request = store.begin_request(Request(roots=(tmp_path / "photos",),
                                              endpoint="http://127.0.0.1:1", bucket="b"))
        folder = store.folder_for(request.id, tmp_path / "photos", credentials="p",
                                  endpoint="http://127.0.0.1:1", bucket="b", prefix="k/photos/")
        again = store.folder_for(request.id, tmp_path / "photos", credentials="p",
                                 endpoint="http://127.0.0.1:1", bucket="b", prefix="k/photos/")
        assert again == folder and folder.name == "photos"
        ids = store.add([_item(tmp_path, "photos/a", folder=folder.id),
                         _item(tmp_path, "photos/b", folder=folder.id), _item(tmp_path, "c")],
                        request=request)
        assert [r.folder for r in store.rows_for(ids)] == [folder.id, folder.id, None]
        assert request.id is not None
        store.finish_request(request.id)  # the walk is over: nothing more goes into it
        store.remove(ids[:1])
        assert store.folders([folder.id]) == [folder]
        store.set_state(ids[1], State.DONE)
        store.clear_finished()
        assert store.folders([folder.id]) == []
        assert [r.id for r in store.rows()] == [ids[2]]


def test_the_window_reads_a_folders_rows_and_paths_while_the_owner_holds_the_list(
        tmp_path: Path) -> None:
    """``open_reader`` (the window's quick read, no check of the whole file) reads what the
    owner wrote, while the owner keeps the list open; ``folder_rows`` and ``folder_paths``
    give the rows of one folder only."""
    with pytest.raises(StoreError, match="no upload list yet"):
        Store.open_reader()
    with Store.open() as owner:
        folder = owner.folder_for(None, tmp_path / "photos", credentials="p",
                                  endpoint="http://127.0.0.1:1", bucket="b", prefix="k/photos/")
        a, b, c = owner.add([_item(tmp_path, "photos/a", folder=folder.id),
                             _item(tmp_path, "photos/b", folder=folder.id),
                             _item(tmp_path, "c")])
        with Store.open_reader() as reader:
            assert sorted(r.id for r in reader.folder_rows(folder.id)) == [a, b]
            assert sorted(reader.folder_paths(folder.id)) == [
                (a, str(tmp_path / "photos/a"), owner.rows_for([a])[0].key),
                (b, str(tmp_path / "photos/b"), owner.rows_for([b])[0].key)]
            owner.remove([a])  # written while the reader is open: it reads it at once
            assert [r.id for r in reader.folder_rows(folder.id)] == [b]
            assert [r.id for r in reader.rows_for([a, b, c])] == [b, c]


def test_the_window_does_not_read_a_list_of_another_version(tmp_path: Path) -> None:
    db = config.paths().database
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    for version in range(12):
        conn.executescript(MIGRATIONS[version])
    conn.execute("PRAGMA user_version = 12")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="no upload list of this version"):
        Store.open_reader()


def test_migration_from_version_12_adds_folders(tmp_path: Path) -> None:
    db = config.paths().database
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    for version in range(12):
        conn.executescript(MIGRATIONS[version])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 12")
    conn.execute("INSERT INTO uploads (source, size, mtime_ns, credentials, endpoint, bucket, "
                 "key, position, created_at, updated_at) "
                 "VALUES ('/x', 1, 1, 'environment', 'e', 'b', 'k', 1, 0, 0)")
    conn.commit()
    conn.close()
    with Store.open() as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        assert [(r.key, r.folder) for r in store.rows()] == [("k", None)]
        folder = store.folder_for(None, Path("/d"), credentials="environment", endpoint="e",
                                  bucket="b", prefix="d/")
        assert store.folders([folder.id]) == [folder]


def test_an_earlier_unfinished_row_of_the_same_file_is_found_for_a_new_request(
        tmp_path: Path) -> None:
    """``unfinished_for``: the unfinished row (queued, running, paused, failed) of the same
    source, endpoint, bucket and key, outside the request; done and cancelled rows, other
    sources, keys, buckets and endpoints are not it."""
    with Store.open() as store:
        paused, done, cancelled, other = store.add([
            _item(tmp_path, "a.bin"), _item(tmp_path, "b.bin"), _item(tmp_path, "c.bin"),
            _item(tmp_path, "d.bin")])
        store.set_state(paused, State.PAUSED, reason="shutdown")
        store.finish(done, crc64=1, etag="e")
        store.cancelled(cancelled)
        request = store.begin_request(Request(roots=(tmp_path,), endpoint="http://127.0.0.1:1",
                                              bucket="b"))
        assert request.id is not None
        wanted = [_item(tmp_path, "a.bin"), _item(tmp_path, "b.bin"),
                  _item(tmp_path, "c.bin"),
                  dataclasses.replace(_item(tmp_path, "d.bin"), source=tmp_path / "e.bin"),
                  dataclasses.replace(_item(tmp_path, "a.bin"), key="k/other"),
                  dataclasses.replace(_item(tmp_path, "a.bin"), bucket="b2"),
                  dataclasses.replace(_item(tmp_path, "a.bin"), endpoint="http://x")]
        found = store.unfinished_for(wanted, request=request)
        assert [r.id if r else None for r in found] == [paused, None, None, None, None, None,
                                                        None]
        for state in (State.QUEUED, State.RUNNING, State.FAILED):
            store.set_state(other, state)
            (row,) = store.unfinished_for([_item(tmp_path, "d.bin")], request=request)
            assert row is not None and row.id == other
        # Made part of the request, the row is its own: no longer "earlier", and counted
        # with it.
        assert store.unfinished_outside(request.id) == 2
        store.join_request([paused], request.id)
        assert store.unfinished_for([_item(tmp_path, "a.bin")], request=request) == [None]
        assert store.queued_by(request.id) == 1
        assert store.unfinished_outside(request.id) == 1
        # A walk of the request run again does not queue it a second time.
        assert store.add([_item(tmp_path, "a.bin")], request=request) == []
        # A row queued since the request began is not an earlier one (add leaves it out).
        (later,) = store.add([_item(tmp_path, "f.bin")])
        assert store.unfinished_for([_item(tmp_path, "f.bin")], request=request) == [None]
        (row,) = store.unfinished_for([_item(tmp_path, "f.bin")])
        assert row is not None and row.id == later


def test_what_a_file_queued_again_would_write_differently(tmp_path: Path) -> None:
    with Store.open() as store:
        (upload,) = store.add([_item(tmp_path, metadata={"owner": "ann"},
                                     options=ObjectOptions(acl="private"))])
        row = store.get(upload)
    assert row is not None
    same = _item(tmp_path, metadata={"owner": "ann"}, options=ObjectOptions(acl="private"))
    assert same.written_differently(row) == ()
    # Only how the object is written counts: not the part size or the file's size.
    assert dataclasses.replace(same, part_size=1 << 20, size=99).written_differently(row) == ()
    changes: dict[str, dict[str, Any]] = {
        "another account": {"credentials": "work"},
        "other metadata": {"metadata": {"owner": "bob"}},
        "another storage class": {"storage_class": "IA"},
        "another Content-Type": {"content_type": "text/plain"},
        "another ACL": {"options": ObjectOptions(acl="public-read")},
        "another Cache-Control": {"options": ObjectOptions(acl="private",
                                                           cache_control="no-cache")},
        "another Content-Disposition": {"options": ObjectOptions(
            acl="private", content_disposition="attachment")},
        "other tags": {"options": ObjectOptions(acl="private", tags=(("a", "1"),))},
        "another server-side encryption": {"options": ObjectOptions(acl="private",
                                                                    encryption="AES256")},
        "another policy for an object already there": {"existing": SKIP},
    }
    for what, change in changes.items():
        assert dataclasses.replace(same, **change).written_differently(row) == (what,), what
    both = dataclasses.replace(same, storage_class="IA", metadata={})
    assert both.written_differently(row) == ("other metadata", "another storage class")


def test_an_unfinished_row_made_needless_by_a_later_done_row_of_the_same_file_is_found(
        tmp_path: Path) -> None:
    with Store.open() as store:
        (older_done,) = store.add([_item(tmp_path, "a.bin")])
        store.finish(older_done, crc64=1, etag="e")
        paused, other = store.add([_item(tmp_path, "a.bin"), _item(tmp_path, "b.bin")])
        store.set_state(paused, State.PAUSED, reason="shutdown")
        assert store.done_since() == []  # ``older_done`` finished before ``paused`` was queued
        later, elsewhere = store.add([_item(tmp_path, "a.bin"),
                                      dataclasses.replace(_item(tmp_path, "a.bin"),
                                                          key="k/other")])
        store.finish(later, crc64=1, etag="e")
        store.finish(elsewhere, crc64=1, etag="e")
        assert [(a.id, b.id) for a, b in store.done_since()] == [(paused, later)]
        assert other not in {a.id for a, _ in store.done_since()}
        (row, done) = store.done_since()[0]
        assert row.writes_like(done)
        assert not row.writes_like(dataclasses.replace(done, storage_class="IA"))


def test_a_folder_still_being_listed_outlives_its_cleared_files(tmp_path: Path) -> None:
    """Clear finished while the folder's walk goes on: its next files still go into it
    (not refused by the foreign key); a file for a folder forgotten since is queued on
    its own."""
    with Store.open() as store:
        request = store.begin_request(Request(roots=(tmp_path / "photos",),
                                              endpoint="http://127.0.0.1:1", bucket="b"))
        folder = store.folder_for(request.id, tmp_path / "photos", credentials="p",
                                  endpoint="http://127.0.0.1:1", bucket="b", prefix="k/photos/")
        [first] = store.add([_item(tmp_path, "photos/a", folder=folder.id)], request=request)
        store.set_state(first, State.DONE)
        store.clear_finished()
        [second] = store.add([_item(tmp_path, "photos/b", folder=folder.id)], request=request)
        assert [r.folder for r in store.rows_for([second])] == [folder.id]
        assert request.id is not None
        store.finish_request(request.id)
        store.remove([second])
        assert store.folders([folder.id]) == []
        [third] = store.add([_item(tmp_path, "photos/c", folder=folder.id)])
        assert [r.folder for r in store.rows_for([third])] == [None]


def test_a_reader_in_the_owners_process_keeps_the_owners_locks(tmp_path: Path) -> None:
    """Opening the list to read it in the process that writes it (the window with its
    engine) must not drop the writer's file locks: another process would then take itself
    for the list's last user on closing and take the write-ahead log away from under the
    writer. (A plain open and close of the file drops a process's POSIX locks on it.)"""
    import subprocess
    import sys

    path = config.paths().database
    with Store.open() as owner:
        owner.add([_item(tmp_path, "a")])
        wal = path.with_name(path.name + "-wal")
        assert wal.exists()
        with Store.open(owner=False) as reader:
            assert [r.key for r in reader.rows()] == ["k/a"]
        # Another process reads and closes: the owner is still there, the log stays.
        subprocess.run([sys.executable, "-c", (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('SELECT count(*) FROM uploads').fetchone(); c.close()"), str(path)],
            check=True)
        assert wal.exists()
        owner.add([_item(tmp_path, "b")])
    with Store.open() as again:
        assert [r.key for r in again.rows()] == ["k/a", "k/b"]


_EARLIER_OWNER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS owner (pid INTEGER)")
conn.execute("INSERT INTO owner VALUES (?)", (os.getpid(),))
conn.execute("COMMIT")
print("held", flush=True)
sys.stdin.read()
"""


def test_an_owner_of_an_earlier_version_still_keeps_the_list(tmp_path: Path) -> None:
    """Versions before the OS file lock held an SQLite lock on ``<list>.lock``: while one of
    them runs (the window left open during an upgrade), a new owner is refused and
    ``owner_running`` says so, and its lock file is left as it is."""
    import subprocess
    import sys

    path = config.paths().database
    Store.open(path).close()
    earlier = subprocess.Popen([sys.executable, "-c", _EARLIER_OWNER, f"{path}.lock"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert earlier.stdin is not None and earlier.stdout is not None
    try:
        assert earlier.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy, match="another ossdesk"):
            Store.open(path)
        assert Store.owner_running(path)
        assert path.with_name(path.name + ".lock").stat().st_size > 0  # not emptied
    finally:
        earlier.stdin.close()
        earlier.stdout.close()
        earlier.wait(30)
    assert not Store.owner_running(path)
    with Store.open(path):
        assert Store.owner_running(path)


def test_a_plan_that_grows_is_recorded_and_read_back(tmp_path: Path) -> None:
    from ossdesk.core.plan import MiB, recorded_plan

    with Store.open() as store:
        (upload,) = store.add([_item(tmp_path, size=1024 * MiB)])
        store.begin_multipart(upload, "ID-1", 2 * MiB, grows=True)
        row = store.get(upload)
        assert row is not None
        assert (row.part_size, row.head_size, row.head_parts) == (2 * MiB, 2 * MiB, None)
        assert recorded_plan(row.size, 2 * MiB, head_size=row.head_size,
                             head_parts=row.head_parts).grows
        # Another upload id (started over meanwhile) is not grown.
        assert not store.grow_plan(upload, "ID-0", 16, 8 * MiB)
        assert store.grow_plan(upload, "ID-1", 16, 8 * MiB)
        assert not store.grow_plan(upload, "ID-1", 20, 8 * MiB)  # grows once
        row = store.get(upload)
        assert row is not None
        assert (row.part_size, row.head_size, row.head_parts) == (8 * MiB, 2 * MiB, 16)
        plan = recorded_plan(row.size, 8 * MiB, head_size=row.head_size,
                             head_parts=row.head_parts)
        assert plan.part(16) == (30 * MiB, 2 * MiB) and plan.part(17) == (32 * MiB, 8 * MiB)
        assert plan.part_count == 16 + 124
        # Started over: the plan is chosen again (it had no part size of its own).
        store.reset(upload, size=row.size, mtime_ns=row.mtime_ns)
        row = store.get(upload)
        assert row is not None
        assert (row.part_size, row.head_size, row.head_parts) == (None, None, None)
        # A fixed plan (an explicit part size) does not grow, and keeps its size over a reset.
        store.begin_multipart(upload, "ID-2", 16 * MiB)
        assert not store.grow_plan(upload, "ID-2", 3, 32 * MiB)
        store.reset(upload, size=row.size, mtime_ns=row.mtime_ns)
        row = store.get(upload)
        assert row is not None and (row.part_size, row.head_size) == (16 * MiB, None)


def test_migration_from_version_13_keeps_the_fixed_plans(tmp_path: Path) -> None:
    db = config.paths().database
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    for version in range(13):
        conn.executescript(MIGRATIONS[version])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 13")
    conn.execute("INSERT INTO uploads (source, size, mtime_ns, credentials, endpoint, bucket, "
                 "key, upload_id, part_size, state, position, created_at, updated_at) "
                 "VALUES ('/x', 3145728, 1, 'environment', 'e', 'b', 'k', 'ID', 2097152, "
                 "'paused', 1, 0, 0)")
    conn.commit()
    conn.close()
    with Store.open() as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        [row] = store.rows()
        assert (row.upload_id, row.part_size, row.head_size, row.head_parts) == (
            "ID", 2097152, None, None)
        assert not store.grow_plan(row.id, "ID", 1, 4194304)
