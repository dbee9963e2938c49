"""A local HTTP server that speaks the OSS REST API (the subset an uploader uses).

Run it with ``ossdesk sandbox`` or embed it::

    with SandboxServer(root) as server:
        bucket = oss2.Bucket(oss2.AuthV4(ak, sk), server.endpoint, "sandbox",
                             region=server.region)

See docs/SANDBOX.md for what it covers, its access log format and its fault hooks.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import contextlib
import hashlib
import http.server
import io
import itertools
import json
import logging
import os
import queue
import re
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_tz
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import anycrc

from ossdesk.sandbox import auth
from ossdesk.sandbox.faults import Decision, Faults
from ossdesk.sandbox.store import ObjectRecord, PartRecord, Store, UploadRecord

log = logging.getLogger(__name__)

DEFAULT_ACCESS_KEY_ID = "LTAI5tSandboxAccessKey0"
DEFAULT_ACCESS_KEY_SECRET = "sandbox-secret-for-local-testing-only"  # noqa: S105
DEFAULT_REGION = "cn-hangzhou"
DEFAULT_BUCKET = "sandbox"
DEFAULT_PORT = 9000
TEST_HOOKS_ENV = "OSSDESK_SANDBOX_TEST_HOOKS"
CONTROL_PREFIX = "/-/sandbox/"

MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10_000
MAX_PUT_SIZE = 5 * 1024**3
MAX_KEY_BYTES = 1023
CHUNK = 1024 * 1024
SMALL_CHUNK = 64 * 1024  # draining unwanted bodies, reading XML bodies
MAX_CONNECTIONS = 512  # more at once are answered 503 and closed
IDLE_TIMEOUT = 60.0  # seconds a connection may wait for a request or stall mid-request
HEADER_TIMEOUT = 30.0  # seconds from a request's first byte to the end of its headers
DRAIN_LIMIT = 1024 * 1024  # a refused body up to this is read, to keep the connection
LINGER_SECONDS = 2.0  # after answering a refusal early: how long unread bytes are discarded
LINGER_BYTES = 64 * 1024 * 1024  # ... and at most how many, before the connection closes
FAST_CHUNK = 4 * 1024 * 1024  # benchmark modes: one buffer, filled by recv_into
# Blob ids of bodies received in --discard mode: no file exists for them.
DISCARDED_BLOB_PREFIX = "discarded-"
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
KEPT_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language",
                "expires")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_CRC = anycrc.Model("CRC64-XZ")
_CHUNK_SIZE_RE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*")
_OWNER_ID = "1234567890123456"
# Every sub-resource OSS defines: the query parameters a V1 signature covers (oss2's list)
# plus operations signed otherwise. A request naming one the sandbox does not serve on its
# route is refused with NotImplemented, never run as a plain object or bucket operation.
OSS_SUBRESOURCES = auth.V1_SUBRESOURCES | frozenset((
    "regions", "cleanRestoredObject", "userDefineLogFieldsConfig", "policyStatus",
    "overwriteConfig", "dataRedundancyTransition", "accessmonitor",
))
_RESPONSE_OVERRIDES = frozenset("response-" + name for name in (
    "content-type", "content-language", "cache-control", "content-encoding", "expires",
    "content-disposition"))
_SERVED_SUBRESOURCES: dict[tuple[str, str], frozenset[str]] = {
    ("bucket", "GET"): frozenset(("bucketInfo", "location", "uploads", "continuation-token")),
    ("bucket", "POST"): frozenset(("delete",)),
    ("object", "PUT"): frozenset(("uploadId", "partNumber")),
    ("object", "GET"): frozenset(("uploadId", "acl", "tagging")) | _RESPONSE_OVERRIDES,
    ("object", "HEAD"): frozenset(("objectMeta",)) | _RESPONSE_OVERRIDES,
    ("object", "DELETE"): frozenset(("uploadId",)),
    ("object", "POST"): frozenset(("uploads", "uploadId")),
}
_SERVED_EVERYWHERE = frozenset(("security-token",))
# Request headers that turn a write into an operation the sandbox does not implement
# (CopyObject / UploadPartCopy, symlinks, SM4 data encryption, bucket ACLs): such a write is
# refused.
_UNSUPPORTED_WRITE_HEADERS = (
    "x-oss-copy-source", "x-oss-metadata-directive", "x-oss-symlink-target",
    "x-oss-server-side-data-encryption", "x-oss-acl",
)
# Headers that describe the object a PutObject or InitiateMultipartUpload creates: stored and
# answered (HeadObject, GetObject, GetObjectAcl, GetObjectTagging). The object ACL is also
# taken by CompleteMultipartUpload. Anywhere else they are refused as not implemented.
_OBJECT_ACL = "x-oss-object-acl"
_CREATION_HEADERS = (_OBJECT_ACL, "x-oss-tagging", "x-oss-server-side-encryption")
OBJECT_ACLS = ("default", "private", "public-read", "public-read-write")
SSE_ALGORITHMS = ("AES256", "KMS")
MAX_OBJECT_TAGS = 10


# ====================================================================== errors


# OSS's error codes ("EC", in the error XML and the x-oss-ec header) for the errors the
# sandbox answers, keyed by (Code, Message) for an EC that belongs to one message only,
# (Code, None) for one that belongs to the code. Only codes seen in OSS's own answers are
# here; an error not in this table is answered without an EC (docs/SANDBOX.md lists them).
# Sources:
# - NoSuchKey 0026-00000001: OSS answers quoted in aliyun-oss-java-sdk's tests
#   (OSSException.getEC() for a missing key) and OSS's troubleshoot links
#   (https://api.aliyun.com/troubleshoot?q=0026-00000001).
# - NoSuchBucket 0015-00000101, SignatureDoesNotMatch 0002-00000040: the OSS answers
#   quoted in alibabacloud-oss-go-sdk-v2's tests (client_test.go, "The specified bucket
#   does not exist." / "The request signature we calculated does not match ...").
# - InvalidArgument "Invalid signing region in Authorization header." 0002-00000226: OSS's
#   answer (400) to a V4 request scoped to another region, quoted in
#   https://github.com/aliyun/alibabacloud-oss-go-sdk-v2/issues/29 and #85.
OSS_ERROR_EC: dict[tuple[str, str | None], str] = {
    ("NoSuchKey", None): "0026-00000001",
    ("NoSuchBucket", None): "0015-00000101",
    ("SignatureDoesNotMatch", None): "0002-00000040",
    ("InvalidArgument", "Invalid signing region in Authorization header."): "0002-00000226",
}


def oss_error_ec(code: str, message: str) -> str | None:
    """OSS's EC for this error, or None when no source for it is known."""
    return OSS_ERROR_EC.get((code, message)) or OSS_ERROR_EC.get((code, None))


