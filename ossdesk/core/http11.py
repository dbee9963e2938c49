"""A lean HTTP/1.1 client for the requests ``oss2`` builds and signs.

Thousands of small files mean thousands of requests, and the CPU each one costs is what
limits them: urllib3 and ``http.client`` parse every URL again, check and encode every
header line by line and parse every answer's headers with the ``email`` package. OSS
speaks plain HTTP/1.1 (keep-alive, ``Content-Length`` or chunked answers), so this module
sends the request head and a small body in one write and parses the answer's head with
byte operations, on connections kept alive per endpoint.

What it does, as urllib3 did for us:

* one pool of idle keep-alive connections per ``scheme://host:port``; a connection the
  server closed while it was idle is noticed before it is used again (and an idempotent
  request without a streamed body that fails on such a connection before any answer is
  sent again, on a new connection);
* TLS with the caller's ``ssl.SSLContext`` (certificate and host name checked);
* connect and read timeouts (``ConnectTimeout``, ``ReadTimeout``);
* bodies given as bytes, as a sized object with ``read(n)`` (read in blocks as they are
  sent) or as an iterable of chunks (sent chunked);
* an answer that arrives while the body is still being sent (the server refused the
  request without reading all of it) is read and returned;
* answers with ``Content-Length``, chunked, or ended by the server closing the connection.

An exception raised by the body's ``read`` is not wrapped: the caller tells a local read
error from a network one. Every network failure is an ``OSError``: ``ConnectTimeout``,
``ReadTimeout`` (both ``TimeoutError``), ``ConnectFailed``, ``ProtocolError`` (both
``ConnectionError``), or the socket's own ``ConnectionError`` / ``socket.gaierror`` /
``ssl.SSLError``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = [
    "Answer",
    "ConnectFailed",
    "ConnectTimeout",
    "Connections",
    "NotHttp",
    "ProtocolError",
    "ReadTimeout",
]

log = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024  # an answer's status line and headers
_RECV = 256 * 1024
_ONE_WRITE = 256 * 1024  # head and body up to this size go in one write
_NO_ANSWER = "the server closed the connection without answering"
_MID_ANSWER = "the server closed the connection mid-answer"
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_PRELOAD = 64 * 1024  # answers up to this size are read at once (oss2 leaves some unread)


class ConnectTimeout(TimeoutError):
    """The connection (or the TLS handshake) was not made in time."""


class ReadTimeout(TimeoutError):
    """The server did not answer, or stopped sending, for longer than the read timeout."""


class ConnectFailed(ConnectionError):
    """The connection could not be made (unreachable network, refused, ...): see
    ``__cause__``."""


class ProtocolError(ConnectionError):
    """The connection closed early, or the answer was not HTTP/1.x."""


class NotHttp(ProtocolError):
    """The server's answer is not HTTP/1.x (another protocol on that port, garbage, or a
    head longer than any HTTP server sends)."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _wrap(exc: OSError, *, connecting: bool) -> OSError:
    """A socket error as the exception this module promises."""
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(str(exc) or "timed out") if connecting else ReadTimeout(
            str(exc) or "timed out")
    if isinstance(exc, socket.gaierror | ssl.SSLError | ConnectionError):
        return exc
    if connecting:
        return ConnectFailed(str(exc))
    return ProtocolError(str(exc))


