"""OssClient against the sandbox over real HTTP, with the unmodified oss2 underneath:
every method with both signature versions, streamed bodies, and the classification of
real server and network errors."""

from __future__ import annotations

import http.server
import logging
import random
import socket
import ssl
import subprocess
import threading
import time
import types
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

import ossdesk.core.oss as oss_module
from ossdesk.core.checksum import combine_parts, crc64
from ossdesk.core.oss import (
    BodyTooShort,
    Credentials,
    Endpoint,
    ErrorKind,
    OssClient,
    OssError,
    classify,
)
from tests.support.sandbox import SandboxInfo, read_access_log

MiB = 1024 * 1024
SIGNATURES = ["v4", "v1"]


def make_client(
    info: SandboxInfo,
    signature: str = "v4",
    *,
    secret: str | None = None,
    key_id: str | None = None,
    bucket: str | None = None,
    token: str | None = None,
    **kwargs: object,
) -> OssClient:
    endpoint = Endpoint(info.endpoint, bucket or info.bucket, info.region, signature)  # type: ignore[arg-type]
    creds = Credentials(
        key_id or info.access_key_id,
        secret if secret is not None else info.access_key_secret,
        token if token is not None else info.security_token,
    )
    return OssClient(endpoint, creds, **kwargs)  # type: ignore[arg-type]


def assert_no_secret(err: BaseException, *secrets: str) -> None:
    for text in (str(err), repr(err), getattr(err, "message", "")):
        for secret in secrets:
            assert secret not in text


class CountingReader:
    """A file-like body serving ``size`` pseudo-random bytes on demand, like the engine's
    part reader; it records how it was read and can raise after ``fail_after`` bytes."""

    def __init__(self, size: int, seed: int = 1, fail_after: int | None = None) -> None:
        self.data = expected_bytes(size, seed)
        self.size = size
        self.position = 0
        self.reads: list[int] = []
        self.crc = 0
        self.fail_after = fail_after
        self.raised: Exception | None = None
        self.failures = 0

    def read(self, n: int = -1) -> bytes:
        self.reads.append(n)
        if self.fail_after is not None and self.position >= self.fail_after:
            self.failures += 1
            self.raised = RuntimeError("paused by the user")
            raise self.raised
        n = self.size - self.position if n is None or n < 0 else n
        chunk = self.data[self.position:self.position + n]
        self.position += len(chunk)
        self.crc = crc64(chunk, self.crc)
        return chunk


