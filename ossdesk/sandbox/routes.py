"""Which OSS operation a request is: the service, bucket and object routes, the sub-resources
and headers each route serves (any other is refused with ``NotImplemented``), the key rule and
the signature check, then the call into ``buckets``, ``listing``, ``objects`` or ``multipart``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ossdesk.sandbox import auth
from ossdesk.sandbox.buckets import bucket_info, delete_multiple, put_bucket
from ossdesk.sandbox.errors import OssError, no_such_bucket, no_such_upload
from ossdesk.sandbox.formats import xml_doc
from ossdesk.sandbox.httpd import Handler, Request, Response
from ossdesk.sandbox.listing import list_buckets, list_objects, list_uploads
from ossdesk.sandbox.multipart import complete, initiate, list_parts, upload_part
from ossdesk.sandbox.objects import (
    CREATION_HEADERS,
    OBJECT_ACL,
    get_object,
    get_object_acl,
    get_object_tagging,
    put_object,
)

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer

MAX_KEY_BYTES = 1023
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
        creates = scope == "object" and (
            (req.method == "PUT" and "uploadId" not in req.q and "partNumber" not in req.q)
            or (req.method == "POST" and "uploads" in req.q))
        completes = scope == "object" and req.method == "POST" and "uploadId" in req.q
        for name in req.headers:
            taken = creates or (completes and name == OBJECT_ACL)
            if name.startswith(_UNSUPPORTED_WRITE_HEADERS) or (
                    name.startswith(CREATION_HEADERS) and not taken):
                raise OssError(400, "NotImplemented",
                               f"The sandbox does not implement the header '{name}' in a "
                               f"{req.method} to {target}; nothing was changed.")


def handle(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    if req.bucket is None:
        _authenticate(sandbox, req)
        _refuse_unsupported(req, "service")
        if req.method == "GET":
            return list_buckets(sandbox, req)
        raise OssError(400, "NotImplemented", "This operation is not supported here.")
    created = sandbox.store.bucket_created(req.bucket)
    if req.key == "":
        if req.method == "PUT" and not req.q:
            _authenticate(sandbox, req)
            _refuse_unsupported(req, "bucket")
            return put_bucket(sandbox, h, req)
        if created is None:
            raise no_such_bucket(req.bucket)
        _authenticate(sandbox, req)
        _refuse_unsupported(req, "bucket")
        return _bucket_op(sandbox, h, req, created)
    if created is None:
        raise no_such_bucket(req.bucket)
    key_bytes = len(req.key.encode("utf-8"))
    if key_bytes > MAX_KEY_BYTES or req.key[0] in "/\\":
        raise OssError(400, "InvalidObjectName", "The specified object is not valid.",
                       Key=req.key[:64])
    _authenticate(sandbox, req)
    _refuse_unsupported(req, "object")
    return _object_op(sandbox, h, req)


def _authenticate(sandbox: SandboxServer, req: Request) -> None:
    signed = auth.SignedRequest(req.method, req.bucket, req.key, req.params, req.headers)
    try:
        auth.verify(signed, sandbox.credentials, sandbox.region)
    except auth.AuthError as exc:
        raise OssError(exc.status, exc.code, exc.message, **exc.extra) from None


def _bucket_op(sandbox: SandboxServer, h: Handler, req: Request, created: float) -> Response:
    q = req.q
    if req.method == "GET":
        if "bucketInfo" in q:
            return bucket_info(sandbox, req, created)
        if "location" in q:
            return Response(200, [("Content-Type", "application/xml")],
                            xml_doc("LocationConstraint", ["oss-" + sandbox.region]))
        if "uploads" in q:
            return list_uploads(sandbox, req)
        if q.get("list-type") == "2":
            return list_objects(sandbox, req, v2=True)
        return list_objects(sandbox, req, v2=False)
    if req.method == "POST" and "delete" in q:
        return delete_multiple(sandbox, h, req)
    raise OssError(400, "NotImplemented", "This bucket operation is not supported here.")


def _object_op(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    q = req.q
    m = req.method
    if m == "PUT":
        if "uploadId" in q and "partNumber" in q:
            return upload_part(sandbox, h, req)
        if "uploadId" in q or "partNumber" in q:
            raise OssError(400, "InvalidArgument",
                           "UploadPart needs both uploadId and partNumber.",
                           ArgumentName="partNumber" if "uploadId" in q else "uploadId")
        return put_object(sandbox, h, req)
    if m in ("GET", "HEAD"):
        if "uploadId" in q and m == "GET":
            return list_parts(sandbox, req)
        if "acl" in q and m == "GET":
            return get_object_acl(sandbox, req)
        if "tagging" in q and m == "GET":
            return get_object_tagging(sandbox, req)
        return get_object(sandbox, req, head=m == "HEAD", meta_only="objectMeta" in q)
    if m == "DELETE":
        if "uploadId" in q:
            if not sandbox.store.delete_upload(q["uploadId"]):
                raise no_such_upload(q["uploadId"])
            return Response(204)
        sandbox.store.delete_object(req.bucket or "", req.key)
        return Response(204)
    if m == "POST":
        if "uploads" in q:
            return initiate(sandbox, h, req)
        if "uploadId" in q:
            return complete(sandbox, h, req)
    raise OssError(400, "NotImplemented", "This object operation is not supported here.")