class _Conn:
    """One connection and the bytes received on it but not yet read."""

    __slots__ = ("buf", "deadline", "idle", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.reused = False
        #: While set (a ``time.monotonic()`` value): the answer's head must be in by then.
        self.deadline: float | None = None
        self.idle: float | None = None  # the longest wait for one receive

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def dropped(self) -> bool:
        """True if the idle connection was closed by the server (or sent something
        unasked, which also makes it unusable)."""
        if self.buf:
            return True
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return bool(poller.poll(0))
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def fill(self) -> bool:
        """Receive more bytes into the buffer; False at the end of the stream."""
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise ReadTimeout("no answer in time")
            self.sock.settimeout(left if self.idle is None else min(left, self.idle))
        data = self.sock.recv(_RECV)
        if not data:
            return False
        self.buf += data
        return True

    def _until(self, sep: bytes, *, too_long: str, none: str, starts: bytes = b"") -> bytes:
        """The bytes up to ``sep`` (consumed, not returned); ``none``: the message if the
        connection ends before any byte; ``starts``: what the bytes must begin with (else
        :class:`NotHttp`)."""
        start = 0
        while True:
            if starts and self.buf and not self.buf.startswith(starts[: len(self.buf)]):
                raise NotHttp(f"the answer is not HTTP: {bytes(self.buf[:40])!r}")
            end = self.buf.find(sep, start)
            if end > _MAX_HEAD:
                raise (NotHttp if starts else ProtocolError)(too_long)
            if end >= 0:
                found = bytes(self.buf[:end])
                del self.buf[: end + len(sep)]
                return found
            if len(self.buf) > _MAX_HEAD:
                raise (NotHttp if starts else ProtocolError)(too_long)
            start = max(0, len(self.buf) - len(sep) + 1)
            if not self.fill():
                raise ProtocolError(
                    none if not self.buf else _MID_ANSWER)

    def head(self) -> bytes:
        """The next status line and headers (without the blank line)."""
        return self._until(b"\r\n\r\n", too_long="the answer's headers are longer than "
                           f"{_MAX_HEAD // 1024} KiB", none=_NO_ANSWER, starts=b"HTTP/1.")

    def line(self) -> bytes:
        return self._until(b"\r\n", too_long="a chunk header is too long",
                           none=_MID_ANSWER)

    def take(self, n: int) -> bytes:
        """Up to ``n`` (> 0) bytes of the answer: buffered ones first, else one receive."""
        if self.buf:
            chunk = bytes(self.buf[:n])
            del self.buf[:n]
            return chunk
        return self.sock.recv(min(n, _RECV))


def _headers(lines: list[bytes]) -> Headers:
    """Header lines keyed by lower-case names (repeated names joined by ", ")."""
    out = Headers()
    for raw in lines:
        name, sep, value = raw.partition(b":")
        if not sep:
            if raw[:1] in (b" ", b"\t") and out:  # an obsolete folded line continues the last
                last = next(reversed(out))
                out[last] += " " + raw.strip().decode("latin-1")
                continue
            raise NotHttp("a header line has no ':'")
        key = name.strip().decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _status(line: bytes) -> tuple[bytes, int, bytes]:
    """HTTP version, status code and reason of a status line."""
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise NotHttp(f"not an HTTP/1.x answer: {line[:80]!r}")
    return version, int(code), reason


class Headers(dict[str, str]):
    """An answer's headers: names compare case-insensitively (stored lower-case)."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class Answer:
    """The status and headers of an answer; its body is read with :meth:`iter_content`.

    The connection goes back to its pool once the body has been read to its end (at once
    when there is none); :meth:`close` before that closes it.
    """

    def __init__(self, pool: _Pool, conn: _Conn, status: int, reason: str, headers: Headers,
                 *, method: str, keep_alive: bool) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self._pool = pool
        self._conn: _Conn | None = conn
        self._keep = keep_alive
        self._chunked = False
        self._remaining: int | None = None  # None: until the connection closes
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._remaining = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
            self._remaining = 0  # bytes left in the current chunk
        elif (length := headers.get("content-length")) is not None:
            try:
                self._remaining = int(length.split(",")[0])
            except ValueError:
                self.close()
                raise ProtocolError(
                    f"the answer's Content-Length is not a number: {length!r}") from None
            if self._remaining < 0:
                self.close()
                raise ProtocolError("the answer's Content-Length is negative")
        else:
            self._keep = False
        self._body = b""  # a small body read at once
        if self._remaining == 0 and not self._chunked:
            self._release()
        elif self._remaining is not None and not self._chunked and (
                self._remaining <= _PRELOAD):
            # Read now, so the connection goes back at once: oss2 does not read every answer
            # (CompleteMultipartUpload's, say), and an unread one could not be reused.
            self._body = b"".join(self.iter_content(_PRELOAD))

    def __del__(self) -> None:
        self.close()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._keep:
                self._pool.put(conn)
            else:
                conn.close()

    def close(self) -> None:
        """Stop reading; an unread rest of the body makes the connection unusable."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _read(self, size: int) -> bytes:
        if self._body:
            data, self._body = self._body[:size], self._body[size:]
            return data
        conn = self._conn
        if conn is None:
            return b""
        try:
            if self._chunked:
                if self._remaining == 0:
                    line = conn.line()
                    try:
                        length = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise ProtocolError("a chunk's size is not a hex number") from None
                    if length == 0:
                        while conn.line():  # trailers, up to the blank line
                            pass
                        self._release()
                        return b""
                    self._remaining = length
                assert self._remaining is not None
                data = conn.take(min(size, self._remaining))
                if not data:
                    raise ProtocolError(_MID_ANSWER)
                self._remaining -= len(data)
                if self._remaining == 0 and conn.line() != b"":
                    raise ProtocolError("a chunk does not end with CRLF")
                return data
            if self._remaining is None:  # until the server closes
                data = conn.take(size)
                if not data:
                    self._release()
                return data
            data = conn.take(min(size, self._remaining))
        except OSError as exc:
            self.close()
            raise _wrap(exc, connecting=False) from exc
        if not data:
            self.close()
            raise ProtocolError(
                f"the server closed the connection with {self._remaining:,} bytes of the "
                "answer unsent")
        self._remaining -= len(data)
        if self._remaining == 0:
            self._release()
        return data

    def iter_content(self, size: int) -> Iterator[bytes]:
        """The body in chunks of at most ``size`` bytes; each call goes on where the last
        stopped."""
        while self._conn is not None or self._body:
            data = self._read(size)
            if not data:
                return
            yield data

    def read(self) -> bytes:
        return b"".join(self.iter_content(_RECV))


class _Pool:
    """Idle keep-alive connections to one ``scheme://host:port``."""

    def __init__(self, scheme: str, netloc: str, context: ssl.SSLContext | None,
                 maxsize: int) -> None:
        parts = urlsplit(f"{scheme}://{netloc}")
        if not parts.hostname:
            raise ProtocolError(f"no host in {netloc!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if scheme == "https" else 80)
        self.host_header = netloc.rpartition("@")[2]
        self.context = context if scheme == "https" else None
        self.maxsize = maxsize
        self.idle: list[_Conn] = []
        self.lock = threading.Lock()
        self.opened = 0  # connections made, for tests and benchmarks
        weakref.finalize(self, _close_all, self.idle)  # a client dropped without close()

    def get(self, connect_timeout: float | None) -> _Conn:
        while True:
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            if conn is None:
                return self.connect(connect_timeout)
            if not conn.dropped():
                conn.reused = True
                return conn
            conn.close()

    def connect(self, timeout: float | None) -> _Conn:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise _wrap(exc, connecting=True) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            sock.close()
            raise _wrap(exc, connecting=True) from exc
        with self.lock:
            self.opened += 1
        log.debug("connected to %s:%s", self.host, self.port)
        return _Conn(sock)

    def put(self, conn: _Conn) -> None:
        with self.lock:
            if len(self.idle) < self.maxsize:
                self.idle.append(conn)
                return
        conn.close()

    def clear(self) -> None:
        with self.lock:
            idle = self.idle[:]
            self.idle.clear()
        _close_all(idle)


def _close_all(conns: list[_Conn]) -> None:
    for conn in conns:
        conn.close()


def _send_body(sock: socket.socket, head: bytes, body: Any, length: int | None,
               blocksize: int) -> None:
    """Write the head and the body. Exceptions from the body's ``read`` pass unchanged;
    socket errors are marked with ``_sending``."""
    if body is None:
        _sendall(sock, head)
    elif isinstance(body, bytes | bytearray | memoryview):
        if len(body) <= _ONE_WRITE:
            _sendall(sock, head + bytes(body))
        else:
            _sendall(sock, head)
            view = memoryview(body).cast("B")
            for start in range(0, len(view), blocksize):
                _sendall(sock, view[start : start + blocksize])
    elif length is not None and hasattr(body, "read"):
        reader: _Readable = body
        left = length
        first = reader.read(min(blocksize, left)) if left else b""
        left -= len(first)
        if len(first) + len(head) <= _ONE_WRITE:
            _sendall(sock, head + first)
        else:
            _sendall(sock, head)
            _sendall(sock, first)
        while left > 0:
            chunk = reader.read(min(blocksize, left))
            if not chunk:
                break  # the body's own read reports a short source; the server sees it too
            left -= len(chunk)
            _sendall(sock, chunk)
    else:
        items: Iterable[bytes] = body
        _sendall(sock, head)
        if length is not None:
            for chunk in items:
                if chunk:
                    _sendall(sock, chunk)
        else:
            for chunk in items:
                if chunk:
                    _sendall(sock, b"%x\r\n%b\r\n" % (len(chunk), bytes(chunk)))
            _sendall(sock, b"0\r\n\r\n")


class _SendError(Exception):
    """A socket error while the request was written (carries it in ``error``)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def _sendall(sock: socket.socket, data: bytes | memoryview) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        raise _SendError(exc) from exc


def _check(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
        raise ValueError(f"invalid header {name!r}")


class Connections:
    """Keep-alive connection pools by ``scheme://host:port``. Thread-safe."""

    def __init__(self, context: ssl.SSLContext | None, *, maxsize: int = 16,
                 blocksize: int = 256 * 1024) -> None:
        self.context = context
        self.maxsize = maxsize
        self.blocksize = blocksize
        self._pools: dict[tuple[str, str], _Pool] = {}
        self._lock = threading.Lock()

    def pool(self, scheme: str, netloc: str) -> _Pool:
        key = (scheme, netloc)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    if scheme not in ("http", "https"):
                        raise ProtocolError(f"unsupported scheme {scheme!r}")
                    if scheme == "https" and self.context is None:
                        raise ProtocolError("https needs an SSL context")
                    pool = self._pools[key] = _Pool(scheme, netloc, self.context, self.maxsize)
        return pool

    @property
    def opened(self) -> int:
        """Connections made so far (all pools)."""
        return sum(p.opened for p in list(self._pools.values()))

    def clear(self) -> None:
        """Close every idle connection. Later requests open new ones."""
        for pool in list(self._pools.values()):
            pool.clear()

    def request(self, method: str, url: str, *, headers: Mapping[str, str],
                body: Any = None, connect_timeout: float | None = None,
                read_timeout: float | None = None,
                answer_timeout: float | None = None) -> Answer:
        """Send one request (``url`` absolute, already quoted) and read the answer's head.

        ``body``: None, bytes, a sized object with ``read(n)`` (``len()`` bytes are sent),
        or an iterable of chunks (sent chunked unless it has a ``len()``).
        ``read_timeout`` bounds each send and receive (no progress for that long: cut);
        ``answer_timeout`` bounds the wait for the whole head of the answer, from the
        moment the request is written (a server that takes the request and never answers,
        or answers a byte at a time, is cut then).
        """
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ProtocolError(f"not an absolute URL: {url!r}")
        netloc, _, path = rest.partition("/")
        target, _, _ = ("/" + path).partition("#")
        pool = self.pool(scheme.lower(), netloc)
        length: int | None = None
        if body is not None and hasattr(body, "__len__"):
            length = len(body)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {pool.host_header}"]
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                continue
            text = str(value)
            _check(name, text)
            lines.append(f"{name}: {text}")
        if length is not None:
            lines.append(f"Content-Length: {length}")
        elif body is not None:
            lines.append("Transfer-Encoding: chunked")
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("latin-1")
        # Sent again on a new connection only if that cannot do anything twice.
        replayable = method in _IDEMPOTENT and (
            body is None or isinstance(body, bytes | bytearray | memoryview))
        while True:
            conn = pool.get(connect_timeout)
            try:
                return self._exchange(pool, conn, method, head, body=body, length=length,
                                      read_timeout=read_timeout,
                                      answer_timeout=answer_timeout)
            except _Stale:
                if not replayable:
                    raise ProtocolError(
                        "the server closed the kept-alive connection") from None
                continue  # once more on a new connection (dropped idle ones are gone)

    def _exchange(self, pool: _Pool, conn: _Conn, method: str, head: bytes, *, body: Any,
                  length: int | None, read_timeout: float | None,
                  answer_timeout: float | None = None) -> Answer:
        sock = conn.sock
        send_error: OSError | None = None
        try:
            sock.settimeout(read_timeout)
            _send_body(sock, head, body, length, self.blocksize)
        except _SendError as exc:
            # The server may have answered and closed without reading all of the body (a
            # refused request): that answer is read below, if there is one.
            if not isinstance(exc.error, BrokenPipeError | ConnectionResetError) and (
                    exc.error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EPROTOTYPE)):
                conn.close()
                raise _wrap(exc.error, connecting=False) from exc.error
            send_error = exc.error
        except BaseException:  # the body's own read failed: passed on unchanged
            conn.close()
            raise
        try:
            if answer_timeout is not None:
                conn.idle = read_timeout
                conn.deadline = time.monotonic() + answer_timeout
            while True:
                status_line, *lines = conn.head().split(b"\r\n")
                version, status, reason = _status(status_line)
                if 100 <= status < 200 and status != 101:
                    continue  # 100 Continue and the like: the answer follows
                break
            if conn.deadline is not None:
                conn.deadline = None
                sock.settimeout(read_timeout)
            headers = _headers(lines)
            keep = send_error is None and (
                "close" not in headers.get("connection", "").lower()
                if version == b"HTTP/1.1"
                else "keep-alive" in headers.get("connection", "").lower())
            if log.isEnabledFor(logging.DEBUG):  # the signature is in a header, not logged
                log.debug("%s %s -> %s", method, head.split(b" ", 2)[1].decode("latin-1"),
                          status)
            return Answer(pool, conn, status, reason.decode("latin-1"), headers,
                          method=method, keep_alive=keep)
        except OSError as exc:
            conn.close()
            if conn.reused and isinstance(exc, ProtocolError) and exc.args and (
                    exc.args[0] == _NO_ANSWER):
                raise _Stale() from None
            error = exc if isinstance(exc, NotHttp) else send_error or exc
            raise _wrap(error, connecting=False) from error
        except BaseException:
            conn.close()
            raise


class _Stale(Exception):
    """A kept-alive connection turned out to be closed before any answer came."""
