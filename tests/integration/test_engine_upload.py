"""The engine over real HTTP against the sandbox: byte-exact uploads, resume, control, faults."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ossdesk.core.checksum import crc64, crc64_file
from ossdesk.core.events import Done, Failed, Notice, Paused, Progress, Started
from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.plan import KiB, MiB
from ossdesk.core.scheduler import SMALL_PARALLEL_MAX, TINY_FILE, Scheduler, auto_small_parallel
from ossdesk.core.store import NewUpload, State, Store
from ossdesk.core.upload import RetryPolicy
from tests.support.engine import EngineFactory, Recorder, engine_factory, new_upload
from tests.support.sandbox import SandboxInfo, read_access_log

FAST_RETRY = RetryPolicy(tries=10, base=0.01, cap=0.05)


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    """``size`` pseudo-random bytes (fast, incompressible) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, 1 * MiB)) if size else b""
    with path.open("wb") as fh:
        left = size
        n = seed
        while left > 0:
            piece = block[: min(left, len(block))]
            # Vary each MiB so that no two parts are equal.
            fh.write(n.to_bytes(8, "little")[: len(piece)] + piece[8:])
            left -= len(piece)
            n += 1
    return path


@pytest.fixture
def make_engine(sandbox: SandboxInfo) -> Iterator[EngineFactory]:
    yield from engine_factory(sandbox, FAST_RETRY)


def object_bytes(sb: SandboxInfo, key: str) -> bytes:
    result = sb.bucket_client().get_object(key)
    try:
        return bytes(result.read())
    finally:
        result.close()


def assert_uploaded(sb: SandboxInfo, key: str, path: Path) -> None:
    data = object_bytes(sb, key)
    assert len(data) == path.stat().st_size
    assert crc64(data) == crc64_file(path)
    assert data == path.read_bytes()


def part_puts(sb: SandboxInfo) -> list[tuple[str, int, int]]:
    """(upload id, part number, status) of every UploadPart request, in order."""
    out = []
    for row in read_access_log(sb.log_path):
        if row["method"] != "PUT":
            continue
        number = re.search(r"partNumber=(\d+)", row["query"])
        upload_id = re.search(r"uploadId=([^&]+)", row["query"])
        if number and upload_id:
            out.append((upload_id.group(1), int(number.group(1)), row["status"]))
    return out


def remote_uploads(sb: SandboxInfo) -> list[Any]:
    return list(sb.bucket_client().list_multipart_uploads().upload_list)


# --------------------------------------------------------------------------- byte-exact


@pytest.mark.parametrize("size", [0, 1, 256 * KiB, 256 * KiB + 1, 5 * 256 * KiB + 17])
def test_sizes_upload_byte_exact(sandbox: SandboxInfo, make_engine: Any, tmp_path: Path,
                                 size: int) -> None:
    path = write_random(tmp_path / f"f{size}.bin", size)
    scheduler, rec = make_engine(part_size=256 * KiB)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(60)
    done = rec.of(Done)
    assert [d.upload for d in done] == [upload], rec.events
    assert done[0].crc64 == crc64_file(path)
    assert_uploaded(sandbox, path.name, path)
    row = scheduler.store.get(upload)
    assert row is not None and row.state is State.DONE and row.crc64 == crc64_file(path)
    started = rec.of(Started)[0]
    assert started.multipart is (size > 256 * KiB)
    # The last progress event reports everything confirmed.
    last = rec.of(Progress)[-1]
    assert (last.confirmed_bytes, last.sent_bytes) == (size, 0)
    assert remote_uploads(sandbox) == []


@pytest.mark.slow
def test_large_random_file_byte_exact(sandbox: SandboxInfo, make_engine: Any,
                                      tmp_path: Path) -> None:
    path = write_random(tmp_path / "big.bin", 128 * MiB + 12345)
    scheduler, rec = make_engine(part_size=8 * MiB, parallel=4)
    scheduler.add([new_upload(sandbox, path, key="dir/big.bin")])
    assert scheduler.wait(300)
    assert len(rec.of(Done)) == 1, rec.of(Failed)
    info = sandbox.bucket_client().head_object("dir/big.bin")
    assert int(info.headers["x-oss-hash-crc64ecma"]) == crc64_file(path)
    assert_uploaded(sandbox, "dir/big.bin", path)
    # Progress was throttled at the source: about 10 events per second at most.
    progress = rec.of(Progress)
    seconds = rec.of(Done)[0].seconds
    assert len(progress) <= 10 * seconds + 20


