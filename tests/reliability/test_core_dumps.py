"""A crashed ossdesk leaves no core file holding the AccessKey secret or the STS token.

Every ``ossdesk`` process turns core dumps off first thing (``ossdesk.hardening``): the
limits of a running ``ossdesk upload`` and ``ossdesk _engine`` show a core size of 0, and an
upload killed with SIGABRT, started with ``ulimit -c unlimited`` where the kernel writes
plain core files (``core_pattern`` = ``core``...), leaves none, while a plain Python process
holding the same secret, crashed the same way, does leave one (the check can fail).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import KiB, cli_env, dest, wait_until, write_random
from tests.support.sandbox import SandboxInfo

pytestmark = pytest.mark.skipif(not Path("/proc/self/limits").exists(),
                                reason="reads the limits of a process in /proc")

AK = "LTAIcoreDumpTestKeyId"
SECRET = "coreDumpSecret-4f1c9a7e2b6d8035"
TOKEN = "coreDumpToken-9e8d7c6b5a4f3e2d1c0b"


def _core_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError("no core size in the limits")


def _unlimited(command: list[str]) -> list[str]:
    """``command`` started with the core size limit raised (as a user's shell may)."""
    return ["bash", "-c", "ulimit -c unlimited; exec " + shlex.join(command)]


def _sandbox(sandbox_factory: Any) -> SandboxInfo:
    sb: SandboxInfo = sandbox_factory(access_key_id=AK, access_key_secret=SECRET,
                                      security_token=TOKEN)
    return sb


def test_a_running_upload_and_the_engine_process_allow_no_core_file(
        sandbox_factory: Any, tmp_path: Path) -> None:
    sb = _sandbox(sandbox_factory)
    assert sb.server is not None
    path = write_random(tmp_path / "c.bin", 3 * 128 * KiB)
    hold = sb.server.faults.delay(3.0, method="PUT", pattern=r"partNumber=1\b", count=1)
    env = cli_env(sb)
    with (tmp_path / "out").open("w") as out:
        child = subprocess.Popen(
            _unlimited([sys.executable, "-m", "ossdesk", "upload", str(path), *dest(sb),
                        "--part-size", "128KiB"]), stdout=out, stderr=subprocess.STDOUT,
            env=env)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "a part sent")
            assert child.poll() is None, (tmp_path / "out").read_text()
            assert _core_limit(child.pid) == "0 0"  # soft and hard
            assert child.wait(120) == 0, (tmp_path / "out").read_text()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    engine = subprocess.Popen(_unlimited([sys.executable, "-m", "ossdesk", "_engine"]),
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)
    try:
        wait_until(lambda: _core_limit(engine.pid) == "0 0" or engine.poll() is not None,
                   30, "the engine process to start")
        assert engine.poll() is None
    finally:
        assert engine.stdin is not None
        engine.stdin.close()  # the window went away: the engine ends
        try:
            engine.wait(30)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()


def _cores(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith("core")]


def test_an_upload_that_crashes_leaves_no_core_with_the_secret(sandbox_factory: Any,
                                                               tmp_path: Path) -> None:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"cores are not written to the working folder here ({pattern!r})")
    # The check itself: a plain Python process holding the secret, crashed, leaves a core
    # that contains it.
    control = tmp_path / "control"
    control.mkdir()
    crashed = subprocess.run(
        _unlimited([sys.executable, "-c", f"import os; s = {SECRET!r} * 2; os.abort()"]),
        cwd=control, check=False, timeout=60)
    assert crashed.returncode in (-signal.SIGABRT, 128 + signal.SIGABRT)
    cores = _cores(control)
    if not cores:
        pytest.skip("this machine writes no core file even for a plain crash")
    assert any(SECRET.encode() in p.read_bytes() for p in cores)

    sb = _sandbox(sandbox_factory)
    assert sb.server is not None
    path = write_random(tmp_path / "c.bin", 3 * 128 * KiB)
    hold = sb.server.faults.delay(30.0, method="PUT", pattern=r"partNumber=1\b", count=1)
    work = tmp_path / "work"
    work.mkdir()
    with (tmp_path / "out").open("w") as out:
        child = subprocess.Popen(
            _unlimited([sys.executable, "-m", "ossdesk", "upload", str(path), *dest(sb),
                        "--part-size", "128KiB"]), stdout=out, stderr=subprocess.STDOUT,
            env=cli_env(sb), cwd=work)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "a part sent")
            assert child.poll() is None, (tmp_path / "out").read_text()
            os.kill(child.pid, signal.SIGABRT)  # the secret is in its memory now
            assert child.wait(60) == -signal.SIGABRT
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert _cores(work) == []
