"""The sandbox survives hostile and odd requests sent over raw sockets: bad chunk sizes,
idle and slow clients, bodies it does not want, GETs racing overwrites."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from ossdesk.sandbox import SandboxServer
from ossdesk.sandbox.store import ObjectRecord
from tests.support.sandbox import SandboxInfo


def _connect(endpoint: str, timeout: float = 30) -> socket.socket:
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def _read_response(sock: socket.socket, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response (Content-Length; none
    after a HEAD)."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            raise ConnectionError(f"closed before a whole response: {data!r}")
        data += got
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    while len(rest) < length:
        got = sock.recv(65536)
        if not got:
            break
        rest += got
    return status, headers, rest[:length]


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("size", [b"-3", b"+5", b"5_0", b"0x5", b" -1", b"1" * 40, b"zz"])
def test_bad_chunk_sizes_are_refused(sandbox: SandboxInfo, size: bytes) -> None:
    with _connect(sandbox.endpoint) as sock:
        sock.sendall(b"PUT /sandbox/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + size + b"\r\nabcde\r\n0\r\n\r\n")
        status, _, body = _read_response(sock)
        assert status in (400, 403), body  # refused, whichever check comes first
        assert _closed_by_server(sock)
    # The server still serves (no handler is stuck spinning).
    assert sandbox.bucket_client().put_object("after", b"fine").status == 200


def test_bad_chunk_size_in_a_signed_put_stores_nothing(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client("v1", enable_crc=False)
    target = bucket.sign_url("PUT", "chunked", 60).split(sandbox.endpoint, 1)[1]
    with _connect(sandbox.endpoint) as sock:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\n".encode()
                     + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n-3\r\nabc\r\n0\r\n\r\n")
        status, _, body = _read_response(sock)
        assert status == 400
        assert b"<Code>InvalidArgument</Code>" in body
    assert not bucket.object_exists("chunked")


def test_ctrl_c_ends_the_sandbox_after_a_negative_chunk(sandbox_process, tmp_path: Path) -> None:
    proc = sandbox_process()
    with _connect(proc.endpoint) as sock:
        sock.sendall(b"PUT /sandbox/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"-3\r\nabc\r\n")
        sock.settimeout(30)
        status, _, _ = _read_response(sock)
        assert status in (400, 403)
    assert proc.stop(timeout=60) == 0
    assert "stopped" in "".join(proc.output)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_idle_connections_after_refused_requests_cost_little_memory(sandbox_process) -> None:
    proc = sandbox_process()
    assert proc.proc is not None
    socks = []
    try:
        with _connect(proc.endpoint) as warm:  # one request first: imports, caches
            warm.sendall(b"GET /sandbox/k HTTP/1.1\r\nHost: x\r\n\r\n")
            _read_response(warm)
        before = _rss_bytes(proc.proc.pid)
        for _ in range(100):
            sock = _connect(proc.endpoint)
            socks.append(sock)
            sock.sendall(b"GET /sandbox/k HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock)[0] == 403  # unsigned: refused, connection kept
        grown = _rss_bytes(proc.proc.pid) - before
        # 100 idle connections held 300 MiB of body buffers; now well under 1 MiB each.
        assert grown < 100 * 1024 * 1024, grown
    finally:
        for sock in socks:
            sock.close()


def test_connections_are_bounded_and_idle_ones_time_out(tmp_path: Path) -> None:
    server = SandboxServer(tmp_path / "root", test_hooks=False, max_connections=4,
                           idle_timeout=0.5)
    server.start()
    socks = []
    try:
        for _ in range(4):
            socks.append(_connect(server.endpoint))
        extra = _connect(server.endpoint)
        status, headers, body = _read_response(extra)  # refused at once, not queued
        assert status == 503
        assert b"<Code>ServiceUnavailable</Code>" in body
        assert headers["connection"] == "close"
        assert _closed_by_server(extra)
        extra.close()
        for sock in socks:  # idle: the server closes them (0.5 s), freeing their slots
            assert _closed_by_server(sock)
        with _connect(server.endpoint) as again:
            again.sendall(b"GET /sandbox/k HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(again)[0] == 403
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def _signed_target(sandbox: SandboxInfo, method: str, key: str) -> str:
    bucket = sandbox.bucket_client("v1", enable_crc=False)
    url: str = bucket.sign_url(method, key, 60)
    return url.split(sandbox.endpoint, 1)[1]


def test_100_continue_is_not_sent_for_an_oversized_body(sandbox: SandboxInfo) -> None:
    target = _signed_target(sandbox, "PUT", "huge")
    with _connect(sandbox.endpoint, timeout=20) as sock:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 * 1024**3}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        status, _, body = _read_response(sock)  # the first answer is the refusal
        assert status == 400
        assert b"<Code>EntityTooLarge</Code>" in body
        assert _closed_by_server(sock)


@pytest.mark.parametrize("signed", [False, True])
def test_a_refused_large_body_is_answered_at_once(sandbox: SandboxInfo, signed: bool) -> None:
    target = _signed_target(sandbox, "PUT", "huge") if signed else "/sandbox/huge"
    with _connect(sandbox.endpoint, timeout=20) as sock:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {6 * 1024**3}\r\n"
                     "\r\n".encode() + b"x" * 1000)  # the rest of the body never comes
        status, headers, body = _read_response(sock)
        assert status == (400 if signed else 403), body
        assert headers["connection"] == "close"
        assert _closed_by_server(sock)
    assert not sandbox.bucket_client().object_exists("huge")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_with_a_content_length_and_no_body_are_answered(
        sandbox: SandboxInfo, method: str) -> None:
    sandbox.bucket_client().put_object("k", b"hello")
    target = _signed_target(sandbox, method, "k")
    with _connect(sandbox.endpoint, timeout=20) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n"
                     "\r\n".encode())
        status, headers, body = _read_response(sock, head=method == "HEAD")
        assert status == 200
        assert headers["content-length"] == "5"
        if method == "GET":
            assert body == b"hello"


def test_a_get_racing_an_overwrite_gets_the_whole_old_object(
        sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.server is not None
    store = sandbox.server.store
    bucket = sandbox.bucket_client()
    old = b"old!" * 256 * 1024
    bucket.put_object("k", old)
    looked_up = threading.Event()
    real_get_object = store.get_object

    def get_object(bucket_name: str, key: str) -> ObjectRecord | None:
        rec = real_get_object(bucket_name, key)
        looked_up.set()
        return rec

    monkeypatch.setattr(store, "get_object", get_object)
    # The GET's answer is held after it is handled, long enough for the overwrite below.
    sandbox.faults.delay(3, method="GET")
    got: list[bytes] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            got.append(sandbox.bucket_client().get_object("k").read())
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert looked_up.wait(30)
    bucket.put_object("k", b"new")
    reader.join(60)
    assert not errors
    assert got == [old]
    assert bucket.get_object("k").read() == b"new"


def test_a_get_with_content_length_0_keeps_the_connection(sandbox: SandboxInfo) -> None:
    sandbox.bucket_client().put_object("k", b"hello")
    target = _signed_target(sandbox, "GET", "k")
    with _connect(sandbox.endpoint, timeout=20) as sock:
        for _ in range(2):  # the same connection serves both
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                         "\r\n".encode())
            status, headers, body = _read_response(sock)
            assert (status, body) == (200, b"hello")
            assert headers["connection"] == "keep-alive"


def test_a_client_trickling_its_headers_is_cut_off(tmp_path: Path) -> None:
    server = SandboxServer(tmp_path / "root", test_hooks=False, header_timeout=0.5)
    server.start()
    try:
        with _connect(server.endpoint, timeout=20) as sock:
            sock.sendall(b"GET /sandbox/k HTTP/1.1\r\n")
            closed = False
            for _ in range(100):  # one byte at a time, never stalling for the idle timeout
                try:
                    sock.sendall(b"X")
                except OSError:
                    closed = True
                    break
                sock.settimeout(0.2)
                try:
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    closed = True
                    break
            assert closed
        with _connect(server.endpoint) as again:  # an ordinary client is still served
            again.sendall(b"GET /sandbox/k HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(again)[0] == 403
    finally:
        server.stop()
