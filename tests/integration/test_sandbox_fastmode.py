"""The sandbox's benchmark modes (``--fast-etag``, ``--discard``), driven by the unmodified
oss2 client with its CRC check on, and the faithful default left as it was."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anycrc
import oss2
import pytest
import requests

from tests.support.sandbox import SandboxInfo, SandboxProcess, read_access_log

CRC = anycrc.Model("CRC64-XZ")
KIB = 1024
MIB = 1024 * KIB
MODES = ["fast_etag", "discard"]


def fast_etag(data: bytes) -> str:
    return f"{CRC.calc(data):016X}{len(data):016X}"


def md5_etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


@pytest.fixture(params=MODES)
def bench_sandbox(request: pytest.FixtureRequest,
                  sandbox_factory: Callable[..., SandboxInfo]) -> SandboxInfo:
    """A sandbox in one benchmark mode; ``request.param`` names it."""
    return sandbox_factory(**{request.param: True})


def is_discard(info: SandboxInfo) -> bool:
    assert info.server is not None
    return info.server.discard


# ------------------------------------------------------------------------------ PutObject


def test_put_object_crc_checked_by_oss2_and_etag_from_crc(bench_sandbox: SandboxInfo) -> None:
    bucket = bench_sandbox.bucket_client("v4", enable_crc=True)  # oss2 checks the CRC header
    data = os.urandom(3 * MIB + 17)
    result = bucket.put_object("a.bin", data)
    assert result.status == 200
    assert result.crc == CRC.calc(data)
    assert result.etag == fast_etag(data)
    assert result.etag != md5_etag(data)
    assert "Content-MD5" not in result.headers  # no MD5 was computed

    head = bucket.head_object("a.bin")
    assert head.content_length == len(data)
    assert head.server_crc == CRC.calc(data)
    assert head.etag == fast_etag(data)
    meta = bucket.get_object_meta("a.bin")
    assert meta.content_length == len(data)
    assert meta.etag == fast_etag(data)

    # stable: the same content gives the same ETag, other content another one
    assert bucket.put_object("again.bin", data).etag == result.etag
    assert bucket.put_object("other.bin", data[:-1] + b"\0").etag != result.etag
    assert bucket.put_object("empty.bin", b"").etag == fast_etag(b"")

    if is_discard(bench_sandbox):
        with pytest.raises(oss2.exceptions.OssError) as err:
            bucket.get_object("a.bin")
        assert err.value.status == 409
        assert err.value.code == "ObjectDiscarded"
        assert "--discard" in err.value.message
        assert err.value.request_id
    else:
        assert bucket.get_object("a.bin").read() == data  # oss2 checks the CRC again


def test_put_object_chunked_body(bench_sandbox: SandboxInfo) -> None:
    bucket = bench_sandbox.bucket_client("v4", enable_crc=True)
    data = os.urandom(5 * MIB + 3)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 700 * KIB):
            yield data[i:i + 700 * KIB]

    result = bucket.put_object("chunked.bin", pieces())  # Transfer-Encoding: chunked
    assert result.crc == CRC.calc(data)
    assert result.etag == fast_etag(data)
    assert bucket.head_object("chunked.bin").content_length == len(data)


def test_content_md5_still_checked(bench_sandbox: SandboxInfo) -> None:
    bucket = bench_sandbox.bucket_client("v4")
    data = os.urandom(2 * MIB + 5)
    good = bucket.put_object("md5.bin", data, headers={"Content-MD5": content_md5(data)})
    assert good.headers["Content-MD5"] == content_md5(data)  # computed for this request
    assert good.etag == fast_etag(data)  # the ETag does not depend on what the client sent
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("md5.bin", data, headers={"Content-MD5": content_md5(data + b"x")})
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("md5.bin", data,
                          headers={"x-oss-hash-crc64ecma": str(CRC.calc(data) ^ 1)})
    assert bucket.head_object("md5.bin").etag == fast_etag(data)  # the good one is kept


def test_oversized_and_small_bodies(bench_sandbox: SandboxInfo) -> None:
    bucket = bench_sandbox.bucket_client("v4")
    for size in (0, 1, 100, 2 * MIB - 1, 2 * MIB, 2 * MIB + 1):
        data = os.urandom(size)
        result = bucket.put_object(f"s{size}", data)
        assert (result.crc, result.etag) == (CRC.calc(data), fast_etag(data)), size


# ------------------------------------------------------------------------------ multipart


def test_multipart_parts_and_complete(bench_sandbox: SandboxInfo) -> None:
    bucket = bench_sandbox.bucket_client("v4", enable_crc=True)
    data = os.urandom(2 * MIB + 300 * KIB + 9)
    sizes = [MIB, MIB + 300 * KIB, 9]
    up = bucket.init_multipart_upload("mp.bin").upload_id
    infos, pos = [], 0
    for number, size in enumerate(sizes, 1):
        chunk = data[pos:pos + size]
        pos += size
        result = bucket.upload_part("mp.bin", up, number, chunk)  # oss2 checks the part CRC
        assert result.crc == CRC.calc(chunk)
        assert result.etag == fast_etag(chunk)
        infos.append(oss2.models.PartInfo(number, result.etag, size=size,
                                          part_crc=result.crc))
    listed = bucket.list_parts("mp.bin", up).parts
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (i.part_number, i.etag, i.size) for i in infos]
    done = bucket.complete_multipart_upload("mp.bin", up, infos)
    assert done.crc == CRC.calc(data)  # combined from the part CRCs
    assert done.etag.endswith("-3")
    head = bucket.head_object("mp.bin")
    assert head.content_length == len(data)
    assert head.server_crc == CRC.calc(data)
    if is_discard(bench_sandbox):
        for headers in ({}, {"Range": "bytes=0-9"}):
            with pytest.raises(oss2.exceptions.OssError) as err:
                bucket.get_object("mp.bin", headers=headers)
            assert err.value.code == "ObjectDiscarded"
    else:
        assert bucket.get_object("mp.bin").read() == data
        assert bucket.get_object("mp.bin", byte_range=(5, 14)).read() == data[5:15]


def test_resumable_upload(bench_sandbox: SandboxInfo, tmp_path: Path) -> None:
    bucket = bench_sandbox.bucket_client("v4", enable_crc=True)
    src = tmp_path / "src.bin"
    data = os.urandom(3 * MIB + 123)
    src.write_bytes(data)
    result = oss2.resumable_upload(bucket, "resumable.bin", str(src), multipart_threshold=MIB,
                                   part_size=MIB, num_threads=3,
                                   store=oss2.ResumableStore(root=str(tmp_path / "ckpt")))
    assert result.status == 200
    assert result.crc == CRC.calc(data)
    assert bucket.head_object("resumable.bin").server_crc == CRC.calc(data)
    if not is_discard(bench_sandbox):
        assert bucket.get_object("resumable.bin").read() == data
    rows = read_access_log(bench_sandbox.log_path)
    parts = [r for r in rows if r["method"] == "PUT" and "partNumber=" in r["query"]]
    assert sorted(r["received"] for r in parts) == sorted([MIB, MIB, MIB, 123])


# ------------------------------------------------------------------------------ --discard


def test_discard_stores_no_body(sandbox_factory: Callable[..., SandboxInfo]) -> None:
    info = sandbox_factory(discard=True)
    assert info.server is not None and info.server.fast_etag and not info.server.faithful
    bucket = info.bucket_client("v4")
    bucket.put_object("x", os.urandom(3 * MIB))
    up = bucket.init_multipart_upload("y").upload_id
    bucket.upload_part("y", up, 1, os.urandom(MIB))
    assert files_under(info.root / "blobs") == []
    assert files_under(info.root / "incoming") == []
    # replacing and deleting objects and uploads whose bodies were never stored works
    bucket.put_object("x", b"again")
    bucket.upload_part("y", up, 1, os.urandom(MIB))
    bucket.abort_multipart_upload("y", up)
    assert bucket.delete_object("x").status == 204
    assert not bucket.object_exists("x")


def test_discarded_objects_stay_discarded_after_a_faithful_restart(
        sandbox_factory: Callable[..., SandboxInfo]) -> None:
    info = sandbox_factory(discard=True)
    data = os.urandom(MIB + 1)
    info.bucket_client("v4").put_object("d.bin", data)
    assert info.server is not None
    info.server.stop()
    again = sandbox_factory(root=info.root)  # faithful
    bucket = again.bucket_client("v4")
    head = bucket.head_object("d.bin")
    assert (head.content_length, head.server_crc) == (len(data), CRC.calc(data))
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.get_object("d.bin")
    assert err.value.code == "ObjectDiscarded"
    # a new upload of the key is stored (and MD5-tagged) as usual
    assert bucket.put_object("d.bin", data).etag == md5_etag(data)
    assert bucket.get_object("d.bin").read() == data


def test_discarded_get_error_is_oss_xml(sandbox_factory: Callable[..., SandboxInfo]) -> None:
    info = sandbox_factory(discard=True)
    bucket = info.bucket_client("v4")
    bucket.put_object("k", b"hello")
    url = bucket.sign_url("GET", "k", 60)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 409
    assert resp.headers["Content-Type"] == "application/xml"
    assert b"<Code>ObjectDiscarded</Code>" in resp.content
    assert b"<Key>k</Key>" in resp.content
    assert b"<RequestId>" in resp.content
    head = requests.head(bucket.sign_url("HEAD", "k", 60), timeout=10)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "5"
    assert int(head.headers["x-oss-hash-crc64ecma"]) == CRC.calc(b"hello")


def test_discard_counts_bytes_and_honours_faults(
        sandbox_factory: Callable[..., SandboxInfo]) -> None:
    info = sandbox_factory(discard=True)
    assert info.server is not None
    bucket = info.bucket_client("v4")
    bucket.put_object("counted", os.urandom(1_234_567))
    info.server.faults.reset_after(100_000, pattern="^/sandbox/reset")
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.put_object("reset", os.urandom(MIB))
    assert not bucket.object_exists("reset")
    rows = read_access_log(info.log_path)
    assert [(r["path"], r["status"], r["received"]) for r in rows
            if r["method"] == "PUT"] == [
        ("/sandbox/counted", 200, 1_234_567), ("/sandbox/reset", 0, 100_000)]


# ------------------------------------------------------------------------------ default mode


def test_default_mode_is_faithful(sandbox: SandboxInfo) -> None:
    assert sandbox.server is not None
    assert sandbox.server.faithful and not sandbox.server.fast_etag
    assert not sandbox.server.discard
    bucket = sandbox.bucket_client("v4")
    data = os.urandom(3 * MIB + 1)
    result = bucket.put_object("f.bin", data)
    assert result.etag == md5_etag(data)
    assert result.headers["Content-MD5"] == content_md5(data)
    assert bucket.get_object("f.bin").read() == data
    assert len(files_under(sandbox.root / "blobs")) == 1


# ------------------------------------------------------------------------------ command line


def test_help_labels_the_modes_as_not_faithful() -> None:
    out = subprocess.run([sys.executable, "-m", "ossdesk", "sandbox", "--help"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    flat = " ".join(out.split())
    assert "--fast-etag" in flat
    assert "--discard" in flat
    assert flat.count("NOT OSS-faithful") >= 2
    assert "NOT faithful to OSS" in flat


@pytest.mark.parametrize(("args", "label"), [
    (["--fast-etag"], "BENCHMARK --fast-etag, not OSS-faithful"),
    (["--discard"], "BENCHMARK --discard, not OSS-faithful"),
    ([], None),
])
def test_banner_and_command_line(sandbox_process: Callable[..., SandboxProcess],
                                 args: list[str], label: str | None) -> None:
    proc = sandbox_process(args=args)
    banner = "".join(proc.output)
    if label is None:
        assert "mode:" not in banner
    else:
        assert f"mode:              {label}" in banner
    bucket = proc.info.bucket_client("v4", enable_crc=True)
    data = os.urandom(MIB + 7)
    result = bucket.put_object("cli.bin", data)
    assert result.crc == CRC.calc(data)
    assert result.etag == (md5_etag(data) if label is None else fast_etag(data))
    if "--discard" in args:
        with pytest.raises(oss2.exceptions.OssError) as err:
            bucket.get_object("cli.bin")
        assert err.value.code == "ObjectDiscarded"
    else:
        assert bucket.get_object("cli.bin").read() == data
    assert proc.stop() == 0
