"""An endpoint that is not there, never answers, or does not speak HTTP.

Each failed try is told at once (a ``Retrying`` event, a line from ``ossdesk upload``, a
``retrying`` JSON object) with what failed and when the next try is; a request is cut after
its answer deadline instead of a long read timeout; an answer that is not HTTP is named as
such and not retried; and nothing says "will try again" once nothing will.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ossdesk.core.events import Failed, Paused, Retrying
from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError, Timeouts
from ossdesk.core.upload import RetryPolicy
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import KiB, json_lines, write_random
from tests.support.sandbox import SandboxInfo

FIXED = RetryPolicy(tries=3, base=0.05, cap=0.08, jitter=lambda: 1.0)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Server:
    """A TCP server on 127.0.0.1 in a thread: ``black hole`` takes connections and says
    nothing (it lets them go after ``hold`` seconds); ``garbage`` answers ``reply`` and
    closes."""

    def __init__(self, *, reply: bytes | None, hold: float = 30.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.reply = reply
        self.hold = hold
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.reply is not None:
                    conn.sendall(self.reply)
                    conn.settimeout(2)
                    conn.recv(1 << 20)
                else:
                    self._stop.wait(self.hold)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)


@pytest.fixture
def black_hole() -> Iterator[_Server]:
    server = _Server(reply=None)
    yield server
    server.close()


@pytest.fixture
def ssh_server() -> Iterator[_Server]:
    server = _Server(reply=b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
    yield server
    server.close()


def _client(port: int, timeouts: Timeouts | None = None) -> OssClient:
    return OssClient(Endpoint(f"http://127.0.0.1:{port}", "sandbox", "cn-hangzhou"),
                     Credentials("LTAIexample", "secret"), timeouts=timeouts)


# ----------------------------------------------------------------------------- the engine


def test_each_retry_is_told_with_its_reason_attempt_and_delay(
        sandbox: SandboxInfo, engine: EngineFactory, tmp_path: Path) -> None:
    port = closed_port()
    path = write_random(tmp_path / "big.bin", 10 * KiB)
    sched, rec = engine(retry=FIXED)
    item = dataclasses.replace(new_upload(sandbox, path), endpoint=f"http://127.0.0.1:{port}")
    sched.add([item])
    failed = rec.wait_for(lambda e: isinstance(e, Failed))
    retries = rec.of(Retrying)
    # Two retries after the first try: delays from the policy (fixed jitter), in order.
    assert [(r.attempt, r.tries, r.delay) for r in retries] == [(2, 3, 0.05), (3, 3, 0.08)]
    for r in retries:
        assert r.reason == f"cannot connect to 127.0.0.1:{port}: connection refused"
        assert r.code == "ConnectionRefused"
        assert r.at > 0
    assert isinstance(failed, Failed)
    assert failed.retryable and failed.code == "ConnectionRefused"
    assert "will try again" not in failed.message
    assert failed.message == (
        f"127.0.0.1:{port} refused the connection (nothing listens there, or a firewall "
        "blocks it). Check the endpoint. Tried 3 times. `ossdesk resume` tries it again.")


def test_the_window_keeps_retrying_and_says_when(sandbox: SandboxInfo, engine: EngineFactory,
                                                 tmp_path: Path) -> None:
    """With ``network_retry`` (the window) the file pauses and is queued again later: the
    pause says so, and so it is true there."""
    port = closed_port()
    path = write_random(tmp_path / "big.bin", 10 * KiB)
    sched, rec = engine(retry=FIXED, network_retry=60)
    item = dataclasses.replace(new_upload(sandbox, path), endpoint=f"http://127.0.0.1:{port}")
    sched.add([item])
    paused = rec.wait_for(lambda e: isinstance(e, Paused))
    assert isinstance(paused, Paused)
    assert paused.message.endswith("(trying again in 60 s)")
    assert "`ossdesk resume`" not in paused.message
    assert rec.of(Failed) == []


# ------------------------------------------------------------------------------ requests


def test_a_server_that_never_answers_is_cut_at_the_answer_deadline(
        black_hole: _Server) -> None:
    """No per-read timeout at all: only the answer deadline can end the wait (before the
    server lets the connection go, which would be a lost connection instead)."""
    client = _client(black_hole.port, Timeouts(connect=2, answer=0.5, idle=60, rate=0))
    with pytest.raises(OssError) as caught:
        client.check_connection()
    assert caught.value.code == "Timeout" and caught.value.retryable
    assert caught.value.reason == f"127.0.0.1:{black_hole.port} did not answer in time"


def test_the_answer_deadline_grows_with_the_body() -> None:
    timeouts = Timeouts()
    assert timeouts.answer_for(0) == timeouts.answer < 10  # a black hole: the first retry soon
    # 100 MiB still leaving on a slow link gets its time (at the minimum rate).
    assert timeouts.answer_for(100 * 1024 * 1024) >= 100 * 1024 * 1024 / timeouts.rate
    quick = timeouts.quick()
    assert quick.connect <= 5 and quick.answer <= 3
    assert Timeouts.from_env({"OSSDESK_TIMEOUTS": "connect=1,answer=0.5"}) == Timeouts(
        connect=1, answer=0.5)
    with pytest.raises(ValueError, match="OSSDESK_TIMEOUTS"):
        Timeouts.from_env({"OSSDESK_TIMEOUTS": "answer=soon"})
    assert RetryPolicy.from_env({"OSSDESK_RETRIES": "tries=2,base=0.1"}) == RetryPolicy(
        tries=2, base=0.1)


@pytest.mark.parametrize("reply", [
    b"SSH-2.0-OpenSSH_9.6p1\r\n",
    bytes(range(256)) * 4,
    b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * (70 * 1024) + b"\r\n\r\n",
])
def test_an_answer_that_is_not_http_is_named_and_not_retried(reply: bytes) -> None:
    server = _Server(reply=reply)
    try:
        with pytest.raises(OssError) as caught:
            _client(server.port).check_connection()
        where = f"127.0.0.1:{server.port}"
        assert caught.value.code == "NotOss"
        assert not caught.value.retryable
        assert caught.value.message.startswith(
            f"{where} does not speak OSS (its answer is not HTTP).")
        assert "lost" not in caught.value.message
    finally:
        server.close()


# ------------------------------------------------------------------------ the command line


def _cli(tmp_path: Path, port: int, *extra: str, **env_extra: str,
         ) -> subprocess.CompletedProcess[str]:
    path = write_random(tmp_path / "big.bin", 10 * KiB)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSS_")}
    env.update({"OSS_ACCESS_KEY_ID": "LTAIexample", "OSS_ACCESS_KEY_SECRET": "secret",
                "OSSDESK_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1",
                "OSSDESK_RETRIES": "tries=3,base=0.1,cap=0.2",
                "OSSDESK_TIMEOUTS": "connect=2,answer=1,idle=5"})
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "ossdesk", "upload", str(path), "--endpoint",
         f"http://127.0.0.1:{port}", "--bucket", "sandbox", *extra],
        capture_output=True, text=True, env=env, timeout=120, check=False)


def test_cli_closed_port_says_each_retry_and_no_false_promise(tmp_path: Path) -> None:
    port = closed_port()
    result = _cli(tmp_path, port, "--json")
    assert result.returncode == 1, result.stderr
    events = json_lines(result.stdout)
    retrying = [e for e in events if e["event"] == "retrying"]
    assert [e["attempt"] for e in retrying] == [2, 3]
    assert all(e["reason"] == f"cannot connect to 127.0.0.1:{port}: connection refused"
               and e["delay"] > 0 and e["tries"] == 3 for e in retrying)
    failed = [e for e in events if e["event"] == "failed"]
    assert len(failed) == 1 and "`ossdesk resume` tries it again" in failed[0]["message"]
    assert "will try again" not in result.stdout + result.stderr

    plain = _cli(tmp_path / "plain", port)
    assert plain.returncode == 1
    lines = [ln for ln in plain.stderr.splitlines() if "retrying" in ln]
    assert lines and lines[0].startswith("ossdesk: retrying big.bin in 0.1 s (attempt 2 of 3): "
                                         f"cannot connect to 127.0.0.1:{port}: "
                                         "connection refused"), plain.stderr
    assert "will try again" not in plain.stdout + plain.stderr


def test_cli_black_hole_is_cut_and_retried_with_a_reason(tmp_path: Path,
                                                         black_hole: _Server) -> None:
    result = _cli(tmp_path, black_hole.port, "--json")
    assert result.returncode == 1, result.stderr
    where = f"127.0.0.1:{black_hole.port}"
    assert f"the destination could not be checked ({where} did not answer in time)" in (
        result.stderr)
    retrying = [e for e in json_lines(result.stdout) if e["event"] == "retrying"]
    assert [e["attempt"] for e in retrying] == [2, 3]
    assert all(e["reason"] == f"{where} did not answer in time" for e in retrying)
    assert "will try again" not in result.stdout + result.stderr


def test_cli_non_http_endpoint_stops_before_queueing(tmp_path: Path,
                                                     ssh_server: _Server) -> None:
    result = _cli(tmp_path, ssh_server.port)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ossdesk: 127.0.0.1:{ssh_server.port} does not speak OSS (its answer is not HTTP). "
        "Check the endpoint address and port.")
