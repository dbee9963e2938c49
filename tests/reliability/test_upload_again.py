"""The same ``ossdesk upload`` run again for a file whose earlier upload is unfinished.

The earlier row (paused by Ctrl-C, left running by a process that was killed, failed) is
continued as part of the new run: its confirmed parts are kept, never a second row that
starts from zero. When the new run asks for the object to be written differently, the
earlier upload is cancelled (aborted on the server) before the file is uploaded again, so
the bucket never ends up with the older options.
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from ossdesk import config
from ossdesk.commands import HOLD_LISTING_ENV, LISTING_BATCH
from ossdesk.core.checksum import crc64_file
from ossdesk.core.plan import format_size
from ossdesk.core.store import NewUpload, Store
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    json_lines,
    ossdesk,
    part_puts,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo

PART = 256 * KiB
_SLOW = ["--part-size", "256KiB", "--parallel", "1", "--limit-rate", "512KiB"]


def _status(env: dict[str, str]) -> list[dict[str, Any]]:
    return json_lines(ossdesk("status", "--json", env=env).stdout)


def _stopped_after_parts(sb: SandboxInfo, path: Path, env: dict[str, str], out: Path,
                         how: str, *extra: str) -> dict[str, Any]:
    """A real ``ossdesk upload`` of ``path`` stopped once OSS confirmed two parts: Ctrl-C
    (``paused``) or SIGKILL (``running``, its process dead). The row it left."""
    db = config.paths().database
    with out.open("w") as fh:
        child = spawn(["upload", str(path), *dest(sb), "--prefix", "sig2", *_SLOW, *extra],
                      env, fh)
        try:
            wait_until(lambda: len(snapshot_store(db).confirmed) >= 2 or
                       child.poll() is not None, 60, "two confirmed parts")
            child.send_signal(signal.SIGINT if how == "paused" else signal.SIGKILL)
            code = child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
    assert code == (130 if how == "paused" else -signal.SIGKILL), out.read_text()
    (row,) = snapshot_store(db).rows
    assert row["state"] == how and row["upload_id"], row
    return row


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
@pytest.mark.parametrize("how", ["paused", "running"])
def test_the_same_upload_again_continues_the_earlier_row(
        sandbox: SandboxInfo, tmp_path: Path, how: str) -> None:
    path = write_random(tmp_path / "big.bin", 12 * PART + 77)
    env = cli_env(sandbox)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", how)
    kept = snapshot_store(config.paths().database).confirmed
    confirmed = sum(PART for _ in kept)

    again = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming sig2/big.bin: {format_size(confirmed)} already on the server" in \
        again.stdout, again.stdout
    assert "1 of 1 files uploaded and verified" in again.stdout
    assert "not part of this one" not in again.stderr, again.stderr
    assert_uploaded(sandbox, "sig2/big.bin", path)
    # One row, done; the parts OSS had confirmed were not sent again.
    assert [(r["id"], r["state"]) for r in _status(env)] == [(row["id"], "done")]
    sent = [(p.upload_id, p.number) for p in part_puts(sandbox.log_path) if p.status == 200]
    assert all(sent.count(part) == 1 for part in kept), sent
    assert {u for u, _ in sent} == {row["upload_id"]}
    assert remote_uploads(sandbox) == []
    # Nothing is left for `ossdesk resume` to send again.
    before = len(part_puts(sandbox.log_path))
    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Nothing to resume" in resumed.stdout
    assert len(part_puts(sandbox.log_path)) == before


def test_a_failed_row_is_continued_by_the_same_upload_again(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "big.bin", 6 * PART)
    env = cli_env(sandbox, OSSDESK_RETRIES="tries=2,base=0.01,cap=0.01")
    sandbox.server.faults.fail(503, method="PUT", pattern=r"partNumber=3\b", count=None)
    first = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2", "--part-size",
                    "256KiB", "--parallel", "1", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    (row,) = _status(env)
    assert row["state"] == "failed" and row["confirmed_bytes"] == 2 * PART, row
    sandbox.server.faults.clear()

    again = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming sig2/big.bin: {format_size(2 * PART)} already on the server" in \
        again.stdout
    assert [(r["id"], r["state"]) for r in _status(env)] == [(row["id"], "done")]
    assert_uploaded(sandbox, "sig2/big.bin", path)
    assert remote_uploads(sandbox) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_a_file_changed_since_its_earlier_row_starts_over_in_that_row(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "big.bin", 12 * PART)
    env = cli_env(sandbox)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused")
    write_random(path, 7 * PART + 5, seed=9)

    again = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"changed since its upload began.*starts over", again.stdout), again.stdout
    assert [(r["id"], r["state"]) for r in _status(env)] == [(row["id"], "done")]
    assert_uploaded(sandbox, "sig2/big.bin", path)
    assert remote_uploads(sandbox) == []  # the first multipart upload was aborted


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_other_options_cancel_the_earlier_upload_before_the_file_goes_again(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "big.bin", 12 * PART)
    env = cli_env(sandbox)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused",
                               "--meta", "owner=ann")

    again = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2",
                    "--storage-class", "IA", "--meta", "owner=bob", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (f"sig2/big.bin: the unfinished upload of {path} in the list (row "
            f"{row['id']}) was to be written with other metadata and another storage class; "
            "it was cancelled (its multipart upload was aborted on the server) and the file "
            "is uploaded from the start with this run's options") in again.stderr, again.stderr
    assert remote_uploads(sandbox) == []
    assert_uploaded(sandbox, "sig2/big.bin", path)
    head = sandbox.bucket_client().head_object("sig2/big.bin")
    assert head.headers["x-oss-meta-owner"] == "bob"
    assert head.headers["x-oss-storage-class"] == "IA"
    states = [(r["id"], r["state"]) for r in _status(env)]
    assert states[0] == (row["id"], "cancelled") and [s for _, s in states] == \
        ["cancelled", "done"], states
    resumed = ossdesk("resume", env=env)
    assert "Nothing to resume" in resumed.stdout, resumed.stdout + resumed.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_another_existing_policy_continues_an_upload_whose_parts_are_on_the_server(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The policy for an object already there is applied before a multipart upload begins:
    once OSS has parts of it, ``--existing skip`` changes nothing, so the row goes on."""
    path = write_random(tmp_path / "big.bin", 12 * PART)
    env = cli_env(sandbox)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused")
    kept = snapshot_store(config.paths().database).confirmed

    again = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2", "--existing",
                    "skip", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming sig2/big.bin" in again.stdout, again.stdout
    assert "cancelled" not in again.stderr, again.stderr
    assert [(r["id"], r["state"]) for r in _status(env)] == [(row["id"], "done")]
    sent = [(p.upload_id, p.number) for p in part_puts(sandbox.log_path) if p.status == 200]
    assert all(sent.count(part) == 1 for part in kept), sent
    assert_uploaded(sandbox, "sig2/big.bin", path)


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_an_earlier_upload_that_cannot_be_aborted_keeps_the_file_from_going_again(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "big.bin", 12 * PART)
    env = cli_env(sandbox)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused")
    sandbox.server.faults.fail(503, method="DELETE", count=None)

    again = ossdesk("upload", str(path), *dest(sandbox), "--prefix", "sig2",
                    "--storage-class", "IA", env=env)
    assert again.returncode == 1, again.stdout + again.stderr
    assert (f"sig2/big.bin: the unfinished upload of {path} in the list (row "
            f"{row['id']}) was to be written with another storage class, and it could not be "
            "aborted on the server") in again.stderr, again.stderr
    assert f"`ossdesk cancel {row['id']}`" in again.stderr
    assert [(r["id"], r["state"]) for r in _status(env)] == [(row["id"], "paused")]
    assert len(remote_uploads(sandbox)) == 1
    assert not sandbox.bucket_client().object_exists("sig2/big.bin")



