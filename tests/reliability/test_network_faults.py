"""Network faults: resets, 5xx storms, slow answers and timeouts, the server gone and back,
NoSuchUpload on resume, lying CRC64 / ETag headers, a skewed clock.

Most run the engine in-process against the in-process sandbox (fast retries); the outage
and NoSuchUpload cases run the real ``ossdesk`` command line, the outage against a sandbox
child process that is SIGKILLed and restarted. (An STS token expiring mid-upload is in
``test_secrets.py``, through the command line.)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import oss2.auth
import oss2.utils
import pytest

from ossdesk import config
from ossdesk.core.events import Done, Failed, Notice
from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.store import State
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    json_lines,
    ossdesk,
    part_puts,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log

P = 128 * KiB


def _run(sched: Any, timeout: float = 60) -> None:
    assert sched.wait(timeout), "the engine did not settle"


def test_connection_reset_mid_part_and_mid_put(sandbox: SandboxInfo, engine: EngineFactory,
                                               tmp_path: Path) -> None:
    big = write_random(tmp_path / "big.bin", 6 * P + 5)
    small = write_random(tmp_path / "small.bin", 50 * KiB)
    assert sandbox.server is not None
    # Parts 1-6 are full (the 5-byte part 7 would end before 64 KiB: no reset).
    sandbox.server.faults.reset_after(64 * KiB, method="PUT", pattern=r"partNumber=[1-6]\b",
                                      count=4)
    sandbox.server.faults.reset_after(1000, method="PUT", pattern=r"/small\.bin\?$", count=2)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, big), new_upload(sandbox, small)])
    _run(sched)
    assert rec.of(Failed) == []
    assert len(rec.of(Done)) == 2
    assert_uploaded(sandbox, "big.bin", big)
    assert_uploaded(sandbox, "small.bin", small)
    cut = [r for r in read_access_log(sandbox.log_path) if r["status"] == 0]
    assert len(cut) == 6  # the six resets happened, and were survived
    assert remote_uploads(sandbox) == []


def test_5xx_storm_on_every_kind_of_request(sandbox: SandboxInfo, engine: EngineFactory,
                                            tmp_path: Path) -> None:
    big = write_random(tmp_path / "big.bin", 4 * P)
    small = write_random(tmp_path / "small.bin", 10)
    assert sandbox.server is not None
    faults = sandbox.server.faults
    faults.fail(503, method="POST", pattern=r"\?uploads", count=3)  # Initiate
    faults.fail(500, method="PUT", pattern="partNumber=", count=5)  # parts
    faults.fail(503, method="POST", pattern="uploadId=", count=3)  # Complete
    faults.fail(503, method="PUT", pattern=r"/small\.bin\?$", count=3)  # PutObject
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, big), new_upload(sandbox, small)])
    _run(sched)
    assert rec.of(Failed) == []
    assert_uploaded(sandbox, "big.bin", big)
    assert_uploaded(sandbox, "small.bin", small)
    statuses = [r["status"] for r in read_access_log(sandbox.log_path)]
    assert statuses.count(503) == 9 and statuses.count(500) == 5
    assert faults.rules() == []  # every injected failure was met


def test_slow_answers_and_timeouts(sandbox: SandboxInfo, engine: EngineFactory,
                                   tmp_path: Path) -> None:
    """Every answer slowed; one part and the Complete held past the client's read timeout:
    the part is sent again, the Complete's retry finds the object complete and verifies it."""
    big = write_random(tmp_path / "big.bin", 5 * P + 1)

    def client(row: Any, creds: Any) -> OssClient:
        return OssClient(Endpoint(row.endpoint, row.bucket, row.region), creds,
                         read_timeout=1.0)

    assert sandbox.server is not None
    faults = sandbox.server.faults
    faults.delay(0.2, count=None)
    faults.delay(2.5, method="PUT", pattern=r"partNumber=2\b", count=1)
    faults.delay(2.5, method="POST", pattern="uploadId=", count=1)
    sched, rec = engine(part_size=P, client_factory=client)
    sched.add([new_upload(sandbox, big)])
    _run(sched, 90)
    assert rec.of(Failed) == [], [e.message for e in rec.of(Failed)]
    assert len(rec.of(Done)) == 1
    assert_uploaded(sandbox, "big.bin", big)

    def requests(method: str, needle: str) -> list[dict[str, Any]]:
        return [r for r in read_access_log(sandbox.log_path)
                if r["method"] == method and needle in r["query"]]

    # A held answer is logged when the server lets it go (after its 2.5 s).
    wait_until(lambda: len(requests("PUT", "partNumber=2")) >= 2
               and len(requests("POST", "uploadId=")) >= 2, 10, "the held answers")
    assert len(requests("PUT", "partNumber=2")) == 2  # timed out once, sent again
    assert [r["status"] for r in requests("POST", "uploadId=")].count(404) == 1
    assert remote_uploads(sandbox) == []


