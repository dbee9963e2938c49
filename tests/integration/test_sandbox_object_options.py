"""The sandbox keeps what an upload says about its object (ACL, Cache-Control,
Content-Disposition, tags, server-side encryption) and answers it as OSS does; a value OSS
refuses is refused; where OSS does not take such a header, the sandbox refuses it."""

from __future__ import annotations

from typing import Any

import oss2
import pytest

from tests.support.sandbox import SandboxInfo

KIB = 1024
HEADERS = {
    "Content-Type": "text/csv",
    "Cache-Control": "max-age=60",
    "Content-Disposition": "attachment; filename=report.csv",
    "x-oss-tagging": "team=data&year%3Anote=a%20b",
    "x-oss-server-side-encryption": "KMS",
    "x-oss-server-side-encryption-key-id": "key-1234",
}


def _refused(code: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call(*args, **kwargs)
    assert (info.value.status, info.value.code) == (400, code), info.value.body


def _check(bucket: oss2.Bucket, key: str, acl: str) -> None:
    head = bucket.head_object(key).headers
    assert head["Content-Type"] == "text/csv"
    assert head["Cache-Control"] == "max-age=60"
    assert head["Content-Disposition"] == "attachment; filename=report.csv"
    assert head["x-oss-server-side-encryption"] == "KMS"
    assert head["x-oss-server-side-encryption-key-id"] == "key-1234"
    assert head["x-oss-tagging-count"] == "2"
    assert bucket.get_object(key).headers["x-oss-server-side-encryption"] == "KMS"
    assert bucket.get_object_acl(key).acl == acl
    assert bucket.get_object_tagging(key).tag_set.tagging_rule == {
        "team": "data", "year:note": "a b"}


def test_put_object_keeps_acl_headers_tags_and_encryption(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("r.csv", b"a,b\n", headers={**HEADERS, "x-oss-object-acl": "private"})
    _check(bucket, "r.csv", "private")


def test_multipart_keeps_them_with_the_acl_given_on_complete(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("m.csv", headers=HEADERS).upload_id
    part = bucket.upload_part("m.csv", upload_id, 1, b"x" * (100 * KIB))
    bucket.complete_multipart_upload("m.csv", upload_id, [oss2.models.PartInfo(1, part.etag)],
                                     headers={"x-oss-object-acl": "public-read"})
    _check(bucket, "m.csv", "public-read")


def test_an_object_without_them_says_so(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("plain", b"x")
    head = bucket.head_object("plain").headers
    assert "x-oss-server-side-encryption" not in head and "x-oss-tagging-count" not in head
    assert bucket.get_object_acl("plain").acl == "default"
    assert bucket.get_object_tagging("plain").tag_set.tagging_rule == {}


@pytest.mark.parametrize(("headers", "code"), [
    ({"x-oss-object-acl": "public"}, "InvalidArgument"),
    ({"x-oss-server-side-encryption": "AES128"}, "InvalidEncryptionAlgorithmError"),
    ({"x-oss-server-side-encryption": "AES256",
      "x-oss-server-side-encryption-key-id": "k"}, "InvalidArgument"),
    ({"x-oss-tagging": "=v"}, "InvalidArgument"),
    ({"x-oss-tagging": "&".join(f"k{i}=v" for i in range(11))}, "BadRequest"),
    ({"x-oss-server-side-encryption": "SM4"}, "NotImplemented"),
])
def test_bad_values_are_refused_and_nothing_is_stored(sandbox: SandboxInfo,
                                                      headers: dict[str, str], code: str) -> None:
    bucket = sandbox.bucket_client()
    _refused(code, bucket.put_object, "bad", b"x", headers=headers)
    _refused(code, bucket.init_multipart_upload, "bad", headers=headers)
    assert not bucket.object_exists("bad")
    assert list(bucket.list_multipart_uploads().upload_list) == []


def test_they_are_refused_where_oss_does_not_take_them(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("p").upload_id
    for header, value in (("x-oss-server-side-encryption", "AES256"),
                          ("x-oss-tagging", "a=b"), ("x-oss-object-acl", "private")):
        _refused("NotImplemented", bucket.upload_part, "p", upload_id, 1, b"x",
                 headers={header: value})
    part = bucket.upload_part("p", upload_id, 1, b"x")
    _refused("NotImplemented", bucket.complete_multipart_upload, "p", upload_id,
             [oss2.models.PartInfo(1, part.etag)], headers={"x-oss-tagging": "a=b"})
    assert bucket.list_parts("p", upload_id).parts[0].size == 1
