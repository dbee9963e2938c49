"""The engine against the sandbox: objects that already exist (policy ``skip``), and a
Complete whose answer was lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ossdesk.core.checksum import crc64_file
from ossdesk.core.events import Done, Failed, Notice, Started
from ossdesk.core.plan import KiB
from ossdesk.core.store import OVERWRITE, SKIP, SKIPPED, State, Store
from tests.integration.test_engine_upload import (
    assert_uploaded,
    part_puts,
    remote_uploads,
    write_random,
)
from tests.support.engine import new_upload
from tests.support.sandbox import SandboxInfo, read_access_log


def requests_for(sb: SandboxInfo, key: str) -> list[tuple[str, str, int]]:
    """(method, query, status) of every request the sandbox logged for ``key``."""
    return [(r["method"], r["query"], r["status"]) for r in read_access_log(sb.log_path)
            if r["path"] == f"/{sb.bucket}/{key}"]


# ---------------------------------------------------------------------- existing objects


def test_identical_objects_are_skipped_without_sending_a_byte(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    small = write_random(tmp_path / "small.bin", 3000, seed=1)
    big = write_random(tmp_path / "big.bin", 5 * 100 * KiB + 7, seed=2)
    bucket = sandbox.bucket_client()
    bucket.put_object("small.bin", small.read_bytes())
    bucket.put_object("big.bin", big.read_bytes())
    before = {k: len(requests_for(sandbox, k)) for k in ("small.bin", "big.bin")}
    scheduler, rec = make_engine(part_size=100 * KiB)
    ids = scheduler.add([new_upload(sandbox, small, existing=SKIP),
                         new_upload(sandbox, big, existing=SKIP)])
    assert scheduler.wait(30)
    done = {d.upload: d for d in rec.of(Done)}
    assert set(done) == set(ids), rec.of(Failed)
    for upload, path in zip(ids, (small, big), strict=True):
        assert done[upload].skipped
        assert done[upload].crc64 == crc64_file(path)
        row = scheduler.store.get(upload)
        assert row is not None and row.state is State.DONE and row.reason == SKIPPED
        assert row.skipped and row.crc64 == crc64_file(path)
        # Only a HEAD reached the key: nothing was sent.
        assert [m for m, _, _ in requests_for(sandbox, path.name)[before[path.name]:]] == \
            ["HEAD"]
    notices = [n for n in rec.of(Notice) if n.upload in ids]
    assert len(notices) == 2
    assert all("skipped: already in OSS, identical" in n.message for n in notices)
    assert rec.of(Started) == []
    assert part_puts(sandbox) == []


def test_different_content_under_skip_is_uploaded(sandbox: SandboxInfo, make_engine: Any,
                                                  tmp_path: Path) -> None:
    same_size = write_random(tmp_path / "same-size.bin", 4000, seed=3)
    other_size = write_random(tmp_path / "other-size.bin", 3 * 100 * KiB + 1, seed=4)
    bucket = sandbox.bucket_client()
    bucket.put_object("same-size.bin", bytes(4000))  # same size, other bytes
    bucket.put_object("other-size.bin", b"old")
    scheduler, rec = make_engine(part_size=100 * KiB)
    ids = scheduler.add([new_upload(sandbox, same_size, existing=SKIP),
                         new_upload(sandbox, other_size, existing=SKIP),
                         new_upload(sandbox, write_random(tmp_path / "new.bin", 10),
                                    existing=SKIP)])
    assert scheduler.wait(30)
    done = rec.of(Done)
    assert sorted(d.upload for d in done) == sorted(ids), rec.of(Failed)
    assert not any(d.skipped for d in done)
    assert_uploaded(sandbox, "same-size.bin", same_size)
    assert_uploaded(sandbox, "other-size.bin", other_size)
    for upload in ids:
        row = scheduler.store.get(upload)
        assert row is not None and row.state is State.DONE and row.reason is None


def test_overwrite_is_the_default_and_sends_the_file(sandbox: SandboxInfo, make_engine: Any,
                                                     tmp_path: Path) -> None:
    path = write_random(tmp_path / "o.bin", 2000, seed=5)
    sandbox.bucket_client().put_object("o.bin", path.read_bytes())
    scheduler, rec = make_engine()
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    row = scheduler.store.get(upload)
    assert row is not None and row.existing == OVERWRITE
    assert [d.skipped for d in rec.of(Done)] == [False]
    methods = [m for m, _, _ in requests_for(sandbox, "o.bin")]
    assert methods.count("PUT") == 2 and "HEAD" not in methods


def test_resume_keeps_the_skip_policy(sandbox: SandboxInfo, make_engine: Any,
                                      tmp_path: Path) -> None:
    path = write_random(tmp_path / "later.bin", 2 * 100 * KiB, seed=6)
    sandbox.bucket_client().put_object("later.bin", path.read_bytes())
    with Store.open() as store:  # queued by a run that ended before starting it
        (upload,) = store.add([new_upload(sandbox, path, existing=SKIP)])
    scheduler, rec = make_engine()
    row = scheduler.store.get(upload)
    assert row is not None and row.existing == SKIP and row.state is State.QUEUED
    assert scheduler.resume() == [upload]
    assert scheduler.wait(30)
    assert [(d.upload, d.skipped) for d in rec.of(Done)] == [(upload, True)]
    assert [m for m, _, _ in requests_for(sandbox, "later.bin")][1:] == ["HEAD"]


# ------------------------------------------------------------------ Complete's answer lost


def test_complete_answer_lost_then_no_such_upload_is_verified_by_head(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    path = write_random(tmp_path / "c.bin", 6 * 100 * KiB + 11, seed=7)
    sandbox.faults.drop_response(method="POST", pattern=r"^/sandbox/c\.bin\?.*uploadId=")
    scheduler, rec = make_engine(part_size=100 * KiB)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    assert [d.upload for d in rec.of(Done)] == [upload], rec.of(Failed)
    assert rec.of(Done)[0].crc64 == crc64_file(path)
    assert any("answer to completing the upload was lost" in n.message for n in rec.of(Notice))
    assert_uploaded(sandbox, "c.bin", path)
    completes = [s for m, q, s in requests_for(sandbox, "c.bin")
                 if m == "POST" and "uploadId=" in q]
    assert completes == [0, 404]  # the answer dropped, then the retry's NoSuchUpload
    sent = [n for _, n, status in part_puts(sandbox) if status == 200]
    assert sorted(sent) == list(range(1, 8))  # every part exactly once
    row = scheduler.store.get(upload)
    assert row is not None and row.state is State.DONE and row.crc64 == crc64_file(path)


def test_no_such_upload_at_complete_with_another_object_starts_over(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    path = write_random(tmp_path / "s.bin", 4 * 100 * KiB, seed=8)
    sandbox.bucket_client().put_object("s.bin", bytes(4 * 100 * KiB))  # same size, not ours
    sandbox.faults.fail(404, code="NoSuchUpload", method="POST",
                        pattern=r"^/sandbox/s\.bin\?.*uploadId=")
    scheduler, rec = make_engine(part_size=100 * KiB)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    assert [d.upload for d in rec.of(Done)] == [upload], rec.of(Failed)
    assert any("starts over" in n.message for n in rec.of(Notice))
    assert_uploaded(sandbox, "s.bin", path)
    uploads = {u for u, _, status in part_puts(sandbox) if status == 200}
    assert len(uploads) == 2  # the first upload id's parts, then the new one's
    assert remote_uploads(sandbox) == []
