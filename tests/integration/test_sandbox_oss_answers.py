"""Where real clients look: the sandbox's answers carry what OSS's do (EC codes, the
V4 region refusal, DeleteMultipleObjects of keys oss2 url-encodes), through the
unmodified oss2."""

from __future__ import annotations

import time

import oss2
import pytest
import requests

from tests.support.sandbox import SandboxInfo


def test_no_such_key_carries_oss_ec(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    with pytest.raises(oss2.exceptions.NoSuchKey) as exc:
        bucket.get_object("missing")
    assert exc.value.ec == "0026-00000001"
    assert exc.value.headers["x-oss-ec"] == "0026-00000001"
    with pytest.raises(oss2.exceptions.NotFound) as head:
        bucket.head_object("missing")  # HEAD: the EC travels in x-oss-err and x-oss-ec
    assert head.value.headers["x-oss-ec"] == "0026-00000001"
    assert head.value.ec == "0026-00000001"


def test_no_such_bucket_and_bad_signature_carry_oss_ec(sandbox: SandboxInfo) -> None:
    with pytest.raises(oss2.exceptions.NoSuchBucket) as exc:
        sandbox.bucket_client(bucket="absent").get_object("k")
    assert exc.value.ec == "0015-00000101"
    bad = sandbox.bucket_client(auth=oss2.AuthV4(sandbox.access_key_id, "wrong"))
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as sig:
        bad.put_object("k", b"v")
    assert sig.value.ec == "0002-00000040"


def test_error_without_a_known_ec_has_none(sandbox: SandboxInfo) -> None:
    """No made-up EC: an error with no known OSS EC carries no EC element or header."""
    bucket = sandbox.bucket_client()
    with pytest.raises(oss2.exceptions.NoSuchUpload) as exc:
        bucket.list_parts("k", "0123456789ABCDEF")
    assert exc.value.ec == ""
    assert "x-oss-ec" not in exc.value.headers
    raw = requests.get(f"{sandbox.endpoint}/{sandbox.bucket}/k", timeout=10)
    assert raw.status_code == 403
    assert b"<EC>" not in raw.content and "x-oss-ec" not in raw.headers


def test_v4_signed_url_for_another_region(sandbox: SandboxInfo) -> None:
    sandbox.bucket_client().put_object("k", b"v")
    other = oss2.Bucket(sandbox.auth("v4"), sandbox.endpoint, sandbox.bucket,
                        region="cn-shanghai", session=sandbox.session())
    answer = requests.get(other.sign_url("GET", "k", 600), timeout=10)
    assert answer.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in answer.content
    assert b"<Message>Invalid signing region in Authorization header.</Message>" in (
        answer.content)


def test_v4_empty_signing_region(sandbox: SandboxInfo) -> None:
    """A V4 Authorization header whose credential scope has no region (raw HTTP: oss2
    refuses to sign without one)."""
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    credential = f"{sandbox.access_key_id}/{date[:8]}//oss/aliyun_v4_request"
    answer = requests.get(f"{sandbox.endpoint}/{sandbox.bucket}/k", timeout=10, headers={
        "x-oss-date": date, "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "Authorization": f"OSS4-HMAC-SHA256 Credential={credential},Signature={'0' * 64}"})
    assert answer.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in answer.content
    assert b"<Message>Invalid signing region in Authorization header.</Message>" in (
        answer.content)
    assert answer.headers["x-oss-ec"] == "0002-00000226"


def test_batch_delete_of_keys_with_control_characters(sandbox: SandboxInfo) -> None:
    """oss2 writes control characters into the Delete XML as they are (XML 1.0 forbids
    them); OSS deletes those keys and answers them url-encoded (oss2's own
    tests/test_chinese.py), so does the sandbox."""
    bucket = sandbox.bucket_client()
    keys = ["a\x0c", "中文!@#$%^&*()-=文件\x0c-2.txt", "<hello>", "x\x01\x1f\ue000\ue101y"]
    for key in keys:
        bucket.put_object(key, b"v")
    bucket.put_object("a", b"kept")
    result = bucket.batch_delete_objects(keys)
    assert sorted(result.deleted_keys) == sorted(keys)
    for key in keys:
        assert not bucket.object_exists(key)
    assert bucket.get_object("a").read() == b"kept"


def test_batch_delete_still_refuses_broken_xml(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    for body in (b"<Delete><Object><Key>k</Key></Object>", b"<Delete>\xff</Delete>"):
        with pytest.raises(oss2.exceptions.ServerError) as exc:
            bucket._do("POST", bucket.bucket_name, "", data=body, params={"delete": ""})
        assert (exc.value.status, exc.value.code) == (400, "MalformedXML")
