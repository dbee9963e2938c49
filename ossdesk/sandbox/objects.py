"""Object operations: PutObject, GetObject / HeadObject / GetObjectMeta (conditions, ranges,
response overrides), and receiving a body (Content-MD5 and CRC-64 checks, the ETag, the
benchmark modes)."""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import os
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_tz
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ossdesk.sandbox.errors import OssError, no_such_key
from ossdesk.sandbox.formats import el, http_date, owner_xml, quote_etag, xml_doc
from ossdesk.sandbox.httpd import Handler, Received, Request, Response
from ossdesk.sandbox.store import ObjectRecord

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer

MAX_PUT_SIZE = 5 * 1024**3
# Blob ids of bodies received in --discard mode: no file exists for them.
DISCARDED_BLOB_PREFIX = "discarded-"
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
KEPT_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language",
                "expires")
# Headers that describe the object a PutObject or InitiateMultipartUpload creates: stored and
# answered (HeadObject, GetObject, GetObjectAcl, GetObjectTagging). The object ACL is also
# taken by CompleteMultipartUpload. Anywhere else they are refused as not implemented.
OBJECT_ACL = "x-oss-object-acl"
CREATION_HEADERS = (OBJECT_ACL, "x-oss-tagging", "x-oss-server-side-encryption")
OBJECT_ACLS = ("default", "private", "public-read", "public-read-write")
SSE_ALGORITHMS = ("AES256", "KMS")
MAX_OBJECT_TAGS = 10


def object_meta(req: Request) -> dict[str, Any]:
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
    acl = object_acl(req)
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


def object_acl(req: Request) -> str | None:
    """The ``x-oss-object-acl`` of a request (None without one); a name OSS does not know
    is refused."""
    if OBJECT_ACL not in req.headers:
        return None
    acl = req.header(OBJECT_ACL)
    if acl not in OBJECT_ACLS:
        raise OssError(400, "InvalidArgument", "no such object access control exists",
                       ArgumentName=OBJECT_ACL, ArgumentValue=acl)
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


def get_object_acl(sandbox: SandboxServer, req: Request) -> Response:
    assert req.bucket is not None
    obj = sandbox.store.get_object(req.bucket, req.key)
    if obj is None:
        raise no_such_key(req.key)
    return Response(200, [("Content-Type", "application/xml")], xml_doc(
        "AccessControlPolicy", [owner_xml(), "<AccessControlList>"
                                + el("Grant", obj.meta.get("acl", "default"))
                                + "</AccessControlList>"]))


def get_object_tagging(sandbox: SandboxServer, req: Request) -> Response:
    assert req.bucket is not None
    obj = sandbox.store.get_object(req.bucket, req.key)
    if obj is None:
        raise no_such_key(req.key)
    tags = "".join("<Tag>" + el("Key", k) + el("Value", v) + "</Tag>"
                   for k, v in obj.meta.get("tags", []))
    return Response(200, [("Content-Type", "application/xml")],
                    xml_doc("Tagging", ["<TagSet>" + tags + "</TagSet>"]))


def check_md5_of(body: bytes, req: Request) -> None:
    expected = _content_md5(req)
    if expected is not None and hashlib.md5(body).digest() != expected:  # noqa: S324
        raise _md5_mismatch()


def _md5_mismatch() -> OssError:
    return OssError(400, "InvalidDigest",
                    "The Content-MD5 you specified did not match what we received.")


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


def _request_crc(req: Request) -> int | None:
    raw = req.header("x-oss-hash-crc64ecma")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise OssError(400, "InvalidArgument", "x-oss-hash-crc64ecma is not a number.") \
            from None


def etag_of(sandbox: SandboxServer, got: Received) -> str:
    if sandbox.fast_etag or got.md5 is None:
        # 32 hex digits like an MD5, stable and unique per content in practice.
        return f"{got.crc64:016X}{got.size:016X}"
    return got.md5.hex().upper()


