"""Local faults: sources that change under the upload, entries that cannot be read, the
checkpoint database on a full disk, damaged or from a newer version, two processes at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest

from ossdesk import config
from ossdesk.core.events import Done, Failed
from ossdesk.core.store import State
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    json_lines,
    object_bytes,
    object_keys,
    ossdesk,
    part_puts,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo

P = 128 * KiB


def _change(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "modified":  # same size, other bytes
        with path.open("r+b") as fh:
            fh.seek(size // 2)
            fh.write(b"\xff" * 4096)
    elif how == "truncated":
        with path.open("r+b") as fh:
            fh.truncate(size // 3)
    elif how == "replaced":  # a new file renamed over it (what editors do)
        fresh = write_random(path.with_name(path.name + ".new"), size + 7, seed=99)
        fresh.replace(path)
    elif how == "deleted":
        path.unlink()
    else:  # pragma: no cover
        raise ValueError(how)


def _object_or_none(sb: SandboxInfo, key: str) -> bytes | None:
    return object_bytes(sb, key)[0] if key in object_keys(sb) else None


@pytest.mark.parametrize("how", ["modified", "truncated", "replaced", "deleted"])
def test_source_changed_during_a_multipart_upload(sandbox: SandboxInfo, engine: EngineFactory,
                                                  tmp_path: Path, how: str) -> None:
    path = write_random(tmp_path / "m.bin", 6 * P + 9)
    original = path.read_bytes()
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=2)
    [upload] = sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    _change(path, how)
    assert sched.wait(60)
    published = _object_or_none(sandbox, "m.bin")
    # Never a mixed object: nothing, or exactly one whole version of the file.
    now = path.read_bytes() if path.exists() else None
    assert published is None or published in (original, now)
    if published is None:
        [failed] = rec.of(Failed)
        assert failed.code in ("SourceChanged", "SourceMissing"), failed
        assert "m.bin" in failed.message
        assert "Traceback" not in failed.message
        row = sched.store.get(upload)
        assert row is not None and row.state is State.FAILED
    else:
        assert rec.of(Done)


@pytest.mark.parametrize("how", ["modified", "truncated", "replaced", "deleted"])
def test_source_changed_during_a_single_put(sandbox: SandboxInfo, engine: EngineFactory,
                                            tmp_path: Path, how: str) -> None:
    path = write_random(tmp_path / "s.bin", 90 * KiB)
    original = path.read_bytes()
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"/s\.bin\?$", count=1)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "the PUT")
    _change(path, how)
    assert sched.wait(60)
    published = _object_or_none(sandbox, "s.bin")
    now = path.read_bytes() if path.exists() else None
    assert published is None or published in (original, now)
    failed = rec.of(Failed)
    if now is not None:
        # The file is still there: what is published is the file as it is now, verified.
        assert published == now and rec.of(Done), [f.message for f in failed]
    else:
        [event] = failed
        assert event.code in ("SourceChanged", "SourceMissing"), event
        assert "s.bin" in event.message, event.message


# ----------------------------------------------------------------------- unreadable entries


def test_entries_that_cannot_be_read(sandbox: SandboxInfo, engine: EngineFactory,
                                     tmp_path: Path) -> None:
    """Running as root, permissions stop nothing: a queued file that vanished, a folder that
    became a file, a file that became a folder; each fails alone with a clear message."""
    gone = write_random(tmp_path / "gone.bin", 10)
    folder = tmp_path / "folder"
    inner = write_random(folder / "inner.bin", 10)
    became_dir = write_random(tmp_path / "became-dir.bin", 10)
    ok = write_random(tmp_path / "ok.bin", 10)
    items = [new_upload(sandbox, p) for p in (gone, inner, became_dir, ok)]
    gone.unlink()
    shutil.rmtree(folder)
    folder.write_bytes(b"now a file")
    became_dir.unlink()
    became_dir.mkdir()
    sched, rec = engine(part_size=P)
    ids = sched.add(items)
    assert sched.wait(30)
    failed = {e.upload: e for e in rec.of(Failed)}
    assert set(failed) == set(ids[:3])
    assert failed[ids[0]].code == "SourceMissing" and "gone.bin" in failed[ids[0]].message
    assert failed[ids[2]].code == "NotAFile" and "became-dir.bin" in failed[ids[2]].message
    assert failed[ids[1]].retryable is False
    assert object_keys(sandbox) == ["ok.bin"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_and_broken_link_are_skipped_not_read(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """Reading a FIFO would block forever: it is reported and skipped, the rest uploads."""
    folder = tmp_path / "f"
    write_random(folder / "a.txt", 10)
    os.mkfifo(folder / "pipe")
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "direct-pipe")
    result = ossdesk("upload", str(folder), str(tmp_path / "direct-pipe"), *dest(sandbox),
                     env=cli_env(sandbox), timeout=60)
    assert result.returncode == 1, result.stderr  # something named was skipped
    assert "pipe: not a regular file" in result.stderr
    assert "direct-pipe: not a regular file" in result.stderr
    assert "dangling" in result.stderr and "broken link" in result.stderr
    assert "Traceback" not in result.stderr
    assert object_keys(sandbox) == ["f/a.txt"]


# -------------------------------------------------------------- the database on a full disk


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "tmpfs"
    where.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("needs Linux mount")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder``; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_database_on_a_full_disk(sandbox: SandboxInfo, tmp_path: Path,
                                 small_tmpfs: Path) -> None:
    home = small_tmpfs / "home"
    env = cli_env(sandbox, OSSDESK_HOME=str(home))
    first = write_random(tmp_path / "first.bin", 10)
    assert ossdesk("upload", str(first), *dest(sandbox), env=env).returncode == 0
    db = home / "data" / "ossdesk.sqlite3"
    # The disk fills up in the middle of an upload.
    path = write_random(tmp_path / "full.bin", 10 * P)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    out = tmp_path / "full.out"
    with out.open("w") as fh:
        child = spawn(["upload", str(path), *dest(sandbox), "--part-size", str(P), "--parallel",
                       "1", "--json"], env, fh, subprocess.STDOUT)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 3")
            # The write-ahead log is checkpointed (as SQLite does by itself now and then),
            # so the next commit has to grow it: on a full disk, that commit fails.
            conn = sqlite3.connect(db)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            filler = _fill(small_tmpfs)
            code = child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    text = out.read_text()
    assert code != 0, text
    assert "Traceback" not in text, text
    assert "full" in text.lower(), text  # says why
    # Nothing lost: the database is intact and still lists both files.
    filler.unlink()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    rows = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert len(rows) == 2 and rows[0]["state"] == "done"
    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert_uploaded(sandbox, "full.bin", path)


def test_full_disk_while_queueing_is_one_clear_error(sandbox: SandboxInfo, tmp_path: Path,
                                                     small_tmpfs: Path) -> None:
    home = small_tmpfs / "home"
    env = cli_env(sandbox, OSSDESK_HOME=str(home))
    first = write_random(tmp_path / "first.bin", 10)
    assert ossdesk("upload", str(first), *dest(sandbox), env=env).returncode == 0
    folder = tmp_path / "many"
    for i in range(300):
        write_random(folder / f"{i:03}-{'x' * 100}.txt", 1)
    db = home / "data" / "ossdesk.sqlite3"
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    filler = _fill(small_tmpfs)
    result = ossdesk("upload", str(folder), *dest(sandbox), env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "full" in result.stderr.lower(), result.stderr
    # Not even the request could be recorded (when the list could be opened at all):
    # `resume` would not know it, and it says so.
    if "cannot open the upload list" not in result.stderr:
        assert "nothing of this upload was queued" in result.stderr, result.stderr
    filler.unlink()
    rows = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert rows and rows[0]["state"] == "done" and rows[0]["key"] == "first.bin"
    again = ossdesk("upload", str(folder), *dest(sandbox), env=env)
    assert again.returncode == 0, again.stderr
    assert len(object_keys(sandbox, "many/")) == 300


def test_full_disk_in_the_middle_of_the_listing_then_resume(sandbox: SandboxInfo,
                                                            tmp_path: Path,
                                                            small_tmpfs: Path) -> None:
    """The disk fills up after the first files are queued: the walk stopped, and says so;
    `ossdesk resume` (after space is freed) finishes it and uploads every file."""
    home = small_tmpfs / "home"
    hold = tmp_path / "hold-listing"
    hold.touch()
    env = cli_env(sandbox, OSSDESK_HOME=str(home), OSSDESK_HOLD_LISTING=str(hold))
    folder = tmp_path / "many"
    for i in range(1200):
        write_random(folder / f"{i:04}.txt", 1)
    db = home / "data" / "ossdesk.sqlite3"

    def first_batch_done() -> bool:
        rows = snapshot_store(db).rows if db.exists() else []
        return len(rows) >= 500 and all(r["state"] == "done" for r in rows)

    out = tmp_path / "full.out"
    with out.open("w") as fh:
        child = spawn(["upload", str(folder), *dest(sandbox)], env, fh, subprocess.STDOUT)
        try:
            wait_until(lambda: child.poll() is not None or first_batch_done(), 120,
                       "the first batch uploaded")
            assert child.poll() is None, out.read_text()
            conn = sqlite3.connect(db)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            filler = _fill(small_tmpfs)
            hold.unlink()  # the walk goes on, and its next batch meets the full disk
            code = child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    text = out.read_text()
    assert code == 3, text
    assert "Traceback" not in text, text
    assert "full" in text.lower(), text
    assert "nothing was lost" not in text.replace("nothing already recorded was lost", "")
    assert f"stopped while listing {folder}: 500 of the files found so far are queued" in text
    filler.unlink()
    status = ossdesk("status", env=env)
    assert f"Walk of {folder} not finished: 500 files queued so far" in status.stdout
    resumed = ossdesk("resume", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip().splitlines()[-1].startswith(
        "1200 of 1200 files uploaded and verified"), resumed.stdout
    keys = {o.key for o in oss2.ObjectIterator(sandbox.bucket_client(), prefix="many/")}
    assert len(keys) == 1200
    assert len(snapshot_store(db).rows) == 1200


# ------------------------------------------------- a damaged or newer checkpoint database


def _make_db_with_a_row(sandbox: SandboxInfo, tmp_path: Path) -> Path:
    first = write_random(tmp_path / "first.bin", 10)
    assert ossdesk("upload", str(first), *dest(sandbox), env=cli_env(sandbox)).returncode == 0
    return config.paths().database


@pytest.mark.parametrize("damage", ["garbage", "truncated", "newer"])
def test_damaged_or_newer_database_is_set_aside(sandbox: SandboxInfo, tmp_path: Path,
                                                ossdesk_home: Path, damage: str) -> None:
    db = _make_db_with_a_row(sandbox, tmp_path)
    settings = config.paths().settings_file
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"kept": true}')
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2] + b"\0" * 100)
    else:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 999")
        conn.close()
    before = db.read_bytes()
    env = cli_env(sandbox)
    status = ossdesk("status", env=env)
    assert "Traceback" not in status.stderr
    if damage == "newer":
        assert status.returncode != 0 and "newer version" in status.stderr
    second = write_random(tmp_path / "second.bin", 10)
    result = ossdesk("upload", str(second), *dest(sandbox), env=env)
    assert result.returncode == 0, result.stderr
    assert "set aside" in result.stderr and "Traceback" not in result.stderr
    aside = sorted(p for p in db.parent.iterdir() if ".corrupt-" in p.name
                   and not p.name.endswith(("-wal", "-shm")))
    assert len(aside) == 1
    assert aside[0].read_bytes() == before  # kept as it was, never deleted
    assert settings.read_text() == '{"kept": true}'  # nothing else touched
    if damage == "newer":
        conn = sqlite3.connect(aside[0])
        try:
            assert conn.execute("SELECT count(*) FROM uploads").fetchone()[0] == 1
        finally:
            conn.close()
    rows = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert [r["key"] for r in rows] == ["second.bin"]


# ----------------------------------------------------------------- two processes at once


def test_two_processes_never_write_the_database_together(sandbox: SandboxInfo,
                                                         tmp_path: Path) -> None:
    env = cli_env(sandbox)
    a = write_random(tmp_path / "a.bin", 8 * P)
    b = write_random(tmp_path / "b.bin", 8 * P)
    assert sandbox.server is not None
    outs = [tmp_path / "a.out", tmp_path / "b.out"]
    children: list[Any] = []
    # Both start together; the server slows every part so they surely overlap.
    sandbox.server.faults.delay(0.3, method="PUT", pattern="partNumber=", count=None)
    try:
        for path, out in zip((a, b), outs, strict=True):
            with out.open("w") as fh:
                children.append(spawn(["upload", str(path), *dest(sandbox), "--part-size",
                                       str(P), "--parallel", "1"], env, fh))
        codes = sorted(c.wait(120) for c in children)
        # A third process meanwhile: `resume` while nothing runs any more is fine.
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
        sandbox.server.faults.clear()
    texts = [o.read_text() for o in outs]
    assert codes == [0, 3], texts
    refused = texts[[c.returncode for c in children].index(3)]
    assert "another ossdesk is already uploading" in refused and "Traceback" not in refused
    db = config.paths().database
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    # The refused one queued nothing; run again, it goes through.
    assert len(snapshot_store(db).rows) == 1
    loser = a if children[0].returncode == 3 else b
    again = ossdesk("upload", str(loser), *dest(sandbox), "--part-size", str(P), env=env)
    assert again.returncode == 0, again.stderr
    assert_uploaded(sandbox, "a.bin", a)
    assert_uploaded(sandbox, "b.bin", b)
    puts = part_puts(sandbox.log_path)
    assert len({p.upload_id for p in puts}) == 2


def test_resume_while_an_upload_runs_is_refused(sandbox: SandboxInfo, tmp_path: Path) -> None:
    env = cli_env(sandbox)
    path = write_random(tmp_path / "r.bin", 8 * P)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(3.0, method="PUT", pattern=r"partNumber=2\b", count=1)
    with (tmp_path / "r.out").open("w") as fh:
        child = spawn(["upload", str(path), *dest(sandbox), "--part-size", str(P),
                       "--parallel", "1"], env, fh)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 2")
            assert child.poll() is None
            second = ossdesk("resume", env=env)
            assert child.wait(60) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert second.returncode == 3, second.stderr
    assert "another ossdesk is already uploading" in second.stderr
    assert_uploaded(sandbox, "r.bin", path)


# ------------------------------------------------------------ a store cut to 0 bytes


def test_a_store_cut_to_zero_bytes_is_damage_not_an_empty_list(sandbox: SandboxInfo,
                                                                tmp_path: Path) -> None:
    """An empty file where the upload list should be has lost what it listed: it is set aside
    with a notice that says unfinished uploads may remain in the bucket, and how to list
    them; `resume` does not say that everything is finished."""
    env = cli_env(sandbox)
    path = write_random(tmp_path / "cut.bin", 8 * P)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(3.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    with (tmp_path / "cut.out").open("w") as fh:
        child = spawn(["upload", str(path), *dest(sandbox), "--part-size", str(P),
                       "--parallel", "1"], env, fh)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 3")
            child.send_signal(signal.SIGINT)
            assert child.wait(60) == 130
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    [left] = remote_uploads(sandbox)  # the unfinished multipart upload on the server
    db = config.paths().database
    with db.open("r+b") as fh:
        fh.truncate(0)
    status = ossdesk("status", env=env)
    assert status.returncode == 3, status.stdout
    assert "empty" in status.stderr and "Traceback" not in status.stderr, status.stderr
    assert db.stat().st_size == 0  # status only looks, it sets nothing aside
    resumed = ossdesk("resume", env=env)
    assert "Nothing to resume: every upload in the list is finished" not in resumed.stdout
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    assert "set aside" in resumed.stderr and "0 bytes" in resumed.stderr, resumed.stderr
    assert "ossdesk uploads --endpoint URL --bucket BUCKET" in resumed.stderr, resumed.stderr
    assert "cannot be known from an empty file" in resumed.stderr, resumed.stderr
    aside = [p for p in db.parent.iterdir() if p.name.startswith(db.name + ".corrupt-")]
    assert [p.stat().st_size for p in aside] == [0]
    assert [u.upload_id for u in remote_uploads(sandbox)] == [left.upload_id]
    # From now on the new list is an ordinary one.
    after = ossdesk("status", env=env)
    assert after.returncode == 0 and "The upload list is empty." in after.stdout, after.stderr
    again = ossdesk("resume", env=env)
    assert again.returncode == 0 and "Nothing to resume" in again.stdout, again.stderr


# ------------------------------------------------------------ a read-only data folder


def test_a_read_only_data_folder_is_named_not_called_damaged(sandbox: SandboxInfo,
                                                             tmp_path: Path,
                                                             small_tmpfs: Path) -> None:
    """Tests run as root, where permissions stop no write: the folder is on a file system
    mounted read-only."""
    home = small_tmpfs / "home"
    env = cli_env(sandbox, OSSDESK_HOME=str(home))
    first = write_random(tmp_path / "first.bin", 10)
    assert ossdesk("upload", str(first), *dest(sandbox), env=env).returncode == 0
    db = home / "data" / "ossdesk.sqlite3"
    before = db.read_bytes()
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only here: {done.stderr.strip()}")
    try:
        folder = str(home / "data")
        for args in (["status"], ["resume"], ["upload", str(first), *dest(sandbox)]):
            result = ossdesk(*args, env=env)
            assert result.returncode == 3, (args, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr, result.stderr
            assert "damaged" not in result.stderr, (args, result.stderr)
            assert f"{folder}, cannot be written" in result.stderr, (args, result.stderr)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_tmpfs)], capture_output=True,
                       check=False)
    assert db.read_bytes() == before  # nothing set aside, nothing changed
    assert [p.name for p in db.parent.iterdir() if ".corrupt-" in p.name] == []
    status = ossdesk("status", env=env)
    assert status.returncode == 0 and "1 done" in status.stdout, status.stderr
