"""Verified means verified: ossdesk aborts only the multipart uploads it can prove are its own,
and leaves none of its own behind on the server for ever.

Real child processes (``ossdesk upload / resume / cancel / uploads``) against the sandbox;
other clients are plain ``oss2``.
"""

from __future__ import annotations

import re
from pathlib import Path

import oss2

from ossdesk import config
from ossdesk.core.events import Cancelled, Failed, Progress
from ossdesk.core.store import State
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    ossdesk,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log


def test_a_lost_initiate_never_aborts_another_clients_upload(sandbox: SandboxInfo,
                                                             tmp_path: Path) -> None:
    """ossdesk dies between Initiate and saving the upload id; meanwhile another client (plain
    oss2) runs its own multipart upload of the same key. The next start must leave that
    upload alone (it completes afterwards) and tell the user about the unknown ones."""
    path = write_random(tmp_path / "shared.bin", 3 * 100 * KiB + 7)
    env = cli_env(sandbox, OSSDESK_CRASH_AT="initiated")
    first = ossdesk("upload", str(path), *dest(sandbox), "--part-size", "100KiB",
                    "--parallel", "1", env=env)
    assert first.returncode == 137, first.stderr
    lost = [u.upload_id for u in remote_uploads(sandbox)]
    assert len(lost) == 1  # ours, but its id never reached the store

    other = sandbox.bucket_client()
    theirs = other.init_multipart_upload("shared.bin").upload_id
    part1 = other.upload_part("shared.bin", theirs, 1, b"a" * (100 * KiB))

    del env["OSSDESK_CRASH_AT"]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_uploaded(sandbox, "shared.bin", path)
    # The user is told, once, which unknown uploads were left and how to see them.
    notes = [line for line in result.stdout.splitlines() if "left alone" in line]
    assert len(notes) == 1, result.stdout
    assert "shared.bin" in notes[0] and "2 unfinished multipart uploads" in notes[0]
    assert f"ossdesk uploads --endpoint {sandbox.endpoint} --bucket {sandbox.bucket}" \
        in notes[0]
    # Nothing was aborted: the lost one is still there, and so is the other client's ...
    assert {u.upload_id for u in remote_uploads(sandbox)} == {*lost, theirs}
    # ... which goes on and completes.
    part2 = other.upload_part("shared.bin", theirs, 2, b"b" * 10)
    other.complete_multipart_upload("shared.bin", theirs, [
        oss2.models.PartInfo(1, part1.etag), oss2.models.PartInfo(2, part2.etag)])
    assert other.get_object("shared.bin").read() == b"a" * (100 * KiB) + b"b" * 10
    assert {u.upload_id for u in remote_uploads(sandbox)} == set(lost)
    rows = snapshot_store(config.paths().database).rows
    assert [(r["state"], r["initiating_at"]) for r in rows] == [("done", None)]


