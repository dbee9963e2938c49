"""A real HTTP proxy (Debian's ``tinyproxy``) and an HTTPS front for the sandbox, both on
127.0.0.1, for the transport's proxy and trust tests.

``tinyproxy`` is started with its own configuration file (on a free port: it does not take
port 0), in the foreground, and stopped by its process id. Its log names every request it
carried (``GET http://...`` for plain http, ``CONNECT host:port`` for https), so a test sees
that the proxy really carried them. Without the binary the tests are skipped, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Proxy:
    port: int
    log: Path
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The proxy's address, with the user name and password when it asks for them."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    @property
    def bare_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def carried(self) -> list[str]:
        """The request lines the proxy received (``PUT http://...``, ``CONNECT host:port``)."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(errors="replace").splitlines()
        marker = "]: Request (file descriptor "
        return [line.split("): ", 1)[1].rsplit(" HTTP/", 1)[0] for line in lines
                if marker in line]


def _tinyproxy() -> str:
    binary = shutil.which("tinyproxy") or (
        "/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)
    if binary is None:
        message = "tinyproxy is not installed (apt-get install tinyproxy)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI must have it (.ci/run installs it)")
        pytest.skip(message)
    return binary


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    """``tinyproxy(user=None, password=None)`` -> a running proxy on 127.0.0.1 (with Basic
    authentication when a user is given)."""
    binary = _tinyproxy()
    children: list[subprocess.Popen[bytes]] = []

    def start(user: str | None = None, password: str | None = None) -> Proxy:
        folder = tmp_path / f"tinyproxy-{len(children)}"
        folder.mkdir()
        proxy = Proxy(free_port(), folder / "tinyproxy.log", user, password)
        config = folder / "tinyproxy.conf"
        lines = [f"Port {proxy.port}", "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 60",
                 f'LogFile "{proxy.log}"', "LogLevel Info", "MaxClients 64",
                 "DisableViaHeader Yes"]
        if user:
            lines.append(f"BasicAuth {user} {password}")
        config.write_text("\n".join(lines) + "\n")
        child = subprocess.Popen([binary, "-d", "-c", str(config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(child)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
                return proxy
            except OSError as exc:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"tinyproxy did not start: {config.read_text()}") from exc
                time.sleep(0.05)

    yield start
    for child in children:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


# ------------------------------------------------------------------------------ HTTPS


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own authority) and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(256 * 1024):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def https_front(target_port: int, cert: Path, key: Path) -> Iterator[str]:
    """``https://127.0.0.1:PORT`` that passes every connection's bytes, decrypted, to
    ``127.0.0.1:target_port`` (the sandbox speaks plain HTTP)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()
    open_socks: list[socket.socket] = []

    def relay(raw: socket.socket) -> None:
        try:
            raw.settimeout(30)
            tls = context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        backend = socket.create_connection(("127.0.0.1", target_port))
        open_socks.extend((tls, backend))
        threading.Thread(target=_pipe, args=(backend, tls), daemon=True).start()
        _pipe(tls, backend)

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=relay, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)
        for sock in open_socks:
            with suppress(OSError):
                sock.close()