def test_content_type_metadata_and_storage_class(sandbox: SandboxInfo, make_engine: Any,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<p>hi</p>")
    scheduler, rec = make_engine()
    scheduler.add([new_upload(sandbox, path, metadata={"owner": "ann"}, storage_class="IA")])
    assert scheduler.wait(30)
    assert len(rec.of(Done)) == 1
    head = sandbox.bucket_client().head_object("page.html")
    assert head.headers["Content-Type"] == "text/html"
    assert head.headers["x-oss-meta-owner"] == "ann"


# --------------------------------------------------------------------------- resume


def _paused_midway(sandbox: SandboxInfo, make_engine: Any, path: Path, parts: int, *,
                   parallel: int = 2, rate: int = 1 * MiB) -> tuple[Scheduler, Recorder, int]:
    """A multipart upload of ``path`` (100 KiB parts, ``rate`` bytes/s) paused once
    ``parts`` parts are confirmed."""
    scheduler, rec = make_engine(part_size=100 * KiB, parallel=parallel, rate=rate)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes >= parts * 100 * KiB)
    scheduler.pause([upload])
    assert scheduler.wait(5)
    return scheduler, rec, upload


def test_resume_after_pause_sends_no_confirmed_part_again(sandbox: SandboxInfo,
                                                          make_engine: Any,
                                                          tmp_path: Path) -> None:
    path = write_random(tmp_path / "r.bin", 40 * 100 * KiB + 3)
    scheduler, rec, upload = _paused_midway(sandbox, make_engine, path, parts=5)
    confirmed = set(scheduler.store.parts(upload))
    row = scheduler.store.get(upload)
    assert row is not None and row.state is State.PAUSED and row.upload_id
    assert 5 <= len(confirmed) < 41
    before = len(part_puts(sandbox))
    scheduler.set_limits(rate=0, parallel=4)
    scheduler.resume([upload])
    assert scheduler.wait(60)
    assert len(rec.of(Done)) == 1, rec.of(Failed)
    assert_uploaded(sandbox, path.name, path)
    after = part_puts(sandbox)[before:]
    resent = {n for (_, n, status) in after if status == 200} & confirmed
    assert resent == set()
    started = rec.of(Started)
    assert started[-1].resumed and started[-1].confirmed_bytes == len(confirmed) * 100 * KiB


def _paused_with_unrecorded_parts(sandbox: SandboxInfo, make_engine: Any, path: Path,
                                  forget: int) -> tuple[Scheduler, Recorder, int, list[int]]:
    """A multipart upload paused after some parts, then ``forget`` of its confirmed parts
    dropped from the store: as after a crash between the server's answer and the write."""
    scheduler, rec, upload = _paused_midway(sandbox, make_engine, path, parts=8)
    numbers = sorted(scheduler.store.parts(upload))
    assert len(numbers) >= forget + 2
    forgotten = numbers[1:1 + forget]
    scheduler.store.forget_parts(upload, forgotten)
    return scheduler, rec, upload, forgotten


def _resume_to_the_end(sandbox: SandboxInfo, scheduler: Scheduler, rec: Recorder, upload: int,
                       path: Path) -> set[int]:
    """Resume the paused upload at full speed until it is done and verified; the part
    numbers it sent."""
    before = len(part_puts(sandbox))
    scheduler.set_limits(rate=0)
    scheduler.resume([upload])
    assert scheduler.wait(60)
    assert len(rec.of(Done)) == 1, rec.of(Failed)
    assert_uploaded(sandbox, path.name, path)
    return {n for (_, n, _) in part_puts(sandbox)[before:]}


