"""A resume after SIGKILL writes the object with the options the upload was started with:
they are stored with the upload, not taken from the command line that resumes it."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from ossdesk import config
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    ossdesk,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo

P = 128 * KiB
OPTIONS = ["--acl", "private", "--content-type", "application/x-demo", "--cache-control",
           "no-cache", "--content-disposition", "inline", "--tags", "run=nightly&kind=raw",
           "--sse", "AES256"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _kill_after_three_parts(sandbox: SandboxInfo, path: Path, out: Path) -> None:
    db = config.paths().database
    with out.open("w") as fh:
        child = spawn(["upload", str(path), *dest(sandbox), "--part-size", str(P),
                       "--parallel", "1", "--limit-rate", "512KiB", *OPTIONS],
                      cli_env(sandbox), fh)
        try:
            wait_until(lambda: len(snapshot_store(db).confirmed) >= 3, 60,
                       "three confirmed parts")
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(30)
    assert child.returncode == -signal.SIGKILL


def _assert_options(sandbox: SandboxInfo, key: str) -> None:
    bucket = sandbox.bucket_client()
    head = bucket.head_object(key).headers
    assert head["Content-Type"] == "application/x-demo"
    assert head["Cache-Control"] == "no-cache"
    assert head["Content-Disposition"] == "inline"
    assert head["x-oss-server-side-encryption"] == "AES256"
    assert bucket.get_object_acl(key).acl == "private"
    assert bucket.get_object_tagging(key).tag_set.tagging_rule == {"run": "nightly",
                                                                   "kind": "raw"}


def test_resume_after_sigkill_keeps_the_options(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "k.bin", 16 * P + 5)
    _kill_after_three_parts(sandbox, path, tmp_path / "upload.out")
    resumed = ossdesk("resume", env=cli_env(sandbox))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_uploaded(sandbox, "k.bin", path)
    _assert_options(sandbox, "k.bin")


def test_an_upload_started_over_after_sigkill_initiates_with_the_options(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The server lost the upload while ossdesk was down: the resume starts the file over
    with a new InitiateMultipartUpload, which must carry the stored options."""
    path = write_random(tmp_path / "k.bin", 16 * P + 5)
    _kill_after_three_parts(sandbox, path, tmp_path / "upload.out")
    assert sandbox.server is not None
    sandbox.server.faults.forget_all_uploads()
    resumed = ossdesk("resume", env=cli_env(sandbox))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "so it starts over" in resumed.stdout + resumed.stderr
    assert_uploaded(sandbox, "k.bin", path)
    _assert_options(sandbox, "k.bin")