class OssError(Exception):
    """An error answered to the client in OSS's XML format."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _no_such_bucket(bucket: str) -> OssError:
    return OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)


def _no_such_key(key: str) -> OssError:
    return OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def _no_such_upload(upload_id: str) -> OssError:
    return OssError(404, "NoSuchUpload",
                    "The specified upload does not exist. The upload ID may be invalid, or the "
                    "upload may have been aborted or completed.", UploadId=upload_id)


class _Abort(Exception):
    """Stop handling the request and drop the connection (no response)."""

    def __init__(self, reset: bool) -> None:
        super().__init__("connection dropped")
        self.reset = reset


# ====================================================================== helpers


def _xml(root: str, body: Iterable[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<' + root + ">" + "".join(body)
            + "</" + root + ">").encode("utf-8")


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


# Control characters XML 1.0 forbids (even as character references), and the escape that
# carries them through the XML parser: _ESC + a private-use character per control
# character, _ESC itself doubled.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ue000]")
_ESC = "\ue000"
_ESCAPED = re.compile("\ue000(.)", re.DOTALL)


def _escape_controls(text: str) -> str:
    return _XML_FORBIDDEN.sub(
        lambda m: _ESC * 2 if m.group() == _ESC else _ESC + chr(0xE100 + ord(m.group())), text)


def _unescape_controls(text: str) -> str:
    return _ESCAPED.sub(
        lambda m: _ESC if m.group(1) == _ESC else chr(ord(m.group(1)) - 0xE100), text)


def _iso(ts: float) -> str:
    # OSS always writes whole seconds with ".000Z" (and oss2 insists on it).
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _http_date(ts: float | None = None) -> str:
    return formatdate(ts, usegmt=True)


def _quote_etag(etag: str) -> str:
    return f'"{etag}"'


def _encoder(params: dict[str, str]) -> Callable[[str], str]:
    enc = params.get("encoding-type", "")
    if enc == "url":
        return lambda s: quote(s, safe="/")
    return lambda s: s


def _int_param(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OssError(400, "InvalidArgument", f"{name} is not a number.",
                       ArgumentName=name, ArgumentValue=raw) from None
    if not lo <= value <= hi:
        raise OssError(400, "InvalidArgument", f"{name} must be between {lo} and {hi}.",
                       ArgumentName=name, ArgumentValue=raw)
    return value


def _refuse_unsupported(req: _Request, scope: str) -> None:
    """``NotImplemented`` for a sub-resource or header the sandbox does not serve on this
    route (``scope``: "service", "bucket" or "object")."""
    served = _SERVED_SUBRESOURCES.get((scope, req.method), frozenset()) | _SERVED_EVERYWHERE
    target = {"service": "the service", "bucket": "a bucket", "object": "an object"}[scope]
    for name, _ in req.params:
        if name in OSS_SUBRESOURCES and name not in served:
            raise OssError(400, "NotImplemented",
                           f"The sandbox does not implement this operation (sub-resource "
                           f"'{name}' in a {req.method} to {target}); nothing was changed.")
    if req.method in ("PUT", "POST"):
        creates = scope == "object" and (
            (req.method == "PUT" and "uploadId" not in req.q and "partNumber" not in req.q)
            or (req.method == "POST" and "uploads" in req.q))
        completes = scope == "object" and req.method == "POST" and "uploadId" in req.q
        for name in req.headers:
            taken = creates or (completes and name == _OBJECT_ACL)
            if name.startswith(_UNSUPPORTED_WRITE_HEADERS) or (
                    name.startswith(_CREATION_HEADERS) and not taken):
                raise OssError(400, "NotImplemented",
                               f"The sandbox does not implement the header '{name}' in a "
                               f"{req.method} to {target}; nothing was changed.")


def _object_acl(req: _Request) -> str | None:
    """The ``x-oss-object-acl`` of a request (None without one); a name OSS does not know
    is refused."""
    if _OBJECT_ACL not in req.headers:
        return None
    acl = req.header(_OBJECT_ACL)
    if acl not in OBJECT_ACLS:
        raise OssError(400, "InvalidArgument", "no such object access control exists",
                       ArgumentName=_OBJECT_ACL, ArgumentValue=acl)
    return acl


def _object_tags(text: str) -> list[list[str]]:
    """``x-oss-tagging`` (URL-encoded ``k=v&k2=v2``) as pairs, checked as OSS does."""
    pairs: list[list[str]] = []
    for item in text.split("&") if text else []:
        name, _, value = item.partition("=")
        key, val = unquote(name), unquote(value)
        if not key or len(key) > 128 or len(val) > 256 or key in (p[0] for p in pairs):
            raise OssError(400, "InvalidArgument", "The tag provided was not a valid tag.",
                           ArgumentName="x-oss-tagging", ArgumentValue=text)
        pairs.append([key, val])
    if len(pairs) > MAX_OBJECT_TAGS:
        raise OssError(400, "BadRequest", "Object tags cannot be greater than 10",
                       ArgumentName="x-oss-tagging")
    return pairs


def _creation_headers(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What HeadObject and GetObject answer about tags and server-side encryption."""
    headers: list[tuple[str, str]] = []
    if meta.get("sse"):
        headers.append(("x-oss-server-side-encryption", meta["sse"]))
    if meta.get("sse-key-id"):
        headers.append(("x-oss-server-side-encryption-key-id", meta["sse-key-id"]))
    if meta.get("tags"):
        headers.append(("x-oss-tagging-count", str(len(meta["tags"]))))
    return headers


def _multipart_etag(etags: Sequence[str]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in etags))  # noqa: S324 - OSS ETag
    return f"{digest.hexdigest().upper()}-{len(etags)}"


def _combine_crcs(parts: Sequence[tuple[int, int]]) -> int:
    crc = 0
    for part_crc, size in parts:
        crc = _CRC.combine(crc, part_crc, size) if crc or size else part_crc
    return crc


@dataclass
class _Request:
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
class _Response:
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
class _Received:
    size: int
    md5: bytes | None  # None: not computed (--fast-etag / --discard without Content-MD5)
    crc64: int


# ====================================================================== the HTTP machinery


