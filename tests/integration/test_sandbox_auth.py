"""Sandbox signature checks (V1 and V4) and STS tokens, seen through oss2."""

from __future__ import annotations

import datetime as dt
import time
from email.utils import formatdate

import oss2
import pytest

from tests.support.sandbox import SandboxInfo

SIGNATURES = ["v1", "v4"]


def make_auth(signature: str, ak: str, sk: str, token: str | None = None) -> object:
    version = oss2.AUTH_VERSION_4 if signature == "v4" else oss2.AUTH_VERSION_1
    if token is not None:
        return oss2.StsAuth(ak, sk, token, auth_version=version)
    return oss2.AuthV4(ak, sk) if signature == "v4" else oss2.Auth(ak, sk)


@pytest.mark.parametrize("signature", SIGNATURES)
def test_wrong_access_key_id(sandbox: SandboxInfo, signature: str) -> None:
    bucket = sandbox.bucket_client(auth=make_auth(signature, "LTAIunknown", "x"))
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_object("k", b"v")
    assert (exc.value.status, exc.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.head_object("k")  # HEAD: the code travels in x-oss-err
    assert exc.value.code == "InvalidAccessKeyId"


@pytest.mark.parametrize("signature", SIGNATURES)
def test_wrong_secret(sandbox: SandboxInfo, signature: str) -> None:
    bucket = sandbox.bucket_client(auth=make_auth(signature, sandbox.access_key_id, "wrong"))
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as exc:
        bucket.put_object("k", b"v")
    assert exc.value.status == 403
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bucket.list_objects()
    assert not sandbox.bucket_client(signature).object_exists("k")


def test_v4_wrong_region(sandbox: SandboxInfo) -> None:
    """As OSS: 400 InvalidArgument naming the signing region, not SignatureDoesNotMatch."""
    bucket = oss2.Bucket(sandbox.auth("v4"), sandbox.endpoint, sandbox.bucket,
                         region="us-west-1", session=sandbox.session())
    with pytest.raises(oss2.exceptions.InvalidArgument) as exc:
        bucket.get_bucket_info()
    assert (exc.value.status, exc.value.message, exc.value.ec) == (
        400, "Invalid signing region in Authorization header.", "0002-00000226")
    with pytest.raises(oss2.exceptions.ServerError) as head:
        bucket.head_object("k")  # HEAD: the same, in x-oss-err
    assert (head.value.status, head.value.code) == (400, "InvalidArgument")


@pytest.mark.parametrize("signature", SIGNATURES)
def test_signed_headers_and_params_are_covered(sandbox: SandboxInfo, signature: str) -> None:
    """Every kind of signed input (x-oss-* headers, content type, sub-resources, odd keys)
    verifies, for both signature versions."""
    bucket = sandbox.bucket_client(signature)
    key = "ä/b c/~!*'();:@&=+$,?#[]%.txt"
    bucket.put_object(key, b"v", headers={"x-oss-meta-z": "1", "x-oss-meta-a": "2",
                                          "Content-Type": "text/x-weird; charset=utf-8"})
    assert bucket.get_object(key, params={"response-content-type": "text/plain"}).read() == b"v"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"p")
    assert len(bucket.list_parts(key, upload_id, max_parts=5).parts) == 1


