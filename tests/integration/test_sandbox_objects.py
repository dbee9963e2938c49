"""Sandbox object and bucket APIs, driven by the unmodified oss2 client over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os

import anycrc
import oss2
import pytest
import requests

from tests.support.sandbox import SandboxInfo, read_access_log

CRC = anycrc.Model("CRC64-XZ")
SIGNATURES = ["v1", "v4"]


def md5_etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


@pytest.mark.parametrize("signature", SIGNATURES)
def test_put_get_head_delete_roundtrip(sandbox: SandboxInfo, signature: str) -> None:
    bucket = sandbox.bucket_client(signature)
    data = os.urandom(300_000)
    key = "dir/ünïcødé key with spaces+plus?&=#.bin"
    result = bucket.put_object(key, data, headers={
        "Content-Type": "application/x-test", "x-oss-meta-owner": "tests",
        "x-oss-storage-class": "IA", "Content-Disposition": "attachment"})
    assert result.status == 200
    assert result.etag == md5_etag(data)
    assert result.crc == CRC.calc(data)
    assert result.headers["ETag"] == f'"{md5_etag(data)}"'
    assert result.request_id

    got = bucket.get_object(key)
    assert got.read() == data  # enable_crc=True: oss2 checks the whole-object CRC itself
    assert got.content_type == "application/x-test"
    assert got.headers["x-oss-meta-owner"] == "tests"
    assert got.headers["x-oss-storage-class"] == "IA"
    assert got.headers["Content-Disposition"] == "attachment"
    assert got.headers["x-oss-object-type"] == "Normal"
    assert int(got.headers["x-oss-hash-crc64ecma"]) == CRC.calc(data)

    head = bucket.head_object(key)
    assert head.content_length == len(data)
    assert head.etag == md5_etag(data)
    assert head.server_crc == CRC.calc(data)
    assert head.headers["x-oss-meta-owner"] == "tests"
    meta = bucket.get_object_meta(key)
    assert meta.content_length == len(data)
    assert meta.etag == md5_etag(data)

    assert bucket.object_exists(key)
    assert bucket.delete_object(key).status == 204
    assert not bucket.object_exists(key)
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(key)
    # Deleting what is not there is fine, as on OSS.
    assert bucket.delete_object(key).status == 204


def test_overwrite_replaces_content_and_metadata(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("k", b"first", headers={"x-oss-meta-a": "1"})
    bucket.put_object("k", b"second")
    got = bucket.get_object("k")
    assert got.read() == b"second"
    assert "x-oss-meta-a" not in got.headers
    assert got.content_type == "application/octet-stream"


def test_empty_object(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    result = bucket.put_object("empty", b"")
    assert result.crc == 0
    assert result.etag == md5_etag(b"")
    assert bucket.get_object("empty").read() == b""
    assert bucket.head_object("empty").content_length == 0


@pytest.mark.parametrize(
    ("byte_range", "expected"),
    [((0, 0), slice(0, 1)), ((10, 99), slice(10, 100)), ((1000, None), slice(1000, None)),
     ((None, 10), slice(-10, None)), ((0, 4095), slice(0, 4096))],
)
def test_get_range(sandbox: SandboxInfo, byte_range: tuple[int | None, int | None],
                   expected: slice) -> None:
    bucket = sandbox.bucket_client()
    data = os.urandom(4096)
    bucket.put_object("r", data)
    got = bucket.get_object("r", byte_range=byte_range)
    assert got.status == 206
    assert got.read() == data[expected]
    assert got.headers["Content-Range"].endswith("/4096")


def test_unsatisfiable_range_returns_whole_object_like_oss(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("r", b"0123456789")
    got = bucket.get_object("r", byte_range=(20, 30))
    assert got.status == 200
    assert got.read() == b"0123456789"


def test_range_across_multipart_segments(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    parts = [os.urandom(100 * 1024), os.urandom(100 * 1024), os.urandom(5)]
    upload_id = bucket.init_multipart_upload("m").upload_id
    infos = [oss2.models.PartInfo(i + 1, bucket.upload_part("m", upload_id, i + 1, p).etag)
             for i, p in enumerate(parts)]
    bucket.complete_multipart_upload("m", upload_id, infos)
    whole = b"".join(parts)
    start, end = 100 * 1024 - 7, 200 * 1024 + 2
    assert bucket.get_object("m", byte_range=(start, end)).read() == whole[start:end + 1]


def test_content_md5_checked(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    data = b"payload"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert bucket.put_object("m", data, headers={"Content-MD5": good}).status == 200
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(oss2.exceptions.InvalidDigest) as exc:
        bucket.put_object("m2", data, headers={"Content-MD5": wrong})
    assert exc.value.status == 400
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("m2", data, headers={"Content-MD5": "not-base64!"})
    assert not bucket.object_exists("m2")


def test_request_crc64_header_checked(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    data = b"crc me"
    ok = bucket.put_object("c", data, headers={"x-oss-hash-crc64ecma": str(CRC.calc(data))})
    assert ok.status == 200
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_object("c2", data, headers={"x-oss-hash-crc64ecma": str(CRC.calc(data) ^ 1)})
    assert exc.value.status == 400
    assert exc.value.code == "InvalidDigest"


def test_invalid_storage_class_and_key(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object("x", b"1", headers={"x-oss-storage-class": "Glacier"})
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_object("k" * 1024, b"1")
    assert exc.value.code == "InvalidObjectName"
    long_key = "é" * 511  # 1022 bytes of UTF-8: allowed
    bucket.put_object(long_key, b"1")
    assert bucket.get_object(long_key).read() == b"1"


def test_no_such_bucket(sandbox: SandboxInfo) -> None:
    other = sandbox.bucket_client(bucket="missing-bucket")
    with pytest.raises(oss2.exceptions.NoSuchBucket) as exc:
        other.put_object("k", b"1")
    assert exc.value.status == 404
    assert exc.value.request_id
    assert exc.value.details["RequestId"] == exc.value.request_id
    assert exc.value.details["HostId"]
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        other.get_bucket_info()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        other.list_objects()


def test_error_body_is_oss_xml(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    with pytest.raises(oss2.exceptions.NoSuchKey) as exc:
        bucket.get_object("nothing/here")
    body = exc.value.body.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>')
    assert "<Message>" in body and "<RequestId>" in body and "<HostId>" in body
    assert exc.value.headers["x-oss-request-id"] == exc.value.request_id
    # HEAD has no body: OSS sends the error in x-oss-err, which oss2 decodes.
    with pytest.raises(oss2.exceptions.NotFound) as head_exc:
        bucket.head_object("nothing/here")
    assert head_exc.value.code == "NoSuchKey"


def test_bucket_info_location_and_list_buckets(sandbox_factory) -> None:
    info = sandbox_factory(buckets=("alpha", "beta-2"), region="cn-shanghai")
    bucket = info.bucket_client()
    result = bucket.get_bucket_info()
    assert result.name == "alpha"
    assert result.location == "oss-cn-shanghai"
    assert result.storage_class == "Standard"
    assert result.acl.grant == "private"
    assert bucket.get_bucket_location().location == "oss-cn-shanghai"
    names = [b.name for b in oss2.BucketIterator(info.service_client())]
    assert names == ["alpha", "beta-2"]
    info.bucket_client(bucket="beta-2").put_object("k", b"v")


def test_create_bucket(sandbox: SandboxInfo) -> None:
    new = sandbox.bucket_client(bucket="made-by-test")
    new.create_bucket()
    new.put_object("k", b"v")
    assert new.get_object("k").read() == b"v"


KEYS = sorted([
    "a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "b/c/4.txt", "c/5.txt", "d.txt",
    "e/ü/6.txt", "f\u4e2d\u6587/7.txt", "g with space/8", "h%25percent", "z+plus",
    "x&<y>'\".txt",
], key=lambda k: k.encode())


@pytest.fixture
def listed(sandbox: SandboxInfo) -> oss2.Bucket:
    bucket = sandbox.bucket_client()
    for key in KEYS:
        bucket.put_object(key, key.encode())
    return bucket


def test_list_objects_all_and_prefix(listed: oss2.Bucket) -> None:
    assert [o.key for o in oss2.ObjectIterator(listed)] == KEYS
    assert [o.key for o in oss2.ObjectIteratorV2(listed)] == KEYS
    assert [o.key for o in oss2.ObjectIterator(listed, prefix="b/c/")] == ["b/c/3.txt",
                                                                         "b/c/4.txt"]
    first = listed.list_objects(max_keys=100).object_list[0]
    assert first.etag == md5_etag(b"a.txt")
    assert first.size == 5
    assert first.type == "Normal"
    assert first.storage_class == "Standard"
    assert first.last_modified > 0


def test_list_objects_delimiter(listed: oss2.Bucket) -> None:
    result = listed.list_objects(delimiter="/")
    assert [o.key for o in result.object_list] == ["a.txt", "d.txt", "h%25percent",
                                                  "x&<y>'\".txt", "z+plus"]
    assert result.prefix_list == ["b/", "c/", "e/", "f\u4e2d\u6587/", "g with space/"]
    sub = listed.list_objects_v2(prefix="b/", delimiter="/")
    assert [o.key for o in sub.object_list] == ["b/1.txt", "b/2.txt"]
    assert sub.prefix_list == ["b/c/"]


@pytest.mark.parametrize("max_keys", [1, 2, 3, 5])
def test_list_objects_paging(listed: oss2.Bucket, max_keys: int) -> None:
    def collect(v2: bool, delimiter: str) -> tuple[list[str], list[str], int]:
        keys: list[str] = []
        prefixes: list[str] = []
        pages = 0
        marker = ""
        while True:
            if v2:
                r = listed.list_objects_v2(delimiter=delimiter, continuation_token=marker,
                                           max_keys=max_keys)
            else:
                r = listed.list_objects(delimiter=delimiter, marker=marker, max_keys=max_keys)
            pages += 1
            assert len(r.object_list) + len(r.prefix_list) <= max_keys
            keys += [o.key for o in r.object_list]
            prefixes += r.prefix_list
            if not r.is_truncated:
                return keys, prefixes, pages
            marker = r.next_continuation_token if v2 else r.next_marker

    for v2 in (False, True):
        keys, prefixes, pages = collect(v2, "")
        assert keys == KEYS
        assert pages == -(-len(KEYS) // max_keys)  # no empty last page
        keys, prefixes, _ = collect(v2, "/")
        assert keys == ["a.txt", "d.txt", "h%25percent", "x&<y>'\".txt", "z+plus"]
        assert prefixes == ["b/", "c/", "e/", "f\u4e2d\u6587/", "g with space/"]


def test_list_objects_v2_start_after_and_owner(listed: oss2.Bucket) -> None:
    result = listed.list_objects_v2(start_after="c/5.txt", fetch_owner=True)
    assert [o.key for o in result.object_list] == KEYS[KEYS.index("c/5.txt") + 1:]
    assert result.object_list[0].owner is not None


def test_list_objects_bad_max_keys(listed: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.InvalidArgument):
        listed.list_objects(max_keys=1001)


def test_batch_delete(listed: oss2.Bucket) -> None:
    result = listed.batch_delete_objects(["a.txt", "d.txt", "not-there"])
    assert sorted(result.deleted_keys) == ["a.txt", "d.txt", "not-there"]
    assert not listed.object_exists("a.txt")


@pytest.mark.parametrize("signature", SIGNATURES)
def test_presigned_get_url(sandbox: SandboxInfo, signature: str) -> None:
    bucket = sandbox.bucket_client(signature)
    data = os.urandom(1000)
    bucket.put_object("shared/file name.bin", data)
    url = bucket.sign_url("GET", "shared/file name.bin", 60)
    with requests.get(url, timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.content == data
        assert int(resp.headers["x-oss-hash-crc64ecma"]) == CRC.calc(data)
    expired = bucket.sign_url("GET", "shared/file name.bin", -10)
    with requests.get(expired, timeout=10) as resp:
        assert resp.status_code == 403
        assert "<Code>AccessDenied</Code>" in resp.text
    tampered = url.replace("file%20name", "file%20nam3")
    with requests.get(tampered, timeout=10) as resp:
        assert resp.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in resp.text


def test_presigned_put_url(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client("v4")
    url = bucket.sign_url("PUT", "via-url", 60)
    with requests.put(url, data=b"uploaded by url", timeout=10) as resp:
        assert resp.status_code == 200
    assert bucket.get_object("via-url").read() == b"uploaded by url"


def test_every_response_has_request_id_and_access_log(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    r1 = bucket.put_object("logged", b"12345")
    r2 = bucket.get_object("logged")
    assert r2.read() == b"12345"
    assert r1.request_id != r2.request_id
    rows = read_access_log(sandbox.log_path)
    put = [r for r in rows if r["method"] == "PUT" and r["path"] == "/sandbox/logged"]
    get = [r for r in rows if r["method"] == "GET" and r["path"] == "/sandbox/logged"]
    assert put[0]["status"] == 200 and put[0]["received"] == 5 and put[0]["sent"] == 0
    assert get[0]["status"] == 200 and get[0]["received"] == 0 and get[0]["sent"] == 5


def test_conditional_get(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    etag = bucket.put_object("c", b"conditional").etag
    assert bucket.get_object("c", headers={"If-Match": f'"{etag}"'}).read() == b"conditional"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c", headers={"If-Match": '"0123"'})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", headers={"If-None-Match": f'"{etag}"'})
    future = "Fri, 01 Jan 2100 00:00:00 GMT"
    past = "Mon, 01 Jan 2001 00:00:00 GMT"
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", headers={"If-Modified-Since": future})
    assert bucket.get_object("c", headers={"If-Modified-Since": past}).read() == b"conditional"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c", headers={"If-Unmodified-Since": past})


def test_resumable_download(sandbox: SandboxInfo, tmp_path) -> None:
    bucket = sandbox.bucket_client()
    data = os.urandom(3 * 1024 * 1024 + 5)
    bucket.put_object("dl.bin", data)
    target = tmp_path / "dl.bin"
    oss2.resumable_download(bucket, "dl.bin", str(target), multiget_threshold=1024 * 1024,
                            part_size=1024 * 1024, num_threads=2,
                            store=oss2.ResumableDownloadStore(root=str(tmp_path / "ckpt")))
    assert target.read_bytes() == data


def test_forbid_overwrite(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("once", b"1", headers={"x-oss-forbid-overwrite": "true"})
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_object("once", b"2", headers={"x-oss-forbid-overwrite": "true"})
    assert (exc.value.status, exc.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("once").read() == b"1"


@pytest.mark.parametrize(
    ("byte_range", "status", "expected"),
    [((0, 999), 206, b"0123456789"), ((5, 999), 206, b"56789"), ((None, 99), 206, b"0123456789"),
     ((2, 3), 206, b"23")],
)
def test_standard_range_behavior_truncates_a_range_past_the_end(
        sandbox: SandboxInfo, byte_range: tuple[int | None, int | None], status: int,
        expected: bytes) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("r", b"0123456789")
    got = bucket.get_object("r", byte_range=byte_range,
                            headers={"x-oss-range-behavior": "standard"})
    assert got.status == status
    assert got.read() == expected
    assert got.headers["Content-Range"].endswith("/10")


def test_standard_range_behavior_refuses_a_range_past_the_end(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    bucket.put_object("r", b"0123456789")
    with pytest.raises(oss2.exceptions.OssError) as info:
        bucket.get_object("r", byte_range=(10, 20), headers={"x-oss-range-behavior": "standard"})
    assert (info.value.status, info.value.code) == (416, "InvalidRange")
    # Without the header, OSS's own behaviour: the whole object.
    assert bucket.get_object("r", byte_range=(10, 20)).read() == b"0123456789"


def test_list_buckets_prefix_marker_and_max_keys(sandbox_factory) -> None:
    info = sandbox_factory(buckets=("aa-1", "aa-2", "bb-1"))
    service = info.service_client()
    assert [b.name for b in service.list_buckets(prefix="aa").buckets] == ["aa-1", "aa-2"]
    page = service.list_buckets(max_keys=1)
    assert [b.name for b in page.buckets] == ["aa-1"]
    assert page.is_truncated
    assert page.next_marker == "aa-1"
    assert [b.name for b in service.list_buckets(marker="aa-1").buckets] == ["aa-2", "bb-1"]
    assert [b.name for b in oss2.BucketIterator(service, max_keys=1)] == ["aa-1", "aa-2", "bb-1"]
    with pytest.raises(oss2.exceptions.OssError) as bad:
        service.list_buckets(max_keys=1001)
    assert (bad.value.status, bad.value.code) == (400, "InvalidArgument")