@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_resume_finishing_a_walk_does_not_queue_a_file_a_second_time(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """A folder's walk cut short before it reached a file whose earlier upload is paused:
    ``ossdesk resume`` continues that row and finishes the walk without a second row."""
    folder = tmp_path / "sig2"
    for i in range(LISTING_BATCH):
        write_random(folder / f"a{i:04}.txt", 10)
    path = write_random(folder / "zz.bin", 12 * PART)
    env = cli_env(sandbox)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused")
    hold = tmp_path / "hold"
    hold.write_bytes(b"")
    db = config.paths().database
    with (tmp_path / "walk.out").open("w") as fh:
        child = spawn(["upload", str(folder), *dest(sandbox)], cli_env(
            sandbox, **{HOLD_LISTING_ENV: str(hold)}), fh)
        try:
            wait_until(lambda: len(snapshot_store(db).rows) > LISTING_BATCH, 60, "one batch")
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
    assert [r["id"] for r in snapshot_store(db).rows if r["key"] == "sig2/zz.bin"] == \
        [row["id"]]

    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{LISTING_BATCH + 1} of {LISTING_BATCH + 1} files uploaded and verified" in \
        resumed.stdout, resumed.stdout
    rows = [r for r in _status(env) if r["key"] == "sig2/zz.bin"]
    assert [(r["id"], r["state"]) for r in rows] == [(row["id"], "done")]
    assert_uploaded(sandbox, "sig2/zz.bin", path)
    assert remote_uploads(sandbox) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_resume_cancels_a_row_a_later_upload_of_the_same_file_made_needless(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """A list written by an older ossdesk: the paused row of a file, and a second row of the
    same file that the same upload run again queued and finished. ``ossdesk resume`` does
    not upload the file to that key once more: it aborts the paused row's multipart upload
    and keeps the row as cancelled."""
    path = write_random(tmp_path / "big.bin", 12 * PART)
    env = cli_env(sandbox)
    first = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused")
    assert len(remote_uploads(sandbox)) == 1
    with Store.open() as store:
        paused = store.get(first["id"])
        assert paused is not None
        (second,) = store.add([NewUpload(
            source=paused.source, size=paused.size, mtime_ns=paused.mtime_ns, key=paused.key,
            endpoint=paused.endpoint, bucket=paused.bucket, region=paused.region,
            ctime_ns=paused.ctime_ns, file_dev=paused.file_dev, file_ino=paused.file_ino)])
        put = sandbox.bucket_client().put_object_from_file(paused.key, str(path))
        store.finish(second, crc64=crc64_file(path), etag=put.etag)
    before = len(part_puts(sandbox.log_path))

    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (f"row {first['id']} (sandbox/sig2/big.bin): the same file was uploaded to that key "
            f"since (row {second}, done); it was cancelled (its multipart upload was aborted "
            "on the server), not sent again") in resumed.stdout, resumed.stdout
    assert len(part_puts(sandbox.log_path)) == before
    assert remote_uploads(sandbox) == []
    assert [(r["id"], r["state"]) for r in _status(env)] == [(first["id"], "cancelled"),
                                                             (second, "done")]
    assert_uploaded(sandbox, "sig2/big.bin", path)


# The resumed row is still being sent when the walk reaches its file (else it is done first,
# and the file simply goes again after it).
_RESUME_SLOW = ["--limit-rate", "512KiB"]


def _walk_cut_short_with_ia(sandbox: SandboxInfo, tmp_path: Path,
                            env: dict[str, str]) -> tuple[Path, dict[str, Any]]:
    """A folder's walk (storage class IA) killed before it reached ``zz.bin``, whose earlier
    upload (Standard) is paused: the file and that row."""
    folder = tmp_path / "sig2"
    for i in range(LISTING_BATCH):
        write_random(folder / f"a{i:04}.txt", 10)
    path = write_random(folder / "zz.bin", 12 * PART)
    row = _stopped_after_parts(sandbox, path, env, tmp_path / "first.out", "paused")
    hold = tmp_path / "hold"
    hold.write_bytes(b"")
    db = config.paths().database
    with (tmp_path / "walk.out").open("w") as fh:
        child = spawn(["upload", str(folder), *dest(sandbox), "--storage-class", "IA"],
                      cli_env(sandbox, **{HOLD_LISTING_ENV: str(hold)}), fh)
        try:
            wait_until(lambda: len(snapshot_store(db).rows) > LISTING_BATCH, 60, "one batch")
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
    return path, row


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_resume_finishing_a_walk_with_other_options_cancels_the_earlier_row_first(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """``ossdesk resume`` continues the paused row, and when the walk reaches its file
    (another storage class) cancels it; the file goes as a new row once it is aborted."""
    env = cli_env(sandbox)
    path, row = _walk_cut_short_with_ia(sandbox, tmp_path, env)
    resumed = ossdesk("resume", *_RESUME_SLOW, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert ("was to be written with another storage class; it was cancelled (its multipart "
            "upload was aborted on the server) and the file is uploaded from the start"
            ) in resumed.stderr, resumed.stderr
    rows = [(r["id"], r["state"]) for r in _status(env) if r["key"] == "sig2/zz.bin"]
    assert rows[0] == (row["id"], "cancelled") and [s for _, s in rows[1:]] == ["done"], rows
    head = sandbox.bucket_client().head_object("sig2/zz.bin")
    assert head.headers["x-oss-storage-class"] == "IA"
    assert_uploaded(sandbox, "sig2/zz.bin", path)
    assert remote_uploads(sandbox) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_resume_finishing_a_walk_with_other_options_queues_nothing_while_the_abort_fails(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """As above, but the abort is refused: the file is not queued (a later ``ossdesk
    resume`` would finish the earlier upload with the older storage class after the new
    one), and the run says so."""
    assert sandbox.server is not None
    env = cli_env(sandbox)
    path, row = _walk_cut_short_with_ia(sandbox, tmp_path, env)
    sandbox.server.faults.fail(403, method="DELETE", pattern="uploadId", count=None,
                               code="AccessDenied")

    resumed = ossdesk("resume", *_RESUME_SLOW, env=env)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert (f"sig2/zz.bin: the unfinished upload of {path} in the list (row {row['id']}) was "
            "to be written with another storage class; it could not be aborted on the server"
            ) in resumed.stderr, resumed.stderr
    assert f"`ossdesk cancel {row['id']}`" in resumed.stderr
    assert "it is cancelled" not in resumed.stderr + resumed.stdout
    rows = [r for r in _status(env) if r["key"] == "sig2/zz.bin"]
    assert [r["id"] for r in rows] == [row["id"]]  # no second row
    assert not sandbox.bucket_client().object_exists("sig2/zz.bin")

    # The next resume (the server accepts aborts again) continues the one row there is: no
    # row says the object was written with the new options while it holds the older ones.
    sandbox.server.faults.clear()
    ossdesk("resume", env=env)
    rows = [r for r in _status(env) if r["key"] == "sig2/zz.bin"]
    assert [(r["id"], r["state"]) for r in rows] == [(row["id"], "done")]
    head = sandbox.bucket_client().head_object("sig2/zz.bin")
    assert head.headers["x-oss-storage-class"] == "Standard"
