"""``ossdesk cancel`` keeps a cancelled upload in the list as history, as the window does:
its multipart upload is aborted on the server, the row stays as "cancelled", and
``ossdesk status``, ``resume`` and ``uploads`` say what is true of it. Real child processes
against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

from ossdesk import config
from tests.integration.test_cli_upload import cli_env, dest, json_lines, ossdesk
from tests.integration.test_engine_upload import remote_uploads, write_random
from tests.reliability.helpers import snapshot_store
from tests.support.sandbox import SandboxInfo

KiB = 1024


def _interrupted(sb: SandboxInfo, path: Path) -> dict[str, object]:
    """An upload whose process died with two parts on the server: its row."""
    result = ossdesk("upload", str(path), *dest(sb), "--part-size", "100KiB", "--parallel", "1",
                     env=cli_env(sb, OSSDESK_CRASH_AT="part-saved:2"))
    assert result.returncode == 137, result.stdout + result.stderr
    [row] = [r for r in snapshot_store(config.paths().database).rows
             if r["source"] == str(path)]
    assert row["upload_id"]
    return row


def _rows() -> dict[str, dict[str, object]]:
    snapshot = snapshot_store(config.paths().database)
    return {Path(str(r["source"])).name: r for r in snapshot.rows}


def test_cancel_keeps_the_row_as_cancelled_history(sandbox: SandboxInfo,
                                                   tmp_path: Path) -> None:
    env = cli_env(sandbox)
    row = _interrupted(sandbox, write_random(tmp_path / "a.bin", 5 * 100 * KiB))
    assert [u.upload_id for u in remote_uploads(sandbox)] == [row["upload_id"]]

    result = ossdesk("cancel", str(row["id"]), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(
        rf"cancelled\s+{row['id']}\s+{sandbox.bucket}/a\.bin: its unfinished upload was aborted "
        r"on the server; it stays in the list as cancelled until `ossdesk cancel "
        rf"{row['id']}` removes it\n", result.stdout), result.stdout
    assert remote_uploads(sandbox) == []
    kept = _rows()["a.bin"]
    assert kept["id"] == row["id"] and kept["state"] == "cancelled"
    assert kept["upload_id"] is None
    assert snapshot_store(config.paths().database).confirmed == set()

    status = ossdesk("status", env=env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert re.match(rf"\s*{row['id']}\s+cancelled\s+0\.0%.*/a\.bin$", lines[0]), lines
    assert lines[-1] == "1 cancelled", lines
    [listed] = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert listed["state"] == "cancelled" and listed["multipart"] is False

    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == (
        "Nothing to resume: every upload in the list is finished or cancelled.")
    assert _rows()["a.bin"]["state"] == "cancelled"

    uploads = ossdesk("uploads", *dest(sandbox), env=env)
    assert uploads.returncode == 0, uploads.stderr
    assert uploads.stdout.startswith("No unfinished multipart upload in"), uploads.stdout

    # Cancelling the history row again removes it from the list, and says so.
    again = ossdesk("cancel", str(row["id"]), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.fullmatch(rf"removed\s+{row['id']}\s+{sandbox.bucket}/a\.bin: cancelled "
                        r"before; removed from the list\n", again.stdout), again.stdout
    assert _rows() == {}


def test_cancel_all_keeps_the_rows_as_cancelled_and_leaves_finished_ones(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    env = cli_env(sandbox)
    one = _interrupted(sandbox, write_random(tmp_path / "one.bin", 5 * 100 * KiB))
    two = _interrupted(sandbox, write_random(tmp_path / "two.bin", 5 * 100 * KiB, seed=1))
    done = ossdesk("upload", str(write_random(tmp_path / "small.txt", 10)), *dest(sandbox),
                   env=env)
    assert done.returncode == 0, done.stderr
    assert len(remote_uploads(sandbox)) == 2

    result = ossdesk("cancel", "--all", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines] == [["cancelled", str(one["id"])],
                                                ["cancelled", str(two["id"])]], lines
    assert all(ln.endswith("removes it") for ln in lines), lines
    assert remote_uploads(sandbox) == []
    assert {name: r["state"] for name, r in _rows().items()} == {
        "one.bin": "cancelled", "two.bin": "cancelled", "small.txt": "done"}
    # Nothing unfinished is left: a second --all has nothing to cancel.
    assert ossdesk("cancel", "--all", env=env).stdout == "No unfinished upload in the list.\n"
    status = ossdesk("status", env=env).stdout.splitlines()
    assert status[-1] == "2 cancelled, 1 done", status
