"""The sandbox as a server: restarts, child processes, HTTP details, command line."""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
from pathlib import Path

import oss2
import pytest
from oss2.models import PartInfo

from ossdesk.sandbox import SandboxServer
from ossdesk.sandbox.cli import configure
from tests.support.sandbox import SandboxInfo, read_access_log

KIB = 1024


def test_objects_and_uploads_survive_restart(sandbox_factory, tmp_path: Path) -> None:
    root = tmp_path / "persist"
    first = sandbox_factory(root=root)
    bucket = first.bucket_client()
    bucket.put_object("kept/ключ.txt", b"object data", headers={"x-oss-meta-a": "b"})
    upload_id = bucket.init_multipart_upload("big").upload_id
    part1 = bucket.upload_part("big", upload_id, 1, b"1" * (100 * KIB))
    first.close_sessions()
    assert first.server is not None
    first.server.stop()

    second = sandbox_factory(root=root)
    bucket = second.bucket_client()
    got = bucket.get_object("kept/ключ.txt")
    assert got.read() == b"object data"
    assert got.headers["x-oss-meta-a"] == "b"
    assert [p.part_number for p in bucket.list_parts("big", upload_id).parts] == [1]
    part2 = bucket.upload_part("big", upload_id, 2, b"2")
    bucket.complete_multipart_upload("big", upload_id, [PartInfo(1, part1.etag),
                                                        PartInfo(2, part2.etag)])
    assert bucket.get_object("big").read() == b"1" * (100 * KIB) + b"2"


def test_start_stop_is_fast_and_clean_with_idle_keepalive(tmp_path: Path) -> None:
    server = SandboxServer(tmp_path / "root", test_hooks=False)
    server.start()
    session = oss2.Session()
    try:
        bucket = oss2.Bucket(oss2.AuthV4("LTAI5tSandboxAccessKey0",
                                         "sandbox-secret-for-local-testing-only"),
                             server.endpoint, "sandbox", region="cn-hangzhou", session=session)
        bucket.put_object("k", b"v")  # leaves an idle keep-alive connection in the pool
        threads_before = threading.active_count()
        assert threads_before > 1
    finally:
        server.stop()  # must not wait for the idle connection to time out
        session.session.close()
    assert all(not t.name.startswith("sandbox") for t in threading.enumerate())
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.endpoint


def test_keepalive_100_continue_and_chunked(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client("v1", enable_crc=False)
    url = bucket.sign_url("PUT", "chunked", 60)
    host, port = sandbox.endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        target = url.split(sandbox.endpoint, 1)[1]
        # Chunked request body.
        conn.putrequest("PUT", target)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in (b"hello ", b"chunked ", b"world"):
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
        # Same connection again (keep-alive), now with Expect: 100-continue.
        conn.putrequest("PUT", target)
        conn.putheader("Content-Length", "4")
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        sock = conn.sock
        assert sock is not None
        first = sock.recv(100)
        assert first.startswith(b"HTTP/1.1 100 Continue")
        conn.send(b"data")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    finally:
        conn.close()
    assert bucket.get_object("chunked").read() == b"data"
    rows = [r for r in read_access_log(sandbox.log_path) if r["path"] == "/sandbox/chunked"]
    assert [r["received"] for r in rows] == [19, 4, 0]


def test_100_continue_refused_without_reading_body(sandbox: SandboxInfo) -> None:
    host, port = sandbox.endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("PUT", "/sandbox/denied")
        conn.putheader("Content-Length", str(10**9))
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        resp = conn.getresponse()  # the answer comes without the body being sent
        assert resp.status == 403
        assert b"<Code>AccessDenied</Code>" in resp.read()
        assert resp.getheader("x-oss-request-id")
    finally:
        conn.close()


def test_concurrent_parts(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    upload_id = bucket.init_multipart_upload("c").upload_id
    datas = {n: os.urandom(100 * KIB + n) for n in range(1, 17)}
    etags: dict[int, str] = {}
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            etags[n] = bucket.upload_part("c", upload_id, n, datas[n]).etag
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in datas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    bucket.complete_multipart_upload("c", upload_id,
                                     [PartInfo(n, etags[n]) for n in sorted(datas)])
    assert bucket.get_object("c").read() == b"".join(datas[n] for n in sorted(datas))


def test_subprocess_kill_restart_and_http_faults(sandbox_process) -> None:
    proc = sandbox_process()
    info = proc.info
    bucket = info.bucket_client()
    bucket.put_object("before-crash", b"1")
    upload_id = bucket.init_multipart_upload("m").upload_id
    bucket.upload_part("m", upload_id, 1, b"p" * (100 * KIB))

    proc.faults.fail(503, method="GET", pattern="^/sandbox/before-crash", count=1)
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_object("before-crash")
    assert exc.value.status == 503

    port = proc.port
    proc.kill()  # SIGKILL: a crash
    info = proc.restart()
    assert proc.port == port
    bucket = info.bucket_client()
    assert bucket.get_object("before-crash").read() == b"1"
    assert [p.part_number for p in bucket.list_parts("m", upload_id).parts] == [1]
    proc.faults.forget_upload(upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("m", upload_id)
    assert proc.stop() == 0  # Ctrl-C exits cleanly
    assert any("stopped" in line for line in proc.output)
    rows = read_access_log(proc.log_path)
    assert any(r["path"] == "/sandbox/before-crash" and r["status"] == 503 for r in rows)


def test_cli_defaults_and_help(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([])
    assert args.host == "127.0.0.1"
    assert args.port == 9000
    assert args.root is None
    out = subprocess.run([sys.executable, "-m", "ossdesk", "sandbox", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for option in ("--host", "--port", "--root", "--bucket", "--region", "--log"):
        assert option in out


def test_cli_prints_connection_details_and_env_keys(sandbox_process) -> None:
    proc = sandbox_process(buckets=("one", "two"), region="cn-beijing",
                           env={"OSS_ACCESS_KEY_ID": "LTAIfromenv",
                                "OSS_ACCESS_KEY_SECRET": "secret-from-env"})
    text = "".join(proc.output)
    assert "region:            cn-beijing" in text
    assert "bucket(s):         one, two" in text
    assert "LTAIfromenv" in text
    assert "secret-from-env" not in text  # a real secret is never echoed
    bucket = proc.info.bucket_client(bucket="two")
    assert bucket.put_object("k", b"v").status == 200


def test_cli_refuses_bad_bucket_name(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ossdesk", "sandbox", "--port", "0",
                             "--root", str(tmp_path / "r"), "--bucket", "Bad_Name"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "not a valid bucket name" in result.stderr


def test_virtual_host_style(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client("v1")
    bucket.put_object("dir/vh.txt", b"virtual host")
    url = bucket.sign_url("GET", "dir/vh.txt", 60)
    query = url.split("?", 1)[1]
    host, port = sandbox.endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/dir%2Fvh.txt?" + query,
                     headers={"Host": f"{sandbox.bucket}.{host}:{port}"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"virtual host"
    finally:
        conn.close()


def test_cli_accepts_sts_token_from_environment(sandbox_process) -> None:
    proc = sandbox_process(env={"OSS_SESSION_TOKEN": "token-from-env"})
    assert "security token:    (the value of OSS_SESSION_TOKEN)" in "".join(proc.output)
    info = proc.info
    assert info.security_token == "token-from-env"
    bucket = info.bucket_client("v4")  # signs with the token
    assert bucket.put_object("k", b"v").status == 200
    proc.faults.expire_token()
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_object("k")
    assert exc.value.code == "SecurityTokenExpired"
