"""Read permission lost in the middle of an upload.

The file's permission is really taken away (``chmod 000``) while ``ossdesk upload`` runs.
Root reads any file whatever its mode, so under root the upload runs as ``nobody``
(``setpriv``); the file and the upload list are in a folder that user may use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ossdesk import config
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    part_puts,
    snapshot_store,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo

P = 128 * KiB

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _as_user() -> list[str]:
    """What runs a command as a user that file modes apply to."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv is not there to run as another user")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder the other user may use (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="ossdesk-perm-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_permission_lost_mid_upload_says_so_and_resumes_once_it_is_back(
        sandbox: SandboxInfo, shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = shared / "home"
    home.mkdir()
    home.chmod(0o777)
    monkeypatch.setenv("OSSDESK_HOME", str(home))
    path = write_random(shared / "p.bin", 4 * P)
    path.chmod(0o644)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(2.0, method="PUT", pattern=r"partNumber=1\b", count=1)
    env = cli_env(sandbox, OSSDESK_HOME=str(home))
    command = [*_as_user(), sys.executable, "-m", "ossdesk"]
    out_path = shared / "out"
    with out_path.open("w") as out:
        child = subprocess.Popen([*command, "upload", str(path), *dest(sandbox), "--part-size",
                                  str(P), "--parallel", "1"], stdout=out,
                                 stderr=subprocess.STDOUT, env=env, cwd=shared)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 1 sent")
            path.chmod(0)  # part 1 is on its way; part 2 cannot be read any more
            code = child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    output = out_path.read_text()
    assert code == 1, output
    assert f"{path} can no longer be read: permission denied" in output, output
    assert "changed" not in output, output
    [row] = snapshot_store(config.paths().database).rows
    assert row["state"] == "failed" and row["upload_id"], row  # its place is kept
    upload_id = row["upload_id"]

    path.chmod(0o644)  # the permission is back
    resumed = subprocess.run([*command, "resume"], capture_output=True, text=True, env=env,
                             cwd=shared, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_uploaded(sandbox, "p.bin", path)
    # The same upload went on: part 1, confirmed before, was not sent again.
    ones = [p for p in part_puts(sandbox.log_path) if p.number == 1]
    assert [(p.upload_id, p.status) for p in ones] == [(upload_id, 200)]
