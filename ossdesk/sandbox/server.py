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
import hashlib
import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Sequence
from email.utils import parsedate_tz
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from ossdesk.sandbox import auth
from ossdesk.sandbox.errors import (
    OSS_ERROR_EC,
    OssError,
    no_such_bucket,
    no_such_key,
    no_such_upload,
    oss_error_ec,
)
from ossdesk.sandbox.faults import Faults
from ossdesk.sandbox.formats import (
    CRC,
    el,
    escape_controls,
    http_date,
    int_param,
    iso_time,
    key_encoder,
    quote_etag,
    unescape_controls,
    xml_doc,
)
from ossdesk.sandbox.httpd import (
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    Handler,
    Received,
    Request,
    Response,
    SandboxHTTPServer,
)
from ossdesk.sandbox.store import ObjectRecord, PartRecord, Store, UploadRecord

__all__ = ["OSS_ERROR_EC", "OSS_SUBRESOURCES", "OssError", "SandboxServer", "oss_error_ec"]

log = logging.getLogger(__name__)

DEFAULT_ACCESS_KEY_ID = "LTAI5tSandboxAccessKey0"
DEFAULT_ACCESS_KEY_SECRET = "sandbox-secret-for-local-testing-only"  # noqa: S105
DEFAULT_REGION = "cn-hangzhou"
DEFAULT_BUCKET = "sandbox"
DEFAULT_PORT = 9000
TEST_HOOKS_ENV = "OSSDESK_SANDBOX_TEST_HOOKS"

MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10_000
MAX_PUT_SIZE = 5 * 1024**3
MAX_KEY_BYTES = 1023
# Blob ids of bodies received in --discard mode: no file exists for them.
DISCARDED_BLOB_PREFIX = "discarded-"
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
KEPT_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language",
                "expires")
BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
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
    ("object", "GET"): frozenset(("uploadId",)) | _RESPONSE_OVERRIDES,
    ("object", "HEAD"): frozenset(("objectMeta",)) | _RESPONSE_OVERRIDES,
    ("object", "DELETE"): frozenset(("uploadId",)),
    ("object", "POST"): frozenset(("uploads", "uploadId")),
}
_SERVED_EVERYWHERE = frozenset(("security-token",))
# Request headers that turn a write into an operation the sandbox does not implement
# (CopyObject / UploadPartCopy, symlinks, encryption, ACLs, tags): such a write is refused.
_UNSUPPORTED_WRITE_HEADERS = (
    "x-oss-copy-source", "x-oss-metadata-directive", "x-oss-symlink-target",
    "x-oss-server-side-encryption", "x-oss-server-side-data-encryption", "x-oss-tagging",
    "x-oss-object-acl", "x-oss-acl",
)


def _refuse_unsupported(req: Request, scope: str) -> None:
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
        for name in req.headers:
            if name.startswith(_UNSUPPORTED_WRITE_HEADERS):
                raise OssError(400, "NotImplemented",
                               f"The sandbox does not implement the header '{name}' in a "
                               f"{req.method} to {target}; nothing was changed.")


def _multipart_etag(etags: Sequence[str]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in etags))  # noqa: S324 - OSS ETag
    return f"{digest.hexdigest().upper()}-{len(etags)}"