def test_parts_on_the_server_the_store_missed_are_kept_not_sent_again(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    path = write_random(tmp_path / "adopt.bin", 30 * 100 * KiB + 7, seed=5)
    scheduler, rec, upload, forgotten = _paused_with_unrecorded_parts(
        sandbox, make_engine, path, forget=3)
    confirmed = set(scheduler.store.parts(upload)) | set(forgotten)
    resent = _resume_to_the_end(sandbox, scheduler, rec, upload, path) & confirmed
    assert resent == set()
    started = rec.of(Started)[-1]
    assert started.resumed and started.confirmed_bytes == len(confirmed) * 100 * KiB


def test_a_part_on_the_server_that_differs_from_the_file_is_sent_again(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    path = write_random(tmp_path / "differs.bin", 30 * 100 * KiB + 7, seed=6)
    scheduler, rec, upload, forgotten = _paused_with_unrecorded_parts(
        sandbox, make_engine, path, forget=2)
    row = scheduler.store.get(upload)
    assert row is not None and row.upload_id
    # The server's copy of one forgotten part is not the file's (same size).
    sandbox.bucket_client().upload_part(path.name, row.upload_id, forgotten[0],
                                        os.urandom(100 * KiB))
    resent = _resume_to_the_end(sandbox, scheduler, rec, upload, path)
    assert forgotten[0] in resent
    assert forgotten[1] not in resent


def test_restart_with_a_new_store_object_resumes(sandbox: SandboxInfo, make_engine: Any,
                                                 tmp_path: Path) -> None:
    """A second Scheduler over the same database (as after a restart) finishes the file."""
    path = write_random(tmp_path / "r2.bin", 20 * 100 * KiB)
    held = write_random(tmp_path / "held.bin", 10)
    first, rec = make_engine(part_size=100 * KiB, parallel=1, rate=512 * KiB)
    (upload,) = first.add([new_upload(sandbox, path)])
    (user_paused,) = first.store.add([new_upload(sandbox, held)])
    first.store.set_state(user_paused, State.PAUSED, reason="user")
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes >= 3 * 100 * KiB)
    first.close()  # pauses with reason "shutdown"
    first.store.close()
    second, rec2 = make_engine(part_size=100 * KiB)
    row = second.store.get(upload)
    assert row is not None and row.state is State.PAUSED and row.reason == "shutdown"
    assert second.restore() == [upload]  # what the user paused stays paused
    assert second.wait(60)
    assert [d.upload for d in rec2.of(Done)] == [upload]
    assert rec2.of(Started)[0].resumed
    assert_uploaded(sandbox, path.name, path)
    assert second.store.get(user_paused).state is State.PAUSED


def test_source_changed_between_runs_starts_over(sandbox: SandboxInfo, make_engine: Any,
                                                 tmp_path: Path) -> None:
    path = write_random(tmp_path / "c.bin", 20 * 100 * KiB)
    scheduler, rec, upload = _paused_midway(sandbox, make_engine, path, parts=2, parallel=1,
                                            rate=512 * KiB)
    row = scheduler.store.get(upload)
    assert row is not None
    old_id = row.upload_id
    assert old_id
    write_random(path, 15 * 100 * KiB + 1, seed=99)  # new content, new size
    scheduler.set_limits(rate=0)
    scheduler.resume([upload])
    assert scheduler.wait(60)
    assert any("changed" in n.message and "starts over" in n.message for n in rec.of(Notice))
    assert len(rec.of(Done)) == 1
    assert_uploaded(sandbox, path.name, path)
    # The stale upload was aborted on the server.
    assert old_id not in {u.upload_id for u in remote_uploads(sandbox)}
    assert remote_uploads(sandbox) == []


def test_no_such_upload_on_resume_starts_over(sandbox: SandboxInfo, make_engine: Any,
                                              tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "n.bin", 10 * 100 * KiB)
    scheduler, rec, upload = _paused_midway(sandbox, make_engine, path, parts=1, parallel=1,
                                            rate=512 * KiB)
    row = scheduler.store.get(upload)
    assert row is not None
    old_id = row.upload_id
    assert old_id
    assert sandbox.server.faults.forget_upload(old_id)
    scheduler.set_limits(rate=0)
    scheduler.resume([upload])
    assert scheduler.wait(60)
    assert any("no longer on the server" in n.message for n in rec.of(Notice))
    assert len(rec.of(Done)) == 1
    assert_uploaded(sandbox, path.name, path)


def test_source_changed_during_upload_fails_without_publishing(sandbox: SandboxInfo,
                                                               make_engine: Any,
                                                               tmp_path: Path) -> None:
    path = write_random(tmp_path / "w.bin", 12 * 100 * KiB)
    scheduler, rec = make_engine(part_size=100 * KiB, parallel=1, rate=1 * MiB)
    scheduler.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes >= 100 * KiB)
    with path.open("r+b") as fh:  # same size, new content and mtime
        fh.write(b"X" * 1000)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    scheduler.set_limits(rate=0)
    assert scheduler.wait(60)
    failed = rec.of(Failed)
    assert len(failed) == 1 and failed[0].code == "SourceChanged"
    assert "changed while it was being uploaded" in failed[0].message
    assert rec.of(Done) == []
    assert not sandbox.bucket_client().object_exists(path.name)
    assert remote_uploads(sandbox) == []


# --------------------------------------------------------------------------- control


def test_pause_stops_the_parts_in_flight(sandbox: SandboxInfo, make_engine: Any,
                                         tmp_path: Path) -> None:
    path = write_random(tmp_path / "p.bin", 4 * MiB)
    # 200 KiB/s: a 1 MiB part takes 5 s, so the pause lands mid-part.
    scheduler, rec = make_engine(part_size=1 * MiB, parallel=2, rate=200 * KiB)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.sent_bytes > 100 * KiB)
    scheduler.pause([upload])
    assert scheduler.wait(60)
    # The pause did not wait for the parts being sent: none of them reached the server whole.
    assert [status for _, _, status in part_puts(sandbox) if status == 200] == []
    paused = rec.of(Paused)
    assert [p.reason for p in paused] == ["user"]
    row = scheduler.store.get(upload)
    assert row is not None and row.state is State.PAUSED
    assert not scheduler.busy()  # no request of this file is running any more
    last = rec.of(Progress)[-1]
    assert last.sent_bytes == 0 and last.confirmed_bytes < 4 * MiB


