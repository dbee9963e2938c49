"""The HTTP/1.1 transport under the OSS client: keep-alive, answers in every framing, early
answers, dropped connections, timeouts. Real sockets on 127.0.0.1: small scripted servers,
and the sandbox through the unmodified oss2."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ossdesk.core import http11
from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from tests.support.sandbox import SandboxInfo

Script = Callable[[socket.socket, int], None]


@contextmanager
def scripted(script: Script) -> Iterator[str]:
    """A server on 127.0.0.1 running ``script(connection, n)`` for its n-th connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        n = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    script(conn, n)
                except OSError:
                    pass
                except BaseException as exc:  # reported by the test
                    errors.append(exc)
            n += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)
    assert not errors, errors


def read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    """One request's head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def ok(body: bytes = b"", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


def test_one_connection_serves_many_requests_and_unread_answers_free_it(
        sandbox: SandboxInfo) -> None:
    endpoint = Endpoint(sandbox.endpoint, sandbox.bucket, sandbox.region)
    with OssClient(endpoint, Credentials(sandbox.access_key_id, sandbox.access_key_secret)) as c:
        for i in range(40):
            c.put_object(f"many/{i}.txt", b"x" * i, size=i)
        upload = c.initiate_multipart("many/big.bin")
        part = c.upload_part("many/big.bin", upload, 1, b"y" * 1000, size=1000)
        # oss2 does not read CompleteMultipartUpload's answer: it must not keep the connection
        c.complete_multipart("many/big.bin", upload, [(1, part.etag)])
        c.head_object("many/big.bin")
        assert c.get_object_bytes("many/3.txt") == b"xxx"
        assert c._session.connections.opened == 1


def test_answers_chunked_until_close_and_after_100_continue() -> None:
    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        if n == 0:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n"
                         b"X-A: 2\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\n")
            read_request(conn)  # the same connection again
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
        else:
            raise AssertionError("a second connection was opened")

    with scripted(script) as url:
        pool = http11.Connections(None)
        first = pool.request("GET", url + "/a", headers={"X-Oss-Date": "d"})
        assert first.status_code == 200
        assert first.headers["x-a"] == "1, 2"
        assert first.headers.get("X-A") == "1, 2"
        assert b"".join(first.iter_content(3)) == b"hello world"
        second = pool.request("GET", url + "/b", headers={})
        assert second.read() == b"until the end"
        assert pool.opened == 1


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket, n: int) -> None:
        _head, body = read_request(conn)
        seen.append(body)
        conn.sendall(ok(b"<r/>"))  # then closes: keep-alive ends at the server's side

    with scripted(script) as url:
        pool = http11.Connections(None)
        assert pool.request("PUT", url + "/1", headers={}, body=b"one").read() == b"<r/>"
        time.sleep(0.2)  # the server has closed it by now
        assert pool.request("PUT", url + "/2", headers={}, body=b"two").status_code == 200

        class Sized:
            def __init__(self) -> None:
                self.data = b"three"

            def __len__(self) -> int:
                return 5

            def read(self, n: int = -1) -> bytes:
                out, self.data = self.data[:n], self.data[n:]
                return out

        time.sleep(0.2)
        assert pool.request("PUT", url + "/3", headers={}, body=Sized()).status_code == 200
        assert seen == [b"one", b"two", b"three"]
        assert pool.opened == 3


def test_only_idempotent_requests_are_sent_again_when_a_kept_connection_fails() -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket, n: int) -> None:
        # Every connection answers its first request, then takes the second and closes
        # without a word (as a server does when its keep-alive time ran out meanwhile).
        seen.append(read_request(conn)[1])
        conn.sendall(ok())
        seen.append(read_request(conn)[1])

    with scripted(script) as url:
        pool = http11.Connections(None)
        assert pool.request("PUT", url + "/a", headers={}, body=b"a").status_code == 200
        assert pool.request("PUT", url + "/b", headers={}, body=b"b").status_code == 200
        assert pool.opened == 2  # b went again, on a new connection
        with pytest.raises(http11.ProtocolError, match="kept-alive"):
            pool.request("POST", url + "/c", headers={}, body=b"c")
        assert pool.opened == 2  # a POST is not sent twice
        time.sleep(0.2)
        assert seen == [b"a", b"b", b"b", b"c"]


def test_an_answer_sent_before_the_body_was_read_is_returned() -> None:
    def script(conn: socket.socket, n: int) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n<denied/>")
        conn.shutdown(socket.SHUT_RDWR)

    with scripted(script) as url:
        pool = http11.Connections(None)
        answer = pool.request("PUT", url + "/big", headers={}, body=b"z" * (32 * 1024 * 1024))
        assert answer.status_code == 403
        assert answer.read() == b"<denied/>"


def test_timeouts_refusals_and_a_body_that_fails() -> None:
    def silent(conn: socket.socket, n: int) -> None:
        read_request(conn)
        time.sleep(1.5)

    with scripted(silent) as url:
        pool = http11.Connections(None)
        with pytest.raises(http11.ReadTimeout):
            pool.request("GET", url + "/", headers={}, read_timeout=0.3)

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(ConnectionRefusedError):
        http11.Connections(None).request("GET", f"http://127.0.0.1:{port}/", headers={})

    class Broken:
        def __len__(self) -> int:
            return 10

        def read(self, n: int = -1) -> bytes:
            raise PermissionError("the disk said no")

    with scripted(silent) as url, pytest.raises(PermissionError, match="the disk said no"):
        http11.Connections(None).request("PUT", url + "/", headers={}, body=Broken())

    with pytest.raises(ValueError, match="invalid header"):
        http11.Connections(None).request("GET", "http://127.0.0.1:1/", headers={
            "X-Bad": "a\r\nX-Injected: 1"})


def test_an_answer_cut_short_is_an_error_and_the_connection_is_not_reused() -> None:
    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)

    with scripted(script) as url:
        pool = http11.Connections(None)
        answer = pool.request("GET", url + "/", headers={})
        with pytest.raises(http11.ProtocolError, match="unsent"):
            answer.read()
        assert not pool.pool("http", url.split("://")[1]).idle


def test_the_client_reports_transport_failures_as_oss_errors() -> None:
    def garbage(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

    with scripted(garbage) as url:
        client = OssClient(Endpoint(url, "bucket", "cn-hangzhou"), Credentials("id", "secret"))
        with pytest.raises(OssError) as err:
            client.put_object("k", b"data", size=4)
        # Another protocol on that port: named as such, and not retried.
        assert err.value.code == "NotOss"
        assert not err.value.retryable
        assert "does not speak OSS (its answer is not HTTP)" in err.value.message
