"""The transport under the OSS client (urllib3): keep-alive, answers in every framing, early
answers, dropped connections, timeouts and the answer deadline, answers that break HTTP,
request targets with control characters. Real sockets on 127.0.0.1: small scripted
servers, and the sandbox through the unmodified oss2."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import oss2.exceptions
import oss2.http
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ossdesk.core import transport
from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError, Timeouts, classify
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


def send(session: transport.Session, method: str, url: str, body: object = None,
         timeout: tuple[float, float] = (5, 5)) -> oss2.http.Response:
    """One request through the transport, as oss2 hands it over."""
    return session.do_request(oss2.http.Request(method, url, data=body), timeout)


def failure(session: transport.Session, method: str, url: str, body: object = None,
            timeout: tuple[float, float] = (5, 5), read: bool = False) -> OssError:
    """The OssError a request (and, with ``read``, reading its answer) ends with."""
    with pytest.raises(oss2.exceptions.RequestError) as caught:
        answer = send(session, method, url, body, timeout)
        if read:
            answer.read()
    return classify(caught.value, endpoint="the server")


def client_for(url: str, timeouts: Timeouts | None = None) -> OssClient:
    return OssClient(Endpoint(url, "bucket", "cn-hangzhou"), Credentials("id", "secret"),
                     timeouts=timeouts)


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
        assert c._session.opened(sandbox.endpoint) == 1


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
        session = transport.Session(url)
        first = send(session, "GET", url + "/a")
        assert first.status == 200
        assert first.headers["x-a"] == "1, 2"
        assert first.headers.get("X-A") == "1, 2"
        assert first.read() == b"hello world"
        assert send(session, "GET", url + "/b").read() == b"until the end"
        assert session.opened(url) == 1


class Sized:
    """A body with a length and ``read``, that cannot be read twice."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket, n: int) -> None:
        _head, body = read_request(conn)
        seen.append(body)
        conn.sendall(ok(b"<r/>"))  # then closes: keep-alive ends at the server's side

    with scripted(script) as url:
        session = transport.Session(url)
        assert send(session, "PUT", url + "/1", b"one").read() == b"<r/>"
        time.sleep(0.2)  # the server has closed it by now
        assert send(session, "PUT", url + "/2", b"two").status == 200
        time.sleep(0.2)
        assert send(session, "PUT", url + "/3", Sized(b"three")).status == 200
        assert seen == [b"one", b"two", b"three"]
        assert session.opened(url) == 3


def test_only_idempotent_requests_are_sent_again_when_a_kept_connection_fails() -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket, n: int) -> None:
        # Every connection answers its first request, then takes the second and closes
        # without a word (as a server does when its keep-alive time ran out meanwhile).
        seen.append(read_request(conn)[1])
        conn.sendall(ok())
        seen.append(read_request(conn)[1])

    with scripted(script) as url:
        session = transport.Session(url)
        assert send(session, "PUT", url + "/a", b"a").status == 200
        assert send(session, "PUT", url + "/b", b"b").status == 200
        assert session.opened(url) == 2  # b went again, on a new connection
        error = failure(session, "POST", url + "/c", b"c")
        assert error.code == "ConnectionLost" and error.retryable
        assert session.opened(url) == 2  # a POST is not sent twice
        time.sleep(0.2)
        assert seen == [b"a", b"b", b"b", b"c"]
    # A streamed body that was sent cannot be sent again either.
    seen.clear()
    with scripted(script) as url:
        session = transport.Session(url)
        assert send(session, "PUT", url + "/a", b"a").status == 200
        error = failure(session, "PUT", url + "/d", Sized(b"d"))
        assert error.code == "ConnectionLost"
        time.sleep(0.2)
        assert seen == [b"a", b"d"]


def test_an_answer_sent_before_the_body_was_read_is_returned() -> None:
    def script(conn: socket.socket, n: int) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n<denied/>")
        conn.shutdown(socket.SHUT_RDWR)

    with scripted(script) as url:
        session = transport.Session(url)
        answer = send(session, "PUT", url + "/big", b"z" * (32 * 1024 * 1024))
        assert answer.status == 403
        assert answer.read() == b"<denied/>"


def test_timeouts_refusals_and_a_body_that_fails() -> None:
    def silent(conn: socket.socket, n: int) -> None:
        read_request(conn)
        time.sleep(1.5)

    with scripted(silent) as url:
        error = failure(transport.Session(url), "GET", url + "/", timeout=(5, 0.3))
        assert error.code == "Timeout" and error.retryable

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    url = f"http://127.0.0.1:{port}"
    assert failure(transport.Session(url), "GET", url + "/").code == "ConnectionRefused"

    class Broken:
        def __len__(self) -> int:
            return 10

        def read(self, n: int = -1) -> bytes:
            raise PermissionError("the disk said no")

    with scripted(silent) as url, pytest.raises(PermissionError, match="the disk said no"):
        client_for(url).put_object("k", Broken(), size=10)


def test_a_line_break_in_a_header_or_the_target_is_refused_before_sending() -> None:
    seen: list[bytes] = []

    def script(conn: socket.socket, n: int) -> None:
        seen.append(read_request(conn)[0])
        conn.sendall(ok())

    with scripted(script) as url:
        session = transport.Session(url)
        error = failure(session, "GET", url + "/bucket/k\r\nX-Injected: 1")
        assert error.code == "InvalidRequest" and not error.retryable
        assert "could not be made" in error.message
        with pytest.raises(OssError) as caught:
            client_for(url).put_object("k", b"data", size=4,
                                       headers={"X-Bad": "a\r\nX-Injected: 1"})
        assert caught.value.code == "InvalidRequest"
        # A key with a line break is quoted by oss2: it travels as %0D%0A.
        client_for(url).put_object("a\r\nb", b"data", size=4)
        time.sleep(0.2)
    assert len(seen) == 1 and b"X-Injected" not in seen[0]
    assert seen[0].split(b"\r\n")[0].startswith(b"PUT /bucket/a%0D%0Ab ")