def test_pause_and_cancel_a_file_waiting_for_a_worker(sandbox: SandboxInfo, make_engine: Any,
                                                      tmp_path: Path) -> None:
    """Started files with no request in flight (all workers busy elsewhere) stop at once."""
    a = write_random(tmp_path / "a.bin", 1 * MiB)
    b = write_random(tmp_path / "b.bin", 1 * MiB)
    c = write_random(tmp_path / "c.bin", 1 * MiB)
    scheduler, rec = make_engine(part_size=256 * KiB, jobs=3, parallel=1, rate=256 * KiB)
    ids = scheduler.add([new_upload(sandbox, p) for p in (a, b, c)])
    for upload in ids:  # all three prepared; one worker, so two wait with nothing in flight
        rec.wait_for(lambda e, u=upload: isinstance(e, Started) and e.upload == u)
    scheduler.pause([ids[1]])
    scheduler.cancel([ids[2]])
    rec.wait_for(lambda e: e.kind == "cancelled" and e.upload == ids[2])
    scheduler.pause([ids[0]])
    assert scheduler.wait(5)
    assert [r.state for r in scheduler.store.rows()] == [
        State.PAUSED, State.PAUSED, State.CANCELLED]
    assert len(remote_uploads(sandbox)) == 2


def _cancelled(scheduler: Any, upload: int) -> bool:
    row = scheduler.store.get(upload)
    return bool(row is not None and row.state is State.CANCELLED and row.upload_id is None
                and row.confirmed_bytes == 0)