def test_a_lost_initiate_with_nothing_on_the_server_says_nothing(sandbox: SandboxInfo,
                                                                 tmp_path: Path) -> None:
    """The Initiate never reached the server (it failed): no upload, no notice."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "quiet.bin", 3 * 100 * KiB + 7)
    env = cli_env(sandbox, OSSDESK_CRASH_AT="initiated")
    ossdesk("upload", str(path), *dest(sandbox), "--part-size", "100KiB", env=env)
    for upload in remote_uploads(sandbox):  # as if the Initiate had never arrived
        sandbox.bucket_client().abort_multipart_upload(upload.key, upload.upload_id)
    del env["OSSDESK_CRASH_AT"]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"left alone", result.stdout + result.stderr)
    assert remote_uploads(sandbox) == []


def _interrupted_upload(sb: SandboxInfo, path: Path) -> dict[str, object]:
    """An upload that stopped with two parts on the server (the process died): its row."""
    env = cli_env(sb, OSSDESK_CRASH_AT="part-saved:2")
    first = ossdesk("upload", str(path), *dest(sb), "--part-size", "100KiB", "--parallel", "1",
                    env=env)
    assert first.returncode == 137, first.stdout + first.stderr
    rows = [r for r in snapshot_store(config.paths().database).rows
            if r["source"] == str(path)]
    assert len(rows) == 1 and rows[0]["upload_id"]
    return rows[0]


def test_cancel_aborts_on_the_server_and_keeps_a_row_whose_abort_failed(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    assert sandbox.server is not None
    env = cli_env(sandbox)
    row = _interrupted_upload(sandbox, write_random(tmp_path / "a.bin", 5 * 100 * KiB))
    assert [u.upload_id for u in remote_uploads(sandbox)] == [row["upload_id"]]

    # The network fails the abort: the row stays, and the user is told so.
    sandbox.server.faults.fail(503, method="DELETE", count=None)
    failed = ossdesk("cancel", str(row["id"]), env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "could not abort" in failed.stderr and "stays in the list" in failed.stderr
    assert "cancelled" not in failed.stdout
    assert [u.upload_id for u in remote_uploads(sandbox)] == [row["upload_id"]]
    assert [r["id"] for r in snapshot_store(config.paths().database).rows] == [row["id"]]

    sandbox.server.faults.clear()
    done = ossdesk("cancel", str(row["id"]), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"cancelled\s+{row['id']}\s+sandbox/a.bin: its unfinished upload was "
                     "aborted on the server; it stays in the list as cancelled", done.stdout), \
        done.stdout
    assert remote_uploads(sandbox) == []
    [kept] = snapshot_store(config.paths().database).rows
    assert kept["state"] == "cancelled" and kept["upload_id"] is None
    status = ossdesk("status", env=env)
    assert status.stdout.splitlines()[-1] == "1 cancelled", status.stdout


def test_cancel_all_and_failed_and_unknown_ids(sandbox: SandboxInfo, tmp_path: Path) -> None:
    env = cli_env(sandbox)
    one = _interrupted_upload(sandbox, write_random(tmp_path / "one.bin", 5 * 100 * KiB))
    two = _interrupted_upload(sandbox, write_random(tmp_path / "two.bin", 5 * 100 * KiB))
    done = ossdesk("upload", str(write_random(tmp_path / "small.txt", 10)), *dest(sandbox),
                   env=env)
    assert done.returncode == 0, done.stderr
    assert len(remote_uploads(sandbox)) == 2

    nothing = ossdesk("cancel", env=env)
    assert nothing.returncode == 2 and "--all" in nothing.stderr
    unknown = ossdesk("cancel", "999", env=env)
    assert unknown.returncode == 1 and "no upload 999" in unknown.stderr
    assert ossdesk("cancel", "--failed", env=env).stdout.startswith("No failed upload")

    result = ossdesk("cancel", "--all", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("cancelled")]
    assert len(lines) == 2 and str(one["id"]) in lines[0] and str(two["id"]) in lines[1]
    assert remote_uploads(sandbox) == []
    # The finished upload stays: --all means every unfinished one; the cancelled ones stay
    # as history.
    assert {r["key"]: r["state"] for r in snapshot_store(config.paths().database).rows} == {
        "one.bin": "cancelled", "two.bin": "cancelled", "small.txt": "done"}


GONE = "gone.bin is gone; its unfinished upload was aborted on the server"


def _resume_leaves_the_gone_file_alone(sb: SandboxInfo, env: dict[str, str]) -> None:
    """Once reported and cleaned up, a file whose source is gone does not fail every later
    ``resume``: it is not retried (nothing could make progress), and said so."""
    for _ in range(2):
        again = ossdesk("resume", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "not retried" in again.stdout and "gone.bin" in again.stdout, again.stdout
        assert "ossdesk cancel --failed" in again.stdout
    status = ossdesk("status", env=env)
    assert "failed" in status.stdout and GONE in status.stdout, status.stdout
    assert remote_uploads(sb) == []


def test_source_deleted_mid_upload_is_aborted_on_the_server(sandbox: SandboxInfo,
                                                            tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "gone.bin", 6 * 128 * KiB + 9)
    env = cli_env(sandbox)
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    out = tmp_path / "upload.out"
    with out.open("w") as fh:
        child = spawn(["upload", str(path), *dest(sandbox), "--part-size", "128KiB",
                       "--parallel", "1"], env, fh)
        try:
            wait_until(lambda: hold.hits > 0, 60, "part 3")
            path.unlink()
            code = child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
    text = out.read_text()
    assert code == 1, text
    assert GONE in text, text
    assert remote_uploads(sandbox) == []  # its parts are no longer stored (and billed)
    [row] = snapshot_store(config.paths().database).rows
    assert (row["state"], row["upload_id"], row["error_code"]) == ("failed", None,
                                                                   "SourceMissing")
    _resume_leaves_the_gone_file_alone(sandbox, env)
    # The file comes back: it can make progress again, so resume uploads it.
    write_random(path, 6 * 128 * KiB + 9)
    back = ossdesk("resume", env=env)
    assert back.returncode == 0, back.stdout + back.stderr
    assert_uploaded(sandbox, "gone.bin", path)


def test_source_deleted_between_runs_is_aborted_on_the_server(sandbox: SandboxInfo,
                                                              tmp_path: Path) -> None:
    path = write_random(tmp_path / "gone.bin", 5 * 100 * KiB)
    env = cli_env(sandbox)
    row = _interrupted_upload(sandbox, path)
    path.unlink()
    first = ossdesk("resume", env=env)
    assert first.returncode == 1, first.stdout + first.stderr  # a failure, reported once
    assert GONE in first.stderr, first.stderr
    assert remote_uploads(sandbox) == []
    [after] = snapshot_store(config.paths().database).rows
    assert (after["id"], after["upload_id"]) == (row["id"], None)
    _resume_leaves_the_gone_file_alone(sandbox, env)


def test_source_gone_and_the_abort_fails_keeps_the_upload_id(sandbox: SandboxInfo,
                                                             tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "gone.bin", 5 * 100 * KiB)
    env = cli_env(sandbox)
    row = _interrupted_upload(sandbox, path)
    path.unlink()
    sandbox.server.faults.fail(503, method="DELETE", count=None)
    first = ossdesk("resume", env=env)
    assert first.returncode == 1
    assert "gone.bin is gone; its unfinished upload could not be aborted on the server" \
        in first.stderr, first.stderr
    assert f"ossdesk cancel {row['id']}" in first.stderr
    assert [u.upload_id for u in remote_uploads(sandbox)] == [row["upload_id"]]
    # The upload id is kept, so the next resume tries the abort again (progress is possible).
    sandbox.server.faults.clear()
    second = ossdesk("resume", env=env)
    assert second.returncode == 1 and GONE in second.stderr, second.stderr
    assert remote_uploads(sandbox) == []
    _resume_leaves_the_gone_file_alone(sandbox, env)


def _listings(sb: SandboxInfo) -> int:
    return sum(1 for r in read_access_log(sb.log_path) if r["method"] == "GET"
               and re.search(r"(?:^|&)uploads(?:=|&|$)", r["query"]))


def test_uploads_lists_ours_and_others_over_every_page_and_aborts(sandbox: SandboxInfo,
                                                                  tmp_path: Path) -> None:
    env = cli_env(sandbox)
    ours = _interrupted_upload(sandbox, write_random(tmp_path / "mine.bin", 5 * 100 * KiB))
    other = sandbox.bucket_client()
    theirs = [other.init_multipart_upload(f"other/{i}.bin").upload_id for i in range(4)]
    other.upload_part("other/0.bin", theirs[0], 1, b"z" * 1000)

    before = _listings(sandbox)
    listed = ossdesk("uploads", *dest(sandbox), "--parts", "--page-size", "2", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert _listings(sandbox) - before >= 3  # 5 uploads, 2 a page: every page was read
    lines = {ln.split()[2]: ln for ln in listed.stdout.splitlines() if ln[:2] == "20"}
    assert set(lines) == {ours["upload_id"], *theirs}
    assert f"ours: row {ours['id']}" in lines[str(ours["upload_id"])]
    assert "mine.bin  2 parts, 200 KiB" in lines[str(ours["upload_id"])]
    assert "other/0.bin  1 part, 0.98 KiB" in lines[theirs[0]]
    assert all("not in this computer's list" in lines[t] for t in theirs)
    assert "5 unfinished multipart upload(s)" in listed.stdout

    # One of another client's, by id.
    one = ossdesk("uploads", *dest(sandbox), "--abort", theirs[1], env=env)
    assert one.returncode == 0, one.stdout + one.stderr
    assert f"aborted  {theirs[1]}  other/1.bin" in one.stdout
    assert theirs[1] not in {u.upload_id for u in remote_uploads(sandbox)}
    # Ours, still used by a row: refused, pointing at `ossdesk cancel`.
    refused = ossdesk("uploads", *dest(sandbox), "--abort", str(ours["upload_id"]), env=env)
    assert refused.returncode == 1
    assert f"ossdesk cancel {ours['id']}" in refused.stderr
    # Nothing begun over an hour ago.
    old = ossdesk("uploads", *dest(sandbox), "--older-than", "1h", "--abort-all", env=env)
    assert old.returncode == 0 and "No unfinished multipart upload" in old.stdout, old.stdout
    assert len(remote_uploads(sandbox)) == 4
    # Everyone else's; ours is left for its row.
    every = ossdesk("uploads", *dest(sandbox), "--prefix", "", "--abort-all", env=env)
    assert every.returncode == 0, every.stdout + every.stderr
    assert every.stdout.count("aborted  ") == 3
    assert f"1 upload left alone: row {ours['id']} of this computer's list uses it" in every.stdout
    assert [u.upload_id for u in remote_uploads(sandbox)] == [ours["upload_id"]]
    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert ossdesk("uploads", *dest(sandbox), env=env).stdout.startswith(
        "No unfinished multipart upload in sandbox.")


def test_a_lost_initiate_is_found_and_aborted_with_uploads(sandbox: SandboxInfo,
                                                           tmp_path: Path) -> None:
    """The notice after a crash in Initiate names a command; it finds the upload."""
    path = write_random(tmp_path / "lost.bin", 3 * 100 * KiB + 7)
    env = cli_env(sandbox, OSSDESK_CRASH_AT="initiated")
    ossdesk("upload", str(path), *dest(sandbox), "--part-size", "100KiB", env=env)
    del env["OSSDESK_CRASH_AT"]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    command = re.search(r"`ossdesk uploads ([^`]*)`", result.stdout)
    assert command, result.stdout
    args = command.group(1).split()
    listed = ossdesk("uploads", *args, "--region", sandbox.region, env=env)
    assert "lost.bin" in listed.stdout and "not in this computer's list" in listed.stdout
    aborted = ossdesk("uploads", *args, "--region", sandbox.region, "--abort-all", env=env)
    assert aborted.returncode == 0 and aborted.stdout.count("aborted  ") == 1
    assert remote_uploads(sandbox) == []


def test_a_damaged_list_set_aside_points_at_its_uploads_left_in_the_bucket(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    env = cli_env(sandbox)
    row = _interrupted_upload(sandbox, write_random(tmp_path / "old.bin", 5 * 100 * KiB))
    config.paths().database.write_bytes(b"not a database" * 100)
    result = ossdesk("upload", str(write_random(tmp_path / "new.txt", 10)), *dest(sandbox),
                     env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "set aside" in result.stderr
    assert "unfinished uploads may remain in their buckets" in result.stderr, result.stderr
    assert "`ossdesk uploads --endpoint URL --bucket BUCKET`" in result.stderr
    # The new list does not know the old upload: it is listed as another's, and aborted.
    cleaned = ossdesk("uploads", *dest(sandbox), "--abort-all", env=env)
    assert f"aborted  {row['upload_id']}  old.bin" in cleaned.stdout, cleaned.stdout
    assert remote_uploads(sandbox) == []


def test_the_engines_cancel_keeps_a_row_whose_abort_failed(sandbox: SandboxInfo,
                                                          engine: EngineFactory,
                                                          tmp_path: Path) -> None:
    """The window cancels through the engine: an abort the network refused is not reported
    as a cancel; the row stays (failed, saying so) with its upload id, and cancelling it
    again aborts it."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "w.bin", 8 * 128 * KiB)
    sched, rec = engine(part_size=128 * KiB, parallel=1, rate=256 * KiB)
    [upload] = sched.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes > 0)
    sandbox.server.faults.fail(503, method="DELETE", count=None)
    sched.cancel([upload])
    failed = rec.wait_for(lambda e: isinstance(e, Failed | Cancelled) and e.upload == upload)
    assert sched.wait(30)
    assert isinstance(failed, Failed), failed
    assert "could not be aborted on the server" in failed.message
    row = sched.store.get(upload)
    assert row is not None and row.state is State.FAILED and row.upload_id
    assert [u.upload_id for u in remote_uploads(sandbox)] == [row.upload_id]
    sandbox.server.faults.clear()
    sched.cancel([upload])
    rec.wait_for(lambda e: isinstance(e, Cancelled) and e.upload == upload)
    assert sched.wait(30)
    row = sched.store.get(upload)
    assert row is not None and row.state is State.CANCELLED and row.upload_id is None
    assert remote_uploads(sandbox) == []


def test_a_single_put_whose_source_went_keeps_its_true_message(sandbox: SandboxInfo,
                                                              engine: EngineFactory,
                                                              tmp_path: Path) -> None:
    """No multipart upload to abort: the message stays what happened (the object was
    written from the file as it was read)."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "s.bin", 90 * KiB)
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"/s\.bin\?$", count=1)
    sched, rec = engine(part_size=128 * KiB)
    sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "the PUT")
    path.unlink()
    assert sched.wait(60)
    [failed] = rec.of(Failed)
    assert "deleted or moved while it was being uploaded" in failed.message, failed.message