def test_an_answer_cut_short_is_an_error_and_the_connection_is_not_reused() -> None:
    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)

    with scripted(script) as url:
        session = transport.Session(url)
        error = failure(session, "GET", url + "/", read=True)
        assert error.code == "ConnectionLost" and error.retryable
        failure(session, "GET", url + "/", read=True)
        assert session.opened(url) == 2


def test_the_client_reports_transport_failures_as_oss_errors() -> None:
    def garbage(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

    with scripted(garbage) as url:
        with pytest.raises(OssError) as err:
            client_for(url).put_object("k", b"data", size=4)
        # Another protocol on that port: named as such, and not retried.
        assert err.value.code == "NotOss"
        assert not err.value.retryable
        assert "does not speak OSS (its answer is not HTTP)" in err.value.message


@pytest.mark.parametrize("length", [b"1_0", b"+10", b"10, 3", b"-10", b"0x0a", b"\xd9\xa1\xd9\xa0"])
def test_a_content_length_that_is_not_one_number_is_refused(length: bytes) -> None:
    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %b\r\nx-oss-request-id: r1\r\n\r\n"
                     b"0123456789" % length)

    with scripted(script) as url, pytest.raises(OssError) as err:
        client_for(url).get_object_bytes("k")
    assert err.value.code == "BadAnswer", err.value
    assert not err.value.retryable
    assert "sent an answer that breaks HTTP" in err.value.message
    assert "unexpected" not in err.value.message.lower()


@pytest.mark.parametrize("size", [b"-5", b"+5", b"5_0", b"0x5", b"", b"5 5"])
def test_a_chunk_size_that_is_not_hexadecimal_is_refused(size: bytes) -> None:
    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n%b\r\nhello\r\n0\r\n\r\n" % size)

    with scripted(script) as url, pytest.raises(OssError) as err:
        client_for(url).get_object_bytes("k")
    assert err.value.code in ("BadAnswer", "ConnectionLost"), err.value
    assert "unexpected" not in err.value.message.lower()
    if size:  # a missing size line is a cut answer
        assert err.value.code == "BadAnswer"


def test_an_answer_that_trickles_in_is_cut_at_the_answer_deadline() -> None:
    """Each byte of the head comes before the read timeout, but the whole head is not in
    by the answer deadline: cut (a per-receive timeout alone would wait for ever)."""
    cut = threading.Event()

    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        try:
            for _ in range(300):
                conn.sendall(b"X")
                time.sleep(0.05)
        except OSError:
            cut.set()

    with scripted(script) as url:
        client = client_for(url, Timeouts(connect=2, answer=0.5, idle=10, rate=0))
        with pytest.raises(OssError) as err:
            client.put_object("k", b"data", size=4)
        assert err.value.code == "Timeout" and err.value.retryable
        assert cut.wait(10), "the connection was not cut"


def test_each_request_reaches_its_origin_with_its_path_and_query_after_a_close_too() -> None:
    """Requests go straight to their origin's connection pool: the path and the query as
    oss2 built them arrive, one kept connection carries them, and after ``close()`` the
    next request opens a new one (the closed pool is not used again)."""
    seen: list[bytes] = []

    def script(conn: socket.socket, n: int) -> None:
        while True:
            try:
                head, _ = read_request(conn)
            except ConnectionError:
                return
            seen.append(b"%d %b" % (n, head.split(b"\r\n")[0]))
            conn.sendall(ok(b"fine"))

    with scripted(script) as url:
        session = transport.Session(url)
        assert send(session, "GET", url + "/bucket/a%2Fb?acl").read() == b"fine"
        request = oss2.http.Request("GET", url + "/bucket/", params={"prefix": "x y",
                                                                     "max-keys": "2"})
        assert session.do_request(request, (5, 5)).read() == b"fine"
        assert send(session, "PUT", url + "?cors", b"data").read() == b"fine"
        session.close()
        assert send(session, "GET", url + "/bucket/k").read() == b"fine"
        session.close()
    assert seen == [b"0 GET /bucket/a%2Fb?acl HTTP/1.1",
                    b"0 GET /bucket/?prefix=x+y&max-keys=2 HTTP/1.1",
                    b"0 PUT /?cors HTTP/1.1",
                    b"1 GET /bucket/k HTTP/1.1"]


def test_a_parts_query_is_joined_without_quoting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part's parameters (an upload id, a part number) need no quoting: they are joined
    as they are, without urllib's form quoting (a few dozen calls a part)."""

    def no_quoting(*_args: object, **_kw: object) -> str:
        raise AssertionError("quoted")

    monkeypatch.setattr(transport, "urlencode", no_quoting)
    assert transport._query({"uploadId": "0004B9895DBBB6EC98E36", "partNumber": "12"}) == \
        "uploadId=0004B9895DBBB6EC98E36&partNumber=12"
    assert transport._query({"uploads": "", "x": None, "n": 3}) == "uploads=&n=3"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.one_of(
    st.none(), st.integers(-5, 10**12), st.text(max_size=8),
    st.text(alphabet="abcXYZ019_.-~", max_size=8),
    st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=3)), max_size=4))
def test_the_query_is_what_a_form_encodes(params: dict[str, object]) -> None:
    pairs: list[tuple[str, object]] = []
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((name, v) for v in values if v is not None)
    assert transport._query(params) == urlencode(pairs)