def digest_headers(got: Received) -> list[tuple[str, str]]:
    headers = [("x-oss-hash-crc64ecma", str(got.crc64))]
    if got.md5 is not None:
        headers.append(("Content-MD5", base64.b64encode(got.md5).decode()))
    return headers


def receive(sandbox: SandboxServer, h: Handler, req: Request,
            max_size: int) -> tuple[str, Received]:
    expected_md5 = _content_md5(req)
    expected_crc = _request_crc(req)
    # Correctness first: a Content-MD5 sent is always checked, in every mode.
    md5 = not sandbox.fast_etag or expected_md5 is not None
    if sandbox.discard:
        blob = DISCARDED_BLOB_PREFIX + os.urandom(16).hex()
        got = h.receive_to(None, max_size, md5=md5)
        _check_digests(got, expected_md5, expected_crc)
        return blob, got
    blob, path = sandbox.store.new_incoming()
    try:
        got = h.receive_to(path, max_size, md5=md5)
        _check_digests(got, expected_md5, expected_crc)
        sandbox.store.commit_incoming(blob)
    except BaseException:
        sandbox.store.discard_incoming(blob)
        raise
    return blob, got


def _check_digests(got: Received, expected_md5: bytes | None,
                   expected_crc: int | None) -> None:
    if expected_md5 is not None and got.md5 != expected_md5:
        raise _md5_mismatch()
    if expected_crc is not None and got.crc64 != expected_crc:
        raise OssError(400, "InvalidDigest",
                       "The CRC64 you specified did not match what we received.",
                       ClientCRC=str(expected_crc), ServerCRC=str(got.crc64))


def refuse_overwrite(sandbox: SandboxServer, req: Request) -> None:
    """``x-oss-forbid-overwrite: true`` and the key exists: 409 FileAlreadyExists."""
    assert req.bucket is not None
    if (req.header("x-oss-forbid-overwrite").lower() == "true"
            and sandbox.store.object_exists(req.bucket, req.key)):
        raise OssError(409, "FileAlreadyExists", "The object you specified already exists.")


def put_object(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    assert req.bucket is not None
    meta = object_meta(req)
    refuse_overwrite(sandbox, req)
    blob, got = receive(sandbox, h, req, MAX_PUT_SIZE)
    etag = etag_of(sandbox, got)
    rec = ObjectRecord(req.bucket, req.key, got.size, etag, str(got.crc64), time.time(),
                       "Normal", meta, [(blob, got.size)])
    sandbox.store.put_object(rec)
    return Response(200, [("ETag", quote_etag(etag)), *digest_headers(got)])


def get_object(sandbox: SandboxServer, req: Request, head: bool, meta_only: bool) -> Response:
    assert req.bucket is not None
    # An overwrite may delete the blobs between the lookup and the opening: look again.
    for _ in range(5):
        obj = sandbox.store.get_object(req.bucket, req.key)
        if obj is None:
            raise no_such_key(req.key)
        try:
            return _object_response(sandbox, req, obj, head, meta_only)
        except FileNotFoundError:
            continue
    raise OssError(503, "ServiceUnavailable", "The object kept changing while it was "
                   "being read; please try again.")


def _object_response(sandbox: SandboxServer, req: Request, obj: ObjectRecord, head: bool,
                     meta_only: bool) -> Response:
    headers = [
        ("ETag", quote_etag(obj.etag)),
        ("Last-Modified", http_date(obj.modified)),
        ("x-oss-hash-crc64ecma", obj.crc64),
    ]
    not_modified = _check_conditions(req, obj)
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
    rng = _parse_range(req.header("range"), obj.size, standard)
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
                fh = sandbox.store.blob_path(blob).open("rb")
                assert response.pieces is not None
                response.pieces.append((fh, lo - pos, hi - lo))
            pos += size
    except BaseException:
        response.close()
        raise
    return response


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
