"""Multipart uploads: InitiateMultipartUpload, UploadPart, ListParts and
CompleteMultipartUpload (part order, sizes and ETags checked as OSS does; the object's ETag and
CRC-64 combined from its parts)."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote
from xml.etree import ElementTree

from ossdesk.sandbox.errors import OssError, no_such_upload
from ossdesk.sandbox.formats import (
    CRC,
    el,
    encoding_type,
    int_param,
    iso_time,
    key_encoder,
    quote_etag,
    xml_doc,
)
from ossdesk.sandbox.httpd import Handler, Request, Response
from ossdesk.sandbox.objects import (
    MAX_PUT_SIZE,
    check_md5_of,
    digest_headers,
    etag_of,
    object_acl,
    object_meta,
    receive,
    refuse_overwrite,
)
from ossdesk.sandbox.store import ObjectRecord, PartRecord, UploadRecord

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer

MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10_000


def _multipart_etag(etags: Sequence[str]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in etags))  # noqa: S324 - OSS ETag
    return f"{digest.hexdigest().upper()}-{len(etags)}"


def _combine_crcs(parts: Sequence[tuple[int, int]]) -> int:
    crc = 0
    for part_crc, size in parts:
        crc = CRC.combine(crc, part_crc, size) if crc or size else part_crc
    return crc



def _malformed() -> OssError:
    return OssError(400, "MalformedXML", "The XML you provided was not well-formed or did not "
                    "validate against our published schema.")


def _find_upload(sandbox: SandboxServer, req: Request) -> UploadRecord:
    upload_id = req.q.get("uploadId", "")
    up = sandbox.store.get_upload(upload_id)
    if up is None or up.bucket != req.bucket or up.key != req.key:
        raise no_such_upload(upload_id)
    return up


def initiate(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    assert req.bucket is not None
    meta = object_meta(req)
    h.read_small_body()
    up = sandbox.store.create_upload(req.bucket, req.key, meta)
    enc = key_encoder(req.q)
    items = encoding_type(req.q)
    items += [el("Bucket", req.bucket), el("Key", enc(req.key)),
              el("UploadId", up.upload_id)]
    return Response(200, [("Content-Type", "application/xml")],
                    xml_doc("InitiateMultipartUploadResult", items))


def upload_part(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    number = int_param(req.q, "partNumber", 0, 1, MAX_PART_NUMBER)
    up = _find_upload(sandbox, req)
    blob, got = receive(sandbox, h, req, MAX_PUT_SIZE)
    etag = etag_of(sandbox, got)
    part = PartRecord(number, blob, got.size, etag, str(got.crc64), time.time())
    if not sandbox.store.put_part(up.upload_id, part):
        raise no_such_upload(up.upload_id)
    return Response(200, [("ETag", quote_etag(etag)), *digest_headers(got)])


def list_parts(sandbox: SandboxServer, req: Request) -> Response:
    up = _find_upload(sandbox, req)
    max_parts = int_param(req.q, "max-parts", 1000, 0, 1000)
    marker = int_param(req.q, "part-number-marker", 0, 0, MAX_PART_NUMBER)
    parts = [p for p in sandbox.store.list_parts(up.upload_id) if p.part_number > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    enc = key_encoder(req.q)
    items = encoding_type(req.q)
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


def complete(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    assert req.bucket is not None
    up = _find_upload(sandbox, req)
    body = h.read_small_body()
    check_md5_of(body, req)
    stored = {p.part_number: p for p in sandbox.store.list_parts(up.upload_id)}
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
            raise _malformed() from None
    if not wanted:
        raise _malformed()
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
    refuse_overwrite(sandbox, req)
    etag = _multipart_etag([p.etag for p in used])
    crc = _combine_crcs([(int(p.crc64), p.size) for p in used])
    meta = dict(up.meta)
    acl = object_acl(req)
    if acl is not None:
        meta["acl"] = acl
    rec = ObjectRecord(req.bucket, req.key, sum(p.size for p in used), etag, str(crc),
                       time.time(), "Multipart", meta, [(p.blob, p.size) for p in used])
    if not sandbox.store.complete_upload(up.upload_id, used, rec):
        raise no_such_upload(up.upload_id)
    enc = key_encoder(req.q)
    items = encoding_type(req.q)
    items += [el("Location", f"{sandbox.endpoint}/{req.bucket}/{quote(req.key)}"),
              el("Bucket", req.bucket), el("Key", enc(req.key)),
              el("ETag", quote_etag(etag))]
    return Response(200, [("Content-Type", "application/xml"), ("ETag", quote_etag(etag)),
                           ("x-oss-hash-crc64ecma", str(crc))],
                    xml_doc("CompleteMultipartUploadResult", items))
