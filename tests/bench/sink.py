"""An OSS-compatible sink for throughput benchmarks: answers uploads without storing data.

It speaks the part of the OSS REST API an uploader uses (PutObject, InitiateMultipartUpload,
UploadPart, ListParts, CompleteMultipartUpload, AbortMultipartUpload, HeadObject, bucket info)
and answers with the real ``ETag`` (MD5 of the body) and ``x-oss-hash-crc64ecma`` (CRC-64 of
the body; of the whole object on Complete), so a client's CRC verification runs exactly as
against OSS. The body itself is read into a reused buffer and dropped: only the per-part
size, ETag and CRC are kept (in memory), which ListParts and Complete need.

Signatures are not checked (both clients still compute them, so the cost is on both sides).

    python tests/bench/sink.py --port 0 [--etag md5|crc] [--log FILE]

prints ``endpoint http://127.0.0.1:PORT`` on its first line, then serves until SIGTERM/SIGINT.

``--etag crc`` replaces the MD5 by a stand-in derived from CRC-64 and size (unique per body
in practice, 32 hex digits): the sink then spends ~0.1 CPU-s/GiB instead of ~1.6 on MD5,
which matters on a 2-core machine where the sink and the client share the CPU.

The access log (``--log``) has the sandbox's format: one tab-separated line per request,
``time method path query status bytes_received bytes_sent``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import signal
import socketserver
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import anycrc

_CRC = anycrc.Model("CRC64-XZ")
CHUNK = 1024 * 1024


@dataclass
class _Part:
    size: int
    etag: str
    crc: int
    modified: float


@dataclass
class _Upload:
    key: str
    parts: dict[int, _Part] = field(default_factory=dict)


@dataclass
class _Object:
    size: int
    etag: str
    crc: int
    modified: float


class SinkState:
    """What the sink remembers: upload ids with their parts' metadata, and objects' metadata."""

    def __init__(self, etag_mode: str, log_path: str | None) -> None:
        self.etag_mode = etag_mode
        self.lock = threading.Lock()
        self.uploads: dict[str, _Upload] = {}
        self.objects: dict[tuple[str, str], _Object] = {}
        self.bytes_received = 0
        self.requests = 0
        self._log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115

    def log(self, method: str, path: str, query: str, status: int, received: int,
            sent: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_received += received
            if self._log is not None:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                self._log.write(f"{stamp}\t{method}\t{path}\t{query}\t{status}\t{received}"
                                f"\t{sent}\n")

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _xml(root: str, items: list[str]) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>' + "".join(items)
            + f"</{root}>").encode()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def combine(parts: list[tuple[int, int]]) -> int:
    """CRC-64 of the concatenation, from (crc, size) pairs."""
    crc = 0
    for part_crc, size in parts:
        crc = _CRC.combine(crc, part_crc, size) if crc or size else part_crc
    return crc


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SinkState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):  # a client leaving an idle connection
            super().handle_error(request, client_address)

    def server_bind(self) -> None:  # no reverse DNS lookup of the host name
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    disable_nagle_algorithm = True
    rbufsize = 64 * 1024
    server: _Server
    _buf: bytearray | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- body ---------------------------------------------------------------------------

    def _read_body(self) -> tuple[int, str, int]:
        """Read the whole body; (size, etag, crc64). Handles Content-Length and chunked."""
        if self._buf is None:
            self._buf = bytearray(CHUNK)
        mv = memoryview(self._buf)
        md5 = hashlib.md5() if self.server.state.etag_mode == "md5" else None
        crc = 0
        size = 0
        rfile = self.rfile
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = rfile.readline(65537)
                n_chunk = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if n_chunk == 0:
                    while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                while n_chunk:
                    n = rfile.readinto(mv[: min(CHUNK, n_chunk)])
                    if not n:
                        raise ConnectionError("client went away")
                    data = mv[:n]
                    crc = _CRC.calc(data, crc) if size else _CRC.calc(data)
                    if md5 is not None:
                        md5.update(data)
                    size += n
                    n_chunk -= n
                rfile.readline(3)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                n = rfile.readinto(mv[: min(CHUNK, left)])
                if not n:
                    raise ConnectionError("client went away")
                data = mv[:n]
                crc = _CRC.calc(data, crc) if size else _CRC.calc(data)
                if md5 is not None:
                    md5.update(data)
                size += n
                left -= n
        etag = md5.hexdigest().upper() if md5 is not None else f"{crc:016X}{size:016X}"
        return size, etag, crc

    def _small_body(self) -> bytes:
        left = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(left) if left else b""

    # -- dispatch ---------------------------------------------------------------------------

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        q = dict(parse_qsl(raw_query, keep_blank_values=True))
        path = unquote(raw_path)
        bucket, _, key = path[1:].partition("/")
        received = 0
        try:
            status, headers, body, received = self._route(bucket, key, q)
        except ConnectionError:
            self.close_connection = True
            self.server.state.log(self.command, raw_path, raw_query, 0, received, 0)
            return
        self.server.state.log(self.command, raw_path, raw_query, status, received, len(body))
        self.send_response_only(status)
        self.send_header("Server", "AliyunOSS")
        self.send_header("Date", self.date_time_string())
        self.send_header("x-oss-request-id", uuid.uuid4().hex[:24].upper())
        if self.command != "HEAD" or "Content-Length" not in dict(headers):
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]],
                                                                     bytes]:
        body = _xml("Error", [_el("Code", code), _el("Message", message),
                              _el("RequestId", "0"), _el("HostId", "sink")])
        return status, [("Content-Type", "application/xml")], body

    def _route(self, bucket: str, key: str, q: dict[str, str]
               ) -> tuple[int, list[tuple[str, str]], bytes, int]:
        state = self.server.state
        m = self.command
        if m == "PUT" and key and "uploadId" in q:  # UploadPart
            size, etag, crc = self._read_body()
            with state.lock:
                up = state.uploads.get(q["uploadId"])
                if up is not None:
                    up.parts[int(q["partNumber"])] = _Part(size, etag, crc, time.time())
            if up is None:
                return (*self._error(404, "NoSuchUpload", "The upload does not exist."), size)
            return 200, [("ETag", f'"{etag}"'), ("x-oss-hash-crc64ecma", str(crc))], b"", size
        if m == "PUT" and key:  # PutObject (also curl -T)
            size, etag, crc = self._read_body()
            with state.lock:
                state.objects[(bucket, key)] = _Object(size, etag, crc, time.time())
            return 200, [("ETag", f'"{etag}"'), ("x-oss-hash-crc64ecma", str(crc))], b"", size
        if m == "POST" and "uploads" in q:  # Initiate
            self._small_body()
            upload_id = uuid.uuid4().hex.upper()
            with state.lock:
                state.uploads[upload_id] = _Upload(key)
            body = _xml("InitiateMultipartUploadResult",
                        [_el("Bucket", bucket), _el("Key", key), _el("UploadId", upload_id)])
            return 200, [("Content-Type", "application/xml")], body, 0
        if m == "POST" and "uploadId" in q:  # Complete
            raw = self._small_body()
            with state.lock:
                up = state.uploads.get(q["uploadId"])
            if up is None:
                return (*self._error(404, "NoSuchUpload", "The upload does not exist."), len(raw))
            if self.headers.get("x-oss-complete-all", "").lower() == "yes":
                numbers = sorted(up.parts)
            else:
                root = ElementTree.fromstring(raw)
                numbers = [int(p.findtext("PartNumber") or "0") for p in root.findall("Part")]
            try:
                used = [up.parts[n] for n in numbers]
            except KeyError:
                return (*self._error(400, "InvalidPart", "A part is missing."), len(raw))
            crc = combine([(p.crc, p.size) for p in used])
            digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in used))
            etag = f"{digest.hexdigest().upper()}-{len(used)}"
            with state.lock:
                state.uploads.pop(q["uploadId"], None)
                state.objects[(bucket, key)] = _Object(sum(p.size for p in used), etag, crc,
                                                       time.time())
            body = _xml("CompleteMultipartUploadResult",
                        [_el("Location", f"http://sink/{bucket}/{key}"), _el("Bucket", bucket),
                         _el("Key", key), _el("ETag", f'"{etag}"')])
            return 200, [("Content-Type", "application/xml"), ("ETag", f'"{etag}"'),
                         ("x-oss-hash-crc64ecma", str(crc))], body, len(raw)
        if m == "GET" and key and "uploadId" in q:  # ListParts
            with state.lock:
                up = state.uploads.get(q["uploadId"])
                parts = sorted(up.parts.items()) if up is not None else []
            if up is None:
                return (*self._error(404, "NoSuchUpload", "The upload does not exist."), 0)
            marker = int(q.get("part-number-marker") or 0)
            max_parts = int(q.get("max-parts") or 1000)
            after = [(n, p) for n, p in parts if n > marker]
            page, truncated = after[:max_parts], len(after) > max_parts
            items = [_el("Bucket", bucket), _el("Key", key), _el("UploadId", q["uploadId"]),
                     _el("StorageClass", "Standard"), _el("PartNumberMarker", marker),
                     _el("NextPartNumberMarker", page[-1][0] if page else marker),
                     _el("MaxParts", max_parts),
                     _el("IsTruncated", "true" if truncated else "false")]
            items += ["<Part>" + _el("PartNumber", n) + _el("LastModified", _iso(p.modified))
                      + _el("ETag", f'"{p.etag}"') + _el("HashCrc64ecma", p.crc)
                      + _el("Size", p.size) + "</Part>" for n, p in page]
            return 200, [("Content-Type", "application/xml")], _xml("ListPartsResult", items), 0
        if m == "DELETE" and "uploadId" in q:  # Abort
            with state.lock:
                state.uploads.pop(q["uploadId"], None)
            return 204, [], b"", 0
        if m in ("HEAD", "GET") and key and not q:  # HeadObject (GET: metadata only)
            with state.lock:
                obj = state.objects.get((bucket, key))
            if obj is None:
                return (*self._error(404, "NoSuchKey", "The specified key does not exist."), 0)
            headers = [("ETag", f'"{obj.etag}"'), ("x-oss-hash-crc64ecma", str(obj.crc)),
                       ("Last-Modified", self.date_time_string(int(obj.modified))),
                       ("x-oss-object-type", "Multipart" if "-" in obj.etag else "Normal"),
                       ("x-oss-storage-class", "Standard"),
                       ("Content-Type", "application/octet-stream")]
            if m == "HEAD":
                headers.append(("Content-Length", str(obj.size)))
                return 200, headers, b"", 0
            return (*self._error(400, "NotImplemented", "The sink keeps no data."), 0)
        if m == "GET" and not key and "bucketInfo" in q:
            body = _xml("BucketInfo", [
                "<Bucket>" + _el("AccessMonitor", "Disabled") + _el("CreationDate", _iso(0))
                + _el("CrossRegionReplication", "Disabled") + _el("DataRedundancyType", "LRS")
                + _el("ExtranetEndpoint", "sink") + _el("IntranetEndpoint", "sink")
                + _el("Location", "oss-cn-hangzhou") + _el("Name", bucket)
                + _el("ResourceGroupId", "rg-sink") + _el("StorageClass", "Standard")
                + _el("TransferAcceleration", "Disabled")
                + "<Owner>" + _el("ID", "1") + _el("DisplayName", "1") + "</Owner>"
                + "<AccessControlList>" + _el("Grant", "private") + "</AccessControlList>"
                + _el("Comment", "sink")
                + "<ServerSideEncryptionRule>" + _el("SSEAlgorithm", "None")
                + "</ServerSideEncryptionRule>" + "<BucketPolicy>" + _el("LogBucket", "")
                + _el("LogPrefix", "") + "</BucketPolicy>" + "</Bucket>"])
            return 200, [("Content-Type", "application/xml")], body, 0
        if m == "GET" and not key and "uploads" in q:  # ListMultipartUploads
            with state.lock:
                ups = list(state.uploads.items())
            prefix = q.get("prefix", "")
            items = [_el("Bucket", bucket), _el("IsTruncated", "false")]
            items += ["<Upload>" + _el("Key", u.key) + _el("UploadId", uid)
                      + _el("Initiated", _iso(0)) + "</Upload>"
                      for uid, u in ups if u.key.startswith(prefix)]
            return 200, [("Content-Type", "application/xml")], \
                _xml("ListMultipartUploadsResult", items), 0
        if m == "GET" and not key:  # ListObjects(V2): the sink lists nothing
            body = _xml("ListBucketResult", [
                _el("Name", bucket), _el("Prefix", q.get("prefix", "")),
                _el("MaxKeys", q.get("max-keys", "100")), _el("KeyCount", 0),
                _el("IsTruncated", "false")])
            return 200, [("Content-Type", "application/xml")], body, 0
        if self.command in ("PUT", "POST"):
            self._small_body()
        return (*self._error(400, "NotImplemented", "The sink does not do this."), 0)


def serve(host: str, port: int, etag_mode: str, log_path: str | None
          ) -> tuple[_Server, threading.Thread]:
    server = _Server((host, port), SinkState(etag_mode, log_path))
    thread = threading.Thread(target=server.serve_forever, name="sink", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--etag", choices=("md5", "crc"), default="md5",
                        help="md5: the real ETag (default); crc: a cheap stand-in")
    parser.add_argument("--log", default=None, help="append an access log line per request")
    args = parser.parse_args(argv)
    server, _thread = serve(args.host, args.port, args.etag, args.log)
    print(f"endpoint http://{args.host}:{server.server_port}", flush=True)
    done = threading.Event()

    def stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    server.shutdown()
    server.server_close()
    state = server.state
    print(f"sink: {state.requests} requests, {state.bytes_received} bytes received",
          file=sys.stderr, flush=True)
    state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