@pytest.mark.slow
def test_server_gone_for_a_while_and_back(sandbox_process: Any, tmp_path: Path) -> None:
    """The sandbox process is SIGKILLed mid-upload and restarted after an outage
    (``OSSDESK_OUTAGE_SECONDS``, default 6; 60 for the one-minute run): the running
    ``ossdesk upload`` carries on by itself and ends verified."""
    outage = float(os.environ.get("OSSDESK_OUTAGE_SECONDS", "6"))
    proc = sandbox_process()
    sb: SandboxInfo = proc.info
    path = write_random(tmp_path / "o.bin", 12 * P + 3)
    out_path = tmp_path / "o.out"
    with out_path.open("w") as out:
        child = spawn(["upload", str(path), *dest(sb), "--part-size", str(P), "--parallel",
                       "2", "--limit-rate", "256KiB", "--json"], cli_env(sb), out)
        try:
            wait_until(lambda: sum(p.status == 200 for p in part_puts(sb.log_path)) >= 2
                       or child.poll() is not None, 60, "two parts")
            assert child.poll() is None
            proc.kill()
            gone = time.monotonic()
            time.sleep(outage)  # the outage itself
            proc.start()
            code = child.wait(outage + 180)
            back = time.monotonic() - gone
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    output = out_path.read_text()
    assert code == 0, output
    events = json_lines(output)
    assert [e["event"] for e in events if e["event"] in ("done", "failed")] == ["done"]
    assert_uploaded(sb, "o.bin", path)
    assert remote_uploads(sb) == []
    print(f"outage {outage:g} s: upload finished {back:.1f} s after the server went away")


def test_no_such_upload_on_resume_starts_over(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "n.bin", 6 * P)
    env = cli_env(sandbox)
    first = ossdesk("upload", str(path), *dest(sandbox), "--part-size", str(P), "--parallel",
                    "1", env={**env, "OSSDESK_CRASH_AT": "part-saved:2"})
    assert first.returncode == 137, first.stderr
    before = snapshot_store(config.paths().database)
    old_id = before.rows[0]["upload_id"]
    assert old_id and len(before.confirmed) == 2
    assert sandbox.server is not None
    assert sandbox.server.faults.forget_all_uploads() == 1
    result = ossdesk("resume", "--json", env=env)
    assert result.returncode == 0, result.stderr
    notices = [e["message"] for e in json_lines(result.stdout) if e["event"] == "notice"]
    assert any("no longer on the server" in m and "starts over" in m for m in notices)
    assert_uploaded(sandbox, "n.bin", path)
    new_ids = {p.upload_id for p in part_puts(sandbox.log_path)} - {old_id}
    assert len(new_ids) == 1
    assert sorted(p.number for p in part_puts(sandbox.log_path)
                  if p.upload_id in new_ids) == [1, 2, 3, 4, 5, 6]
    assert remote_uploads(sandbox) == []


# ------------------------------------------------------------------ lying response headers


@pytest.mark.parametrize("where", ["put", "part", "complete"])
def test_a_wrong_crc64_in_a_response_is_never_trusted(sandbox: SandboxInfo,
                                                      engine: EngineFactory, tmp_path: Path,
                                                      where: str) -> None:
    size = 50 * KiB if where == "put" else 3 * P
    path = write_random(tmp_path / "c.bin", size)
    method, pattern = {"put": ("PUT", r"/c\.bin\?$"), "part": ("PUT", r"partNumber=2\b"),
                       "complete": ("POST", "uploadId=")}[where]
    assert sandbox.server is not None
    sandbox.server.faults.corrupt("crc64", method=method, pattern=pattern, count=None)
    sched, rec = engine(part_size=P)
    [upload] = sched.add([new_upload(sandbox, path)])
    _run(sched)
    assert rec.of(Done) == []
    [failed] = rec.of(Failed)
    assert failed.code == "CrcMismatch" and "CRC64" in failed.message
    row = sched.store.get(upload)
    assert row is not None and row.state is State.FAILED
    if where == "part":
        # Never completed with an unverified part.
        assert not [r for r in read_access_log(sandbox.log_path)
                    if r["method"] == "POST" and "uploadId=" in r["query"]]


