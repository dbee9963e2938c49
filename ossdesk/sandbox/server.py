"""A local HTTP server that speaks the OSS REST API (the subset an uploader uses).

Run it with ``ossdesk sandbox`` or embed it::

    with SandboxServer(root) as server:
        bucket = oss2.Bucket(oss2.AuthV4(ak, sk), server.endpoint, "sandbox",
                             region=server.region)

See docs/SANDBOX.md for what it covers, its access log format and its fault hooks.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ossdesk.sandbox import auth, routes
from ossdesk.sandbox.buckets import BUCKET_NAME_RE
from ossdesk.sandbox.faults import Faults
from ossdesk.sandbox.httpd import (
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    Handler,
    Request,
    Response,
    SandboxHTTPServer,
)
from ossdesk.sandbox.routes import OSS_SUBRESOURCES
from ossdesk.sandbox.store import Store

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_BUCKET",
    "DEFAULT_PORT",
    "DEFAULT_REGION",
    "OSS_SUBRESOURCES",
    "TEST_HOOKS_ENV",
    "SandboxServer",
]

DEFAULT_ACCESS_KEY_ID = "LTAI5tSandboxAccessKey0"
DEFAULT_ACCESS_KEY_SECRET = "sandbox-secret-for-local-testing-only"  # noqa: S105
DEFAULT_REGION = "cn-hangzhou"
DEFAULT_BUCKET = "sandbox"
DEFAULT_PORT = 9000
TEST_HOOKS_ENV = "OSSDESK_SANDBOX_TEST_HOOKS"


class SandboxServer:
    """An OSS-compatible server on a local port, storing under ``root``.

    ``start()`` returns once the socket listens; ``stop()`` closes every connection and joins
    every thread. Also a context manager.
    """

    def __init__(  # noqa: PLR0917 - mirrors the command line
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        buckets: Sequence[str] = (DEFAULT_BUCKET,),
        region: str = DEFAULT_REGION,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
        security_token: str | None = None,
        log_path: Path | str | None = None,
        test_hooks: bool | None = None,
        *,
        fast_etag: bool = False,
        discard: bool = False,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        """``fast_etag`` and ``discard`` are benchmark modes, off by default and NOT faithful
        to OSS (see docs/SANDBOX.md): ``fast_etag`` derives ETags from CRC-64 and size instead
        of MD5 (MD5 is computed only to check a ``Content-MD5`` the client sends);
        ``discard`` (implies ``fast_etag``) checks and counts bodies but does not store them:
        GetObject of such an object answers ``ObjectDiscarded``.

        ``max_connections``: more connections at once are answered ``503`` and closed;
        ``idle_timeout``: seconds a connection may wait for a request, or stall in one,
        before it is closed; ``header_timeout``: seconds from a request's first byte to the
        end of its headers, however steadily they trickle in."""
        for name in buckets:
            if not BUCKET_NAME_RE.match(name):
                raise ValueError(
                    f"'{name}' is not a valid bucket name: use 3-63 lowercase letters, digits "
                    "and hyphens, starting and ending with a letter or digit.")
        self.root = Path(root)
        self.host = host
        self.region = region
        self.bucket_names = tuple(buckets)
        self.credentials = auth.Credentials(access_key_id, access_key_secret, security_token)
        self.log_path = Path(log_path) if log_path is not None else None
        if test_hooks is None:
            test_hooks = os.environ.get(TEST_HOOKS_ENV, "") == "1"
        self.test_hooks = test_hooks
        self.discard = discard
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.fast_etag = fast_etag or discard
        self.faults = Faults(self)
        self.stopping = threading.Event()
        self._requested_port = port
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._log_lock = threading.Lock()
        self._log_file: Any = None
        self._counter = 0
        self._counter_lock = threading.Lock()
        self._boot = os.urandom(4).hex().upper()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the sandbox server is not running")
        return self._store

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not running")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            raise RuntimeError("the sandbox server is already running")
        self.stopping.clear()
        httpd_cls = SandboxHTTPServer
        if ":" in self.host:
            class _V6(SandboxHTTPServer):
                address_family = socket.AF_INET6
            httpd_cls = _V6
        # Bind first: a busy port must not touch the storage another server may be using.
        httpd = httpd_cls((self.host, self._requested_port), self)
        try:
            self._store = Store(self.root)
            for name in self.bucket_names:
                self._store.ensure_bucket(name)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = self.log_path.open("a", encoding="utf-8", buffering=1)
        except BaseException:
            httpd.server_close()
            self._close_files()
            raise
        self._httpd = httpd
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.drop_all_connections()
        httpd.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close_files()

    def _close_files(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.endpoint if self._httpd else "stopped"
        return f"SandboxServer({str(self.root)!r}, {state}, buckets={self.bucket_names})"

    # -- credentials --------------------------------------------------------------

    def set_security_token(self, token: str | None) -> None:
        """Accept ``token`` (an STS security token) from now on; ``None``: no token."""
        self.credentials.security_token = token

    def expire_security_token(self) -> None:
        token = self.credentials.security_token
        if token:
            self.credentials.expired_tokens.add(token)

    # -- small services for the handler ---------------------------------------------

    def new_request_id(self) -> str:
        with self._counter_lock:
            self._counter += 1
            n = self._counter
        return f"{int(time.time()):08X}{self._boot}{n:08X}"

    def host_id(self) -> str:
        return f"{self.host}:{self.port}" if self._httpd else self.host

    def virtual_host_bucket(self, host: str) -> str | None:
        suffix = "." + self.host
        if host.endswith(suffix):
            name = host[: -len(suffix)]
            if BUCKET_NAME_RE.match(name):
                return name
        return None

    def access_log(self, method: str, path: str, query: str, status: int,  # noqa: PLR0917
                   received: int, sent: int) -> None:
        if self._log_file is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        line = f"{stamp}\t{method}\t{path}\t{query}\t{status}\t{received}\t{sent}\n"
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.write(line)

    # -- the API --------------------------------------------------------------------

    def handle(self, h: Handler, req: Request) -> Response:
        """A parsed request, answered by the OSS operation it names (see ``routes``)."""
        return routes.handle(self, h, req)

    # -- benchmark modes ----------------------------------------------------------------

    @property
    def faithful(self) -> bool:
        """False in a benchmark mode (``fast_etag`` / ``discard``)."""
        return not self.fast_etag

    def mode_description(self) -> str:
        """One line for banners and logs."""
        if self.discard:
            return ("BENCHMARK --discard, not OSS-faithful: bodies are checked (CRC-64) and "
                    "counted but not stored; ETags are not MD5s")
        if self.fast_etag:
            return ("BENCHMARK --fast-etag, not OSS-faithful: ETags derive from CRC-64 and "
                    "size, not MD5")
        return "faithful (ETag = MD5, bodies stored)"

