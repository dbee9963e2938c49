"""A server that sends no ``x-oss-hash-crc64ecma`` (the oss-emulator, some gateways).

The sandbox leaves the header out of every answer (fault ``omit-crc64``). Parts and simple
objects are then verified by MD5: the request carries ``Content-MD5`` (the server itself
refuses a damaged body) and the ETag must be the MD5 of the bytes sent. A body damaged on
the way (fault ``body``) or an ETag that is not that MD5 never ends as done.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from pathlib import Path
from typing import Any

import pytest

from ossdesk import config
from ossdesk.core.events import Done, Failed
from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError
from ossdesk.core.store import State
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import (
    KiB,
    cli_env,
    dest,
    json_lines,
    object_bytes,
    ossdesk,
    part_puts,
    snapshot_store,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log

P = 128 * KiB


def _run(sched: Any, timeout: float = 60) -> None:
    assert sched.wait(timeout), "the engine did not settle"


def _assert_same_bytes(sb: SandboxInfo, key: str, path: Path) -> None:
    data, header = object_bytes(sb, key)
    assert header is None  # the server really gave no CRC-64
    assert data == path.read_bytes(), key


def test_parts_and_simple_objects_are_verified_by_md5(sandbox: SandboxInfo,
                                                      engine: EngineFactory,
                                                      tmp_path: Path) -> None:
    big = write_random(tmp_path / "big.bin", 4 * P + 7)
    small = write_random(tmp_path / "small.bin", 20 * KiB)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    sched, rec = engine(part_size=P)
    ids = sched.add([new_upload(sandbox, big), new_upload(sandbox, small)])
    _run(sched)
    assert rec.of(Failed) == [], [e.message for e in rec.of(Failed)]
    done = {e.key: e for e in rec.of(Done)}
    assert set(done) == {"big.bin", "small.bin"}
    assert {e.check for e in done.values()} == {"md5"}
    assert "MD5 of each part" in done["big.bin"].verified_by
    assert "no CRC-64" in done["small.bin"].verified_by
    for upload in ids:
        row = sched.store.get(upload)
        assert row is not None and row.state is State.DONE and row.checked_by == "md5"
    _assert_same_bytes(sandbox, "big.bin", big)
    _assert_same_bytes(sandbox, "small.bin", small)
    # Each object's ETag on the server: a part's is the MD5 of its bytes, so the recorded
    # list of parts is what Complete assembled.
    etag = sandbox.bucket_client().head_object("small.bin").etag
    assert etag.lower() == hashlib.md5(small.read_bytes()).hexdigest()


def test_the_same_server_with_crc_is_still_verified_by_crc64(sandbox: SandboxInfo,
                                                             engine: EngineFactory,
                                                             tmp_path: Path) -> None:
    big = write_random(tmp_path / "big.bin", 3 * P)
    sched, rec = engine(part_size=P)
    [upload] = sched.add([new_upload(sandbox, big)])
    _run(sched)
    [done] = rec.of(Done)
    assert done.check == "crc64" and done.verified_by == "CRC-64"
    row = sched.store.get(upload)
    assert row is not None and row.checked_by == "crc64"


def test_a_part_damaged_on_the_way_is_never_done(sandbox: SandboxInfo, engine: EngineFactory,
                                                 tmp_path: Path) -> None:
    path = write_random(tmp_path / "d.bin", 3 * P)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    sandbox.server.faults.damage_body(pattern=r"partNumber=2\b", count=None)
    sched, rec = engine(part_size=P)
    [upload] = sched.add([new_upload(sandbox, path)])
    _run(sched)
    assert rec.of(Done) == []
    [failed] = rec.of(Failed)
    assert failed.retryable and "damaged" in failed.message, failed.message
    row = sched.store.get(upload)
    assert row is not None and row.state is State.FAILED and row.upload_id
    # The server refused the damaged bodies itself (Content-MD5 was sent) ...
    part2 = [p for p in part_puts(sandbox.log_path) if p.number == 2]
    assert part2 and all(p.status == 400 for p in part2[1:])
    # ... and nothing was ever completed.
    assert not [r for r in read_access_log(sandbox.log_path)
                if r["method"] == "POST" and "uploadId=" in r["query"]]


def test_a_part_damaged_once_is_sent_again_and_verified(sandbox: SandboxInfo,
                                                        engine: EngineFactory,
                                                        tmp_path: Path) -> None:
    path = write_random(tmp_path / "o.bin", 3 * P)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    sandbox.server.faults.damage_body(pattern=r"partNumber=3\b", count=2)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, path)])
    _run(sched)
    assert rec.of(Failed) == []
    [done] = rec.of(Done)
    assert done.check == "md5"
    _assert_same_bytes(sandbox, "o.bin", path)


def test_a_simple_object_damaged_on_the_way_is_never_done(sandbox: SandboxInfo,
                                                          engine: EngineFactory,
                                                          tmp_path: Path) -> None:
    path = write_random(tmp_path / "s.bin", 30 * KiB)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    sandbox.server.faults.damage_body(pattern=r"/s\.bin\?$", count=None)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, path)])
    _run(sched)
    assert rec.of(Done) == []
    [failed] = rec.of(Failed)
    assert "damaged" in failed.message, failed.message


def test_an_etag_that_is_not_the_md5_is_never_done(sandbox: SandboxInfo,
                                                   engine: EngineFactory,
                                                   tmp_path: Path) -> None:
    """Neither a CRC-64 nor a matching ETag: nothing is verified."""
    big = write_random(tmp_path / "e.bin", 3 * P)
    small = write_random(tmp_path / "f.bin", 10 * KiB)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    sandbox.server.faults.corrupt("etag", method="PUT", pattern=r"partNumber=2\b|/f\.bin\?$",
                                  count=None)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, big), new_upload(sandbox, small)])
    _run(sched)
    assert rec.of(Done) == []
    assert len(rec.of(Failed)) == 2
    assert all("MD5" in f.message for f in rec.of(Failed)), [f.message for f in rec.of(Failed)]


def test_content_md5_is_checked_by_the_sandbox(sandbox: SandboxInfo) -> None:
    """The sandbox refuses a body whose MD5 is not the Content-MD5 sent, like OSS."""
    bucket = sandbox.bucket_client(enable_crc=False)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    try:
        bucket.put_object("m", b"data", headers={"Content-MD5": wrong})
    except Exception as exc:
        assert getattr(exc, "code", "") == "InvalidDigest"
    else:
        raise AssertionError("a wrong Content-MD5 was accepted")


def test_cli_upload_to_a_server_without_crc_names_the_md5_check(sandbox: SandboxInfo,
                                                                tmp_path: Path) -> None:
    big = write_random(tmp_path / "c.bin", 5 * P + 1)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    env = cli_env(sandbox)
    result = ossdesk("upload", str(big), *dest(sandbox), "--part-size", str(P), env=env)
    assert result.returncode == 0, result.stderr
    assert "verified (MD5 of each part; the server gave no CRC-64)" in result.stdout, \
        result.stdout
    _assert_same_bytes(sandbox, "c.bin", big)
    [row] = snapshot_store(config.paths().database).rows
    assert row["state"] == "done" and row["checked_by"] == "md5"
    status = ossdesk("status", env=env)
    assert "verified by MD5" in status.stdout, status.stdout
    [line] = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert line["check"] == "md5"


# ------------------------------------------------------- the connection check (bucket info)

_INFO_WITHOUT_STORAGE_CLASS = (b'<?xml version="1.0" encoding="UTF-8"?>\n<BucketInfo><Bucket>'
                               b"<Name>emu</Name><CreationDate>2026-01-01T00:00:00.000Z"
                               b"</CreationDate></Bucket></BucketInfo>")
_LISTING = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>emu</Name>'
            b"<Prefix></Prefix><MaxKeys>1</MaxKeys><KeyCount>0</KeyCount>"
            b"<IsTruncated>false</IsTruncated></ListBucketResult>")
_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
           b"<Message>denied</Message><RequestId>1</RequestId></Error>")


class _EmulatorLike(http.server.BaseHTTPRequestHandler):
    """Answers GetBucketInfo without StorageClass (as the oss-emulator does) and the
    listing with ``server.listing`` (status, body)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status, body = ((200, _INFO_WITHOUT_STORAGE_CLASS) if "bucketInfo" in self.path
                        else self.server.listing)  # type: ignore[attr-defined]
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-oss-request-id", "1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("listing", ["ok", "denied"])
def test_a_bucket_info_answer_that_cannot_be_read_falls_back_to_a_listing(
        listing: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EmulatorLike)
    server.listing = (200, _LISTING) if listing == "ok" else (403, _DENIED)  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with OssClient(Endpoint(url, "emu", "cn-hangzhou"), Credentials("id", "secret"),
                       path_style=True) as client:
            if listing == "ok":
                client.check_connection()  # the listing worked: the connection is fine
            else:
                with pytest.raises(OssError) as err:
                    client.check_connection()
                assert err.value.code == "AccessDenied", err.value.message
                assert "unexpected" not in err.value.message.lower()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    seen = server.seen  # type: ignore[attr-defined]
    assert len(seen) == 2 and "bucketInfo" in seen[0] and "list-type=2" in seen[1]