class _HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
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
        super().__init__(address, _Handler)

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
        body = _xml("Error", [
            _el("Code", "ServiceUnavailable"),
            _el("Message", f"The sandbox serves at most {self.sandbox.max_connections} "
                "connections at once; please try again later."),
            _el("RequestId", self.sandbox.new_request_id()),
            _el("HostId", self.sandbox.host_id())])
        head = ("HTTP/1.1 503 Service Unavailable\r\nServer: AliyunOSS\r\n"
                f"Date: {_http_date()}\r\nContent-Type: application/xml\r\n"
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


class _BodyReader:
    """Reads a request body (Content-Length or chunked), counting bytes and applying the
    reset fault."""

    def __init__(self, handler: _Handler, reset_after: int | None) -> None:
        self.h = handler
        self.rfile: io.BufferedIOBase = handler.rfile
        self.received = 0
        self.reset_after = reset_after
        self.damage = False  # fault "body": flip the first byte received
        te = handler.headers.get("Transfer-Encoding", "").lower()
        self.chunked = "chunked" in te
        self.chunk_left = 0
        self.done = False
        if self.chunked:
            self.remaining: int | None = None
        else:
            cl = handler.headers.get("Content-Length")
            try:
                self.remaining = int(cl) if cl is not None else 0
            except ValueError:
                raise OssError(400, "InvalidArgument", "Content-Length is not valid.") from None
            if self.remaining < 0:
                raise OssError(400, "InvalidArgument", "Content-Length is not valid.")
        self.declared = self.remaining
        # Once the bytes the request's reader buffered past the headers are used up, a
        # Content-Length body is read straight from the socket into the caller's buffer.
        self.direct = False
        self.sock: socket.socket = handler.connection

    def _fill(self, mv: memoryview) -> int:
        """Read exactly ``len(mv)`` bytes (fewer only if the client closes)."""
        want = len(mv)
        got = 0
        if not self.direct:
            buffered = len(self.rfile.peek(1))  # type: ignore[attr-defined]
            if buffered == 0:
                return 0
            got = self.rfile.readinto(mv[:min(buffered, want)]) or 0
            if buffered <= want:
                self.direct = True  # the buffer is empty now
        recv_into = self.sock.recv_into
        while got < want:
            n = recv_into(mv[got:], want - got)
            if n == 0:
                break
            got += n
        return got

    def _limit(self, want: int) -> int:
        if self.reset_after is not None:
            left = self.reset_after - self.received
            if left <= 0:
                self.h.reset_connection()
            want = min(want, left)
        return want

    def readinto(self, mv: memoryview) -> int:
        """Fill ``mv`` as far as the body goes; 0 at the end of the body."""
        if self.done:
            return 0
        if not self.chunked:
            assert self.remaining is not None
            want = self._limit(min(len(mv), self.remaining))
            if want == 0:
                self.done = True
                return 0
            n = self._fill(mv[:want])
            if n < want:
                raise _Abort(reset=False)  # the client went away mid-body
            if self.damage:
                mv[0] ^= 0xFF
                self.damage = False
            self.remaining -= n
            self.received += n
            if self.reset_after is not None and self.received >= self.reset_after:
                self.h.reset_connection()
            return n
        total = 0
        while total < len(mv):
            if self.chunk_left == 0:
                line = self.rfile.readline(65537)
                if not line:
                    raise _Abort(reset=False)
                m = _CHUNK_SIZE_RE.fullmatch(line.split(b";", 1)[0].rstrip(b"\r\n"))
                if m is None or not line.endswith(b"\n"):
                    # No sign, underscore, "0x" or more than 16 digits; the connection's
                    # framing is lost: answer and close.
                    self.done = True
                    self.h.close_connection = True
                    raise OssError(400, "InvalidArgument", "Bad chunked encoding: the chunk "
                                   "size is not 1 to 16 hexadecimal digits.")
                size = int(m.group(1), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    break
                self.chunk_left = size
            want = self._limit(min(len(mv) - total, self.chunk_left))
            n = self.rfile.readinto(mv[total:total + want]) or 0
            if n < want:
                raise _Abort(reset=False)
            total += n
            self.chunk_left -= n
            self.received += n
            if self.chunk_left == 0:
                self.rfile.readline(3)
            if self.reset_after is not None and self.received >= self.reset_after:
                self.h.reset_connection()
        return total

    def drain(self) -> None:
        buf = memoryview(bytearray(SMALL_CHUNK))
        while self.readinto(buf):
            pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    timeout = IDLE_TIMEOUT  # setup() applies the server's idle_timeout
    disable_nagle_algorithm = True
    rbufsize = 256 * 1024
    server: _HTTPServer

    _bufs: list[bytearray] | None = None
    _fast_buf: bytearray | None = None
    _expect_pending = False
    _body: _BodyReader | None = None
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
        raise _Abort(reset=True)

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

    def body(self) -> _BodyReader:
        assert self._body is not None
        if self._expect_pending:
            self._expect_pending = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return self._body

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

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
        response: _Response | None = None
        try:
            try:
                try:
                    self._body = _BodyReader(self, None)
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
            except (_Abort, ConnectionError, TimeoutError):
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
                response.headers = _corrupt(response.headers, decision.corrupt)
            if decision.drop_response:
                self.reset_connection()  # handled, but the answer never leaves (logged: 0)
            self._send(response, request_id)
            if linger:
                self._lingering_close()
        except _Abort as abort:
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

    def _parse(self, raw_path: str, raw_query: str, request_id: str) -> _Request:
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
        return _Request(self.command, raw_path, raw_query, params, dict(params), headers,
                        bucket, key, request_id)

    def _error_response(self, exc: OssError, request_id: str, raw_path: str) -> _Response:
        sandbox = self.server.sandbox
        host = sandbox.host_id()
        items = [_el("Code", exc.code), _el("Message", exc.message), _el("RequestId", request_id),
                 _el("HostId", host)]
        items += [_el(k, v) for k, v in exc.extra.items()]
        headers = [("Content-Type", "application/xml")]
        ec = oss_error_ec(exc.code, exc.message)
        if ec is not None:
            items += [_el("EC", ec),
                      _el("RecommendDoc", f"https://api.aliyun.com/troubleshoot?q={ec}")]
            headers.append(("x-oss-ec", ec))
        body = _xml("Error", items)
        if self.command == "HEAD":
            headers.append(("x-oss-err", base64.b64encode(body).decode()))
            return _Response(exc.status, headers, b"", length=0)
        return _Response(exc.status, headers, body)

    def _control(self, raw_path: str, raw_query: str) -> _Response:
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
            reader = self.body()
            data = bytearray()
            buf = memoryview(bytearray(SMALL_CHUNK))
            while n := reader.readinto(buf):
                data += buf[:n]
            try:
                payload = json.loads(data or b"{}")
                result = sandbox.faults.apply_json(payload)
            except (ValueError, TypeError) as exc:
                body = json.dumps({"error": str(exc)}).encode()
                return _Response(400, [("Content-Type", "application/json")], body)
        else:
            raise OssError(405, "MethodNotAllowed", "Use GET, POST or DELETE.")
        return _Response(200, [("Content-Type", "application/json")],
                         json.dumps({"result": result}).encode())

    def _send(self, response: _Response, request_id: str) -> None:
        sandbox = self.server.sandbox
        if response.pieces is not None or response.length is not None:
            length = response.length or 0
        else:
            length = len(response.body)
        self.send_response_only(response.status)
        self.send_header("Server", "AliyunOSS")
        self.send_header("Date", _http_date())
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

    def receive_to(self, path: Path | None, max_size: int, *, md5: bool = True) -> _Received:
        """Stream the body into ``path`` (``None``: count it only), computing its CRC-64 and,
        when ``md5``, its MD5 on the way.

        MD5 runs in a helper thread (hashlib releases the GIL on large buffers) while this
        thread reads the socket, updates the CRC and writes the file, so the two overlap.
        """
        assert self._body is not None
        if self._body.declared is not None and self._body.declared > max_size:
            # Before "100 Continue": the client is told at once and never sends the body.
            raise OssError(400, "EntityTooLarge",
                           "Your proposed upload exceeds the maximum allowed size.")
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
                crc = _CRC.calc(data) if n else 0
                if out is not None:
                    out.write(data)
                return _Received(n, digest.digest(), crc)
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
                    crc = _CRC.calc(data, crc) if size else _CRC.calc(data)
                    if out is not None:
                        out.write(data)
                    size += n
                    if size > max_size:
                        raise OssError(400, "EntityTooLarge",
                                       "Your proposed upload exceeds the maximum allowed size.")
                    i = (i + 1) % len(bufs)
                    free.acquire()
                    mv = memoryview(bufs[i])
                    n = reader.readinto(mv)
            finally:
                jobs.put(None)
                worker.join()
        return _Received(size, digest.digest(), crc)

    def _receive_crc_only(self, reader: _BodyReader, path: Path | None,
                          max_size: int) -> _Received:
        """The benchmark modes' receive loop, one thread: fill one 4 MiB buffer from the
        socket (``recv_into``, no allocation), update the CRC-64, ``os.write`` it (unless the
        body is discarded). Measured faster here than spreading the work over threads."""
        if self._fast_buf is None:
            self._fast_buf = bytearray(FAST_CHUNK)
        mv = memoryview(self._fast_buf)
        crc = 0
        size = 0
        calc = _CRC.calc
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                     0o644) if path is not None else -1
        try:
            while n := reader.readinto(mv):
                data = mv[:n]
                crc = calc(data, crc) if size else calc(data)
                size += n
                if size > max_size:
                    raise OssError(400, "EntityTooLarge",
                                   "Your proposed upload exceeds the maximum allowed size.")
                while fd >= 0 and data:
                    data = data[os.write(fd, data):]
        finally:
            if fd >= 0:
                os.close(fd)
        return _Received(size, None, crc)

    def read_small_body(self, limit: int = 10 * 1024 * 1024) -> bytes:
        reader = self.body()
        data = bytearray()
        buf = memoryview(bytearray(SMALL_CHUNK))
        while n := reader.readinto(buf):
            data += buf[:n]
            if len(data) > limit:
                raise OssError(400, "MalformedXML", "The XML you provided was too large.")
        return bytes(data)


def _corrupt(headers: list[tuple[str, str]], fields: frozenset[str]) -> list[tuple[str, str]]:
    out = []
    for name, value in headers:
        low = name.lower()
        new = value
        if low == "x-oss-hash-crc64ecma" and "omit-crc64" in fields:
            continue
        if low == "x-oss-hash-crc64ecma" and "crc64" in fields:
            new = str((int(value) + 1) % 2**64)
        elif low == "etag" and "etag" in fields:
            inner = value.strip('"')
            new = _quote_etag(("0" if inner[0] != "0" else "1") + inner[1:])
        out.append((name, new))
    return out


# ====================================================================== the sandbox


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
            if not _BUCKET_RE.match(name):
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
        self._httpd: _HTTPServer | None = None
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
        httpd_cls = _HTTPServer
        if ":" in self.host:
            class _V6(_HTTPServer):
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
            if _BUCKET_RE.match(name):
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

    def handle(self, h: _Handler, req: _Request) -> _Response:
        if req.bucket is None:
            self._authenticate(req)
            _refuse_unsupported(req, "service")
            if req.method == "GET":
                return self._list_buckets(req)
            raise OssError(400, "NotImplemented", "This operation is not supported here.")
        created = self.store.bucket_created(req.bucket)
        if req.key == "":
            if req.method == "PUT" and not req.q:
                self._authenticate(req)
                _refuse_unsupported(req, "bucket")
                return self._put_bucket(h, req)
            if created is None:
                raise _no_such_bucket(req.bucket)
            self._authenticate(req)
            _refuse_unsupported(req, "bucket")
            return self._bucket_op(h, req, created)
        if created is None:
            raise _no_such_bucket(req.bucket)
        key_bytes = len(req.key.encode("utf-8"))
        if key_bytes > MAX_KEY_BYTES or req.key[0] in "/\\":
            raise OssError(400, "InvalidObjectName", "The specified object is not valid.",
                           Key=req.key[:64])
        self._authenticate(req)
        _refuse_unsupported(req, "object")
        return self._object_op(h, req)

    def _authenticate(self, req: _Request) -> None:
        signed = auth.SignedRequest(req.method, req.bucket, req.key, req.params, req.headers)
        try:
            auth.verify(signed, self.credentials, self.region)
        except auth.AuthError as exc:
            raise OssError(exc.status, exc.code, exc.message, **exc.extra) from None

    def _bucket_op(self, h: _Handler, req: _Request, created: float) -> _Response:
        q = req.q
        if req.method == "GET":
            if "bucketInfo" in q:
                return self._bucket_info(req, created)
            if "location" in q:
                return _Response(200, [("Content-Type", "application/xml")],
                                 _xml("LocationConstraint", ["oss-" + self.region]))
            if "uploads" in q:
                return self._list_uploads(req)
            if q.get("list-type") == "2":
                return self._list_objects(req, v2=True)
            return self._list_objects(req, v2=False)
        if req.method == "POST" and "delete" in q:
            return self._delete_multiple(h, req)
        raise OssError(400, "NotImplemented", "This bucket operation is not supported here.")

    def _object_op(self, h: _Handler, req: _Request) -> _Response:
        q = req.q
        m = req.method
        if m == "PUT":
            if "uploadId" in q and "partNumber" in q:
                return self._upload_part(h, req)
            if "uploadId" in q or "partNumber" in q:
                raise OssError(400, "InvalidArgument",
                               "UploadPart needs both uploadId and partNumber.",
                               ArgumentName="partNumber" if "uploadId" in q else "uploadId")
            return self._put_object(h, req)
        if m in ("GET", "HEAD"):
            if "uploadId" in q and m == "GET":
                return self._list_parts(req)
            if "acl" in q and m == "GET":
                return self._get_object_acl(req)
            if "tagging" in q and m == "GET":
                return self._get_object_tagging(req)
            return self._get_object(req, head=m == "HEAD", meta_only="objectMeta" in q)
        if m == "DELETE":
            if "uploadId" in q:
                if not self.store.delete_upload(q["uploadId"]):
                    raise _no_such_upload(q["uploadId"])
                return _Response(204)
            self.store.delete_object(req.bucket or "", req.key)
            return _Response(204)
        if m == "POST":
            if "uploads" in q:
                return self._initiate(h, req)
            if "uploadId" in q:
                return self._complete(h, req)
        raise OssError(400, "NotImplemented", "This object operation is not supported here.")

    # -- buckets -------------------------------------------------------------------------

    def _owner(self) -> str:
        return "<Owner>" + _el("ID", _OWNER_ID) + _el("DisplayName", _OWNER_ID) + "</Owner>"

    def _put_bucket(self, h: _Handler, req: _Request) -> _Response:
        assert req.bucket is not None
        if not _BUCKET_RE.match(req.bucket):
            raise OssError(400, "InvalidBucketName", "The specified bucket is not valid.",
                           BucketName=req.bucket)
        h.read_small_body()
        self.store.ensure_bucket(req.bucket)
        return _Response(200, [("Location", "/" + req.bucket)])

    def _list_buckets(self, req: _Request) -> _Response:
        prefix = req.q.get("prefix", "")
        marker = req.q.get("marker", "")
        max_keys = _int_param(req.q, "max-keys", 100, 1, 1000)
        names = [(n, c) for n, c in self.store.buckets().items()
                 if n.startswith(prefix) and n > marker]
        page, truncated = names[:max_keys], len(names) > max_keys
        items = []
        if prefix:
            items.append(_el("Prefix", prefix))
        if marker:
            items.append(_el("Marker", marker))
        if "max-keys" in req.q:
            items.append(_el("MaxKeys", max_keys))
        if truncated:
            items += [_el("IsTruncated", "true"), _el("NextMarker", page[-1][0])]
        elif "max-keys" in req.q or prefix or marker:
            items.append(_el("IsTruncated", "false"))
        items += [self._owner(), "<Buckets>"]
        for name, created in page:
            items.append(
                "<Bucket>" + _el("CreationDate", _iso(created))
                + _el("ExtranetEndpoint", self.host_id()) + _el("IntranetEndpoint", self.host_id())
                + _el("Location", "oss-" + self.region) + _el("Name", name)
                + _el("Region", self.region) + _el("StorageClass", "Standard") + "</Bucket>")
        items.append("</Buckets>")
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("ListAllMyBucketsResult", items))

    def _bucket_info(self, req: _Request, created: float) -> _Response:
        body = (
            "<Bucket>" + _el("AccessMonitor", "Disabled") + _el("CreationDate", _iso(created))
            + _el("CrossRegionReplication", "Disabled") + _el("DataRedundancyType", "LRS")
            + _el("ExtranetEndpoint", self.host_id()) + _el("IntranetEndpoint", self.host_id())
            + _el("Location", "oss-" + self.region) + _el("Name", req.bucket)
            + _el("ResourceGroupId", "rg-sandbox") + _el("StorageClass", "Standard")
            + _el("TransferAcceleration", "Disabled") + self._owner()
            + "<AccessControlList>" + _el("Grant", "private") + "</AccessControlList>"
            + _el("Comment", "ossdesk sandbox")
            + "<ServerSideEncryptionRule>" + _el("SSEAlgorithm", "None")
            + "</ServerSideEncryptionRule>" + "<BucketPolicy>" + _el("LogBucket", "")
            + _el("LogPrefix", "") + "</BucketPolicy>" + "</Bucket>"
        )
        return _Response(200, [("Content-Type", "application/xml")], _xml("BucketInfo", [body]))

    def _list_objects(self, req: _Request, v2: bool) -> _Response:
        assert req.bucket is not None
        q = req.q
        enc = _encoder(q)
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = _int_param(q, "max-keys", 100, 0, 1000)
        if v2:
            token = q.get("continuation-token")
            start_after = q.get("start-after", "")
            if token:
                try:
                    after: str | None = base64.urlsafe_b64decode(token.encode()).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    raise OssError(400, "InvalidArgument", "The continuation token is not valid.",
                                   ArgumentName="continuation-token") from None
            else:
                after = start_after or None
        else:
            after = q.get("marker") or None
        contents: list[ObjectRecord] = []
        prefixes: list[str] = []
        truncated = False
        last = ""
        for obj in self.store.iter_objects(req.bucket, prefix, after):
            if delimiter:
                i = obj.key.find(delimiter, len(prefix))
                if i >= 0:
                    cp = obj.key[: i + len(delimiter)]
                    if (after is not None and cp <= after) or (prefixes and prefixes[-1] == cp):
                        continue
                    if len(contents) + len(prefixes) >= max_keys:
                        truncated = True
                        break
                    prefixes.append(cp)
                    last = cp
                    continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            contents.append(obj)
            last = obj.key
        items = [_el("Name", req.bucket), _el("Prefix", enc(prefix))]
        if v2:
            if q.get("continuation-token"):
                items.append(_el("ContinuationToken", q["continuation-token"]))
            if q.get("start-after"):
                items.append(_el("StartAfter", enc(q["start-after"])))
        else:
            items.append(_el("Marker", enc(q.get("marker", ""))))
        items.append(_el("MaxKeys", max_keys))
        items.append(_el("Delimiter", enc(delimiter)))
        if q.get("encoding-type") == "url":
            items.append(_el("EncodingType", "url"))
        items.append(_el("IsTruncated", "true" if truncated else "false"))
        if truncated:
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8")).decode()
                items.append(_el("NextContinuationToken", token))
            else:
                items.append(_el("NextMarker", enc(last)))
        if v2:
            items.append(_el("KeyCount", len(contents) + len(prefixes)))
        owner = self._owner() if (not v2 or q.get("fetch-owner") == "true") else ""
        for obj in contents:
            items.append(
                "<Contents>" + _el("Key", enc(obj.key)) + _el("LastModified", _iso(obj.modified))
                + _el("ETag", _quote_etag(obj.etag)) + _el("Type", obj.type)
                + _el("Size", obj.size)
                + _el("StorageClass", obj.meta.get("storage-class", "Standard"))
                + owner + "</Contents>")
        for cp in prefixes:
            items.append("<CommonPrefixes>" + _el("Prefix", enc(cp)) + "</CommonPrefixes>")
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("ListBucketResult", items))

    def _delete_multiple(self, h: _Handler, req: _Request) -> _Response:
        assert req.bucket is not None
        body = h.read_small_body()
        self._check_md5_of(body, req)
        try:
            # oss2 writes a key's control characters ('a\x0c') into the XML as they are, which
            # XML 1.0 forbids; OSS deletes such keys (oss2's tests/test_chinese.py
            # test_batch_delete_objects), so they are parsed through a reversible escape.
            root = ElementTree.fromstring(  # noqa: S314 - expat expands no external entities
                _escape_controls(body.decode("utf-8")))
        except (ElementTree.ParseError, UnicodeDecodeError):
            raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") \
                from None
        quiet = (root.findtext("Quiet") or "false").lower() == "true"
        enc = _encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(_el("EncodingType", "url"))
        for node in root.findall("Object"):
            key = _unescape_controls(node.findtext("Key") or "")
            self.store.delete_object(req.bucket, key)
            if not quiet:
                items.append("<Deleted>" + _el("Key", enc(key)) + "</Deleted>")
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("DeleteResult", items))

    # -- objects ---------------------------------------------------------------------------

    def _object_meta(self, req: _Request) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "content-type": req.header("content-type") or "application/octet-stream",
        }
        sc = req.header("x-oss-storage-class")
        if sc:
            if sc not in STORAGE_CLASSES:
                raise OssError(400, "InvalidArgument", "The storage class is not valid.",
                               ArgumentName="x-oss-storage-class", ArgumentValue=sc)
            meta["storage-class"] = sc
        user = {k: v.decode("utf-8", "surrogateescape") for k, v in req.headers.items()
                if k.startswith("x-oss-meta-")}
        if user:
            meta["user"] = user
        kept = {k: req.header(k) for k in KEPT_HEADERS if k in req.headers}
        if kept:
            meta["headers"] = kept
        acl = _object_acl(req)
        if acl is not None:
            meta["acl"] = acl
        if "x-oss-tagging" in req.headers:
            meta["tags"] = _object_tags(req.header("x-oss-tagging"))
        sse = req.header("x-oss-server-side-encryption")
        key_id = req.header("x-oss-server-side-encryption-key-id")
        if sse:
            if sse not in SSE_ALGORITHMS:
                if sse == "SM4":
                    raise OssError(400, "NotImplemented", "The sandbox does not implement SM4 "
                                   "server-side encryption; nothing was changed.")
                raise OssError(400, "InvalidEncryptionAlgorithmError",
                               "The Encryption request you specified is not valid. Supported "
                               "value: AES256/KMS/SM4", ArgumentValue=sse)
            meta["sse"] = sse
        if key_id:
            if sse != "KMS":
                raise OssError(400, "InvalidArgument", "x-oss-server-side-encryption-key-id is "
                               "valid only with x-oss-server-side-encryption: KMS.",
                               ArgumentName="x-oss-server-side-encryption-key-id")
            meta["sse-key-id"] = key_id
        return meta

    def _get_object_acl(self, req: _Request) -> _Response:
        assert req.bucket is not None
        obj = self.store.get_object(req.bucket, req.key)
        if obj is None:
            raise _no_such_key(req.key)
        return _Response(200, [("Content-Type", "application/xml")], _xml(
            "AccessControlPolicy", [self._owner(), "<AccessControlList>"
                                    + _el("Grant", obj.meta.get("acl", "default"))
                                    + "</AccessControlList>"]))

    def _get_object_tagging(self, req: _Request) -> _Response:
        assert req.bucket is not None
        obj = self.store.get_object(req.bucket, req.key)
        if obj is None:
            raise _no_such_key(req.key)
        tags = "".join("<Tag>" + _el("Key", k) + _el("Value", v) + "</Tag>"
                       for k, v in obj.meta.get("tags", []))
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("Tagging", ["<TagSet>" + tags + "</TagSet>"]))

    def _check_md5_of(self, body: bytes, req: _Request) -> None:
        expected = self._content_md5(req)
        if expected is not None and hashlib.md5(body).digest() != expected:  # noqa: S324
            raise OssError(400, "InvalidDigest",
                           "The Content-MD5 you specified did not match what we received.")

    @staticmethod
    def _content_md5(req: _Request) -> bytes | None:
        raw = req.headers.get("content-md5")
        if raw is None:
            return None
        try:
            value = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if len(value) != 16:
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        return value

    @staticmethod
    def _request_crc(req: _Request) -> int | None:
        raw = req.header("x-oss-hash-crc64ecma")
        if not raw:
            return None
        try:
            return int(raw)
        except ValueError:
            raise OssError(400, "InvalidArgument", "x-oss-hash-crc64ecma is not a number.") \
                from None

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

    def _etag_of(self, got: _Received) -> str:
        if self.fast_etag or got.md5 is None:
            # 32 hex digits like an MD5, stable and unique per content in practice.
            return f"{got.crc64:016X}{got.size:016X}"
        return got.md5.hex().upper()

    @staticmethod
    def _digest_headers(got: _Received) -> list[tuple[str, str]]:
        headers = [("x-oss-hash-crc64ecma", str(got.crc64))]
        if got.md5 is not None:
            headers.append(("Content-MD5", base64.b64encode(got.md5).decode()))
        return headers

    def _receive(self, h: _Handler, req: _Request, max_size: int) -> tuple[str, _Received]:
        expected_md5 = self._content_md5(req)
        expected_crc = self._request_crc(req)
        # Correctness first: a Content-MD5 sent is always checked, in every mode.
        md5 = not self.fast_etag or expected_md5 is not None
        if self.discard:
            blob = DISCARDED_BLOB_PREFIX + os.urandom(16).hex()
            got = h.receive_to(None, max_size, md5=md5)
            self._check_digests(got, expected_md5, expected_crc)
            return blob, got
        blob, path = self.store.new_incoming()
        try:
            got = h.receive_to(path, max_size, md5=md5)
            self._check_digests(got, expected_md5, expected_crc)
            self.store.commit_incoming(blob)
        except BaseException:
            self.store.discard_incoming(blob)
            raise
        return blob, got

    @staticmethod
    def _check_digests(got: _Received, expected_md5: bytes | None,
                       expected_crc: int | None) -> None:
        if expected_md5 is not None and got.md5 != expected_md5:
            raise OssError(400, "InvalidDigest",
                           "The Content-MD5 you specified did not match what we received.")
        if expected_crc is not None and got.crc64 != expected_crc:
            raise OssError(400, "InvalidDigest",
                           "The CRC64 you specified did not match what we received.",
                           ClientCRC=str(expected_crc), ServerCRC=str(got.crc64))

    def _put_object(self, h: _Handler, req: _Request) -> _Response:
        assert req.bucket is not None
        meta = self._object_meta(req)
        if (req.header("x-oss-forbid-overwrite").lower() == "true"
                and self.store.object_exists(req.bucket, req.key)):
            raise OssError(409, "FileAlreadyExists", "The object you specified already exists.")
        blob, got = self._receive(h, req, MAX_PUT_SIZE)
        etag = self._etag_of(got)
        rec = ObjectRecord(req.bucket, req.key, got.size, etag, str(got.crc64), time.time(),
                           "Normal", meta, [(blob, got.size)])
        self.store.put_object(rec)
        return _Response(200, [("ETag", _quote_etag(etag)), *self._digest_headers(got)])

    def _get_object(self, req: _Request, head: bool, meta_only: bool) -> _Response:
        assert req.bucket is not None
        # An overwrite may delete the blobs between the lookup and the opening: look again.
        for _ in range(5):
            obj = self.store.get_object(req.bucket, req.key)
            if obj is None:
                raise _no_such_key(req.key)
            try:
                return self._object_response(req, obj, head, meta_only)
            except FileNotFoundError:
                continue
        raise OssError(503, "ServiceUnavailable", "The object kept changing while it was "
                       "being read; please try again.")

    def _object_response(self, req: _Request, obj: ObjectRecord, head: bool,
                         meta_only: bool) -> _Response:
        headers = [
            ("ETag", _quote_etag(obj.etag)),
            ("Last-Modified", _http_date(obj.modified)),
            ("x-oss-hash-crc64ecma", obj.crc64),
        ]
        not_modified = self._check_conditions(req, obj)
        if not_modified:
            return _Response(304, headers, length=0)
        if meta_only:  # a HEAD: Content-Length is the object's size, no body follows
            return _Response(200, headers, length=obj.size)
        headers += [
            ("Content-Type", req.q.get("response-content-type")
             or obj.meta.get("content-type", "application/octet-stream")),
            ("Accept-Ranges", "bytes"),
            ("x-oss-object-type", obj.type),
            ("x-oss-storage-class", obj.meta.get("storage-class", "Standard")),
        ]
        headers += _creation_headers(obj.meta)
        kept = dict(obj.meta.get("headers", {}))
        for name in KEPT_HEADERS:
            override = req.q.get("response-" + name)
            if override:
                kept[name] = override
        headers += sorted(kept.items())
        headers += sorted(
            (k, v.encode("utf-8", "surrogateescape").decode("latin-1"))
            for k, v in obj.meta.get("user", {}).items())
        start, end = 0, obj.size - 1
        status = 200
        standard = req.header("x-oss-range-behavior").lower() == "standard"
        rng = self._parse_range(req.header("range"), obj.size, standard)
        if rng is not None:
            start, end = rng
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{obj.size}"))
        length = max(0, end - start + 1)
        if head:
            return _Response(status, headers, length=length)
        if any(blob.startswith(DISCARDED_BLOB_PREFIX) for blob, _ in obj.segments):
            raise OssError(
                409, "ObjectDiscarded",
                "The object was uploaded to a sandbox running in --discard mode (a benchmark "
                "mode, not OSS-faithful): its body was checked and counted but not stored. "
                "HeadObject and GetObjectMeta report its size, ETag and CRC-64.",
                Key=req.key)
        response = _Response(status, headers, pieces=[], length=length)
        pos = 0
        try:
            for blob, size in obj.segments:
                lo, hi = max(start, pos), min(end + 1, pos + size)
                if lo < hi:
                    fh = self.store.blob_path(blob).open("rb")
                    assert response.pieces is not None
                    response.pieces.append((fh, lo - pos, hi - lo))
                pos += size
        except BaseException:
            response.close()
            raise
        return response

    @staticmethod
    def _check_conditions(req: _Request, obj: ObjectRecord) -> bool:
        """If-Match / If-Unmodified-Since -> 412; True when If-None-Match /
        If-Modified-Since say the client's copy is current (304)."""
        etag = obj.etag.upper()

        def etags(value: str) -> list[str]:
            return [e.strip().strip('"').upper() for e in value.split(",") if e.strip()]

        def when(value: str) -> float | None:
            parsed = parsedate_tz(value)
            if parsed is None:
                return None
            return float(calendar.timegm(parsed[:9]) - (parsed[9] or 0))

        modified = int(obj.modified)
        if_match = req.header("if-match")
        if if_match and etag not in etags(if_match) and "*" not in etags(if_match):
            raise OssError(412, "PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold.", Condition="If-Match")
        unmodified_since = when(req.header("if-unmodified-since"))
        if unmodified_since is not None and modified > unmodified_since:
            raise OssError(412, "PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold.", Condition="If-Unmodified-Since")
        if_none_match = req.header("if-none-match")
        if if_none_match:
            return etag in etags(if_none_match) or "*" in etags(if_none_match)
        modified_since = when(req.header("if-modified-since"))
        return modified_since is not None and modified <= modified_since

    @staticmethod
    def _parse_range(value: str, size: int, standard: bool = False) -> tuple[int, int] | None:
        """OSS semantics: a range it cannot satisfy is ignored (the whole object, 200).
        With ``x-oss-range-behavior: standard`` (``standard``), HTTP's: a range running past
        the end is cut at the end, one starting past it is ``416 InvalidRange``."""
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
        if not m or (not m.group(1) and not m.group(2)):
            return None
        unsatisfiable = OssError(416, "InvalidRange",
                                 "The requested range cannot be satisfied.",
                                 RangeRequested=value.strip(), ActualObjectSize=str(size))
        if m.group(1):
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else size - 1
            if end < start and m.group(2):
                return None  # not a valid range: ignored, as HTTP says
            if start >= size:
                if standard:
                    raise unsatisfiable
                return None
            if end >= size:
                if not standard:
                    return None
                end = size - 1
            return start, end
        suffix = int(m.group(2))
        if suffix == 0 or size == 0:
            if standard:
                raise unsatisfiable
            return None
        return max(0, size - suffix), size - 1

    # -- multipart ---------------------------------------------------------------------------

    def _upload(self, req: _Request) -> UploadRecord:
        upload_id = req.q.get("uploadId", "")
        up = self.store.get_upload(upload_id)
        if up is None or up.bucket != req.bucket or up.key != req.key:
            raise _no_such_upload(upload_id)
        return up

    def _initiate(self, h: _Handler, req: _Request) -> _Response:
        assert req.bucket is not None
        meta = self._object_meta(req)
        h.read_small_body()
        up = self.store.create_upload(req.bucket, req.key, meta)
        enc = _encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(_el("EncodingType", "url"))
        items += [_el("Bucket", req.bucket), _el("Key", enc(req.key)),
                  _el("UploadId", up.upload_id)]
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("InitiateMultipartUploadResult", items))

    def _upload_part(self, h: _Handler, req: _Request) -> _Response:
        number = _int_param(req.q, "partNumber", 0, 1, MAX_PART_NUMBER)
        up = self._upload(req)
        blob, got = self._receive(h, req, MAX_PUT_SIZE)
        etag = self._etag_of(got)
        part = PartRecord(number, blob, got.size, etag, str(got.crc64), time.time())
        if not self.store.put_part(up.upload_id, part):
            raise _no_such_upload(up.upload_id)
        return _Response(200, [("ETag", _quote_etag(etag)), *self._digest_headers(got)])

    def _list_parts(self, req: _Request) -> _Response:
        up = self._upload(req)
        max_parts = _int_param(req.q, "max-parts", 1000, 0, 1000)
        marker = _int_param(req.q, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        parts = [p for p in self.store.list_parts(up.upload_id) if p.part_number > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        enc = _encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(_el("EncodingType", "url"))
        items += [
            _el("Bucket", req.bucket), _el("Key", enc(req.key)), _el("UploadId", up.upload_id),
            _el("StorageClass", up.meta.get("storage-class", "Standard")),
            _el("PartNumberMarker", marker),
            _el("NextPartNumberMarker", page[-1].part_number if page else marker),
            _el("MaxParts", max_parts), _el("IsTruncated", "true" if truncated else "false"),
        ]
        for p in page:
            items.append(
                "<Part>" + _el("PartNumber", p.part_number) + _el("LastModified", _iso(p.modified))
                + _el("ETag", _quote_etag(p.etag)) + _el("HashCrc64ecma", p.crc64)
                + _el("Size", p.size) + "</Part>")
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("ListPartsResult", items))

    def _complete(self, h: _Handler, req: _Request) -> _Response:
        assert req.bucket is not None
        up = self._upload(req)
        body = h.read_small_body()
        self._check_md5_of(body, req)
        stored = {p.part_number: p for p in self.store.list_parts(up.upload_id)}
        if req.header("x-oss-complete-all").lower() == "yes":
            if body:
                raise OssError(400, "InvalidArgument",
                               "x-oss-complete-all does not take a part list.")
            wanted = [(n, stored[n].etag) for n in sorted(stored)]
        else:
            try:
                root = ElementTree.fromstring(body)  # noqa: S314 - as above
                wanted = [
                    (int(node.findtext("PartNumber") or ""),
                     (node.findtext("ETag") or "").strip().strip('"').upper())
                    for node in root.findall("Part")
                ]
            except (ElementTree.ParseError, ValueError):
                raise OssError(400, "MalformedXML", "The XML you provided was not well-formed "
                               "or did not validate against our published schema.") from None
        if not wanted:
            raise OssError(400, "MalformedXML", "The XML you provided was not well-formed or "
                           "did not validate against our published schema.")
        for (a, _), (b, _) in itertools.pairwise(wanted):
            if b <= a:
                raise OssError(400, "InvalidPartOrder",
                               "The list of parts was not in ascending order. Parts list must be "
                               "specified in order by part number.")
        used: list[PartRecord] = []
        for number, etag in wanted:
            part = stored.get(number)
            if part is None or part.etag != etag:
                raise OssError(400, "InvalidPart",
                               "One or more of the specified parts could not be found or the "
                               "specified entity tag might not have matched the part's entity "
                               "tag.", PartNumber=str(number), ETag=etag)
            used.append(part)
        for part in used[:-1]:
            if part.size < MIN_PART_SIZE:
                raise OssError(400, "EntityTooSmall",
                               "Your proposed upload is smaller than the minimum allowed size.",
                               PartNumber=str(part.part_number),
                               MinSizeAllowed=str(MIN_PART_SIZE))
        if (req.header("x-oss-forbid-overwrite").lower() == "true"
                and self.store.object_exists(req.bucket, req.key)):
            raise OssError(409, "FileAlreadyExists", "The object you specified already exists.")
        etag = _multipart_etag([p.etag for p in used])
        crc = _combine_crcs([(int(p.crc64), p.size) for p in used])
        meta = dict(up.meta)
        acl = _object_acl(req)
        if acl is not None:
            meta["acl"] = acl
        rec = ObjectRecord(req.bucket, req.key, sum(p.size for p in used), etag, str(crc),
                           time.time(), "Multipart", meta, [(p.blob, p.size) for p in used])
        if not self.store.complete_upload(up.upload_id, used, rec):
            raise _no_such_upload(up.upload_id)
        enc = _encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(_el("EncodingType", "url"))
        items += [_el("Location", f"{self.endpoint}/{req.bucket}/{quote(req.key)}"),
                  _el("Bucket", req.bucket), _el("Key", enc(req.key)),
                  _el("ETag", _quote_etag(etag))]
        return _Response(200, [("Content-Type", "application/xml"), ("ETag", _quote_etag(etag)),
                               ("x-oss-hash-crc64ecma", str(crc))],
                         _xml("CompleteMultipartUploadResult", items))

    def _list_uploads(self, req: _Request) -> _Response:
        assert req.bucket is not None
        q = req.q
        enc = _encoder(q)
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        key_marker = q.get("key-marker", "")
        id_marker = q.get("upload-id-marker", "")
        max_uploads = _int_param(q, "max-uploads", 1000, 0, 1000)
        uploads: list[UploadRecord] = []
        prefixes: list[str] = []
        truncated = False
        for up in self.store.list_uploads(req.bucket):
            if not up.key.startswith(prefix):
                continue
            if key_marker:
                if up.key < key_marker:
                    continue
                # OSS: the uploads of key-marker whose upload id is greater than
                # upload-id-marker (present or not: it may have been completed meanwhile).
                if up.key == key_marker and (not id_marker or up.upload_id <= id_marker):
                    continue
            if delimiter:
                i = up.key.find(delimiter, len(prefix))
                if i >= 0:
                    cp = up.key[: i + len(delimiter)]
                    if (key_marker and cp <= key_marker) or (prefixes and prefixes[-1] == cp):
                        continue
                    if len(uploads) + len(prefixes) >= max_uploads:
                        truncated = True
                        break
                    prefixes.append(cp)
                    continue
            if len(uploads) + len(prefixes) >= max_uploads:
                truncated = True
                break
            uploads.append(up)
        next_key = uploads[-1].key if uploads else ""
        next_id = uploads[-1].upload_id if uploads else ""
        if prefixes and (not uploads or prefixes[-1] > next_key):
            next_key, next_id = prefixes[-1], ""
        items = []
        if q.get("encoding-type") == "url":
            items.append(_el("EncodingType", "url"))
        items += [
            _el("Bucket", req.bucket), _el("KeyMarker", enc(key_marker)),
            _el("UploadIdMarker", id_marker), _el("NextKeyMarker", enc(next_key)),
            _el("NextUploadIdMarker", next_id), _el("Delimiter", enc(delimiter)),
            _el("Prefix", enc(prefix)), _el("MaxUploads", max_uploads),
            _el("IsTruncated", "true" if truncated else "false"),
        ]
        for up in uploads:
            items.append(
                "<Upload>" + _el("Key", enc(up.key)) + _el("UploadId", up.upload_id)
                + _el("StorageClass", up.meta.get("storage-class", "Standard"))
                + _el("Initiated", _iso(up.initiated)) + "</Upload>")
        for cp in prefixes:
            items.append("<CommonPrefixes>" + _el("Prefix", enc(cp)) + "</CommonPrefixes>")
        return _Response(200, [("Content-Type", "application/xml")],
                         _xml("ListMultipartUploadsResult", items))
