"""Fixtures and helpers for tests that need an OSS endpoint: the ossdesk sandbox server.

- ``sandbox``: a running in-process server (free port, fresh root, test hooks on); yields a
  :class:`SandboxInfo`. ``sandbox.server.faults`` injects faults.
- ``sandbox_factory``: start more servers with chosen root / port / options; all are stopped
  at teardown. ``sandbox_factory(root=same_root)`` after ``info.server.stop()`` = a restart.
- ``sandbox_process``: a factory for ``ossdesk sandbox`` run as a real child process (test hooks
  on), with ``start() / kill() / stop() / restart()`` and ``faults`` (a :class:`FaultClient`
  speaking to the HTTP control endpoint).
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2
import pytest

from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    TEST_HOOKS_ENV,
    SandboxServer,
)

__all__ = [
    "FaultClient",
    "SandboxInfo",
    "SandboxProcess",
    "read_access_log",
    "sandbox",
    "sandbox_factory",
    "sandbox_process",
]


@dataclass
class SandboxInfo:
    """Where a sandbox listens and how to sign requests to it."""

    endpoint: str
    region: str
    bucket: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    root: Path
    log_path: Path
    server: SandboxServer | None = None  # None for a sandbox running as a child process
    security_token: str | None = field(default=None, repr=False)
    buckets: tuple[str, ...] = ()
    # HTTP sessions handed out by bucket_client/service_client; closed at fixture teardown
    # (an oss2 session left to the garbage collector leaks sockets: ResourceWarning).
    sessions: list[Any] = field(default_factory=list, repr=False)

    def auth(self, signature: str = "v4") -> Any:
        """An oss2 auth object: ``signature`` is "v4" (default) or "v1"."""
        if self.security_token:
            version = oss2.AUTH_VERSION_4 if signature == "v4" else oss2.AUTH_VERSION_1
            return oss2.StsAuth(self.access_key_id, self.access_key_secret,
                                self.security_token, auth_version=version)
        if signature == "v4":
            return oss2.AuthV4(self.access_key_id, self.access_key_secret)
        if signature == "v1":
            return oss2.Auth(self.access_key_id, self.access_key_secret)
        raise ValueError(f"unknown signature version {signature!r}")

    def session(self) -> Any:
        """A fresh ``oss2.Session`` that is closed when the fixture ends."""
        session = oss2.Session()
        self.sessions.append(session)
        return session

    def bucket_client(self, signature: str = "v4", bucket: str | None = None,
                      enable_crc: bool = True, auth: Any = None, **kwargs: Any) -> oss2.Bucket:
        """An ``oss2.Bucket`` for this sandbox (region set, so V4 works). ``auth`` overrides
        the credentials (e.g. a wrong key); its HTTP session is closed at teardown."""
        kwargs.setdefault("session", self.session())
        return oss2.Bucket(auth or self.auth(signature), self.endpoint, bucket or self.bucket,
                           region=self.region, enable_crc=enable_crc, **kwargs)

    def service_client(self, signature: str = "v4", auth: Any = None) -> oss2.Service:
        return oss2.Service(auth or self.auth(signature), self.endpoint, region=self.region,
                            session=self.session())

    @property
    def faults(self) -> Any:
        """``server.faults`` in-process; a :class:`FaultClient` for a child process."""
        if self.server is not None:
            return self.server.faults
        return FaultClient(self.endpoint)

    def close_sessions(self) -> None:
        for session in self.sessions:
            session.session.close()
        self.sessions.clear()
        collect_client_sockets()


def collect_client_sockets() -> None:
    """Close the client sockets oss2 responses still hold.

    oss2 streams every response; one that was not read to its end (an error body, a
    ranged or abandoned GET) keeps its pooled connection checked out, so closing the
    session cannot reach it and the garbage collector later reports it as a
    ResourceWarning in whatever test runs then. Collecting here, quietly, keeps that
    noise inside the test that made it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def read_access_log(path: Path) -> list[dict[str, Any]]:
    """Parse the ``--log`` file: time, method, path, query, status, received, sent (tabs)."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        t, method, p, query, status, received, sent = line.split("\t")
        rows.append({"time": t, "method": method, "path": p, "query": query,
                     "status": int(status), "received": int(received), "sent": int(sent)})
    return rows


class FaultClient:
    """Steers the faults of a sandbox through its HTTP control endpoint (test hooks on).

    Same methods and keyword arguments as ``SandboxServer.faults``.
    """

    def __init__(self, endpoint: str) -> None:
        self.url = endpoint.rstrip("/") + "/-/sandbox/faults"

    def _call(self, method: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")["result"]

    def _action(self, action: str, **kwargs: Any) -> Any:
        return self._call("POST", {"action": action, **kwargs})

    def reset_after(self, nbytes: int, **kwargs: Any) -> Any:
        return self._action("reset_after", nbytes=nbytes, **kwargs)

    def fail(self, status: int = 503, **kwargs: Any) -> Any:
        return self._action("fail", status=status, **kwargs)

    def delay(self, seconds: float, **kwargs: Any) -> Any:
        return self._action("delay", seconds=seconds, **kwargs)

    def corrupt(self, field: str = "crc64", **kwargs: Any) -> Any:
        return self._action("corrupt", field=field, **kwargs)

    def forget_upload(self, upload_id: str) -> Any:
        return self._action("forget_upload", upload_id=upload_id)

    def forget_all_uploads(self) -> Any:
        return self._action("forget_all_uploads")

    def expire_token(self) -> Any:
        return self._action("expire_token")

    def rules(self) -> Any:
        return self._call("GET")

    def clear(self) -> Any:
        return self._call("DELETE")


_ENDPOINT_RE = re.compile(r"endpoint:\s+(http://\S+)")


class SandboxProcess:
    """``ossdesk sandbox`` as a child process, with test hooks on.

    ``start()`` waits until it listens; ``kill()`` sends SIGKILL; ``stop()`` interrupts it
    (Ctrl-C) and waits; ``restart()`` starts it again on the same root and port.
    """

    def __init__(self, root: Path, log_path: Path, port: int = 0,
                 buckets: Sequence[str] = (DEFAULT_BUCKET,), region: str = DEFAULT_REGION,
                 env: dict[str, str] | None = None, args: Sequence[str] = ()) -> None:
        self.root = root
        self.args = tuple(args)  # more command-line options, e.g. ("--discard",)
        self.log_path = log_path
        self.port = port
        self.buckets = tuple(buckets)
        self.region = region
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.output: list[str] = []
        self._reader: threading.Thread | None = None
        self.handed_out: list[SandboxInfo] = []

    def start(self, timeout: float = 30.0) -> SandboxInfo:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("already running")
        cmd = [sys.executable, "-m", "ossdesk", "sandbox", "--port", str(self.port),
               "--root", str(self.root), "--log", str(self.log_path), "--region", self.region]
        for b in self.buckets:
            cmd += ["--bucket", b]
        cmd += self.args
        env = {**os.environ, TEST_HOOKS_ENV: "1", "PYTHONUNBUFFERED": "1", **self.extra_env}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        found = threading.Event()
        proc = self.proc
        assert proc.stdout is not None
        stdout = proc.stdout

        def read() -> None:
            for line in stdout:
                self.output.append(line)
                m = _ENDPOINT_RE.search(line)
                if m:
                    self.endpoint = m.group(1)
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not found.wait(timeout) or not self.endpoint or proc.poll() is not None:
            self.kill()
            raise RuntimeError("ossdesk sandbox did not start:\n" + "".join(self.output))
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        return self.info

    @property
    def info(self) -> SandboxInfo:
        """Connection details; clients made from it are closed at fixture teardown."""
        ak = self.extra_env.get("OSS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
        sk = self.extra_env.get("OSS_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
        info = SandboxInfo(
            endpoint=self.endpoint, region=self.region, bucket=self.buckets[0],
            access_key_id=ak, access_key_secret=sk, root=self.root, log_path=self.log_path,
            server=None, security_token=self.extra_env.get("OSS_SESSION_TOKEN"),
            buckets=self.buckets,
        )
        self.handed_out.append(info)
        return info

    @property
    def faults(self) -> FaultClient:
        return FaultClient(self.endpoint)

    def _wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self._wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self._wait(timeout)

    def restart(self) -> SandboxInfo:
        self.kill()
        return self.start()


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., SandboxInfo]]:
    """``sandbox_factory(root=None, port=0, buckets=("sandbox",), region=..., access_key_id=...,
    access_key_secret=..., security_token=None, log_path=None, test_hooks=True,
    fast_etag=False, discard=False)``."""
    servers: list[SandboxServer] = []
    infos: list[SandboxInfo] = []
    counter = [0]

    def make(root: Path | None = None, port: int = 0,
             buckets: Sequence[str] = (DEFAULT_BUCKET,), region: str = DEFAULT_REGION,
             access_key_id: str = DEFAULT_ACCESS_KEY_ID,
             access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
             security_token: str | None = None, log_path: Path | None = None,
             test_hooks: bool = True, fast_etag: bool = False,
             discard: bool = False) -> SandboxInfo:
        counter[0] += 1
        root = root if root is not None else tmp_path / f"sandbox-{counter[0]}"
        log_path = log_path if log_path is not None else root.parent / f"{root.name}.log"
        server = SandboxServer(root, port=port, buckets=tuple(buckets), region=region,
                               access_key_id=access_key_id, access_key_secret=access_key_secret,
                               security_token=security_token, log_path=log_path,
                               test_hooks=test_hooks, fast_etag=fast_etag, discard=discard)
        server.start()
        servers.append(server)
        info = SandboxInfo(
            endpoint=server.endpoint, region=region, bucket=buckets[0],
            access_key_id=access_key_id, access_key_secret=access_key_secret, root=root,
            log_path=log_path, server=server, security_token=security_token,
            buckets=tuple(buckets),
        )
        infos.append(info)
        return info

    yield make
    for info in infos:
        info.close_sessions()
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxInfo]) -> SandboxInfo:
    """A running sandbox server (in-process, free port, fresh root, test hooks on)."""
    return sandbox_factory()


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[Callable[..., SandboxProcess]]:
    """``sandbox_process(root=None, port=0, buckets=..., region=..., env=None, args=())`` -> a
    started :class:`SandboxProcess` (``args``: more ``ossdesk sandbox`` options); all are
    killed at teardown."""
    procs: list[SandboxProcess] = []

    def make(root: Path | None = None, port: int = 0,
             buckets: Sequence[str] = (DEFAULT_BUCKET,), region: str = DEFAULT_REGION,
             env: dict[str, str] | None = None, args: Sequence[str] = ()) -> SandboxProcess:
        n = len(procs) + 1
        root = root if root is not None else tmp_path / f"sandbox-proc-{n}"
        proc = SandboxProcess(root, tmp_path / f"sandbox-proc-{n}.log", port=port,
                              buckets=buckets, region=region, env=env, args=args)
        procs.append(proc)
        proc.start()
        return proc

    yield make
    for proc in procs:
        for info in proc.handed_out:
            info.close_sessions()
        proc.kill()