def _combine_crcs(parts: Sequence[tuple[int, int]]) -> int:
    crc = 0
    for part_crc, size in parts:
        crc = CRC.combine(crc, part_crc, size) if crc or size else part_crc
    return crc



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
                raise no_such_bucket(req.bucket)
            self._authenticate(req)
            _refuse_unsupported(req, "bucket")
            return self._bucket_op(h, req, created)
        if created is None:
            raise no_such_bucket(req.bucket)
        key_bytes = len(req.key.encode("utf-8"))
        if key_bytes > MAX_KEY_BYTES or req.key[0] in "/\\":
            raise OssError(400, "InvalidObjectName", "The specified object is not valid.",
                           Key=req.key[:64])
        self._authenticate(req)
        _refuse_unsupported(req, "object")
        return self._object_op(h, req)

    def _authenticate(self, req: Request) -> None:
        signed = auth.SignedRequest(req.method, req.bucket, req.key, req.params, req.headers)
        try:
            auth.verify(signed, self.credentials, self.region)
        except auth.AuthError as exc:
            raise OssError(exc.status, exc.code, exc.message, **exc.extra) from None

    def _bucket_op(self, h: Handler, req: Request, created: float) -> Response:
        q = req.q
        if req.method == "GET":
            if "bucketInfo" in q:
                return self._bucket_info(req, created)
            if "location" in q:
                return Response(200, [("Content-Type", "application/xml")],
                                xml_doc("LocationConstraint", ["oss-" + self.region]))
            if "uploads" in q:
                return self._list_uploads(req)
            if q.get("list-type") == "2":
                return self._list_objects(req, v2=True)
            return self._list_objects(req, v2=False)
        if req.method == "POST" and "delete" in q:
            return self._delete_multiple(h, req)
        raise OssError(400, "NotImplemented", "This bucket operation is not supported here.")

    def _object_op(self, h: Handler, req: Request) -> Response:
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
            return self._get_object(req, head=m == "HEAD", meta_only="objectMeta" in q)
        if m == "DELETE":
            if "uploadId" in q:
                if not self.store.delete_upload(q["uploadId"]):
                    raise no_such_upload(q["uploadId"])
                return Response(204)
            self.store.delete_object(req.bucket or "", req.key)
            return Response(204)
        if m == "POST":
            if "uploads" in q:
                return self._initiate(h, req)
            if "uploadId" in q:
                return self._complete(h, req)
        raise OssError(400, "NotImplemented", "This object operation is not supported here.")

    # -- buckets -------------------------------------------------------------------------

    def _owner(self) -> str:
        return "<Owner>" + el("ID", _OWNER_ID) + el("DisplayName", _OWNER_ID) + "</Owner>"

    def _put_bucket(self, h: Handler, req: Request) -> Response:
        assert req.bucket is not None
        if not BUCKET_NAME_RE.match(req.bucket):
            raise OssError(400, "InvalidBucketName", "The specified bucket is not valid.",
                           BucketName=req.bucket)
        h.read_small_body()
        self.store.ensure_bucket(req.bucket)
        return Response(200, [("Location", "/" + req.bucket)])

    def _list_buckets(self, req: Request) -> Response:
        prefix = req.q.get("prefix", "")
        marker = req.q.get("marker", "")
        max_keys = int_param(req.q, "max-keys", 100, 1, 1000)
        names = [(n, c) for n, c in self.store.buckets().items()
                 if n.startswith(prefix) and n > marker]
        page, truncated = names[:max_keys], len(names) > max_keys
        items = []
        if prefix:
            items.append(el("Prefix", prefix))
        if marker:
            items.append(el("Marker", marker))
        if "max-keys" in req.q:
            items.append(el("MaxKeys", max_keys))
        if truncated:
            items += [el("IsTruncated", "true"), el("NextMarker", page[-1][0])]
        elif "max-keys" in req.q or prefix or marker:
            items.append(el("IsTruncated", "false"))
        items += [self._owner(), "<Buckets>"]
        for name, created in page:
            items.append(
                "<Bucket>" + el("CreationDate", iso_time(created))
                + el("ExtranetEndpoint", self.host_id()) + el("IntranetEndpoint", self.host_id())
                + el("Location", "oss-" + self.region) + el("Name", name)
                + el("Region", self.region) + el("StorageClass", "Standard") + "</Bucket>")
        items.append("</Buckets>")
        return Response(200, [("Content-Type", "application/xml")],
                        xml_doc("ListAllMyBucketsResult", items))

    def _bucket_info(self, req: Request, created: float) -> Response:
        body = (
            "<Bucket>" + el("AccessMonitor", "Disabled") + el("CreationDate", iso_time(created))
            + el("CrossRegionReplication", "Disabled") + el("DataRedundancyType", "LRS")
            + el("ExtranetEndpoint", self.host_id()) + el("IntranetEndpoint", self.host_id())
            + el("Location", "oss-" + self.region) + el("Name", req.bucket)
            + el("ResourceGroupId", "rg-sandbox") + el("StorageClass", "Standard")
            + el("TransferAcceleration", "Disabled") + self._owner()
            + "<AccessControlList>" + el("Grant", "private") + "</AccessControlList>"
            + el("Comment", "ossdesk sandbox")
            + "<ServerSideEncryptionRule>" + el("SSEAlgorithm", "None")
            + "</ServerSideEncryptionRule>" + "<BucketPolicy>" + el("LogBucket", "")
            + el("LogPrefix", "") + "</BucketPolicy>" + "</Bucket>"
        )
        return Response(200, [("Content-Type", "application/xml")], xml_doc("BucketInfo", [body]))

    def _list_objects(self, req: Request, v2: bool) -> Response:
        assert req.bucket is not None
        q = req.q
        enc = key_encoder(q)
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = int_param(q, "max-keys", 100, 0, 1000)
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
        items = [el("Name", req.bucket), el("Prefix", enc(prefix))]
        if v2:
            if q.get("continuation-token"):
                items.append(el("ContinuationToken", q["continuation-token"]))
            if q.get("start-after"):
                items.append(el("StartAfter", enc(q["start-after"])))
        else:
            items.append(el("Marker", enc(q.get("marker", ""))))
        items.append(el("MaxKeys", max_keys))
        items.append(el("Delimiter", enc(delimiter)))
        if q.get("encoding-type") == "url":
            items.append(el("EncodingType", "url"))
        items.append(el("IsTruncated", "true" if truncated else "false"))
        if truncated:
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8")).decode()
                items.append(el("NextContinuationToken", token))
            else:
                items.append(el("NextMarker", enc(last)))
        if v2:
            items.append(el("KeyCount", len(contents) + len(prefixes)))
        owner = self._owner() if (not v2 or q.get("fetch-owner") == "true") else ""
        for obj in contents:
            items.append(
                "<Contents>" + el("Key", enc(obj.key)) + el("LastModified", iso_time(obj.modified))
                + el("ETag", quote_etag(obj.etag)) + el("Type", obj.type)
                + el("Size", obj.size)
                + el("StorageClass", obj.meta.get("storage-class", "Standard"))
                + owner + "</Contents>")
        for cp in prefixes:
            items.append("<CommonPrefixes>" + el("Prefix", enc(cp)) + "</CommonPrefixes>")
        return Response(200, [("Content-Type", "application/xml")],
                        xml_doc("ListBucketResult", items))

    def _delete_multiple(self, h: Handler, req: Request) -> Response:
        assert req.bucket is not None
        body = h.read_small_body()
        self._check_md5_of(body, req)
        try:
            # oss2 writes a key's control characters ('a\x0c') into the XML as they are, which
            # XML 1.0 forbids; OSS deletes such keys (oss2's tests/test_chinese.py
            # test_batch_delete_objects), so they are parsed through a reversible escape.
            root = ElementTree.fromstring(  # noqa: S314 - expat expands no external entities
                escape_controls(body.decode("utf-8")))
        except (ElementTree.ParseError, UnicodeDecodeError):
            raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") \
                from None
        quiet = (root.findtext("Quiet") or "false").lower() == "true"
        enc = key_encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(el("EncodingType", "url"))
        for node in root.findall("Object"):
            key = unescape_controls(node.findtext("Key") or "")
            self.store.delete_object(req.bucket, key)
            if not quiet:
                items.append("<Deleted>" + el("Key", enc(key)) + "</Deleted>")
        return Response(200, [("Content-Type", "application/xml")],
                        xml_doc("DeleteResult", items))

    # -- objects ---------------------------------------------------------------------------

    def _object_meta(self, req: Request) -> dict[str, Any]:
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
        return meta

    def _check_md5_of(self, body: bytes, req: Request) -> None:
        expected = self._content_md5(req)
        if expected is not None and hashlib.md5(body).digest() != expected:  # noqa: S324
            raise OssError(400, "InvalidDigest",
                           "The Content-MD5 you specified did not match what we received.")

    @staticmethod
    def _content_md5(req: Request) -> bytes | None:
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
    def _request_crc(req: Request) -> int | None:
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

    def _etag_of(self, got: Received) -> str:
        if self.fast_etag or got.md5 is None:
            # 32 hex digits like an MD5, stable and unique per content in practice.
            return f"{got.crc64:016X}{got.size:016X}"
        return got.md5.hex().upper()

    @staticmethod
    def _digest_headers(got: Received) -> list[tuple[str, str]]:
        headers = [("x-oss-hash-crc64ecma", str(got.crc64))]
        if got.md5 is not None:
            headers.append(("Content-MD5", base64.b64encode(got.md5).decode()))
        return headers

    def _receive(self, h: Handler, req: Request, max_size: int) -> tuple[str, Received]:
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
    def _check_digests(got: Received, expected_md5: bytes | None,
                       expected_crc: int | None) -> None:
        if expected_md5 is not None and got.md5 != expected_md5:
            raise OssError(400, "InvalidDigest",
                           "The Content-MD5 you specified did not match what we received.")
        if expected_crc is not None and got.crc64 != expected_crc:
            raise OssError(400, "InvalidDigest",
                           "The CRC64 you specified did not match what we received.",
                           ClientCRC=str(expected_crc), ServerCRC=str(got.crc64))

    def _put_object(self, h: Handler, req: Request) -> Response:
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
        return Response(200, [("ETag", quote_etag(etag)), *self._digest_headers(got)])

    def _get_object(self, req: Request, head: bool, meta_only: bool) -> Response:
        assert req.bucket is not None
        # An overwrite may delete the blobs between the lookup and the opening: look again.
        for _ in range(5):
            obj = self.store.get_object(req.bucket, req.key)
            if obj is None:
                raise no_such_key(req.key)
            try:
                return self._object_response(req, obj, head, meta_only)
            except FileNotFoundError:
                continue
        raise OssError(503, "ServiceUnavailable", "The object kept changing while it was "
                       "being read; please try again.")

    def _object_response(self, req: Request, obj: ObjectRecord, head: bool,
                         meta_only: bool) -> Response:
        headers = [
            ("ETag", quote_etag(obj.etag)),
            ("Last-Modified", http_date(obj.modified)),
            ("x-oss-hash-crc64ecma", obj.crc64),
        ]
        not_modified = self._check_conditions(req, obj)
        if not_modified:
            return Response(304, headers, length=0)
        if meta_only:  # a HEAD: Content-Length is the object's size, no body follows
            return Response(200, headers, length=obj.size)
        headers += [
            ("Content-Type", req.q.get("response-content-type")
             or obj.meta.get("content-type", "application/octet-stream")),
            ("Accept-Ranges", "bytes"),
            ("x-oss-object-type", obj.type),
            ("x-oss-storage-class", obj.meta.get("storage-class", "Standard")),
        ]
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
            return Response(status, headers, length=length)
        if any(blob.startswith(DISCARDED_BLOB_PREFIX) for blob, _ in obj.segments):
            raise OssError(
                409, "ObjectDiscarded",
                "The object was uploaded to a sandbox running in --discard mode (a benchmark "
                "mode, not OSS-faithful): its body was checked and counted but not stored. "
                "HeadObject and GetObjectMeta report its size, ETag and CRC-64.",
                Key=req.key)
        response = Response(status, headers, pieces=[], length=length)
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
    def _check_conditions(req: Request, obj: ObjectRecord) -> bool:
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

    def _upload(self, req: Request) -> UploadRecord:
        upload_id = req.q.get("uploadId", "")
        up = self.store.get_upload(upload_id)
        if up is None or up.bucket != req.bucket or up.key != req.key:
            raise no_such_upload(upload_id)
        return up

    def _initiate(self, h: Handler, req: Request) -> Response:
        assert req.bucket is not None
        meta = self._object_meta(req)
        h.read_small_body()
        up = self.store.create_upload(req.bucket, req.key, meta)
        enc = key_encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(el("EncodingType", "url"))
        items += [el("Bucket", req.bucket), el("Key", enc(req.key)),
                  el("UploadId", up.upload_id)]
        return Response(200, [("Content-Type", "application/xml")],
                        xml_doc("InitiateMultipartUploadResult", items))

    def _upload_part(self, h: Handler, req: Request) -> Response:
        number = int_param(req.q, "partNumber", 0, 1, MAX_PART_NUMBER)
        up = self._upload(req)
        blob, got = self._receive(h, req, MAX_PUT_SIZE)
        etag = self._etag_of(got)
        part = PartRecord(number, blob, got.size, etag, str(got.crc64), time.time())
        if not self.store.put_part(up.upload_id, part):
            raise no_such_upload(up.upload_id)
        return Response(200, [("ETag", quote_etag(etag)), *self._digest_headers(got)])

    def _list_parts(self, req: Request) -> Response:
        up = self._upload(req)
        max_parts = int_param(req.q, "max-parts", 1000, 0, 1000)
        marker = int_param(req.q, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        parts = [p for p in self.store.list_parts(up.upload_id) if p.part_number > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        enc = key_encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(el("EncodingType", "url"))
        items += [
            el("Bucket", req.bucket), el("Key", enc(req.key)), el("UploadId", up.upload_id),
            el("StorageClass", up.meta.get("storage-class", "Standard")),
            el("PartNumberMarker", marker),
            el("NextPartNumberMarker", page[-1].part_number if page else marker),
            el("MaxParts", max_parts), el("IsTruncated", "true" if truncated else "false"),
        ]
        for p in page:
            items.append(
                "<Part>" + el("PartNumber", p.part_number)
                + el("LastModified", iso_time(p.modified))
                + el("ETag", quote_etag(p.etag)) + el("HashCrc64ecma", p.crc64)
                + el("Size", p.size) + "</Part>")
        return Response(200, [("Content-Type", "application/xml")],
                        xml_doc("ListPartsResult", items))

    def _complete(self, h: Handler, req: Request) -> Response:
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
        rec = ObjectRecord(req.bucket, req.key, sum(p.size for p in used), etag, str(crc),
                           time.time(), "Multipart", up.meta, [(p.blob, p.size) for p in used])
        if not self.store.complete_upload(up.upload_id, used, rec):
            raise no_such_upload(up.upload_id)
        enc = key_encoder(req.q)
        items = []
        if req.q.get("encoding-type") == "url":
            items.append(el("EncodingType", "url"))
        items += [el("Location", f"{self.endpoint}/{req.bucket}/{quote(req.key)}"),
                  el("Bucket", req.bucket), el("Key", enc(req.key)),
                  el("ETag", quote_etag(etag))]
        return Response(200, [("Content-Type", "application/xml"), ("ETag", quote_etag(etag)),
                               ("x-oss-hash-crc64ecma", str(crc))],
                        xml_doc("CompleteMultipartUploadResult", items))

    def _list_uploads(self, req: Request) -> Response:
        assert req.bucket is not None
        q = req.q
        enc = key_encoder(q)
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        key_marker = q.get("key-marker", "")
        id_marker = q.get("upload-id-marker", "")
        max_uploads = int_param(q, "max-uploads", 1000, 0, 1000)
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
            items.append(el("EncodingType", "url"))
        items += [
            el("Bucket", req.bucket), el("KeyMarker", enc(key_marker)),
            el("UploadIdMarker", id_marker), el("NextKeyMarker", enc(next_key)),
            el("NextUploadIdMarker", next_id), el("Delimiter", enc(delimiter)),
            el("Prefix", enc(prefix)), el("MaxUploads", max_uploads),
            el("IsTruncated", "true" if truncated else "false"),
        ]
        for up in uploads:
            items.append(
                "<Upload>" + el("Key", enc(up.key)) + el("UploadId", up.upload_id)
                + el("StorageClass", up.meta.get("storage-class", "Standard"))
                + el("Initiated", iso_time(up.initiated)) + "</Upload>")
        for cp in prefixes:
            items.append("<CommonPrefixes>" + el("Prefix", enc(cp)) + "</CommonPrefixes>")
        return Response(200, [("Content-Type", "application/xml")],
                        xml_doc("ListMultipartUploadsResult", items))
