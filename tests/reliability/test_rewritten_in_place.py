"""Verified means verified: a file rewritten in place with the same size and modification
time (``cp -p``, ``rsync -t``, ``tar x``), and files whose stated size is not what they hold
(``/proc``), are never published as a mix of old and new bytes nor called verified.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from ossdesk import config
from ossdesk.core.events import Done, Failed, Notice
from ossdesk.core.store import State
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import (
    KiB,
    cli_env,
    dest,
    object_bytes,
    object_keys,
    ossdesk,
    remote_uploads,
    snapshot_store,
    upload_killed_after_parts,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo

P = 128 * KiB


def _rewrite_keeping_mtime(path: Path, seed: int) -> bytes:
    """Other bytes of the same size written into the same file (same inode), and the old
    modification time put back, as ``cp -p`` or ``rsync -t`` leave it."""
    st = path.stat()
    fresh = write_random(path.with_name(path.name + ".fresh"), st.st_size, seed=seed)
    data = fresh.read_bytes()
    fresh.unlink()
    with path.open("r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (st.st_size, st.st_mtime_ns, st.st_ino)
    return data


def _object_or_none(sb: SandboxInfo, key: str) -> bytes | None:
    return object_bytes(sb, key)[0] if key in object_keys(sb) else None


def test_multipart_rewritten_with_same_size_and_mtime(sandbox: SandboxInfo,
                                                      engine: EngineFactory,
                                                      tmp_path: Path) -> None:
    path = write_random(tmp_path / "m.bin", 6 * P + 9)
    original = path.read_bytes()
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=2)
    [upload] = sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    now = _rewrite_keeping_mtime(path, seed=7)
    assert now != original
    assert sched.wait(60)
    published = _object_or_none(sandbox, "m.bin")
    # Never the mix of the two versions, never "done" for bytes that are not the file's.
    assert published is None or published == now
    if published is None:
        assert not rec.of(Done)
        [failed] = rec.of(Failed)
        assert failed.code == "SourceChanged", failed
        assert "changed while it was being uploaded" in failed.message
        assert "nothing was published" in failed.message
        row = sched.store.get(upload)
        assert row is not None and row.state is State.FAILED
        assert list(sandbox.bucket_client().list_multipart_uploads().upload_list) == []
    else:
        assert rec.of(Done)


def test_single_put_rewritten_with_same_size_and_mtime(sandbox: SandboxInfo,
                                                       engine: EngineFactory,
                                                       tmp_path: Path) -> None:
    path = write_random(tmp_path / "s.bin", 90 * KiB)
    original = path.read_bytes()
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"/s\.bin\?$", count=1)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "the PUT")
    now = _rewrite_keeping_mtime(path, seed=8)
    assert now != original
    assert sched.wait(60)
    published = _object_or_none(sandbox, "s.bin")
    # The file is still there: what is published is the file as it is now, verified.
    assert published == now, [f.message for f in rec.of(Failed)]
    [done] = rec.of(Done)
    assert done.size == len(now)
    assert any("changed while it was being uploaded, so it is sent again" in n.message
               for n in rec.of(Notice))


def test_rewritten_between_sigkill_and_resume(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "k.bin", 16 * P + 5)
    env = cli_env(sandbox)
    db = config.paths().database
    upload_killed_after_parts(sandbox, path, tmp_path / "upload.out", P)
    [row] = snapshot_store(db).rows
    assert row["state"] == "running" and row["upload_id"]
    now = _rewrite_keeping_mtime(path, seed=9)

    resumed = ossdesk("resume", env=env)
    published = _object_or_none(sandbox, "k.bin")
    assert published is None or published == now, resumed.stdout + resumed.stderr
    assert resumed.returncode != 0 or published == now
    assert "Traceback" not in resumed.stderr
    if published == now:
        assert "changed since its upload began" in resumed.stdout + resumed.stderr


def test_row_of_an_older_version_is_protected_by_the_reread(sandbox: SandboxInfo,
                                                           tmp_path: Path) -> None:
    """A row queued by a version that recorded no change time or identity: after the
    rewrite only the CRC-64 re-read before Complete can tell, and it does."""
    path = write_random(tmp_path / "o.bin", 16 * P + 5)
    upload_killed_after_parts(sandbox, path, tmp_path / "upload.out", P)
    db = config.paths().database
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE uploads SET ctime_ns = NULL, file_dev = NULL, file_ino = NULL")
    conn.close()
    now = _rewrite_keeping_mtime(path, seed=11)

    env = cli_env(sandbox)
    first = ossdesk("resume", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "changed while it was being uploaded, so nothing was published" in first.stderr
    assert "o.bin" not in object_keys(sandbox)
    assert list(sandbox.bucket_client().list_multipart_uploads().upload_list) == []
    # The next resume sends the file as it is now, whole.
    second = ossdesk("resume", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert object_bytes(sandbox, "o.bin")[0] == now


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_procfs_file_is_refused_not_uploaded_empty(sandbox: SandboxInfo,
                                                   engine: EngineFactory) -> None:
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0 and status.read_bytes()
    sched, rec = engine(part_size=P)
    [upload] = sched.add([new_upload(sandbox, status, key="proc/status")])
    assert sched.wait(60)
    assert not rec.of(Done)
    [failed] = rec.of(Failed)
    assert failed.code == "NotAFile", failed
    assert "0 bytes stated, more read" in failed.message
    assert str(status) in failed.message
    assert "proc/status" not in object_keys(sandbox)
    row = sched.store.get(upload)
    assert row is not None and row.state is State.FAILED


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_procfs_file_given_to_the_cli(sandbox: SandboxInfo) -> None:
    result = ossdesk("upload", "/proc/self/status", *dest(sandbox), "--prefix", "proc",
                     env=cli_env(sandbox))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 bytes stated, more read" in result.stderr
    assert "done " not in result.stdout
    assert "0 of 1 files uploaded and verified" in result.stdout
    assert "proc/status" not in object_keys(sandbox)
    # Trying again cannot mend it: no line may send the user to `ossdesk resume` for it.
    assert "1 file(s) cannot be uploaded as they are" in result.stderr
    assert "ossdesk resume" not in result.stderr


def test_unchanged_file_is_still_verified_after_the_reread(sandbox: SandboxInfo,
                                                           engine: EngineFactory,
                                                           tmp_path: Path) -> None:
    path = write_random(tmp_path / "ok.bin", 5 * P + 3)
    sched, rec = engine(part_size=P)
    [upload] = sched.add([new_upload(sandbox, path)])
    assert sched.wait(60)
    assert _object_or_none(sandbox, "ok.bin") == path.read_bytes()
    assert rec.of(Done) and not rec.of(Failed)
    assert not [n for n in rec.of(Notice) if "not read again" in n.message]
    row = sched.store.get(upload)
    assert row is not None and row.state is State.DONE


def test_reread_left_out_above_the_limit_is_said(sandbox: SandboxInfo, tmp_path: Path) -> None:
    big = write_random(tmp_path / "big.bin", 3 * P + 1)
    small = write_random(tmp_path / "small.bin", 10 * KiB)
    result = ossdesk("upload", str(big), str(small), *dest(sandbox), "--part-size", str(P),
                     "--no-reread-above", "64KiB", env=cli_env(sandbox))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines()
             if line.startswith("done ")}
    assert "the file was not read again" in lines["big.bin"]
    assert "not read again" not in lines["small.bin"]
    rows = snapshot_store(config.paths().database).by_source()
    assert rows[str(big)]["reread"] == 0 and rows[str(small)]["reread"] == 1
    assert object_bytes(sandbox, "big.bin")[0] == big.read_bytes()


@pytest.mark.skipif(sys.platform == "win32", reason="the change time is the creation time")
def test_change_time_catches_a_rewrite_when_the_reread_is_off(sandbox: SandboxInfo,
                                                              engine: EngineFactory,
                                                              tmp_path: Path) -> None:
    path = write_random(tmp_path / "c.bin", 6 * P + 9)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=2, reread_limit=0)
    sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    _rewrite_keeping_mtime(path, seed=10)
    assert sched.wait(60)
    assert not rec.of(Done)
    [failed] = rec.of(Failed)
    assert failed.code == "SourceChanged"
    assert "c.bin" not in object_keys(sandbox)


def test_a_changed_file_whose_earlier_upload_cannot_be_aborted_says_its_parts_stay(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The file changed since its upload began, so it starts over; the earlier multipart
    upload cannot be aborted (the account may not abort, say): its parts stay in the bucket,
    billed, and the user is told so and which upload it is, never that they were
    discarded."""
    path = write_random(tmp_path / "a.bin", 16 * P + 5)
    upload_killed_after_parts(sandbox, path, tmp_path / "upload.out", P)
    [row] = snapshot_store(config.paths().database).rows
    earlier = row["upload_id"]
    assert earlier
    write_random(path, 9 * P + 3, seed=4)  # another size: it changed
    assert sandbox.server is not None
    sandbox.server.faults.fail(403, method="DELETE", pattern="uploadId=", count=None)
    try:
        resumed = ossdesk("resume", env=cli_env(sandbox))
    finally:
        sandbox.server.faults.clear()
    said = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, said
    assert "a.bin changed since its upload began, so it starts over" in said, said
    assert "discarded" not in said, said
    assert "could not be aborted" in said and earlier in said, said
    assert object_bytes(sandbox, "a.bin")[0] == path.read_bytes()
    # As said: the earlier upload and its parts are still in the bucket.
    assert [u.upload_id for u in remote_uploads(sandbox)] == [earlier]
