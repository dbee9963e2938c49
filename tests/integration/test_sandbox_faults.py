"""Sandbox fault hooks, each observed through the unmodified oss2 client."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import oss2
import pytest
from oss2.models import PartInfo

from tests.support.sandbox import FaultClient, SandboxInfo, read_access_log

KIB = 1024


def test_reset_after_n_bytes(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss2.defaults, "request_retries", 0)
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    sandbox.faults.reset_after(64 * KIB, method="PUT", pattern=r"partNumber=2\b")
    part1 = bucket.upload_part("k", upload_id, 1, b"a" * (200 * KIB))
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.upload_part("k", upload_id, 2, b"b" * (200 * KIB))
    # The rule fired once: the retry succeeds, and the torn part was never recorded.
    assert [p.part_number for p in bucket.list_parts("k", upload_id).parts] == [1]
    part2 = bucket.upload_part("k", upload_id, 2, b"b" * (200 * KIB))
    bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, part1.etag),
                                                      PartInfo(2, part2.etag)])
    rows = [r for r in read_access_log(sandbox.log_path) if "partNumber=2" in r["query"]]
    assert [(r["status"], r["received"]) for r in rows] == [(0, 64 * KIB), (200, 200 * KIB)]


def test_error_for_next_k_requests(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss2.defaults, "request_retries", 0)
    bucket = sandbox.bucket_client()
    sandbox.faults.fail(503, method="PUT", pattern=r"^/sandbox/flaky", count=2)
    sandbox.faults.fail(500, method="GET", pattern=r"^/sandbox/flaky", count=1)
    for _ in range(2):
        with pytest.raises(oss2.exceptions.ServerError) as exc:
            bucket.put_object("flaky", b"v" * 1000)
        assert (exc.value.status, exc.value.code) == (503, "ServiceUnavailable")
        assert exc.value.request_id
    assert bucket.put_object("other", b"v").status == 200  # does not match
    assert bucket.put_object("flaky", b"v").status == 200  # third one passes
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_object("flaky")
    assert (exc.value.status, exc.value.code) == (500, "InternalError")
    assert bucket.get_object("flaky").read() == b"v"
    assert sandbox.faults.rules() == []


def test_delay(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"v")
    sandbox.faults.delay(0.5, method="GET", pattern="^/sandbox/k")
    start = time.monotonic()
    assert bucket.get_object("k").read() == b"v"
    # The real clock is what is tested: a lower bound, which a busy machine cannot break.
    assert time.monotonic() - start >= 0.5
    assert sandbox.faults.rules() == []  # used up: the next GET is not held
    assert bucket.get_object("k").read() == b"v"


def test_delay_times_out_client(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client(connect_timeout=0.3)
    bucket.put_object("k", b"v")
    sandbox.faults.delay(3, method="GET", pattern="^/sandbox/k", count=None)
    # Had the client waited out the delay, the GET would have succeeded.
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.get_object("k")
    sandbox.faults.clear()


def test_drop_response_after_the_request_went_through(sandbox: SandboxInfo,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss2.defaults, "request_retries", 0)
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    part = bucket.upload_part("k", upload_id, 1, b"p" * 1000)
    sandbox.faults.drop_response(method="POST", pattern=r"^/sandbox/k\?.*uploadId=")
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, part.etag)])
    # The client heard nothing, yet the object is complete and the upload id is gone.
    assert bucket.get_object("k").read() == b"p" * 1000
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, part.etag)])
    posts = [r for r in read_access_log(sandbox.log_path)
             if r["method"] == "POST" and "uploadId" in r["query"]]
    assert [r["status"] for r in posts] == [0, 404]
    assert sandbox.faults.rules() == []


def test_forget_upload(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    bucket.upload_part("k", upload_id, 1, b"x" * (100 * KIB))
    assert sandbox.faults.forget_upload(upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("k", upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("k", upload_id, 2, b"y")
    assert not list(sandbox.root.joinpath("blobs").iterdir())
    bucket.init_multipart_upload("a")
    bucket.init_multipart_upload("b")
    assert sandbox.faults.forget_all_uploads() == 2
    assert bucket.list_multipart_uploads().upload_list == []


def test_corrupt_crc_is_caught_by_oss2(sandbox: SandboxInfo, tmp_path: Path) -> None:
    bucket = sandbox.bucket_client(enable_crc=True)
    sandbox.faults.corrupt("crc64", method="PUT", pattern="^/sandbox/k")
    with pytest.raises(oss2.exceptions.InconsistentError):
        bucket.put_object("k", b"data")
    bucket.put_object("k", b"data")
    sandbox.faults.corrupt("crc64", method="GET", pattern="^/sandbox/k")
    target = tmp_path / "k"
    with pytest.raises(oss2.exceptions.InconsistentError):  # oss2 compares at the end
        bucket.get_object_to_file("k", str(target))
    bucket.get_object_to_file("k", str(target))  # one-shot
    assert target.read_bytes() == b"data"


def test_corrupt_etag(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    sandbox.faults.corrupt("etag", method="PUT", pattern="partNumber=1")
    bad = bucket.upload_part("k", upload_id, 1, b"z" * (100 * KIB))
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, bad.etag)])
    assert exc.value.code == "InvalidPart"
    real = bucket.list_parts("k", upload_id).parts[0].etag
    assert real != bad.etag


def test_control_endpoint_absent_without_test_hooks(sandbox_factory) -> None:
    info = sandbox_factory(test_hooks=False)
    req = urllib.request.Request(info.endpoint + "/-/sandbox/faults", data=b"{}",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code in (403, 404)
    exc.value.close()


def test_http_control_endpoint_in_process(sandbox: SandboxInfo) -> None:
    client = FaultClient(sandbox.endpoint)
    rule = client.fail(503, method="GET", pattern="^/sandbox/x", count=1)
    assert rule["status"] == 503
    assert len(client.rules()) == 1
    bucket = sandbox.bucket_client()
    bucket.put_object("x", b"1")
    with pytest.raises(oss2.exceptions.ServerError):
        bucket.get_object("x")
    client.delay(0.1)
    client.clear()
    assert client.rules() == []
    with pytest.raises(urllib.error.HTTPError) as exc:
        client._action("no-such-action")
    assert exc.value.code == 400
    exc.value.close()
