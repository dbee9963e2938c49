"""The listings: ListBuckets, ListObjects (V1 and V2) and ListMultipartUploads, with OSS's
paging (markers, continuation tokens), prefixes, delimiters and URL encoding."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ossdesk.sandbox.errors import OssError
from ossdesk.sandbox.formats import (
    el,
    encoding_type,
    int_param,
    iso_time,
    key_encoder,
    owner_xml,
    quote_etag,
    xml_doc,
)
from ossdesk.sandbox.httpd import Request, Response

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


_K = TypeVar("_K", bound=_Keyed)


@dataclass
class _Page(Generic[_K]):
    entries: list[_K] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str = ""  # the last key or common prefix on the page

    @property
    def count(self) -> int:
        return len(self.entries) + len(self.prefixes)


def _page(records: Iterable[_K], prefix: str, delimiter: str, after: str | None,
          limit: int) -> _Page[_K]:
    """One page of a listing, as OSS pages it: a key with ``delimiter`` after ``prefix`` stands
    as its common prefix (once, and not when that prefix is at or before ``after``); entries
    and common prefixes together count against ``limit``."""
    page: _Page[_K] = _Page()
    for record in records:
        key = record.key
        i = key.find(delimiter, len(prefix)) if delimiter else -1
        cp = key[: i + len(delimiter)] if i >= 0 else None
        if cp is not None and ((after and cp <= after)
                               or (page.prefixes and page.prefixes[-1] == cp)):
            continue
        if page.count >= limit:
            page.truncated = True
            break
        if cp is None:
            page.entries.append(record)
            page.last = key
        else:
            page.prefixes.append(cp)
            page.last = cp
    return page


def list_buckets(sandbox: SandboxServer, req: Request) -> Response:
    prefix = req.q.get("prefix", "")
    marker = req.q.get("marker", "")
    max_keys = int_param(req.q, "max-keys", 100, 1, 1000)
    names = [(n, c) for n, c in sandbox.store.buckets().items()
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
    items += [owner_xml(), "<Buckets>"]
    for name, created in page:
        items.append(
            "<Bucket>" + el("CreationDate", iso_time(created))
            + el("ExtranetEndpoint", sandbox.host_id()) + el("IntranetEndpoint", sandbox.host_id())
            + el("Location", "oss-" + sandbox.region) + el("Name", name)
            + el("Region", sandbox.region) + el("StorageClass", "Standard") + "</Bucket>")
    items.append("</Buckets>")
    return Response(200, [("Content-Type", "application/xml")],
                    xml_doc("ListAllMyBucketsResult", items))


def list_objects(sandbox: SandboxServer, req: Request, v2: bool) -> Response:
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
    page = _page(sandbox.store.iter_objects(req.bucket, prefix, after), prefix, delimiter,
                 after, max_keys)
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
    items += encoding_type(q)
    items.append(el("IsTruncated", "true" if page.truncated else "false"))
    if page.truncated:
        if v2:
            token = base64.urlsafe_b64encode(page.last.encode("utf-8")).decode()
            items.append(el("NextContinuationToken", token))
        else:
            items.append(el("NextMarker", enc(page.last)))
    if v2:
        items.append(el("KeyCount", page.count))
    owner = owner_xml() if (not v2 or q.get("fetch-owner") == "true") else ""
    for obj in page.entries:
        items.append(
            "<Contents>" + el("Key", enc(obj.key)) + el("LastModified", iso_time(obj.modified))
            + el("ETag", quote_etag(obj.etag)) + el("Type", obj.type)
            + el("Size", obj.size)
            + el("StorageClass", obj.meta.get("storage-class", "Standard"))
            + owner + "</Contents>")
    for cp in page.prefixes:
        items.append("<CommonPrefixes>" + el("Prefix", enc(cp)) + "</CommonPrefixes>")
    return Response(200, [("Content-Type", "application/xml")],
                    xml_doc("ListBucketResult", items))


def list_uploads(sandbox: SandboxServer, req: Request) -> Response:
    assert req.bucket is not None
    q = req.q
    enc = key_encoder(q)
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter", "")
    key_marker = q.get("key-marker", "")
    id_marker = q.get("upload-id-marker", "")
    max_uploads = int_param(q, "max-uploads", 1000, 0, 1000)
    # OSS: after key-marker, the uploads of key-marker whose upload id is greater than
    # upload-id-marker (present or not: it may have been completed meanwhile).
    wanted = (
        up for up in sandbox.store.list_uploads(req.bucket)
        if up.key.startswith(prefix)
        and (not key_marker or up.key > key_marker
             or (up.key == key_marker and bool(id_marker) and up.upload_id > id_marker)))
    page = _page(wanted, prefix, delimiter, key_marker, max_uploads)
    uploads, prefixes = page.entries, page.prefixes
    next_key = uploads[-1].key if uploads else ""
    next_id = uploads[-1].upload_id if uploads else ""
    if prefixes and (not uploads or prefixes[-1] > next_key):
        next_key, next_id = prefixes[-1], ""
    items = encoding_type(q)
    items += [
        el("Bucket", req.bucket), el("KeyMarker", enc(key_marker)),
        el("UploadIdMarker", id_marker), el("NextKeyMarker", enc(next_key)),
        el("NextUploadIdMarker", next_id), el("Delimiter", enc(delimiter)),
        el("Prefix", enc(prefix)), el("MaxUploads", max_uploads),
        el("IsTruncated", "true" if page.truncated else "false"),
    ]
    for up in uploads:
        items.append(
            "<Upload>" + el("Key", enc(up.key)) + el("UploadId", up.upload_id)
            + el("StorageClass", up.meta.get("storage-class", "Standard"))
            + el("Initiated", iso_time(up.initiated)) + "</Upload>")
    for cp in page.prefixes:
        items.append("<CommonPrefixes>" + el("Prefix", enc(cp)) + "</CommonPrefixes>")
    return Response(200, [("Content-Type", "application/xml")],
                    xml_doc("ListMultipartUploadsResult", items))
