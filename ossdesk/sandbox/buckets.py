"""Bucket operations: PutBucket, GetBucketInfo, DeleteMultipleObjects, and the owner every
listing names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from ossdesk.sandbox.errors import OssError
from ossdesk.sandbox.formats import (
    el,
    encoding_type,
    escape_controls,
    iso_time,
    key_encoder,
    owner_xml,
    unescape_controls,
    xml_doc,
)
from ossdesk.sandbox.httpd import Handler, Request, Response
from ossdesk.sandbox.objects import check_md5_of

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer

BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def put_bucket(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    assert req.bucket is not None
    if not BUCKET_NAME_RE.match(req.bucket):
        raise OssError(400, "InvalidBucketName", "The specified bucket is not valid.",
                       BucketName=req.bucket)
    h.read_small_body()
    sandbox.store.ensure_bucket(req.bucket)
    return Response(200, [("Location", "/" + req.bucket)])


def bucket_info(sandbox: SandboxServer, req: Request, created: float) -> Response:
    body = (
        "<Bucket>" + el("AccessMonitor", "Disabled") + el("CreationDate", iso_time(created))
        + el("CrossRegionReplication", "Disabled") + el("DataRedundancyType", "LRS")
        + el("ExtranetEndpoint", sandbox.host_id()) + el("IntranetEndpoint", sandbox.host_id())
        + el("Location", "oss-" + sandbox.region) + el("Name", req.bucket)
        + el("ResourceGroupId", "rg-sandbox") + el("StorageClass", "Standard")
        + el("TransferAcceleration", "Disabled") + owner_xml()
        + "<AccessControlList>" + el("Grant", "private") + "</AccessControlList>"
        + el("Comment", "ossdesk sandbox")
        + "<ServerSideEncryptionRule>" + el("SSEAlgorithm", "None")
        + "</ServerSideEncryptionRule>" + "<BucketPolicy>" + el("LogBucket", "")
        + el("LogPrefix", "") + "</BucketPolicy>" + "</Bucket>"
    )
    return Response(200, [("Content-Type", "application/xml")], xml_doc("BucketInfo", [body]))


def delete_multiple(sandbox: SandboxServer, h: Handler, req: Request) -> Response:
    assert req.bucket is not None
    body = h.read_small_body()
    check_md5_of(body, req)
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
    items = encoding_type(req.q)
    for node in root.findall("Object"):
        key = unescape_controls(node.findtext("Key") or "")
        sandbox.store.delete_object(req.bucket, key)
        if not quiet:
            items.append("<Deleted>" + el("Key", enc(key)) + "</Deleted>")
    return Response(200, [("Content-Type", "application/xml")],
                    xml_doc("DeleteResult", items))