def test_cancel_aborts_on_the_server_and_keeps_the_row_as_cancelled(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    path = write_random(tmp_path / "x.bin", 2 * MiB)
    scheduler, rec = make_engine(part_size=256 * KiB, parallel=1, rate=512 * KiB)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes > 0)
    assert len(remote_uploads(sandbox)) == 1
    scheduler.cancel([upload])
    rec.wait_for(lambda e: e.kind == "cancelled")
    assert scheduler.wait(5)
    assert _cancelled(scheduler, upload)
    assert remote_uploads(sandbox) == []
    # A paused file (not moving) is aborted on the server too.
    other = write_random(tmp_path / "y.bin", 2 * MiB)
    (second,) = scheduler.add([new_upload(sandbox, other)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.upload == second
                 and e.confirmed_bytes > 0)
    scheduler.pause([second])
    assert scheduler.wait(5)
    assert len(remote_uploads(sandbox)) == 1
    scheduler.cancel([second])
    rec.wait_for(lambda e: e.kind == "cancelled" and e.upload == second)
    assert scheduler.wait(5)
    assert remote_uploads(sandbox) == [] and _cancelled(scheduler, second)
    # Nothing resumes a cancelled row by itself; asked for by id (Retry), it starts over
    # in its place with a new multipart upload.
    assert scheduler.resume() == []
    assert scheduler.resume([upload]) == [upload]
    rec.wait_for(lambda e: isinstance(e, Done) and e.upload == upload)
    assert [r.id for r in scheduler.store.rows()] == [upload, second]
    assert_uploaded(sandbox, path.name, path)


def test_remove_aborts_on_the_server_and_removes_the_row(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    path = write_random(tmp_path / "x.bin", 2 * MiB)
    scheduler, rec = make_engine(part_size=256 * KiB, parallel=1, rate=512 * KiB)
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes > 0)
    scheduler.remove([upload])
    rec.wait_for(lambda e: e.kind == "cancelled")
    assert scheduler.wait(5)
    assert scheduler.store.rows() == [] and remote_uploads(sandbox) == []


def test_many_small_files_run_concurrently(sandbox: SandboxInfo, make_engine: Any,
                                           tmp_path: Path) -> None:
    assert sandbox.server is not None
    folder = tmp_path / "many"
    folder.mkdir()
    items = []
    for i in range(300):
        p = folder / f"{i:04}.txt"
        p.write_bytes(os.urandom(1024))
        items.append(p)
    # Each PUT is held 50 ms by the server: one at a time that would take 15 s.
    sandbox.server.faults.delay(0.05, method="PUT", count=None)
    counter = _InFlight()
    scheduler, rec = make_engine(jobs=2, parallel=16, client_factory=counter.factory())
    scheduler.add([new_upload(sandbox, p, key=f"many/{p.name}") for p in items])
    assert scheduler.wait(120)
    assert len(rec.of(Done)) == 300, rec.of(Failed)[:3]
    # Not two at a time (jobs=2): the workers carry several small files at once.
    assert counter.most["put"] > 2, counter.most
    assert object_bytes(sandbox, "many/0123.txt") == items[123].read_bytes()


class _InFlight:
    """Counts the requests in flight, by kind, at the client (real requests underneath)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {"put": 0, "part": 0}
        self.most: dict[str, int] = {"put": 0, "part": 0, "all": 0}

    def enter(self, kind: str) -> None:
        with self.lock:
            self.now[kind] += 1
            self.most[kind] = max(self.most[kind], self.now[kind])
            self.most["all"] = max(self.most["all"], sum(self.now.values()))

    def leave(self, kind: str) -> None:
        with self.lock:
            self.now[kind] -= 1

    def factory(self) -> Any:
        counter = self

        class Counting(OssClient):
            def put_object(self, *args: Any, **kwargs: Any) -> Any:
                counter.enter("put")
                try:
                    return super().put_object(*args, **kwargs)
                finally:
                    counter.leave("put")

            def upload_part(self, *args: Any, **kwargs: Any) -> Any:
                counter.enter("part")
                try:
                    return super().upload_part(*args, **kwargs)
                finally:
                    counter.leave("part")

        def make(row: Any, creds: Any) -> OssClient:
            return Counting(Endpoint(row.endpoint, row.bucket, row.region), creds,
                            pool_size=64)

        return make


def test_tiny_files_use_the_extra_requests_and_parts_keep_their_limit(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    assert sandbox.server is not None
    tiny = [write_random(tmp_path / "tiny" / f"{i:03}.bin", 2 * KiB, seed=i) for i in range(60)]
    big = write_random(tmp_path / "big.bin", 1 * MiB + 5, seed=99)
    # Every PUT (parts and objects) is held 100 ms by the server.
    sandbox.server.faults.delay(0.1, method="PUT", count=None)
    counter = _InFlight()
    scheduler, rec = make_engine(jobs=1, parallel=2, small_parallel=12, part_size=100 * KiB,
                                 client_factory=counter.factory())
    assert scheduler.small_parallel == 12
    scheduler.add([new_upload(sandbox, big, key="big.bin")])
    scheduler.add([new_upload(sandbox, p, key=f"tiny/{p.name}") for p in tiny])
    assert scheduler.wait(120)
    assert len(rec.of(Done)) == 61, rec.of(Failed)[:3]
    assert counter.most["part"] <= 2, counter.most
    assert counter.most["all"] <= 12, counter.most
    assert counter.most["put"] > 2, counter.most  # tiny files went beyond ``parallel``
    assert_uploaded(sandbox, "big.bin", big)
    assert_uploaded(sandbox, "tiny/042.bin", tiny[42])


def test_files_above_the_tiny_size_stay_within_parallel(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    assert sandbox.server is not None
    files = [write_random(tmp_path / "mid" / f"{i}.bin", TINY_FILE + 1, seed=i)
             for i in range(8)]
    sandbox.server.faults.delay(0.1, method="PUT", count=None)
    counter = _InFlight()
    scheduler, rec = make_engine(jobs=8, parallel=2, small_parallel=12,
                                 client_factory=counter.factory())
    scheduler.add([new_upload(sandbox, p, key=f"mid/{p.name}") for p in files])
    assert scheduler.wait(120)
    assert len(rec.of(Done)) == 8, rec.of(Failed)[:3]
    assert counter.most["all"] == 2, counter.most


def test_small_parallel_follows_parallel_unless_set(sandbox: SandboxInfo,
                                                    make_engine: Any) -> None:
    scheduler, _ = make_engine(parallel=3)
    assert scheduler.small_parallel == auto_small_parallel(3) == 24
    scheduler.set_limits(parallel=20)
    assert scheduler.small_parallel == SMALL_PARALLEL_MAX
    scheduler.set_limits(small_parallel=4)
    assert scheduler.small_parallel == 20  # never fewer than ``parallel``
    scheduler.set_limits(parallel=2)
    assert scheduler.small_parallel == 4


@pytest.mark.slow
def test_thousands_of_small_files(sandbox: SandboxInfo, make_engine: Any,
                                  tmp_path: Path) -> None:
    folder = tmp_path / "k"
    folder.mkdir()
    items = []
    for i in range(2000):
        p = folder / f"{i:05}.bin"
        p.write_bytes(os.urandom(1024))
        items.append(p)
    scheduler, rec = make_engine(parallel=16)
    scheduler.add([new_upload(sandbox, p, key=f"k/{p.name}") for p in items])
    assert scheduler.wait(300)
    assert len(rec.of(Done)) == 2000, rec.of(Failed)[:3]
    rows = scheduler.store.rows()
    assert all(r.state is State.DONE for r in rows) and len(rows) == 2000
    for i in (0, 999, 1999):
        assert object_bytes(sandbox, f"k/{items[i].name}") == items[i].read_bytes()


def test_fifo_order_and_move_to_top(sandbox: SandboxInfo, make_engine: Any,
                                    tmp_path: Path) -> None:
    paths = [write_random(tmp_path / f"o{i}.bin", 300 * KiB) for i in range(5)]
    scheduler, rec = make_engine(part_size=100 * KiB, jobs=1, parallel=1)
    ids = scheduler.store.add([new_upload(sandbox, p) for p in paths])  # queued, not started
    scheduler.move_to_top(ids[3])
    scheduler.move_to_bottom(ids[0])
    scheduler.restore()
    assert scheduler.wait(60)
    assert [e.upload for e in rec.of(Started)] == [ids[3], ids[1], ids[2], ids[4], ids[0]]
    assert [d.upload for d in rec.of(Done)] == [ids[3], ids[1], ids[2], ids[4], ids[0]]


# --------------------------------------------------------------------------- faults


def test_503_storm_is_retried(sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "s.bin", 6 * 100 * KiB)
    sandbox.server.faults.fail(503, method="PUT", count=6)
    scheduler, rec = make_engine(part_size=100 * KiB, parallel=2)
    scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(60)
    assert len(rec.of(Done)) == 1, rec.of(Failed)
    assert_uploaded(sandbox, path.name, path)
    assert sum(1 for (_, _, status) in part_puts(sandbox) if status == 503) == 6


def test_connection_reset_mid_part_is_retried(sandbox: SandboxInfo, make_engine: Any,
                                              tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "reset.bin", 4 * 256 * KiB)
    sandbox.server.faults.reset_after(100 * KiB, pattern=r"partNumber=2\b", count=2)
    scheduler, rec = make_engine(part_size=256 * KiB, parallel=2)
    scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(60)
    assert len(rec.of(Done)) == 1, rec.of(Failed)
    assert_uploaded(sandbox, path.name, path)


def test_retries_are_bounded(sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "down.bin", 1000)
    sandbox.server.faults.fail(503, method="PUT", count=None)
    scheduler, rec = make_engine(retry=RetryPolicy(tries=4, base=0.01, cap=0.02))
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    failed = rec.of(Failed)
    assert len(failed) == 1 and failed[0].retryable
    puts = [r for r in read_access_log(sandbox.log_path) if r["method"] == "PUT"]
    assert len(puts) == 4
    row = scheduler.store.get(upload)
    assert row is not None and row.state is State.FAILED and row.error


def test_network_retry_pauses_and_comes_back(sandbox: SandboxInfo, make_engine: Any,
                                             tmp_path: Path) -> None:
    """With ``network_retry`` (the window), a server that stays down pauses the file with
    reason "network"; it goes on by itself once the server answers again."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "net.bin", 3 * 100 * KiB)
    sandbox.server.faults.fail(503, count=None)
    scheduler, rec = make_engine(part_size=100 * KiB, network_retry=0.3,
                                 retry=RetryPolicy(tries=2, base=0.01, cap=0.02))
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    paused = rec.wait_for(lambda e: isinstance(e, Paused))
    assert isinstance(paused, Paused) and paused.reason == "network"
    assert "trying again" in paused.message
    row = scheduler.store.get(upload)
    assert row is not None and row.state is State.PAUSED and row.reason == "network"
    sandbox.server.faults.clear()
    rec.wait_for(lambda e: isinstance(e, Done))
    assert rec.of(Failed) == []
    assert_uploaded(sandbox, path.name, path)


@pytest.mark.parametrize("fault", ["wrong secret", "missing bucket"])
def test_permanent_errors_fail_fast_without_retrying(sandbox: SandboxInfo, make_engine: Any,
                                                     tmp_path: Path, fault: str) -> None:
    path = write_random(tmp_path / "perm.bin", 3 * 100 * KiB)
    # A slow retry policy: a retry loop would make this test time out.
    scheduler, rec = make_engine(secret="wrong-secret" if fault == "wrong secret" else None,
                                 retry=RetryPolicy(tries=10, base=30, cap=30),
                                 part_size=100 * KiB)
    item = new_upload(sandbox, path)
    if fault == "missing bucket":
        item = NewUpload(**{**item.__dict__, "bucket": "no-such-bucket"})
    scheduler.add([item])
    assert scheduler.wait(25)  # less than the first retry's delay (15 to 30 s)
    failed = rec.of(Failed)
    assert len(failed) == 1 and not failed[0].retryable
    expected = "SignatureDoesNotMatch" if fault == "wrong secret" else "NoSuchBucket"
    assert failed[0].code == expected
    assert len(read_access_log(sandbox.log_path)) == 1  # the one refused Initiate


def test_corrupt_crc_in_a_response_is_rejected(sandbox: SandboxInfo, make_engine: Any,
                                               tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "crc.bin", 3 * 100 * KiB)
    sandbox.server.faults.corrupt("crc64", pattern=r"partNumber=2\b", count=None)
    scheduler, rec = make_engine(part_size=100 * KiB, retry=RetryPolicy(3, 0.01, 0.02))
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    failed = rec.of(Failed)
    assert len(failed) == 1 and failed[0].code == "CrcMismatch"
    assert rec.of(Done) == []
    assert 2 not in scheduler.store.parts(upload)  # never recorded as confirmed
    assert not sandbox.bucket_client().object_exists(path.name)


def test_corrupt_crc_once_is_sent_again(sandbox: SandboxInfo, make_engine: Any,
                                        tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "crc1.bin", 1000)
    sandbox.server.faults.corrupt("crc64", method="PUT", count=1)
    scheduler, rec = make_engine()
    scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    assert len(rec.of(Done)) == 1
    puts = [r for r in read_access_log(sandbox.log_path) if r["method"] == "PUT"]
    assert len(puts) == 2


def test_a_damaged_part_etag_is_replaced_by_the_listed_one(sandbox: SandboxInfo,
                                                           make_engine: Any,
                                                           tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "etag.bin", 3 * 100 * KiB)
    sandbox.server.faults.corrupt("etag", method="PUT", pattern=r"partNumber=2\b", count=1)
    scheduler, rec = make_engine(part_size=100 * KiB)
    scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    assert rec.of(Failed) == [] and len(rec.of(Done)) == 1
    assert_uploaded(sandbox, path.name, path)


def test_a_damaged_put_etag_is_not_recorded(sandbox: SandboxInfo, make_engine: Any,
                                            tmp_path: Path) -> None:
    assert sandbox.server is not None
    path = write_random(tmp_path / "e.txt", 2000)
    sandbox.server.faults.corrupt("etag", method="PUT", count=1)
    scheduler, rec = make_engine()
    (upload,) = scheduler.add([new_upload(sandbox, path)])
    assert scheduler.wait(30)
    real = sandbox.bucket_client().head_object(path.name).etag.strip('"').upper()
    assert rec.of(Done)[0].etag.upper() == real
    assert scheduler.store.get(upload).etag.upper() == real


def test_a_part_lost_on_the_server_is_sent_again(sandbox: SandboxInfo, make_engine: Any,
                                                 tmp_path: Path) -> None:
    """Recorded as confirmed but not on OSS (ListParts when resuming): sent again."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "lost.bin", 4 * 100 * KiB)
    scheduler, rec, upload = _paused_midway(sandbox, make_engine, path, parts=1, parallel=1,
                                            rate=256 * KiB)
    row = scheduler.store.get(upload)
    assert row is not None and row.upload_id
    # Forge the record of a part OSS never received (as if its data were lost there).
    parts = scheduler.store.parts(upload)
    missing = max(parts) + 1
    scheduler.store.confirm_part(upload, missing, 100 * KiB, "0" * 32, 0)
    scheduler.set_limits(rate=0)
    scheduler.resume([upload])
    assert scheduler.wait(30)
    assert rec.of(Failed) == [] and len(rec.of(Done)) == 1
    assert_uploaded(sandbox, path.name, path)


def test_expired_token_pauses_until_new_credentials(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(security_token="token-1")
    assert sb.server is not None
    path = write_random(tmp_path / "sts.bin", 10 * 100 * KiB)
    second = write_random(tmp_path / "sts2.bin", 3 * 100 * KiB)
    store = Store.open()
    creds = Credentials(sb.access_key_id, sb.access_key_secret, "token-1")
    scheduler = Scheduler(store, credentials=lambda _s: creds, part_size=100 * KiB,
                          jobs=1, parallel=1, rate=512 * KiB, retry=FAST_RETRY)
    rec = Recorder()
    scheduler.add_listener(rec)
    try:
        upload, waiting = scheduler.add([new_upload(sb, path), new_upload(sb, second)])
        rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes >= 100 * KiB)
        sb.server.faults.expire_token()
        paused = rec.wait_for(lambda e: isinstance(e, Paused))
        assert isinstance(paused, Paused) and paused.reason == "credentials expired"
        assert scheduler.wait(10)
        assert {p.upload for p in rec.of(Paused)} == {upload, waiting}
        assert [r.state for r in store.rows()] == [State.PAUSED, State.PAUSED]
        assert rec.of(Failed) == []
        sb.server.set_security_token("token-2")
        scheduler.set_limits(rate=0)
        scheduler.update_credentials("environment", Credentials(sb.access_key_id,
                                                                sb.access_key_secret,
                                                                "token-2"))
        assert scheduler.wait(60)
        assert len(rec.of(Done)) == 2, rec.of(Failed)
        fresh = dataclasses.replace(sb, security_token="token-2")
        assert_uploaded(fresh, path.name, path)
        assert_uploaded(fresh, second.name, second)
    finally:
        scheduler.close()
        store.close()


def test_no_secret_reaches_the_store(sandbox: SandboxInfo, make_engine: Any,
                                     tmp_path: Path) -> None:
    good = write_random(tmp_path / "sec.bin", 3 * 100 * KiB)
    bad = write_random(tmp_path / "sec2.bin", 3 * 100 * KiB)
    scheduler, rec = make_engine(part_size=100 * KiB)
    scheduler.add([new_upload(sandbox, good)])
    assert scheduler.wait(30)
    scheduler.close()
    scheduler.store.close()
    wrong = "Sup3r-S3cret-Value-42"
    second, rec2 = make_engine(secret=wrong, part_size=100 * KiB)
    second.add([new_upload(sandbox, bad)])
    assert second.wait(30)
    assert len(rec.of(Done)) == 1 and len(rec2.of(Failed)) == 1
    second.close()
    second.store.close()
    files = [f for f in second.store.path.parent.iterdir() if f.is_file()]
    assert files
    for file in files:
        data = file.read_bytes()
        assert sandbox.access_key_secret.encode() not in data, file
        assert wrong.encode() not in data, file


class _Started:
    """A ``start_thread`` that records what it starts (plain threads, as the CLI's)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ran: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, target: Any, name: str) -> threading.Thread:
        def run() -> None:
            with self._lock:
                self.ran.add(threading.get_ident())
            target()

        with self._lock:
            self.names.append(name)
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread


def test_workers_and_timers_start_through_the_given_start_thread(
        sandbox: SandboxInfo, make_engine: Any, tmp_path: Path) -> None:
    """Every worker and every timer (the window's "trying again in n s") runs on a thread the
    caller's ``start_thread`` started, so the window can give QThreads; no other thread ever
    sends a request or writes a row."""
    assert sandbox.server is not None
    path = write_random(tmp_path / "threads.bin", 3 * 100 * KiB)
    started = _Started()
    sandbox.server.faults.fail(503, count=None)
    scheduler, rec = make_engine(part_size=100 * KiB, parallel=2, small_parallel=3,
                                 network_retry=0.05, start_thread=started,
                                 retry=RetryPolicy(tries=2, base=0.01, cap=0.02))
    seen: set[int] = set()
    scheduler.add_listener(lambda _event: seen.add(threading.get_ident()))
    scheduler.add([new_upload(sandbox, path)])
    rec.wait_for(lambda e: isinstance(e, Paused))
    sandbox.server.faults.clear()
    rec.wait_for(lambda e: isinstance(e, Done))
    assert_uploaded(sandbox, path.name, path)
    workers = [n for n in started.names if n.startswith("ossdesk-worker-")]
    timers = [n for n in started.names if n.startswith("ossdesk-timer")]
    assert len(workers) == 3  # small_parallel workers, no more
    assert timers  # the network retry waited on a started thread
    # Events come from the test's thread (add) or from threads the factory started.
    assert seen - {threading.get_ident()} <= started.ran
    scheduler.close()


def test_workers_starting_together_share_one_client(sandbox: SandboxInfo, make_engine: Any,
                                                    tmp_path: Path) -> None:
    """Files to one destination that start at once get one client between them: a worker
    that finds none being made makes it, the others wait for that one instead of each
    building their own (an HTTP session, a proxy lookup, a pool) and dropping it."""
    files = [write_random(tmp_path / "one" / f"{i}.bin", 1 * KiB, seed=i) for i in range(16)]
    made: list[OssClient] = []
    lock = threading.Lock()
    second = threading.Event()

    def factory(row: Any, creds: Any) -> OssClient:
        with lock:
            made.append(client := OssClient(Endpoint(row.endpoint, row.bucket, row.region),
                                             creds, pool_size=64))
            if len(made) > 1:
                second.set()
        # The first one is made slowly: long enough for every other worker to ask too.
        second.wait(2)
        return client

    scheduler, rec = make_engine(parallel=4, small_parallel=16, client_factory=factory)
    scheduler.add([new_upload(sandbox, p, key=f"one/{p.name}") for p in files])
    assert scheduler.wait(60)
    assert len(rec.of(Done)) == 16, rec.of(Failed)[:3]
    assert len(made) == 1
