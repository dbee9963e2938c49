"""The scripted requests, in order. Each case writes only under the run's prefix.

A case is a function of a :class:`~tests.conformance.client.Conn` that sends requests and records
each answer; its ``note`` is shown next to a difference that is known and accepted (the sandbox
does not implement that request, say). Bodies are fixed bytes, so ETags and CRC-64s are the
same on every faithful server.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import oss2
from oss2.models import PartInfo
from oss2.xml_utils import to_complete_upload_request

from tests.conformance.client import Conn

__all__ = ["CASES", "Case"]

KiB = 1024
PART = 100 * KiB  # the smallest part OSS accepts (but the last)


def payload(seed: int, size: int) -> bytes:
    """Fixed bytes: the same on every run and every machine."""
    return random.Random(seed).randbytes(size)


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Conn], None]
    note: str = ""


# --- objects ----------------------------------------------------------------------------------


def put_get_delete(c: Conn) -> None:
    b = c.bucket()
    key = c.key("object.bin")
    data = payload(1, 3000)
    c.call("PutObject", lambda: b.put_object(key, data))
    c.call("PutObject again (overwrite)", lambda: b.put_object(key, data))
    c.raw("GetObject", "GET", key, body=True)
    c.raw("HeadObject", "HEAD", key)
    c.raw("GetObjectMeta", "HEAD", key, params={"objectMeta": ""})
    c.call("PutObject empty", lambda: b.put_object(c.key("empty"), b""))
    c.raw("GetObject empty", "GET", c.key("empty"), body=True)
    c.raw("PutObject forbid-overwrite on existing", "PUT", key, data=data,
          headers={"x-oss-forbid-overwrite": "true"})
    c.raw("PutObject forbid-overwrite on new", "PUT", c.key("fresh"), data=data,
          headers={"x-oss-forbid-overwrite": "true"})
    c.call("DeleteObject", lambda: b.delete_object(key))
    c.raw("GetObject deleted", "GET", key)
    c.raw("HeadObject deleted", "HEAD", key)
    c.call("DeleteObject missing", lambda: b.delete_object(key))
    c.raw("GetObject never written", "GET", c.key("never"))
    c.call("DeleteMultipleObjects", lambda: b.batch_delete_objects(
        [c.key("empty"), c.key("fresh"), c.key("never")]),
        lambda r: {"deleted": sorted(c.rel(k) for k in r.deleted_keys)})


def digests(c: Conn) -> None:
    key = c.key("digest.bin")
    data = payload(2, 2000)
    import base64
    import hashlib

    from ossdesk.core.checksum import crc64

    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    c.raw("PutObject right Content-MD5", "PUT", key, data=data, headers={"Content-MD5": md5})
    c.raw("PutObject wrong Content-MD5", "PUT", key, data=data,
          headers={"Content-MD5": wrong_md5})
    c.raw("PutObject malformed Content-MD5", "PUT", key, data=data,
          headers={"Content-MD5": "not-base64"})
    c.raw("PutObject right x-oss-hash-crc64ecma", "PUT", key, data=data,
          headers={"x-oss-hash-crc64ecma": str(crc64(data))})
    c.raw("PutObject wrong x-oss-hash-crc64ecma", "PUT", key, data=data,
          headers={"x-oss-hash-crc64ecma": str(crc64(data) ^ 1)})
    c.raw("GetObject after the digest puts", "GET", key, body=True)


def conditions(c: Conn) -> None:
    b = c.bucket()
    key = c.key("conditional.bin")
    data = payload(3, 1000)
    put = c.call("PutObject", lambda: b.put_object(key, data))
    etag = put.headers["ETag"] if put is not None else '"0"'
    old, future = "Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"
    for method in ("GET", "HEAD"):
        c.raw(f"{method} If-Match same", method, key, headers={"If-Match": etag})
        c.raw(f"{method} If-Match other", method, key, headers={"If-Match": '"0000"'})
        c.raw(f"{method} If-None-Match same", method, key, headers={"If-None-Match": etag})
        c.raw(f"{method} If-None-Match other", method, key, headers={"If-None-Match": '"0000"'})
        c.raw(f"{method} If-Modified-Since 1970", method, key,
              headers={"If-Modified-Since": old})
        c.raw(f"{method} If-Modified-Since 2100", method, key,
              headers={"If-Modified-Since": future})
        c.raw(f"{method} If-Unmodified-Since 1970", method, key,
              headers={"If-Unmodified-Since": old})
        c.raw(f"{method} If-Unmodified-Since 2100", method, key,
              headers={"If-Unmodified-Since": future})
    c.raw("GET If-Match other + If-None-Match other", "GET", key,
          headers={"If-Match": '"0000"', "If-None-Match": '"0000"'})


def ranges(c: Conn) -> None:
    b = c.bucket()
    key = c.key("range.bin")
    c.call("PutObject 1000 bytes", lambda: b.put_object(key, payload(4, 1000)))
    for spec in ("bytes=0-9", "bytes=10-", "bytes=-5", "bytes=990-2000", "bytes=999-999",
                 "bytes=1000-1010", "bytes=5-2", "bytes=abc", "bytes=0-1,5-6"):
        c.raw(f"GET Range {spec}", "GET", key, headers={"Range": spec}, body=True)
    for spec in ("bytes=1000-1010", "bytes=990-2000"):
        c.raw(f"GET Range {spec} x-oss-range-behavior standard", "GET", key, body=True,
              headers={"Range": spec, "x-oss-range-behavior": "standard"})
    c.raw("HEAD Range bytes=0-9", "HEAD", key, headers={"Range": "bytes=0-9"})


# --- multipart --------------------------------------------------------------------------------


def _initiate(c: Conn, label: str, key: str) -> str | None:
    b = c.bucket()
    result = c.call(label, lambda: b.init_multipart_upload(key),
                    lambda r: {"upload": c.upload_token(r.upload_id)})
    return None if result is None else str(result.upload_id)


def _parts_fields(c: Conn) -> Callable[[Any], dict[str, object]]:
    def fields(r: Any) -> dict[str, object]:
        return {
            "parts": [f"{p.part_number}:{p.size}:{p.etag}" for p in r.parts],
            "truncated": r.is_truncated,
            "next": r.next_marker,
        }
    return fields


def _complete_raw(c: Conn, label: str, key: str, upload: str, parts: list[PartInfo]) -> None:
    body = to_complete_upload_request(parts)
    c.raw(label, "POST", key, params={"uploadId": upload}, data=body,
          headers={"Content-Type": "application/xml"})


def multipart_flow(c: Conn) -> None:
    b = c.bucket()
    key = c.key("multipart.bin")
    upload = _initiate(c, "InitiateMultipartUpload", key)
    if upload is None:
        return
    one, two, three = payload(10, PART), payload(11, PART), payload(12, 5000)
    # Out of order: 3, 1, 2, and part 2 sent twice (the second one counts).
    res3 = c.call("UploadPart 3 (first)", lambda: b.upload_part(key, upload, 3, three))
    res1 = c.call("UploadPart 1", lambda: b.upload_part(key, upload, 1, one))
    c.call("UploadPart 2 (other bytes)", lambda: b.upload_part(key, upload, 2, payload(13, PART)))
    res2 = c.call("UploadPart 2 (again)", lambda: b.upload_part(key, upload, 2, two))
    marker = ""
    for page in range(1, 5):
        result = c.call(f"ListParts max-parts=1 page {page}",
                        partial(b.list_parts, key, upload, marker=marker, max_parts=1),
                        _parts_fields(c))
        if result is None or not result.is_truncated:
            break
        marker = str(result.next_marker)
    c.call("ListParts part-number-marker=1", lambda: b.list_parts(key, upload, marker="1"),
           _parts_fields(c))
    if res1 is None or res2 is None or res3 is None:
        return
    good = [PartInfo(1, res1.etag), PartInfo(2, res2.etag), PartInfo(3, res3.etag)]
    # oss2 sorts the parts it is given: the wrong lists are sent as raw XML.
    _complete_raw(c, "CompleteMultipartUpload parts out of order", key, upload,
                  [good[1], good[0], good[2]])
    _complete_raw(c, "CompleteMultipartUpload wrong ETag", key, upload,
                  [good[0], PartInfo(2, "0123456789ABCDEF0123456789ABCDEF"), good[2]])
    _complete_raw(c, "CompleteMultipartUpload part never uploaded", key, upload,
                  [*good, PartInfo(4, res1.etag)])
    _complete_raw(c, "CompleteMultipartUpload duplicate part", key, upload,
                  [good[0], good[0], *good[1:]])
    c.call("CompleteMultipartUpload", lambda: b.complete_multipart_upload(key, upload, good))
    c.raw("GetObject of the completed upload", "GET", key, body=True)
    c.raw("HeadObject of the completed upload", "HEAD", key)
    c.call("ListParts after Complete", lambda: b.list_parts(key, upload), _parts_fields(c))
    c.call("CompleteMultipartUpload again",
           lambda: b.complete_multipart_upload(key, upload, good))
    c.call("AbortMultipartUpload after Complete",
           lambda: b.abort_multipart_upload(key, upload))


def multipart_subset(c: Conn) -> None:
    b = c.bucket()
    key = c.key("subset.bin")
    upload = _initiate(c, "InitiateMultipartUpload", key)
    if upload is None:
        return
    res1 = c.call("UploadPart 1", lambda: b.upload_part(key, upload, 1, payload(20, PART)))
    c.call("UploadPart 2", lambda: b.upload_part(key, upload, 2, payload(21, PART)))
    res3 = c.call("UploadPart 3", lambda: b.upload_part(key, upload, 3, payload(22, 700)))
    if res1 is None or res3 is None:
        return
    # Only parts 1 and 3: part 2 was uploaded but is left out of the object.
    c.call("CompleteMultipartUpload parts 1 and 3",
           lambda: b.complete_multipart_upload(
               key, upload, [PartInfo(1, res1.etag), PartInfo(3, res3.etag)]))
    c.raw("GetObject", "GET", key, body=True)


def multipart_too_small(c: Conn) -> None:
    b = c.bucket()
    key = c.key("small-parts.bin")
    upload = _initiate(c, "InitiateMultipartUpload", key)
    if upload is None:
        return
    res1 = c.call("UploadPart 1 (1000 bytes)", lambda: b.upload_part(key, upload, 1,
                                                                      payload(30, 1000)))
    res2 = c.call("UploadPart 2 (1000 bytes)", lambda: b.upload_part(key, upload, 2,
                                                                      payload(31, 1000)))
    if res1 is not None and res2 is not None:
        parts = [PartInfo(1, res1.etag), PartInfo(2, res2.etag)]
        c.call("CompleteMultipartUpload with a small first part",
               lambda: b.complete_multipart_upload(key, upload, parts))
    c.call("AbortMultipartUpload", lambda: b.abort_multipart_upload(key, upload))
    c.call("AbortMultipartUpload again", lambda: b.abort_multipart_upload(key, upload))
    c.call("UploadPart after Abort", lambda: b.upload_part(key, upload, 1, payload(30, 1000)))
    c.call("ListParts after Abort", lambda: b.list_parts(key, upload), _parts_fields(c))
    c.raw("GetObject of the aborted upload's key", "GET", key)


def multipart_bad_ids(c: Conn) -> None:
    b = c.bucket()
    key = c.key("bad-ids.bin")
    unknown = "0004B9894A22E5B1888A1E29F8236E2D"
    c.call("UploadPart unknown upload id", lambda: b.upload_part(key, unknown, 1, b"x"))
    c.call("ListParts unknown upload id", lambda: b.list_parts(key, unknown), _parts_fields(c))
    c.call("CompleteMultipartUpload unknown upload id",
           lambda: b.complete_multipart_upload(key, unknown, [PartInfo(1, '"00"')]))
    c.call("AbortMultipartUpload unknown upload id",
           lambda: b.abort_multipart_upload(key, unknown))
    upload = _initiate(c, "InitiateMultipartUpload", key)
    if upload is None:
        return
    for number in ("0", "10001", "x"):
        c.raw(f"UploadPart partNumber={number}", "PUT", key, data=b"x",
              params={"uploadId": upload, "partNumber": number})
    c.raw("UploadPart 10000", "PUT", key, data=b"x",
          params={"uploadId": upload, "partNumber": "10000"})
    c.call("UploadPart of another key's upload id",
           lambda: b.upload_part(c.key("other-key.bin"), upload, 1, b"x"))
    c.call("CompleteMultipartUpload with no parts",
           lambda: b.complete_multipart_upload(key, upload, []))
    c.call("AbortMultipartUpload", lambda: b.abort_multipart_upload(key, upload))


# --- listings ---------------------------------------------------------------------------------

_LIST_NAMES = ("a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "d.txt", "e f.txt", "g+h.txt",
               "\u4e2d\u6587.txt")


def _list_fields(c: Conn) -> Callable[[Any], dict[str, object]]:
    def fields(r: Any) -> dict[str, object]:
        return {
            "keys": [c.rel(o.key) for o in r.object_list],
            "prefixes": [c.rel(p) for p in r.prefix_list],
            "truncated": r.is_truncated,
            "next": c.rel(r.next_marker) if r.next_marker else "-",
        }
    return fields


def _list_v2_fields(c: Conn) -> Callable[[Any], dict[str, object]]:
    def fields(r: Any) -> dict[str, object]:
        return {
            "keys": [c.rel(o.key) for o in r.object_list],
            "prefixes": [c.rel(p) for p in r.prefix_list],
            "truncated": r.is_truncated,
            # Continuation tokens are opaque: only whether there is one must agree.
            "token": "yes" if r.next_continuation_token else "no",
            "owner": "yes" if any(o.owner for o in r.object_list) else "no",
        }
    return fields


def _put_listing_objects(c: Conn) -> None:
    b = c.bucket()
    for i, name in enumerate(_LIST_NAMES):
        b.put_object(c.key("list/" + name), payload(40 + i, 10 + i))


def list_objects(c: Conn) -> None:
    b = c.bucket()
    _put_listing_objects(c)
    prefix = c.key("list/")
    for delimiter in ("", "/"):
        marker = ""
        for page in range(1, 10):
            result = c.call(
                f"ListObjects delimiter={delimiter or '-'} max-keys=3 page {page}",
                partial(b.list_objects, prefix=prefix, delimiter=delimiter, marker=marker,
                        max_keys=3),
                _list_fields(c))
            if result is None or not result.is_truncated:
                break
            marker = result.next_marker
    c.call("ListObjects marker=b/2.txt",
           lambda: b.list_objects(prefix=prefix, marker=prefix + "b/2.txt"), _list_fields(c))
    c.call("ListObjects prefix=b/",
           lambda: b.list_objects(prefix=prefix + "b/", delimiter="/"), _list_fields(c))
    c.call("ListObjects max-keys=0", lambda: b.list_objects(prefix=prefix, max_keys=0),
           _list_fields(c))
    c.raw("ListObjects max-keys=1001", "GET", params={"prefix": prefix, "max-keys": "1001"})
    c.raw("ListObjects max-keys=-1", "GET", params={"prefix": prefix, "max-keys": "-1"})


def list_objects_v2(c: Conn) -> None:
    b = c.bucket()
    _put_listing_objects(c)
    prefix = c.key("list/")
    for delimiter in ("", "/"):
        token = ""
        for page in range(1, 10):
            result = c.call(
                f"ListObjectsV2 delimiter={delimiter or '-'} max-keys=3 page {page}",
                partial(b.list_objects_v2, prefix=prefix, delimiter=delimiter,
                        continuation_token=token, max_keys=3),
                _list_v2_fields(c))
            if result is None or not result.is_truncated:
                break
            token = result.next_continuation_token
    c.call("ListObjectsV2 start-after=b/c/3.txt",
           lambda: b.list_objects_v2(prefix=prefix, start_after=prefix + "b/c/3.txt"),
           _list_v2_fields(c))
    c.call("ListObjectsV2 fetch-owner",
           lambda: b.list_objects_v2(prefix=prefix, fetch_owner=True, max_keys=2),
           _list_v2_fields(c))
    c.raw("ListObjectsV2 bad continuation-token", "GET",
          params={"list-type": "2", "prefix": prefix, "continuation-token": "not-a-token"})


def list_uploads(c: Conn) -> None:
    b = c.bucket()
    prefix = c.key("uploads/")
    for name in ("a.bin", "b.bin", "b.bin", "c/d.bin"):
        _initiate(c, f"InitiateMultipartUpload {name}", prefix + name)

    def fields(r: Any) -> dict[str, object]:
        return {
            "uploads": [f"{c.rel(u.key)}:{c.upload_token(u.upload_id)}" for u in r.upload_list],
            "prefixes": [c.rel(p) for p in r.prefix_list],
            "truncated": r.is_truncated,
            "next-key": c.rel(r.next_key_marker) if r.next_key_marker else "-",
            "next-id": c.upload_token(r.next_upload_id_marker),
        }

    for delimiter in ("", "/"):
        key_marker, id_marker = "", ""
        for page in range(1, 8):
            result = c.call(
                f"ListMultipartUploads delimiter={delimiter or '-'} max-uploads=1 page {page}",
                partial(b.list_multipart_uploads, prefix=prefix, delimiter=delimiter,
                        key_marker=key_marker, upload_id_marker=id_marker, max_uploads=1),
                fields)
            if result is None or not result.is_truncated:
                break
            key_marker, id_marker = result.next_key_marker, result.next_upload_id_marker
    c.call("ListMultipartUploads key-marker=b.bin",
           lambda: b.list_multipart_uploads(prefix=prefix, key_marker=prefix + "b.bin"), fields)
    for upload in oss2.MultipartUploadIterator(b, prefix=prefix):
        b.abort_multipart_upload(upload.key, upload.upload_id)
    c.call("ListMultipartUploads after Abort",
           lambda: b.list_multipart_uploads(prefix=prefix), fields)


# --- signatures -------------------------------------------------------------------------------


def _other_region(region: str) -> str:
    return "cn-shanghai" if region != "cn-shanghai" else "cn-hangzhou"


def signatures(c: Conn) -> None:
    key = c.key("signed.txt")
    c.call("PutObject", lambda: c.bucket().put_object(key, payload(50, 100)))
    region = c.target.region
    c.raw("GetObject V1", "GET", key, signature="v1")
    c.raw("GetObject V4", "GET", key, signature="v4")
    c.raw("GetObject V1 wrong secret", "GET", key,
          auth=c.auth("v1", secret="wrong-secret-0000000000000000"))
    c.raw("GetObject V4 wrong secret", "GET", key,
          auth=c.auth("v4", secret="wrong-secret-0000000000000000"))
    c.raw("GetObject V1 unknown AccessKeyId", "GET", key,
          auth=c.auth("v1", key_id="LTAI5tUnknownKeyId000000"))
    c.raw("GetObject V4 unknown AccessKeyId", "GET", key,
          auth=c.auth("v4", key_id="LTAI5tUnknownKeyId000000"))
    c.raw("GetObject V4 wrong region", "GET", key, region=_other_region(region))
    c.raw("GetObject V4 signed 20 minutes ago", "GET", key, signed_ago=1200)
    c.raw("GetObject anonymous", "GET", key, sign=False)
    c.raw("PutObject anonymous", "PUT", key, data=b"x", sign=False)
    for signature in ("v1", "v4"):
        name = signature.upper()
        c.fetch_url(f"signed URL {name}", c.sign_url(signature, key, 600))
        c.fetch_url(f"signed URL {name} expired", c.sign_url(signature, key, 60,
                                                             signed_ago=3600))
        c.fetch_url(f"signed URL {name} for another key",
                    c.sign_url(signature, key, 600).replace("signed.txt", "signed.tx2"))
    c.fetch_url("signed URL V4 wrong region",
                c.sign_url("v4", key, 600, region=_other_region(region)))


# --- what the sandbox does not implement ------------------------------------------------------


def unsupported(c: Conn) -> None:
    key = c.key("plain.txt")
    c.call("PutObject", lambda: c.bucket().put_object(key, payload(60, 100)))
    c.raw("GetBucketAcl", "GET", params={"acl": ""})
    c.raw("GetBucketLifecycle", "GET", params={"lifecycle": ""})
    c.raw("GetBucketVersioning", "GET", params={"versioning": ""})
    c.raw("GetObjectAcl", "GET", key, params={"acl": ""})
    c.raw("GetObjectTagging", "GET", key, params={"tagging": ""})
    c.raw("GetSymlink", "GET", key, params={"symlink": ""})
    c.raw("CopyObject", "PUT", c.key("copy.txt"),
          headers={"x-oss-copy-source": f"/{c.target.bucket}/{key}"})
    c.raw("AppendObject", "POST", c.key("append.txt"), data=b"abc",
          params={"append": "", "position": "0"})
    c.raw("RestoreObject", "POST", key, params={"restore": ""})


CASES: list[Case] = [
    Case("objects", put_get_delete),
    Case("digests", digests),
    Case("conditions", conditions),
    Case("ranges", ranges),
    Case("multipart", multipart_flow),
    Case("multipart-subset", multipart_subset),
    Case("multipart-too-small", multipart_too_small),
    Case("multipart-bad-ids", multipart_bad_ids),
    Case("list-objects", list_objects),
    Case("list-objects-v2", list_objects_v2),
    Case("list-uploads", list_uploads),
    Case("signatures", signatures),
    Case("unsupported", unsupported,
         note="the sandbox does not implement these requests"),
]
