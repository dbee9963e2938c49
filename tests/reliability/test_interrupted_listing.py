"""Verified means verified: a walk cut short is finished later, and no message says that
everything is done while files the user asked for are not even queued yet.

The request (the roots and the destination) is recorded before the walk starts; Ctrl-C or a
full disk in the middle of it leaves the request unfinished, `ossdesk status` says so, and
`ossdesk resume` walks it again (files queued already are not added twice) before uploading.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import oss2

from ossdesk import config
from ossdesk.commands import HOLD_LISTING_ENV, LISTING_BATCH
from tests.reliability.helpers import (
    cli_env,
    dest,
    ossdesk,
    snapshot_store,
    spawn,
    wait_until,
)
from tests.support.sandbox import SandboxInfo

FILES = 2000


def _folder(root: Path, files: int = FILES) -> Path:
    """``files`` tiny files in 8 sub-folders."""
    for i in range(files):
        path = root / f"d{i % 8}" / f"f{i:05}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode())
    return root


def _keys(sb: SandboxInfo, prefix: str) -> set[str]:
    return {o.key for o in oss2.ObjectIterator(sb.bucket_client(), prefix=prefix)}


def _queued_rows(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "uploads" not in tables:
            return 0
        return int(conn.execute("SELECT COUNT(*) FROM uploads").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # being created right now
    finally:
        conn.close()


def test_ctrl_c_while_listing_then_resume_finishes_the_walk(sandbox: SandboxInfo,
                                                            tmp_path: Path) -> None:
    folder = _folder(tmp_path / "many")
    hold = tmp_path / "hold-listing"
    hold.touch()
    env = cli_env(sandbox, **{HOLD_LISTING_ENV: str(hold)})
    db = config.paths().database
    out = tmp_path / "upload.out"
    err = tmp_path / "upload.err"
    with out.open("w") as fo, err.open("w") as fe:
        child = spawn(["upload", str(folder), *dest(sandbox)], env, fo, fe)
        try:
            # The first batch is queued (and uploading); the walk waits for the rest.
            wait_until(lambda: _queued_rows(db) >= LISTING_BATCH or child.poll() is not None,
                       60, "the first files queued")
            assert child.poll() is None, err.read_text()
            child.send_signal(signal.SIGINT)
            code = child.wait(60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    stderr = err.read_text()
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "nothing was lost" not in stderr, stderr
    queued = len(snapshot_store(db).rows)
    assert 0 < queued < FILES
    assert (f"stopped while listing {folder}: {queued} of the files found so far are queued; "
            "`ossdesk resume` finishes listing and uploads the rest") in stderr, stderr
    assert "uploaded and verified" not in out.read_text()

    status = ossdesk("status", env=env)
    assert status.returncode == 0, status.stderr
    assert (f"Walk of {folder} not finished: {queued} files queued so far; `ossdesk resume` "
            "finishes it.") in status.stdout, status.stdout

    hold.unlink()
    resumed = ossdesk("resume", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    last = resumed.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{FILES} of {FILES} files uploaded and verified"), resumed.stdout
    assert _keys(sandbox, "many/") == {f"many/d{i % 8}/f{i:05}.txt" for i in range(FILES)}
    rows = snapshot_store(db).rows
    assert len(rows) == FILES  # the files queued before Ctrl-C were not queued twice
    assert len({r["source"] for r in rows}) == FILES
    assert all(r["state"] == "done" for r in rows)
    after = ossdesk("status", env=env)
    assert "not finished" not in after.stdout, after.stdout
    again = ossdesk("resume", env=env)
    assert again.returncode == 0 and "Nothing to resume" in again.stdout, again.stdout


def test_killed_while_listing_then_resume_finishes_the_walk(sandbox: SandboxInfo,
                                                            tmp_path: Path) -> None:
    """SIGKILL (a crash, a power cut) in the middle of the walk: the same as Ctrl-C."""
    folder = _folder(tmp_path / "k", 1200)
    hold = tmp_path / "hold-listing"
    hold.touch()
    env = cli_env(sandbox, **{HOLD_LISTING_ENV: str(hold)})
    db = config.paths().database
    with (tmp_path / "k.out").open("w") as fh:
        child = spawn(["upload", str(folder), *dest(sandbox)], env, fh, subprocess.STDOUT)
        try:
            wait_until(lambda: _queued_rows(db) >= LISTING_BATCH or child.poll() is not None,
                       60, "the first files queued")
            child.kill()
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    hold.unlink()
    status = ossdesk("status", env=env)
    assert f"Walk of {folder} not finished" in status.stdout, status.stdout
    resumed = ossdesk("resume", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip().splitlines()[-1].startswith(
        "1200 of 1200 files uploaded and verified"), resumed.stdout
    assert len(_keys(sandbox, "k/")) == 1200
    assert len(snapshot_store(db).rows) == 1200