@pytest.mark.parametrize("signature", SIGNATURES)
def test_time_skew(sandbox: SandboxInfo, signature: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client clock 20 minutes slow gets RequestTimeTooSkewed; 10 minutes is accepted."""
    bucket = sandbox.bucket_client(signature)
    for minutes, ok in ((10, True), (20, False)):
        skewed = time.time() - minutes * 60
        monkeypatch.setattr(oss2.utils, "http_date",
                            lambda timeval=None, s=skewed: formatdate(s, usegmt=True))

        class SkewedDatetime(dt.datetime):
            @classmethod
            def utcnow(cls, s: float = skewed) -> dt.datetime:  # type: ignore[override]
                return dt.datetime.fromtimestamp(s, dt.UTC).replace(tzinfo=None)

        monkeypatch.setattr(oss2.auth, "datetime", SkewedDatetime)
        if ok:
            assert bucket.put_object("k", b"v").status == 200
        else:
            with pytest.raises(oss2.exceptions.ServerError) as exc:
                bucket.put_object("k", b"v")
            assert (exc.value.status, exc.value.code) == (403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("signature", SIGNATURES)
def test_sts_token(sandbox_factory, signature: str) -> None:
    info = sandbox_factory(security_token="sts-token-1")
    good = info.bucket_client(signature)  # info.auth() signs with the token
    assert good.put_object("k", b"v").status == 200
    assert good.get_object("k").read() == b"v"
    url = good.sign_url("GET", "k", 60)
    assert "security-token" in url

    no_token = info.bucket_client(auth=make_auth(signature, info.access_key_id,
                                                 info.access_key_secret))
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        no_token.get_object("k")
    assert (exc.value.status, exc.value.code) == (403, "InvalidAccessKeyId")

    wrong = info.bucket_client(auth=make_auth(signature, info.access_key_id,
                                              info.access_key_secret, "sts-token-2"))
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        wrong.get_object("k")
    assert exc.value.code == "InvalidAccessKeyId"

    assert info.server is not None
    info.server.faults.expire_token()
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        good.get_object("k")
    assert (exc.value.status, exc.value.code) == (403, "SecurityTokenExpired")

    # The app refreshes its STS credentials: the new token works.
    info.server.set_security_token("sts-token-3")
    fresh = info.bucket_client(auth=make_auth(signature, info.access_key_id,
                                              info.access_key_secret, "sts-token-3"))
    assert fresh.get_object("k").read() == b"v"


def test_token_rejected_when_none_configured(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client(auth=make_auth("v4", sandbox.access_key_id,
                                                  sandbox.access_key_secret, "unexpected"))
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_object("k", b"v")
    assert exc.value.code == "InvalidAccessKeyId"


def test_anonymous_request_denied(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client(auth=oss2.AnonymousAuth())
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("k", b"v")


def test_custom_key_pair(sandbox_factory) -> None:
    info = sandbox_factory(access_key_id="LTAIcustom", access_key_secret="custom-secret")
    assert info.bucket_client("v1").put_object("k", b"v").status == 200
    assert info.bucket_client("v4").get_object("k").read() == b"v"


def _v4_list_request(sandbox: SandboxInfo, *, key_only: bool) -> int:
    """ListObjects with ``marker=`` (an empty value), signed by hand: the canonical query
    writes the empty parameter as ``marker`` (oss2) or as ``marker=`` (ali-oss)."""
    import hashlib
    import hmac
    import http.client
    from urllib.parse import urlsplit

    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    scope = f"{day}/{sandbox.region}/oss/aliyun_v4_request"
    headers = {"x-oss-content-sha256": "UNSIGNED-PAYLOAD", "x-oss-date": stamp}
    if sandbox.security_token:
        headers["x-oss-security-token"] = sandbox.security_token
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    query = "marker" if key_only else "marker="
    canonical = (f"GET\n/{sandbox.bucket}/\n{query}\n{canonical_headers}\n\n"
                 "UNSIGNED-PAYLOAD")
    to_sign = (f"OSS4-HMAC-SHA256\n{stamp}\n{scope}\n"
               + hashlib.sha256(canonical.encode()).hexdigest())
    key = hmac.new(("aliyun_v4" + sandbox.access_key_secret).encode(), day.encode(),
                   hashlib.sha256).digest()
    for part in (sandbox.region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"OSS4-HMAC-SHA256 Credential={sandbox.access_key_id}/{scope},"
                                f"Signature={signature}")
    where = urlsplit(sandbox.endpoint)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)
    try:
        conn.request("GET", f"/{sandbox.bucket}/?marker=", headers=headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


@pytest.mark.parametrize("key_only", [True, False], ids=["name-only", "name-equals"])
def test_v4_empty_query_value_in_either_canonical_form(sandbox: SandboxInfo,
                                                       key_only: bool) -> None:
    # oss2 signs an empty parameter as its name alone, ali-oss as "name=": both SDKs work
    # against OSS, so the sandbox accepts both (for empty values only).
    assert _v4_list_request(sandbox, key_only=key_only) == 200