def expected_bytes(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


# --- the happy paths, both signature versions --------------------------------------------------


@pytest.mark.parametrize("signature", SIGNATURES)
def test_put_head_get_list_presign(sandbox: SandboxInfo, signature: str) -> None:
    client = make_client(sandbox, signature)
    client.check_connection()
    data = random.Random(3).randbytes(300_000)
    result = client.put_object(
        "docs/report 1.txt", data, size=len(data), headers={"x-oss-meta-origin": "laptop"}
    )
    assert result.crc64 == crc64(data)
    assert result.etag

    info = client.head_object("docs/report 1.txt")
    assert info is not None
    assert (info.key, info.size, info.etag, info.crc64) == (
        "docs/report 1.txt", len(data), result.etag, crc64(data),
    )
    assert info.content_type == "text/plain"  # from the name, as oss2 sets it
    assert info.metadata == {"origin": "laptop"}
    assert info.last_modified is not None
    assert abs(info.last_modified - time.time()) < 120

    assert client.get_object_bytes("docs/report 1.txt") == data
    assert client.get_object_bytes("docs/report 1.txt", (10, 19)) == data[10:20]

    client.put_object("docs/sub/a.bin", b"a", size=1)
    client.put_object("top.bin", b"", size=0)
    folders, objects = client.list_folder("docs/")
    assert folders == ["docs/sub/"]
    assert [o.key for o in objects] == ["docs/report 1.txt"]
    assert objects[0].size == len(data)
    assert objects[0].etag == result.etag
    folders, objects = client.list_folder("")
    assert folders == ["docs/"]
    assert [(o.key, o.size) for o in objects] == [("top.bin", 0)]

    url = client.presign_get("docs/report 1.txt", 300)
    assert sandbox.access_key_secret not in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data

    assert client.head_object("docs/missing") is None
    with pytest.raises(OssError) as err:
        client.get_object_bytes("docs/missing")
    assert err.value.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize("signature", SIGNATURES)
def test_multipart_round_trip(sandbox: SandboxInfo, signature: str) -> None:
    client = make_client(sandbox, signature)
    key = "big/файл.bin"
    upload_id = client.initiate_multipart(key, headers={"Content-Type": "application/x-test"})
    assert upload_id
    assert [(u.key, u.upload_id) for u in client.list_multipart_uploads("big/")] == [
        (key, upload_id)
    ]
    assert client.list_multipart_uploads("other/") == []

    rng = random.Random(11)
    part1 = rng.randbytes(MiB)
    part3 = rng.randbytes(12_345)
    reader = CountingReader(3 * MiB + 7, seed=5)
    r1 = client.upload_part(key, upload_id, 1, part1, size=len(part1))
    r2 = client.upload_part(key, upload_id, 2, reader, size=reader.size)
    r3 = client.upload_part(key, upload_id, 3, iter([part3[:100], b"", part3[100:]]),
                            size=len(part3))
    assert (r1.crc64, r2.crc64, r3.crc64) == (crc64(part1), reader.crc, crc64(part3))
    assert r1.crc64 is not None

    parts = client.list_parts(key, upload_id)
    assert [(p.number, p.etag, p.size) for p in parts] == [
        (1, r1.etag, MiB), (2, r2.etag, reader.size), (3, r3.etag, len(part3)),
    ]
    done = client.complete_multipart(key, upload_id, [(3, r3.etag), (1, r1.etag), (2, r2.etag)])
    assert done.crc64 == combine_parts(
        [(r1.crc64, MiB), (reader.crc, reader.size), (crc64(part3), len(part3))]
    )
    body = client.get_object_bytes(key)
    assert body == part1 + expected_bytes(reader.size, seed=5) + part3
    assert done.crc64 == crc64(body)
    info = client.head_object(key)
    assert info is not None
    assert (info.size, info.crc64, info.content_type) == (
        len(body), done.crc64, "application/x-test",
    )
    assert client.list_multipart_uploads() == []

    with pytest.raises(OssError) as err:
        client.list_parts(key, upload_id)
    assert err.value.kind is ErrorKind.NO_SUCH_UPLOAD


def test_abort_and_no_such_upload(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    upload_id = client.initiate_multipart("x.bin")
    client.upload_part("x.bin", upload_id, 1, b"abc", size=3)
    client.abort_multipart("x.bin", upload_id)
    client.abort_multipart("x.bin", upload_id)  # already gone: not an error
    for call in (
        lambda: client.list_parts("x.bin", upload_id),
        lambda: client.upload_part("x.bin", upload_id, 2, b"d", size=1),
        lambda: client.complete_multipart("x.bin", upload_id, [(1, "etag")]),
    ):
        with pytest.raises(OssError) as err:
            call()
        assert err.value.kind is ErrorKind.NO_SUCH_UPLOAD
        assert err.value.code == "NoSuchUpload"
        assert not err.value.retryable
        assert err.value.request_id


def test_forgotten_upload_is_no_such_upload(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    upload_id = client.initiate_multipart("y.bin")
    client.upload_part("y.bin", upload_id, 1, b"abc", size=3)
    assert sandbox.server is not None
    assert sandbox.server.faults.forget_upload(upload_id)
    with pytest.raises(OssError) as err:
        client.list_parts("y.bin", upload_id)
    assert err.value.kind is ErrorKind.NO_SUCH_UPLOAD


def test_listings_follow_every_page(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss_module, "_LIST_PAGE", 2)
    client = make_client(sandbox)
    upload_id = client.initiate_multipart("paged.bin")
    etags = {}
    for number in (1, 2, 3, 4, 5):
        etags[number] = client.upload_part("paged.bin", upload_id, number, b"%d" % number,
                                           size=1).etag
    parts = client.list_parts("paged.bin", upload_id)
    assert [(p.number, p.etag) for p in parts] == sorted(etags.items())

    ids = {client.initiate_multipart(f"u/{i}") for i in range(4)}
    ids.add(client.initiate_multipart("u/0"))  # two uploads of one key
    assert {u.upload_id for u in client.list_multipart_uploads("u/")} == ids

    for i in range(5):
        client.put_object(f"f/{i}.txt", b"x", size=1)
        client.put_object(f"f/d{i}/inner.txt", b"y", size=1)
    folders, objects = client.list_folder("f/")
    assert folders == [f"f/d{i}/" for i in range(5)]
    assert [o.key for o in objects] == [f"f/{i}.txt" for i in range(5)]
    # Each page was its own request.
    lists = [r for r in read_access_log(sandbox.log_path)
             if r["method"] == "GET" and "list-type=2" in r["query"]]
    assert len(lists) >= 5


def test_existing_keys_lists_only_the_range_of_the_keys(
        sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss_module, "_LIST_PAGE", 3)
    client = make_client(sandbox)
    for key in ("a/0.txt", "a/b/1.txt", "a/b/2.txt", "a/b/3.txt", "a/b/9.txt", "a/c.txt",
                "a/\u00e9.txt", "z.txt"):
        client.put_object(key, b"x", size=1)
    for i in range(30):  # far beyond the range asked about: never listed
        client.put_object(f"a/\u00ff/{i:02}.txt", b"x", size=1)
    before = len(read_access_log(sandbox.log_path))
    asked = ["a/b/2.txt", "a/b/1.txt", "a/b/4.txt", "a/c.txt", "a/\u00e9.txt", "a/b/1.txt"]
    assert client.existing_keys(asked) == {"a/b/1.txt", "a/b/2.txt", "a/c.txt", "a/\u00e9.txt"}
    lists = read_access_log(sandbox.log_path)[before:]
    assert all("list-type=2" in r["query"] for r in lists)
    assert len(lists) <= 3  # 6 keys in the range, 3 per page: the a/\u00ff/ ones are not read
    assert client.existing_keys(["z.txt"]) == {"z.txt"}
    assert client.existing_keys(["z"]) == set()
    assert client.existing_keys([]) == set()
    client.close()
    client.close()  # idempotent
    assert client.existing_keys(["z.txt"]) == {"z.txt"}  # a closed pool opens again


# --- streamed bodies ------------------------------------------------------------------------------


def test_streamed_part_is_read_in_blocks_with_content_length(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    upload_id = client.initiate_multipart("stream.bin")
    reader = CountingReader(8 * MiB + 3, seed=9)
    result = client.upload_part("stream.bin", upload_id, 1, reader, size=reader.size)
    assert result.crc64 == reader.crc
    # Read on demand in blocks, never all at once; nothing read beyond the size.
    assert max(reader.reads) <= 1024 * 1024
    assert len(reader.reads) >= 8  # 1 MiB blocks
    assert reader.position == reader.size
    log = [r for r in read_access_log(sandbox.log_path) if r["method"] == "PUT"]
    assert log[-1]["status"] == 200
    assert log[-1]["received"] == reader.size
    parts = client.list_parts("stream.bin", upload_id)
    assert parts[0].size == reader.size


def test_exception_from_read_comes_out_unchanged_and_promptly(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    upload_id = client.initiate_multipart("pause.bin")
    reader = CountingReader(16 * MiB, fail_after=2 * MiB)
    with pytest.raises(RuntimeError, match="paused by the user") as err:
        client.upload_part("pause.bin", upload_id, 1, reader, size=reader.size)
    assert err.value is reader.raised
    # Promptly: the first failed read ends the request; nothing retries it or reads on.
    assert reader.failures == 1
    assert reader.position <= 3 * MiB
    # The client (and its connection pool) still works afterwards.
    assert client.upload_part("pause.bin", upload_id, 1, b"ok", size=2).crc64 == crc64(b"ok")
    assert [p.size for p in client.list_parts("pause.bin", upload_id)] == [2]


def test_body_shorter_than_size(sandbox: SandboxInfo, tmp_path: Path) -> None:
    client = make_client(sandbox)
    source = tmp_path / "short.bin"
    source.write_bytes(b"z" * 1000)
    with source.open("rb") as fh, pytest.raises(BodyTooShort) as err:
        client.put_object("short.bin", fh, size=5000)
    assert err.value.kind is ErrorKind.PERMANENT
    assert "1,000 of 5,000" in err.value.message
    assert client.head_object("short.bin") is None
    with pytest.raises(ValueError, match="not size"):
        client.put_object("short.bin", b"abc", size=4)


def test_file_object_body(sandbox: SandboxInfo, tmp_path: Path) -> None:
    client = make_client(sandbox)
    data = random.Random(2).randbytes(2 * MiB + 5)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    with source.open("rb") as fh:
        fh.seek(MiB)  # a part of a file: from the current position, size bytes
        result = client.put_object("f.bin", fh, size=1000)
    assert result.crc64 == crc64(data[MiB:MiB + 1000])
    assert client.get_object_bytes("f.bin") == data[MiB:MiB + 1000]


# --- credentials --------------------------------------------------------------------------------


def test_credentials_callable_is_read_for_every_request(sandbox: SandboxInfo) -> None:
    calls = 0
    current = {"secret": sandbox.access_key_secret}

    def provide() -> Credentials:
        nonlocal calls
        calls += 1
        return Credentials(sandbox.access_key_id, current["secret"])

    endpoint = Endpoint(sandbox.endpoint, sandbox.bucket, sandbox.region)
    client = OssClient(endpoint, provide)
    client.put_object("a", b"1", size=1)
    client.head_object("a")
    assert calls == 2
    current["secret"] = "not-the-secret"
    with pytest.raises(OssError) as err:
        client.head_object("a")
    assert err.value.code in ("SignatureDoesNotMatch", "HTTP403", "AccessDenied")
    client.set_credentials(Credentials(sandbox.access_key_id, sandbox.access_key_secret))
    assert client.head_object("a") is not None
    assert calls == 3  # the callable is no longer asked


def test_credentials_callable_failure(sandbox: SandboxInfo) -> None:
    def broken() -> Credentials:
        raise LookupError("keyring locked with secret hunter2")

    client = OssClient(Endpoint(sandbox.endpoint, sandbox.bucket, sandbox.region), broken)
    with pytest.raises(OssError) as err:
        client.put_object("a", b"1", size=1)
    assert err.value.code == "CredentialsUnavailable"
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("signature", SIGNATURES)
def test_sts_token_expiry_and_refresh(sandbox_factory: Callable[..., SandboxInfo],
                                      signature: str) -> None:
    info = sandbox_factory(security_token="token-one-" + "x" * 20)
    client = make_client(info, signature)
    client.put_object("t.txt", b"hello", size=5)
    assert info.server is not None
    info.server.faults.expire_token()
    with pytest.raises(OssError) as err:
        client.put_object("t.txt", b"again", size=5)
    assert err.value.kind is ErrorKind.CREDENTIALS_EXPIRED
    assert err.value.code == "SecurityTokenExpired"
    assert_no_secret(err.value, info.access_key_secret, "token-one-")
    info.server.set_security_token("token-two-" + "y" * 20)
    client.set_credentials(Credentials(info.access_key_id, info.access_key_secret,
                                       "token-two-" + "y" * 20))
    client.put_object("t.txt", b"again", size=5)
    assert client.get_object_bytes("t.txt") == b"again"


# --- errors from the server ---------------------------------------------------------------------


@pytest.mark.parametrize("signature", SIGNATURES)
def test_wrong_secret(sandbox: SandboxInfo, signature: str) -> None:
    wrong = "wrong-secret-value-123456"
    client = make_client(sandbox, signature, secret=wrong)
    for call in (client.check_connection, lambda: client.put_object("k", b"1", size=1)):
        with pytest.raises(OssError) as err:
            call()
        assert err.value.kind is ErrorKind.PERMANENT
        assert err.value.code == "SignatureDoesNotMatch"
        assert err.value.status == 403
        assert "secret" in err.value.message
        assert_no_secret(err.value, wrong, sandbox.access_key_secret)


def test_wrong_region_names_the_region(sandbox: SandboxInfo) -> None:
    endpoint = Endpoint(sandbox.endpoint, sandbox.bucket, "us-west-1", "v4")
    client = OssClient(endpoint, Credentials(sandbox.access_key_id, sandbox.access_key_secret,
                                             sandbox.security_token))
    with pytest.raises(OssError) as err:
        client.check_connection()
    assert err.value.kind is ErrorKind.PERMANENT
    assert err.value.code == "InvalidArgument"
    assert "Check the region" in err.value.message


@pytest.mark.parametrize("signature", SIGNATURES)
def test_wrong_key_id(sandbox: SandboxInfo, signature: str) -> None:
    client = make_client(sandbox, signature, key_id="LTAInotarealkey")
    with pytest.raises(OssError) as err:
        client.check_connection()
    assert err.value.kind is ErrorKind.PERMANENT
    assert err.value.code == "InvalidAccessKeyId"
    assert "AccessKey ID" in err.value.message


def test_missing_bucket(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox, bucket="no-such-bucket")
    for call in (client.check_connection, lambda: client.put_object("k", b"1", size=1),
                 lambda: client.list_folder("")):
        with pytest.raises(OssError) as err:
            call()
        assert (err.value.kind, err.value.code) == (ErrorKind.PERMANENT, "NoSuchBucket")
    with pytest.raises(OssError) as err:
        client.head_object("k")  # no body on HEAD: still not "object missing"
    assert err.value.kind is not ErrorKind.RETRYABLE


def test_invalid_object_name(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    with pytest.raises(OssError) as err:
        client.put_object("k" * 1024, b"1", size=1)
    assert (err.value.kind, err.value.code) == (ErrorKind.PERMANENT, "InvalidObjectName")


@pytest.mark.parametrize(("status", "code"), [(503, "ServiceUnavailable"), (500, "InternalError"),
                                               (503, "Throttling"), (429, "TooManyRequests")])
def test_server_busy_is_retryable(sandbox: SandboxInfo, status: int, code: str) -> None:
    client = make_client(sandbox)
    assert sandbox.server is not None
    sandbox.server.faults.fail(status, code=code, method="PUT", count=1)
    with pytest.raises(OssError) as err:
        client.put_object("busy.bin", b"1234", size=4)
    assert err.value.kind is ErrorKind.RETRYABLE
    assert err.value.retryable
    assert err.value.status == status
    assert err.value.request_id
    assert err.value.request_id in str(err.value)
    # Nothing retried behind the engine's back: the next call is the one that succeeds.
    assert client.put_object("busy.bin", b"1234", size=4).crc64 == crc64(b"1234")
    puts = [r for r in read_access_log(sandbox.log_path) if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [status, 200]


def test_clock_skew_from_server(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    assert sandbox.server is not None
    sandbox.server.faults.fail(403, code="RequestTimeTooSkewed", count=1)
    with pytest.raises(OssError) as err:
        client.check_connection()
    assert err.value.kind is ErrorKind.PERMANENT
    assert "clock" in err.value.message


def test_connection_reset_mid_body_is_retryable(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox)
    assert sandbox.server is not None
    sandbox.server.faults.reset_after(512 * 1024, method="PUT", count=1)
    upload_id = client.initiate_multipart("reset.bin")
    reader = CountingReader(4 * MiB)
    with pytest.raises(OssError) as err:
        client.upload_part("reset.bin", upload_id, 1, reader, size=reader.size)
    assert err.value.kind is ErrorKind.RETRYABLE
    assert client.list_parts("reset.bin", upload_id) == []
    again = CountingReader(4 * MiB)
    assert client.upload_part("reset.bin", upload_id, 1, again, size=again.size).crc64 == again.crc


def test_read_timeout_is_retryable(sandbox: SandboxInfo) -> None:
    client = make_client(sandbox, read_timeout=0.5)
    assert sandbox.server is not None
    sandbox.server.faults.delay(3.0, method="HEAD", count=1)
    with pytest.raises(OssError) as err:
        client.head_object("slow")
    # Had the client waited for the held answer, it would be a 404 NoSuchKey, not a timeout.
    assert (err.value.kind, err.value.code) == (ErrorKind.RETRYABLE, "Timeout")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_is_retryable() -> None:
    port = free_port()
    client = OssClient(Endpoint(f"http://127.0.0.1:{port}", "sandbox", "cn-hangzhou"),
                       Credentials("id", "secret-secret"))
    for call in (client.check_connection, lambda: client.put_object("k", b"1", size=1)):
        with pytest.raises(OssError) as err:
            call()
        assert (err.value.kind, err.value.code) == (ErrorKind.RETRYABLE, "ConnectionRefused")
        assert f"127.0.0.1:{port}" in err.value.message


def test_https_to_a_plain_http_server(sandbox: SandboxInfo) -> None:
    endpoint = Endpoint(sandbox.endpoint.replace("http://", "https://"), sandbox.bucket,
                        sandbox.region)
    client = OssClient(endpoint, Credentials(sandbox.access_key_id, sandbox.access_key_secret))
    with pytest.raises(OssError) as err:
        client.check_connection()
    assert err.value.kind is ErrorKind.PERMANENT
    assert err.value.code == "NotHttps"


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate nobody trusts."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_untrusted_certificate_is_permanent(self_signed_https: str) -> None:
    client = OssClient(Endpoint(self_signed_https, "sandbox", "cn-hangzhou"),
                       Credentials("id", "secret-secret"))
    with pytest.raises(OssError) as err:
        client.check_connection()
    assert (err.value.kind, err.value.code) == (ErrorKind.PERMANENT, "CertificateNotTrusted")
    assert "not trusted" in err.value.message


# --- construction rules -------------------------------------------------------------------------


def test_endpoint_normalisation_and_region() -> None:
    ep = Endpoint("oss-cn-hangzhou.aliyuncs.com/", "b")
    assert ep.url == "https://oss-cn-hangzhou.aliyuncs.com"
    assert ep.effective_region == "cn-hangzhou"
    assert Endpoint("https://oss-ap-southeast-1-internal.aliyuncs.com", "b").effective_region == (
        "ap-southeast-1"
    )
    assert Endpoint("https://oss-accelerate.aliyuncs.com", "b").effective_region is None
    assert Endpoint("https://example.com", "b", region="eu-central-1").effective_region == (
        "eu-central-1"
    )
    assert Endpoint(" HTTPS://oss-cn-hangzhou.aliyuncs.com ", "b").url == (
        "https://oss-cn-hangzhou.aliyuncs.com"
    )
    assert Endpoint("http://127.0.0.1:9000", "b").is_loopback
    assert Endpoint("http://[::1]:9000", "b").is_loopback
    assert Endpoint("http://localhost:9000", "b").is_loopback
    assert not Endpoint("http://10.0.0.1:9000", "b").is_loopback


def test_v4_needs_a_region() -> None:
    with pytest.raises(OssError) as err:
        OssClient(Endpoint("https://storage.example.com", "my-bucket"), Credentials("id", "secret"))
    assert err.value.code == "RegionRequired"
    assert "region" in err.value.message
    OssClient(Endpoint("https://storage.example.com", "my-bucket", signature="v1"),
              Credentials("id", "secret"))


def test_plain_http_only_for_loopback_or_when_allowed() -> None:
    creds = Credentials("id", "secret")
    with pytest.raises(OssError) as err:
        OssClient(Endpoint("http://oss-cn-hangzhou.aliyuncs.com", "my-bucket"), creds)
    assert (err.value.kind, err.value.code) == (ErrorKind.PERMANENT, "InsecureEndpoint")
    OssClient(Endpoint("http://oss-cn-hangzhou.aliyuncs.com", "my-bucket"), creds,
              allow_insecure_http=True)
    OssClient(Endpoint("http://127.0.0.1:9", "my-bucket", "cn-hangzhou"), creds)


def test_invalid_bucket_name() -> None:
    with pytest.raises(OssError) as err:
        OssClient(Endpoint("https://oss-cn-hangzhou.aliyuncs.com", "Bad_Bucket"),
                  Credentials("id", "secret"))
    assert err.value.code == "InvalidBucketName"


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("LTAIvisible", "very-secret-value", "very-secret-token")
    assert "LTAIvisible" in repr(creds)
    assert "very-secret" not in repr(creds)


def test_classify_plain_exceptions() -> None:
    assert classify(ConnectionResetError()).kind is ErrorKind.RETRYABLE
    assert classify(TimeoutError()).code == "Timeout"
    assert classify(socket.gaierror(-2, "Name or service not known")).code == (
        "NameResolutionFailed"
    )
    local = classify(PermissionError(13, "Permission denied", "/data/f.bin"))
    assert (local.kind, local.code) == (ErrorKind.PERMANENT, "LocalError")
    assert "/data/f.bin" in local.message
    odd = classify(ZeroDivisionError("secret-in-text"))
    assert odd.kind is ErrorKind.PERMANENT
    assert "secret-in-text" not in str(odd)
    same = OssError(ErrorKind.RETRYABLE, "X", "m")
    assert classify(same) is same


class _Capture(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_PUT(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length", "0"))
        remaining = length
        crc = 0
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            crc = crc64(chunk, crc)
            remaining -= len(chunk)
        headers["_received"] = str(length - remaining)
        type(self).seen.append(headers)
        self.send_response(200)
        self.send_header("ETag", '"0123456789ABCDEF0123456789ABCDEF"')
        self.send_header("x-oss-hash-crc64ecma", str(crc))
        self.send_header("x-oss-request-id", "CAPTURE1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_request_framing_and_user_agent() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Capture.seen = []
        endpoint = Endpoint(f"http://127.0.0.1:{server.server_address[1]}", "my-bucket",
                            "cn-hangzhou")
        client = OssClient(endpoint, Credentials("id", "secret-value", "token-value"))
        reader = CountingReader(3 * MiB + 1)
        result = client.upload_part("k.bin", "UPLOAD", 1, reader, size=reader.size)
        assert result == oss_module.PutResult("0123456789ABCDEF0123456789ABCDEF", reader.crc)
        (headers,) = _Capture.seen
        assert headers["content-length"] == str(reader.size)
        assert "transfer-encoding" not in headers
        assert headers["_received"] == str(reader.size)
        assert "ossdesk/" in headers["user-agent"]
        assert headers["x-oss-security-token"] == "token-value"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_no_secret_in_logs_even_at_debug(sandbox_factory: Callable[..., SandboxInfo],
                                         caplog: pytest.LogCaptureFixture) -> None:
    token = "sts-token-" + "q" * 24
    info = sandbox_factory(security_token=token)
    caplog.set_level(logging.DEBUG)
    client = make_client(info)
    client.put_object("logged.txt", b"data", size=4)
    client.head_object("logged.txt")
    bad = make_client(info, "v1", secret="wrong-secret-" + "w" * 20)
    with pytest.raises(OssError) as err:
        bad.put_object("logged.txt", b"data", size=4)
    assert err.value.code == "SignatureDoesNotMatch"
    assert caplog.records  # the requests were logged
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (info.access_key_secret, token, "wrong-secret-"):
        assert secret not in text


def test_the_v4_signing_key_is_derived_once_for_a_secret_date_and_region(
        sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    """oss2 derives the V4 signing key (HMAC-SHA256 of the secret with the date, region and
    product) for every request; the client derives it once and keeps it, and a new secret
    gets its own."""
    import oss2.auth

    real = oss2.auth.hmac.new
    derived: list[bytes] = []

    def counting(key: bytes, msg: bytes | None = None, digestmod: object = None) -> object:
        if isinstance(key, bytes) and key.startswith(b"aliyun_v4"):
            derived.append(key)
        return real(key, msg, digestmod)

    # oss2's own derivations only (the sandbox checking the signatures derives its own)
    monkeypatch.setattr(oss2.auth, "hmac", types.SimpleNamespace(new=counting))
    client = make_client(sandbox)
    for i in range(4):
        client.put_object(f"signed/{i}", b"x", size=1)
    assert len(derived) == 1
    right = Credentials(sandbox.access_key_id, sandbox.access_key_secret)
    client.set_credentials(Credentials(sandbox.access_key_id, "not-the-secret"))
    with pytest.raises(OssError) as err:
        client.put_object("signed/wrong", b"x", size=1)
    assert err.value.code == "SignatureDoesNotMatch"
    assert len(derived) == 2  # the new secret's own key, not the one kept for the old
    client.set_credentials(right)
    client.put_object("signed/again", b"x", size=1)
    assert len(derived) == 2
    client.close()
