"""The sandbox refuses what it does not implement (``400 NotImplemented``) and never runs such
a request as another operation: nothing unsupported changes stored data."""

from __future__ import annotations

from typing import Any

import oss2
import pytest
from oss2.models import LiveChannelInfo, LiveChannelInfoTarget, Tagging, TaggingRule

from ossdesk.sandbox.server import OSS_SUBRESOURCES
from tests.support.sandbox import SandboxInfo

KIB = 1024

# What the sandbox serves: these sub-resources are not "unsupported" on every route.
SERVED = {"uploadId", "partNumber", "uploads", "delete", "location", "bucketInfo",
          "continuation-token", "security-token", "response-content-type",
          "response-content-language", "response-cache-control", "response-content-encoding",
          "response-expires", "response-content-disposition"}


def _refused(call: Any, *args: Any, **kwargs: Any) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call(*args, **kwargs)
    exc = info.value
    assert (exc.status, exc.code) == (400, "NotImplemented"), (exc.status, exc.code, exc.body)
    assert exc.request_id  # an OSS error document, like every other error
    return exc


def _do_object(bucket: oss2.Bucket, method: str, key: str, **kwargs: Any) -> Any:
    return bucket._Bucket__do_object(method, key, **kwargs)


def _do_bucket(bucket: oss2.Bucket, method: str, **kwargs: Any) -> Any:
    return bucket._Bucket__do_bucket(method, **kwargs)


def test_the_subresource_list_covers_everything_oss2_signs() -> None:
    assert oss2.auth.Auth._subresource_key_set <= OSS_SUBRESOURCES


def test_changing_an_object_acl_is_refused_and_the_object_kept(sandbox: SandboxInfo) -> None:
    """PutObjectAcl is not implemented (GetObjectAcl is: tests/integration/
    test_sandbox_object_options.py)."""
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    _refused(bucket.put_object_acl, "k", oss2.OBJECT_ACL_PRIVATE)
    assert bucket.get_object_acl("k").acl == "default"
    assert bucket.get_object("k").read() == b"hello"


def test_object_tagging_is_refused_and_the_object_kept(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    rule = TaggingRule()
    rule.add("a", "b")
    _refused(bucket.put_object_tagging, "k", Tagging(rule))
    _refused(bucket.delete_object_tagging, "k")
    assert bucket.get_object_tagging("k").tag_set.tagging_rule == {}
    assert bucket.get_object("k").read() == b"hello"


def test_bucket_subresources_are_refused_not_listed(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    _refused(bucket.get_bucket_acl)
    exc = _refused(_do_bucket, bucket, "GET", params={"tagging": ""})
    assert b"ListBucketResult" not in exc.body


def test_symlink_live_channel_and_part_copy_store_nothing(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("target", b"t" * (100 * KIB))
    _refused(bucket.put_symlink, "target", "link")
    target = LiveChannelInfoTarget(playlist_name="test.m3u8")
    _refused(bucket.create_live_channel, "chan", LiveChannelInfo(target=target))
    upload_id = bucket.init_multipart_upload("copy").upload_id
    _refused(bucket.upload_part_copy, sandbox.bucket, "target", (0, 100 * KIB - 1), "copy",
             upload_id, 1)
    _refused(bucket.copy_object, sandbox.bucket, "target", "copied")
    assert bucket.list_parts("copy", upload_id).parts == []
    assert [o.key for o in oss2.ObjectIterator(bucket)] == ["target"]


@pytest.mark.parametrize("method", ["PUT", "POST", "GET", "DELETE"])
def test_every_unsupported_subresource_is_refused(sandbox: SandboxInfo, method: str) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    unsupported = sorted(OSS_SUBRESOURCES - SERVED)
    assert "acl" in unsupported
    for name in unsupported:
        data = b"<x/>" if method in ("PUT", "POST") else None
        if not (method == "GET" and name in ("acl", "tagging")):  # GetObjectAcl / -Tagging
            _refused(_do_object, bucket, method, "k", params={name: ""}, data=data)
        _refused(_do_bucket, bucket, method, params={name: ""}, data=data)
    assert bucket.get_object("k").read() == b"hello"
    assert [o.key for o in oss2.ObjectIterator(bucket)] == ["k"]


def test_meaning_changing_headers_are_refused(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    for header, value in (("x-oss-server-side-data-encryption", "SM4"),
                          ("x-oss-acl", "public-read"),
                          ("x-oss-symlink-target", "k"),
                          ("x-oss-copy-source", f"/{sandbox.bucket}/k")):
        _refused(bucket.put_object, "k", b"other", headers={header: value})
    assert bucket.get_object("k").read() == b"hello"


def test_half_a_part_request_is_not_a_put(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    for params in ({"partNumber": "1"}, {"uploadId": "X"}):
        with pytest.raises(oss2.exceptions.OssError) as info:
            _do_object(bucket, "PUT", "k", params=params, data=b"other")
        assert info.value.status == 400
    assert bucket.get_object("k").read() == b"hello"



def test_get_with_object_meta_is_refused_not_cut_short(sandbox: SandboxInfo) -> None:
    """GetObjectMeta is a HEAD; a GET naming it used to announce the object's size and send
    no body (the client waited, then failed with IncompleteRead)."""
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"hello")
    _refused(_do_object, bucket, "GET", "k", params={"objectMeta": ""})
    assert bucket.get_object_meta("k").content_length == 5
