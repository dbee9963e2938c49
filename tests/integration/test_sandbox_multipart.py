"""Sandbox multipart uploads through the unmodified oss2 client."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anycrc
import oss2
import pytest
import requests
from oss2.models import PartInfo

from tests.support.sandbox import SandboxInfo, read_access_log

CRC = anycrc.Model("CRC64-XZ")
KIB = 1024
MIB = 1024 * KIB


def upload_parts(bucket: oss2.Bucket, key: str, upload_id: str,
                 parts: list[bytes]) -> list[PartInfo]:
    infos = []
    for number, data in enumerate(parts, start=1):
        result = bucket.upload_part(key, upload_id, number, data)
        assert result.etag == hashlib.md5(data).hexdigest().upper()  # part ETag = part MD5
        assert result.crc == CRC.calc(data)
        infos.append(PartInfo(number, result.etag, size=len(data), part_crc=result.crc))
    return infos


@pytest.mark.parametrize("signature", ["v1", "v4"])
def test_multipart_roundtrip(sandbox: SandboxInfo, signature: str) -> None:
    bucket = sandbox.bucket_client(signature)  # enable_crc: oss2 checks the combined CRC
    key = "folder/multi part ✓.bin"
    parts = [os.urandom(100 * KIB), os.urandom(150 * KIB), os.urandom(7)]
    init = bucket.init_multipart_upload(key, headers={
        "Content-Type": "video/mp4", "x-oss-meta-source": "test",
        "x-oss-storage-class": "IA"})
    infos = upload_parts(bucket, key, init.upload_id, parts)
    result = bucket.complete_multipart_upload(key, init.upload_id, infos)
    whole = b"".join(parts)
    assert result.crc == CRC.calc(whole)
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert result.etag == hashlib.md5(md5s).hexdigest().upper() + "-3"
    got = bucket.get_object(key)
    assert got.read() == whole
    assert got.content_type == "video/mp4"
    assert got.headers["x-oss-meta-source"] == "test"
    assert got.headers["x-oss-storage-class"] == "IA"
    assert got.headers["x-oss-object-type"] == "Multipart"
    assert bucket.head_object(key).etag == result.etag
    listed = bucket.list_objects(prefix="folder/").object_list
    assert [(o.key, o.size, o.etag, o.type) for o in listed] == [
        (key, len(whole), result.etag, "Multipart")]
    with pytest.raises(oss2.exceptions.NoSuchUpload):  # completed: the id is gone
        bucket.list_parts(key, init.upload_id)


def test_reuploading_a_part_overwrites_it(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    bucket.upload_part("k", upload_id, 1, b"a" * (100 * KIB))
    second = bucket.upload_part("k", upload_id, 1, b"b" * (100 * KIB))
    parts = bucket.list_parts("k", upload_id).parts
    assert [(p.part_number, p.etag, p.size) for p in parts] == [(1, second.etag, 100 * KIB)]
    bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, second.etag)])
    assert bucket.get_object("k").read() == b"b" * (100 * KIB)


def test_complete_with_subset_of_parts(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    infos = upload_parts(bucket, "k", upload_id, [b"1" * (100 * KIB), b"2" * 10, b"3" * 10])
    bucket.complete_multipart_upload("k", upload_id, [infos[0], infos[2]])
    assert bucket.get_object("k").read() == b"1" * (100 * KIB) + b"3" * 10


def test_complete_all_header(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client(enable_crc=False)
    upload_id = bucket.init_multipart_upload("k").upload_id
    upload_parts(bucket, "k", upload_id, [b"x" * (100 * KIB), b"y"])
    result = bucket.complete_multipart_upload("k", upload_id, None,
                                              headers={"x-oss-complete-all": "yes"})
    assert result.crc == CRC.calc(b"x" * (100 * KIB) + b"y")


def test_complete_errors(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    small = upload_parts(bucket, "k", upload_id, [b"a" * 10, b"b" * (100 * KIB), b"c"])

    # oss2 sorts the list it sends, so an out-of-order list goes through a URL it signed.
    for order in ([small[1], small[0]], [small[1], small[1]]):
        xml = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{p.part_number}</PartNumber><ETag>\"{p.etag}\"</ETag></Part>"
            for p in order) + "</CompleteMultipartUpload>"
        url = bucket.sign_url("POST", "k", 60, params={"uploadId": upload_id})
        with requests.post(url, data=xml.encode(), timeout=10) as resp:
            assert resp.status_code == 400
            assert "<Code>InvalidPartOrder</Code>" in resp.text

    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, "0" * 32)])
    assert (exc.value.status, exc.value.code) == (400, "InvalidPart")

    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.complete_multipart_upload("k", upload_id, [small[1], PartInfo(9, small[2].etag)])
    assert exc.value.code == "InvalidPart"

    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.complete_multipart_upload("k", upload_id, small)  # part 1 is 10 bytes
    assert (exc.value.status, exc.value.code) == (400, "EntityTooSmall")

    # A failed complete leaves the upload usable.
    result = bucket.complete_multipart_upload("k", upload_id, small[1:])
    assert result.status == 200


def test_upload_part_to_unknown_upload(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    with pytest.raises(oss2.exceptions.NoSuchUpload) as exc:
        bucket.upload_part("k", "0123456789ABCDEF0123456789ABCDEF", 1, b"data")
    assert exc.value.status == 404
    upload_id = bucket.init_multipart_upload("k").upload_id
    with pytest.raises(oss2.exceptions.NoSuchUpload):  # the id belongs to another key
        bucket.upload_part("other", upload_id, 1, b"data")
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.upload_part("k", upload_id, 10001, b"data")


def test_abort(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    upload_parts(bucket, "k", upload_id, [b"1" * 1000])
    assert bucket.abort_multipart_upload("k", upload_id).status == 204
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("k", upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload("k", upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.complete_multipart_upload("k", upload_id, [PartInfo(1, "0" * 32)])
    assert not list(sandbox.root.joinpath("blobs").iterdir())  # the part's data is gone


def test_list_parts_paging(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    numbers = [1, 2, 3, 5, 8, 13, 21]
    for n in numbers:
        bucket.upload_part("k", upload_id, n, str(n).encode())
    page = bucket.list_parts("k", upload_id, max_parts=2)
    assert [p.part_number for p in page.parts] == [1, 2]
    assert page.is_truncated
    assert page.next_marker == "2"
    page = bucket.list_parts("k", upload_id, marker="5", max_parts=2)
    assert [p.part_number for p in page.parts] == [8, 13]
    # oss2's iterator follows NextPartNumberMarker through every page.
    assert [p.part_number for p in oss2.PartIterator(bucket, "k", upload_id, max_parts=2)] \
        == numbers
    last = bucket.list_parts("k", upload_id, marker="13", max_parts=2)
    assert [p.part_number for p in last.parts] == [21]
    assert not last.is_truncated
    part = last.parts[0]
    assert part.size == 2
    assert part.etag == hashlib.md5(b"21").hexdigest().upper()
    assert part.last_modified > 0


def test_list_parts_default_page_is_1000(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client(enable_crc=False)
    upload_id = bucket.init_multipart_upload("k").upload_id
    for n in range(1, 1003):
        bucket.upload_part("k", upload_id, n, b"p")
    first = bucket.list_parts("k", upload_id)
    assert len(first.parts) == 1000
    assert first.is_truncated
    assert first.next_marker == "1000"
    rest = bucket.list_parts("k", upload_id, marker=first.next_marker)
    assert [p.part_number for p in rest.parts] == [1001, 1002]
    assert not rest.is_truncated


def test_list_multipart_uploads(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    ids: dict[str, list[str]] = {}
    for key in ["a/1", "a/2", "b", "b", "c/d/e"]:
        ids.setdefault(key, []).append(bucket.init_multipart_upload(key).upload_id)
    everything = [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket)]
    assert sorted(everything) == sorted((k, i) for k, v in ids.items() for i in v)
    assert [u.key for u in oss2.MultipartUploadIterator(bucket, max_uploads=1)] == [
        k for k, _ in everything]
    result = bucket.list_multipart_uploads(delimiter="/")
    assert [u.key for u in result.upload_list] == ["b", "b"]
    assert result.prefix_list == ["a/", "c/"]
    result = bucket.list_multipart_uploads(prefix="a/")
    assert [u.key for u in result.upload_list] == ["a/1", "a/2"]
    assert all(u.initiation_date > 0 for u in result.upload_list)
    bucket.abort_multipart_upload("b", ids["b"][0])
    assert [u.upload_id for u in oss2.MultipartUploadIterator(bucket, prefix="b")] == ids["b"][1:]


def test_multipart_object_replaced_by_put_frees_parts(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("k").upload_id
    infos = upload_parts(bucket, "k", upload_id, [b"1" * (100 * KIB), b"2"])
    bucket.complete_multipart_upload("k", upload_id, infos)
    bucket.put_object("k", b"small")
    assert len(list(sandbox.root.joinpath("blobs").iterdir())) == 1
    bucket.delete_object("k")
    assert not list(sandbox.root.joinpath("blobs").iterdir())


def test_resumable_upload_small_parts(sandbox: SandboxInfo, tmp_path: Path) -> None:
    bucket = sandbox.bucket_client("v4")
    src = tmp_path / "src.bin"
    data = os.urandom(3 * MIB + 123)
    src.write_bytes(data)
    oss2.resumable_upload(bucket, "resumable.bin", str(src), multipart_threshold=MIB,
                          part_size=MIB, num_threads=3,
                          store=oss2.ResumableStore(root=str(tmp_path / "ckpt")))
    assert bucket.get_object("resumable.bin").read() == data
    rows = read_access_log(sandbox.log_path)
    parts = [r for r in rows if r["method"] == "PUT" and "partNumber=" in r["query"]]
    assert sorted(r["received"] for r in parts) == sorted([MIB, MIB, MIB, 123])


@pytest.mark.slow
def test_resumable_upload_256_mib_byte_exact(sandbox: SandboxInfo, tmp_path: Path) -> None:
    bucket = sandbox.bucket_client("v4")
    src = tmp_path / "big.bin"
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    with src.open("wb") as fh:
        for i in range(256):
            chunk = bytes([i]) + block[1:]
            fh.write(chunk)
            digest.update(chunk)
    result = oss2.resumable_upload(bucket, "big.bin", str(src), part_size=16 * MIB,
                                   num_threads=4,
                                   store=oss2.ResumableStore(root=str(tmp_path / "ckpt")))
    assert result.status == 200
    got = bucket.get_object("big.bin")  # oss2 verifies the whole-object CRC64 at the end
    back = hashlib.sha256()
    size = 0
    while chunk := got.read(4 * MIB):
        back.update(chunk)
        size += len(chunk)
    assert size == 256 * MIB
    assert back.hexdigest() == digest.hexdigest()
    assert bucket.head_object("big.bin").etag.endswith("-16")


def test_upload_id_marker_is_compared_not_searched_for(sandbox: SandboxInfo) -> None:
    """Like OSS: with key-marker K and upload-id-marker M, the uploads of K whose upload id
    is greater than M are listed, whether or not M still exists."""
    bucket = sandbox.bucket_client()
    ids = [bucket.init_multipart_upload("a").upload_id for _ in range(3)]
    later = bucket.init_multipart_upload("b").upload_id
    assert ids == sorted(ids)  # upload ids grow in initiation order
    paged = [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket, max_uploads=1)]
    assert paged == [("a", i) for i in ids] + [("b", later)]
    bucket.abort_multipart_upload("a", ids[0])  # the marker is gone: the rest still follows
    result = bucket.list_multipart_uploads(key_marker="a", upload_id_marker=ids[0])
    assert [(u.key, u.upload_id) for u in result.upload_list] == [
        ("a", ids[1]), ("a", ids[2]), ("b", later)]
