"""The sandbox's HTTP layer: connections (limits, idle and header deadlines, refusals when
full), request bodies (``100 Continue``, receiving to a file with MD5 and CRC-64, early answers
and lingering closes; the framing itself is ``body.BodyReader``), dispatching a request to the
OSS operations and writing the answer.

The OSS operations themselves are in ``routes`` and the modules it calls; this module knows
only the shape of an OSS request (bucket, key, parameters) and of an answer.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import logging
import os
import queue
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, unquote_to_bytes

from ossdesk.sandbox.body import SMALL_CHUNK, Abort, BodyReader
from ossdesk.sandbox.errors import OssError, oss_error_ec
from ossdesk.sandbox.faults import Decision, corrupt_headers
from ossdesk.sandbox.formats import CRC, el, http_date, xml_doc

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/-/sandbox/"
CHUNK = 1024 * 1024
MAX_CONNECTIONS = 512  # more at once are answered 503 and closed
IDLE_TIMEOUT = 60.0  # seconds a connection may wait for a request or stall mid-request
HEADER_TIMEOUT = 30.0  # seconds from a request's first byte to the end of its headers
DRAIN_LIMIT = 1024 * 1024  # a refused body up to this is read, to keep the connection
LINGER_SECONDS = 2.0  # after answering a refusal early: how long unread bytes are discarded
LINGER_BYTES = 64 * 1024 * 1024  # ... and at most how many, before the connection closes
FAST_CHUNK = 4 * 1024 * 1024  # benchmark modes: one buffer, filled by recv_into


def _too_large() -> OssError:
    return OssError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")


@dataclass
class Request:
    method: str
    raw_path: str
    raw_query: str
    params: list[tuple[str, str]]
    q: dict[str, str]
    headers: dict[str, bytes]
    bucket: str | None
    key: str
    request_id: str

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode("utf-8", "replace")


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # streamed body: (open file, offset, length) pieces; overrides ``body``. The files are
    # opened when the request is handled, so an overwrite or delete of the object meanwhile
    # cannot cut the answer short; close() closes them.
    pieces: list[tuple[BinaryIO, int, int]] | None = None
    length: int | None = None  # content length for HEAD / streamed responses

    def close(self) -> None:
        for fh, _, _ in self.pieces or ():
            fh.close()


@dataclass(frozen=True)
class Received:
    size: int
    md5: bytes | None  # None: not computed (--fast-etag / --discard without Content-MD5)
    crc64: int


# ====================================================================== the HTTP machinery


class SandboxHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._conn_lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.to_reset: set[socket.socket] = set()
        # Connections in the middle of sending a request's headers, and until when they may.
        self.header_deadlines: dict[socket.socket, float] = {}
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (slow without DNS): not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            full = len(self.connections) >= self.sandbox.max_connections
            if not full:
                self.connections.add(request)
        if full:
            self._refuse_busy(request)
            return
        super().process_request(request, client_address)

    def _refuse_busy(self, request: socket.socket) -> None:
        """Too many connections: answer 503 at once (no thread, nothing read) and close."""
        body = xml_doc("Error", [
            el("Code", "ServiceUnavailable"),
            el("Message", f"The sandbox serves at most {self.sandbox.max_connections} "
               "connections at once; please try again later."),
            el("RequestId", self.sandbox.new_request_id()),
            el("HostId", self.sandbox.host_id())])
        head = ("HTTP/1.1 503 Service Unavailable\r\nServer: AliyunOSS\r\n"
                f"Date: {http_date()}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(OSError):
            request.setblocking(False)  # a full send buffer must not stall the accept loop
            request.send(head.encode("latin-1") + body)
        socketserver.TCPServer.shutdown_request(self, request)

    def headers_until(self, conn: socket.socket, deadline: float | None) -> None:
        with self._conn_lock:
            if deadline is None:
                self.header_deadlines.pop(conn, None)
            else:
                self.header_deadlines[conn] = deadline

    def service_actions(self) -> None:
        """Called by serve_forever between polls: cut off the clients whose headers are
        late (a slow-loris holds a connection by sending them a byte at a time)."""
        now = time.monotonic()
        with self._conn_lock:
            late = [c for c, deadline in self.header_deadlines.items() if now > deadline]
            for conn in late:
                del self.header_deadlines[conn]
        for conn in late:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self.header_deadlines.pop(request, None)
            self.connections.discard(request)
            reset = request in self.to_reset
            self.to_reset.discard(request)
        if reset:
            self.close_request(request)  # SO_LINGER 0 is set: close sends an RST
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up: normal
            log.debug("sandbox: %s hung up", client_address)
            return
        log.exception("sandbox: error while serving %s", client_address)

    def drop_all_connections(self) -> None:
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    timeout = IDLE_TIMEOUT  # setup() applies the server's idle_timeout
    disable_nagle_algorithm = True
    rbufsize = 256 * 1024
    server: SandboxHTTPServer

    _bufs: list[bytearray] | None = None
    _fast_buf: bytearray | None = None
    _expect_pending = False
    _body: BodyReader | None = None
    _status = 0
    _sent = 0

    # -- plumbing --------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.sandbox.idle_timeout)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)

    def handle_one_request(self) -> None:
        # Wait (up to the idle timeout) for the request's first byte; from then on its
        # headers must all arrive within the header timeout.
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                self.close_connection = True
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        self.server.headers_until(self.connection,
                                  time.monotonic() + self.server.sandbox.header_timeout)
        try:
            super().handle_one_request()
        finally:
            self.server.headers_until(self.connection, None)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)

    def handle_expect_100(self) -> bool:
        self._expect_pending = True  # "100 Continue" is sent when the body is wanted
        return True

    def buffers(self) -> list[bytearray]:
        if self._bufs is None:
            self._bufs = [bytearray(CHUNK) for _ in range(3)]
        return self._bufs

    def reset_connection(self) -> None:
        with contextlib.suppress(OSError):
            linger = struct.pack("HH", 1, 0) if os.name == "nt" else struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        with self.server._conn_lock:
            self.server.to_reset.add(self.connection)
        raise Abort(reset=True)

    def _lingering_close(self) -> None:
        """After an answer sent before the request's body was read: stop sending, then
        discard what the client still sends for a moment, so that closing with unread bytes
        (a TCP reset) does not destroy the answer before the client reads it."""
        sock = self.connection
        buf = bytearray(SMALL_CHUNK)
        deadline = time.monotonic() + LINGER_SECONDS
        discarded = 0
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            while discarded < LINGER_BYTES and not self.server.sandbox.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(min(left, 0.25))
                try:
                    n = sock.recv_into(buf)
                except TimeoutError:
                    continue
                if n == 0:
                    break
                discarded += n

    def body(self) -> BodyReader:
        assert self._body is not None
        if self._expect_pending:
            self._expect_pending = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return self._body

    # -- one request ----------------------------------------------------------

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        self.server.headers_until(self.connection, None)  # the headers are in
        self._status = 0
        self._sent = 0
        self._body = None
        self._expect_pending = self._expect_pending and self.command not in ("GET", "HEAD")
        request_id = sandbox.new_request_id()
        raw_path, _, raw_query = self.path.partition("?")
        decision = Decision()
        response: Response | None = None
        try:
            try:
                try:
                    self._body = BodyReader(self, None)
                except OssError:
                    self.close_connection = True  # the body's length is unknown
                    raise
                if raw_path.startswith(CONTROL_PREFIX) and sandbox.test_hooks:
                    response = self._control(raw_path, raw_query)
                else:
                    req = self._parse(raw_path, raw_query, request_id)
                    target = "/" + (req.bucket or "") + ("/" + req.key if req.bucket else "")
                    decision = sandbox.faults.decide(self.command, target + "?" + raw_query)
                    self._body.reset_after = decision.reset_after
                    self._body.damage = "body" in decision.corrupt
                    if decision.error is not None:
                        status, code = decision.error
                        raise OssError(status, code, "Please try again later (injected fault).")  # noqa: TRY301
                    response = sandbox.handle(self, req)
            except OssError as exc:
                if response is not None:
                    response.close()
                response = self._error_response(exc, request_id, raw_path)
            except (Abort, ConnectionError, TimeoutError):
                raise
            except Exception:  # a bug or a full disk must still get an answer
                log.exception("sandbox: %s %s failed", self.command, raw_path)
                response = self._error_response(
                    OssError(500, "InternalError", "We encountered an internal error. "
                             "Please try again."), request_id, raw_path)
                self.close_connection = True
            linger = False
            if self._body is not None and not self._body.done:
                if self._expect_pending or self.close_connection:
                    self.close_connection = True  # the client holds its body back: never read
                elif not self._body.chunked and not self._body.remaining:
                    pass  # "Content-Length: 0": nothing to read
                elif (self.command in ("GET", "HEAD") or self._body.chunked
                      or (self._body.remaining or 0) > DRAIN_LIMIT):
                    # Answer now rather than after a body that may be huge, or may never
                    # come (a GET declaring one): then close.
                    self.close_connection = True
                    linger = True
                else:
                    try:
                        self._body.drain()  # read what we do not want, to keep the connection
                    except OssError:
                        self.close_connection = True
            if decision.delay:
                sandbox.stopping.wait(decision.delay)
            if decision.corrupt:
                response.headers = corrupt_headers(response.headers, decision.corrupt)
            if decision.drop_response:
                self.reset_connection()  # handled, but the answer never leaves (logged: 0)
            self._send(response, request_id)
            if linger:
                self._lingering_close()
        except Abort as abort:
            self.close_connection = True
            sandbox.access_log(self.command, raw_path, raw_query, 0,
                               self._body.received if self._body else 0, self._sent)
            if not abort.reset:
                return
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            sandbox.access_log(self.command, raw_path, raw_query, 0,
                               self._body.received if self._body else 0, self._sent)
        finally:
            # Body buffers live for one request: an idle connection holds none.
            self._bufs = None
            self._fast_buf = None
            if response is not None:
                response.close()

    # BaseHTTPRequestHandler calls do_<METHOD>; every method OSS serves goes one way.
    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

    def _parse(self, raw_path: str, raw_query: str, request_id: str) -> Request:
        sandbox = self.server.sandbox
        try:
            path = unquote_to_bytes(raw_path).decode("utf-8")
            params = [
                (k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True,
                                             encoding="utf-8", errors="strict")
            ]
        except UnicodeDecodeError:
            raise OssError(400, "InvalidObjectName", "The object name is not valid UTF-8.") \
                from None
        headers = {k.lower(): v.encode("latin-1", "replace").strip()
                   for k, v in self.headers.items()}
        host = self.headers.get("Host", "").rsplit(":", 1)[0].lower()
        bucket: str | None
        virtual = sandbox.virtual_host_bucket(host)
        if virtual:
            bucket, key = virtual, path[1:]
        else:
            bucket_part, _, key = path[1:].partition("/")
            bucket = bucket_part or None
        return Request(self.command, raw_path, raw_query, params, dict(params), headers,
                       bucket, key, request_id)

    def _error_response(self, exc: OssError, request_id: str, raw_path: str) -> Response:
        sandbox = self.server.sandbox
        host = sandbox.host_id()
        items = [el("Code", exc.code), el("Message", exc.message), el("RequestId", request_id),
                 el("HostId", host)]
        items += [el(k, v) for k, v in exc.extra.items()]
        headers = [("Content-Type", "application/xml")]
        ec = oss_error_ec(exc.code, exc.message)
        if ec is not None:
            items += [el("EC", ec),
                      el("RecommendDoc", f"https://api.aliyun.com/troubleshoot?q={ec}")]
            headers.append(("x-oss-ec", ec))
        body = xml_doc("Error", items)
        if self.command == "HEAD":
            headers.append(("x-oss-err", base64.b64encode(body).decode()))
            return Response(exc.status, headers, b"", length=0)
        return Response(exc.status, headers, body)

    def _control(self, raw_path: str, raw_query: str) -> Response:
        sandbox = self.server.sandbox
        name = raw_path[len(CONTROL_PREFIX):]
        if name != "faults":
            raise OssError(404, "NoSuchKey", "Unknown sandbox control path.")
        if self.command == "GET":
            result: Any = sandbox.faults.rules()
        elif self.command == "DELETE":
            sandbox.faults.clear()
            result = None
        elif self.command == "POST":
            data = self.read_small_body(limit=None)
            try:
                payload = json.loads(data or b"{}")
                result = sandbox.faults.apply_json(payload)
            except (ValueError, TypeError) as exc:
                body = json.dumps({"error": str(exc)}).encode()
                return Response(400, [("Content-Type", "application/json")], body)
        else:
            raise OssError(405, "MethodNotAllowed", "Use GET, POST or DELETE.")
        return Response(200, [("Content-Type", "application/json")],
                        json.dumps({"result": result}).encode())

    def _send(self, response: Response, request_id: str) -> None:
        sandbox = self.server.sandbox
        if response.pieces is not None or response.length is not None:
            length = response.length or 0
        else:
            length = len(response.body)
        self.send_response_only(response.status)
        self.send_header("Server", "AliyunOSS")
        self.send_header("Date", http_date())
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close" if self.close_connection else "keep-alive")
        self.send_header("x-oss-request-id", request_id)
        self.send_header("x-oss-server-time", "1")
        for name, value in response.headers:
            self.send_header(name, value)
        self._status = response.status
        received = self._body.received if self._body else 0
        if response.pieces is None or self.command == "HEAD":
            body = b"" if self.command == "HEAD" else response.body
            # Logged before the response leaves, so a client that has its answer always
            # finds the line in the log.
            sandbox.access_log(self.command, self.path.partition("?")[0],
                               self.path.partition("?")[2], response.status, received, len(body))
            self.end_headers()
            if body:
                self.wfile.write(body)
            self._sent = len(body)
            return
        self.end_headers()
        # The last byte is held back until the log line is written, so that a client that
        # has the whole body always finds the request in the log.
        if length == 0:
            sandbox.access_log(self.command, self.path.partition("?")[0],
                               self.path.partition("?")[2], response.status, received, 0)
        for i, (fh, offset, count) in enumerate(response.pieces):
            last = i == len(response.pieces) - 1
            head = count - 1 if last else count
            if head:
                self._sent += self.connection.sendfile(fh, offset, head)
            if last:
                sandbox.access_log(self.command, self.path.partition("?")[0],
                                   self.path.partition("?")[2], response.status, received,
                                   self._sent + 1)
                self._sent += self.connection.sendfile(fh, offset + head, 1)

    # -- body reception ---------------------------------------------------------

    def receive_to(self, path: Path | None, max_size: int, *, md5: bool = True) -> Received:
        """Stream the body into ``path`` (``None``: count it only), computing its CRC-64 and,
        when ``md5``, its MD5 on the way.

        MD5 runs in a helper thread (hashlib releases the GIL on large buffers) while this
        thread reads the socket, updates the CRC and writes the file, so the two overlap.
        """
        assert self._body is not None
        if self._body.declared is not None and self._body.declared > max_size:
            # Before "100 Continue": the client is told at once and never sends the body.
            raise _too_large()
        reader = self.body()
        if not md5:
            return self._receive_crc_only(reader, path, max_size)
        bufs = self.buffers()
        digest = hashlib.md5()  # noqa: S324 - the OSS ETag is an MD5
        crc = 0
        size = 0
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(path.open("wb", buffering=0)) if path is not None else None
            first = memoryview(bufs[0])
            n = reader.readinto(first)
            if n < len(first):  # small body: no thread needed
                data = first[:n]
                digest.update(data)
                crc = CRC.calc(data) if n else 0
                if out is not None:
                    out.write(data)
                return Received(n, digest.digest(), crc)
            free = threading.Semaphore(len(bufs) - 1)
            jobs: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()

            def hasher() -> None:
                while (job := jobs.get()) is not None:
                    digest.update(job)
                    free.release()

            worker = threading.Thread(target=hasher, name="sandbox-md5", daemon=True)
            worker.start()
            try:
                i = 0
                mv = first
                while n:
                    data = mv[:n]
                    jobs.put(data)
                    crc = CRC.calc(data, crc) if size else CRC.calc(data)
                    if out is not None:
                        out.write(data)
                    size += n
                    if size > max_size:
                        raise _too_large()
                    i = (i + 1) % len(bufs)
                    free.acquire()
                    mv = memoryview(bufs[i])
                    n = reader.readinto(mv)
            finally:
                jobs.put(None)
                worker.join()
        return Received(size, digest.digest(), crc)

    def _receive_crc_only(self, reader: BodyReader, path: Path | None,
                          max_size: int) -> Received:
        """The benchmark modes' receive loop, one thread: fill one 4 MiB buffer from the
        socket (``recv_into``, no allocation), update the CRC-64, ``os.write`` it (unless the
        body is discarded). Measured faster here than spreading the work over threads."""
        if self._fast_buf is None:
            self._fast_buf = bytearray(FAST_CHUNK)
        mv = memoryview(self._fast_buf)
        crc = 0
        size = 0
        calc = CRC.calc
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                     0o644) if path is not None else -1
        try:
            while n := reader.readinto(mv):
                data = mv[:n]
                crc = calc(data, crc) if size else calc(data)
                size += n
                if size > max_size:
                    raise _too_large()
                while fd >= 0 and data:
                    data = data[os.write(fd, data):]
        finally:
            if fd >= 0:
                os.close(fd)
        return Received(size, None, crc)

    def read_small_body(self, limit: int | None = 10 * 1024 * 1024) -> bytes:
        """The whole body in memory (an XML or JSON document); over ``limit``: MalformedXML."""
        reader = self.body()
        data = bytearray()
        buf = memoryview(bytearray(SMALL_CHUNK))
        while n := reader.readinto(buf):
            data += buf[:n]
            if limit is not None and len(data) > limit:
                raise OssError(400, "MalformedXML", "The XML you provided was too large.")
        return bytes(data)