def test_a_wrong_etag_for_a_part_is_not_trusted(sandbox: SandboxInfo, engine: EngineFactory,
                                                tmp_path: Path) -> None:
    """A part answered with a wrong ETag: the upload must not end with a wrong object, and
    the file must finish without the user having to start over by hand."""
    path = write_random(tmp_path / "e.bin", 3 * P)
    assert sandbox.server is not None
    sandbox.server.faults.corrupt("etag", method="PUT", pattern=r"partNumber=2\b", count=1)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, path)])
    _run(sched)
    assert_uploaded(sandbox, "e.bin", path)
    assert rec.of(Failed) == [], [e.message for e in rec.of(Failed)]
    assert len(rec.of(Done)) == 1


def test_a_wrong_etag_for_a_put_is_not_recorded(sandbox: SandboxInfo, engine: EngineFactory,
                                                tmp_path: Path) -> None:
    path = write_random(tmp_path / "s.bin", 20 * KiB)
    assert sandbox.server is not None
    sandbox.server.faults.corrupt("etag", method="PUT", pattern=r"/s\.bin\?$", count=1)
    sched, rec = engine(part_size=P)
    [upload] = sched.add([new_upload(sandbox, path)])
    _run(sched)
    assert_uploaded(sandbox, "s.bin", path)
    real = sandbox.bucket_client().head_object("s.bin").etag
    [done] = rec.of(Done)
    row = sched.store.get(upload)
    assert row is not None
    assert (done.etag or "").strip('"').upper() == real.upper()
    assert (row.etag or "").strip('"').upper() == real.upper()


def test_request_time_too_skewed_fails_clearly_without_spinning(
        sandbox: SandboxInfo, engine: EngineFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """This computer's clock 20 minutes fast (the signing clock of the SDK moved)."""
    skew = dt.timedelta(minutes=20)

    class FastClock(dt.datetime):
        @classmethod
        def utcnow(cls) -> Any:
            return dt.datetime.now(dt.UTC).replace(tzinfo=None) + skew

    real_http_date = oss2.utils.http_date
    monkeypatch.setattr(oss2.auth, "datetime", FastClock)
    monkeypatch.setattr(oss2.utils, "http_date",
                        lambda timeval=None: real_http_date((timeval or time.time()) + 1200))
    path = write_random(tmp_path / "k.bin", 3 * P)
    small = write_random(tmp_path / "k.txt", 10)
    sched, rec = engine(part_size=P)
    sched.add([new_upload(sandbox, path), new_upload(sandbox, small)])
    _run(sched)
    failed = rec.of(Failed)
    assert len(failed) == 2 and rec.of(Done) == []
    for event in failed:
        assert event.code == "RequestTimeTooSkewed" and not event.retryable
        assert "clock" in event.message
    requests = [r for r in read_access_log(sandbox.log_path) if r["status"] == 403]
    assert len(requests) == 2  # one refused request per file, no retry loop


def test_credentials_resolution_is_not_retried_into_a_storm(sandbox: SandboxInfo,
                                                           engine: EngineFactory,
                                                           tmp_path: Path) -> None:
    """A wrong secret fails at once: permanent errors never spin."""
    path = write_random(tmp_path / "w.bin", 3 * P)
    sched, rec = engine(creds=Credentials(sandbox.access_key_id, "wrong-secret-value"),
                        part_size=P)
    sched.add([new_upload(sandbox, path)])
    _run(sched)
    [failed] = rec.of(Failed)
    assert failed.code == "SignatureDoesNotMatch" and not failed.retryable
    assert len(read_access_log(sandbox.log_path)) == 1
    assert rec.of(Notice) == []