def test_a_resumed_upload_sends_content_md5_from_its_first_request(sandbox: SandboxInfo,
                                                                   tmp_path: Path) -> None:
    """The row remembers that its server gave no CRC-64: after a crash, the first part the
    new process sends already carries Content-MD5 (a damaged body is refused at once, not
    stored and sent again)."""
    path = write_random(tmp_path / "r.bin", 4 * P)
    assert sandbox.server is not None
    sandbox.server.faults.omit_crc64()
    env = cli_env(sandbox)
    args = ["--part-size", str(P), "--parallel", "1"]
    first = ossdesk("upload", str(path), *dest(sandbox), *args,
                    env={**env, "OSSDESK_CRASH_AT": "part-saved:2"})
    assert first.returncode == 137, first.stderr
    [row] = snapshot_store(config.paths().database).rows
    assert row["checked_by"] == "md5" and row["state"] == "running"
    sent_before = len(part_puts(sandbox.log_path))
    sandbox.server.faults.damage_body(pattern=r"partNumber=3\b", count=1)
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stderr
    assert "verified (MD5 of each part; the server gave no CRC-64)" in result.stdout
    resumed = part_puts(sandbox.log_path)[sent_before:]
    assert [p.status for p in resumed if p.number == 3] == [400, 200]
    assert [p.status for p in resumed if p.number == 4] == [200]
    _assert_same_bytes(sandbox, "r.bin", path)
