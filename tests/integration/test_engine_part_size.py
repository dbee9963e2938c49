"""New uploads size their parts from the throughput, so a slow link sees OSS confirm parts
every few seconds (and a fast one keeps large parts); an upload begun before the speed was
known grows its parts once it is; an explicit part size and a resumed upload's recorded one
are kept."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from ossdesk.core.events import Done, Progress, Started
from ossdesk.core.plan import DEFAULT_PART_SIZE, START_PART_SIZE, MiB
from ossdesk.core.throttle import Throughput
from tests.integration.test_engine_upload import assert_uploaded, write_random
from tests.support.engine import EngineFactory, new_upload
from tests.support.sandbox import SandboxInfo, read_access_log

LINK = 2 * MiB  # bytes per second
FIRST_CONFIRMED_WITHIN = 10.0  # seconds, the aim on such a link


def big_sparse(path: Path, size: int) -> Path:
    """A ``size``-byte file that costs no disk (only its first parts are ever sent here)."""
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def part_sizes(sb: SandboxInfo) -> set[int]:
    """The sizes of the parts OSS accepted."""
    return {int(row["received"]) for row in read_access_log(sb.log_path)
            if row["method"] == "PUT" and row["status"] == 200
            and re.search(r"(^|&)partNumber=\d+(&|$)", row["query"])}


def sent_parts(sb: SandboxInfo) -> dict[int, int]:
    """Part number -> size of the parts OSS accepted (the last accepted of each number)."""
    sizes: dict[int, int] = {}
    for row in read_access_log(sb.log_path):
        number = re.search(r"(?:^|&)partNumber=(\d+)(?:&|$)", row["query"])
        if row["method"] == "PUT" and row["status"] == 200 and number:
            sizes[int(number.group(1))] = int(row["received"])
    return sizes


def test_a_new_upload_grows_its_parts_once_the_link_is_known(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    # Nothing measured yet: the first parts are small (a slow link would see them confirmed
    # within seconds); the first round of them shows a fast link, and the rest of the file
    # goes in large parts.
    size = 96 * MiB + 5
    path = write_random(tmp_path / "big.bin", size)
    scheduler, rec = make_engine()  # default part size and parallel
    [upload] = scheduler.add([new_upload(sandbox, path)])
    scheduler.start()
    assert scheduler.wait(120)
    assert rec.of(Done), [e.kind for e in rec.events]
    row = scheduler.store.get(upload)
    assert row is not None and row.head_size == START_PART_SIZE
    head = row.head_parts
    assert head is not None and scheduler.parallel <= head < 48
    tail = row.part_size
    assert tail is not None and START_PART_SIZE < tail <= DEFAULT_PART_SIZE
    sizes = sent_parts(sandbox)
    count = head + -(-(size - head * START_PART_SIZE) // tail)
    assert sorted(sizes) == list(range(1, count + 1))
    assert all(sizes[n] == START_PART_SIZE for n in range(1, head + 1))
    assert all(sizes[n] == tail for n in range(head + 1, count))
    assert sizes[count] == size - head * START_PART_SIZE - (count - head - 1) * tail
    assert count < size // START_PART_SIZE  # fewer requests than 2 MiB parts all along
    assert_uploaded(sandbox, "big.bin", path)


def test_a_slow_link_not_known_at_the_start_keeps_its_small_parts(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    # Each part takes 8.5 s (what 2 MiB/s shared by 8 parts of 2 MiB gives; here the
    # server holds each answer, so no part can race ahead): parts of 4 s would be smaller
    # than the first ones, so the plan stays as it began.
    path = big_sparse(tmp_path / "video.mov", 300 * 1000**2)
    assert sandbox.server is not None
    sandbox.server.faults.delay(8.5, method="PUT", pattern=r"partNumber=\d+", count=None)
    scheduler, rec = make_engine()
    [upload] = scheduler.add([new_upload(sandbox, path)])
    scheduler.start()
    # The first round (8 parts) confirmed: the plan was looked at again, and kept.
    rec.wait_for(lambda e: isinstance(e, Progress)
                 and e.confirmed_bytes >= scheduler.parallel * START_PART_SIZE, timeout=90)
    row = scheduler.store.get(upload)
    sandbox.server.faults.clear()
    scheduler.close()
    assert row is not None
    assert (row.part_size, row.head_size, row.head_parts) == (
        START_PART_SIZE, START_PART_SIZE, None)
    assert set(sent_parts(sandbox).values()) == {START_PART_SIZE}


def test_a_300mb_file_at_2mib_s_gets_parts_oss_confirms_within_seconds(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = big_sparse(tmp_path / "video.mov", 300 * 1000**2)
    scheduler, rec = make_engine(rate=LINK)  # default part size and parallel
    [upload] = scheduler.add([new_upload(sandbox, path)])
    scheduler.start()
    rec.wait_for(lambda e: isinstance(e, Started))
    row = scheduler.store.get(upload)
    assert row is not None and row.part_size is not None
    # Every part-in-flight slot busy from the start: the first part is confirmed once
    # ``parallel`` parts of this size went through the link.
    assert row.part_size == MiB
    assert scheduler.parallel == 8
    assert row.part_size * scheduler.parallel / LINK < FIRST_CONFIRMED_WITHIN
    rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes > 0, timeout=60)
    scheduler.close()
    assert part_sizes(sandbox) == {MiB}


def test_the_measured_throughput_sizes_the_parts_of_a_new_upload(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "big.bin", 24 * MiB + 5)
    scheduler, _rec = make_engine(parallel=4)
    clock = ManualClock()
    scheduler.throughput = Throughput(clock=clock)
    for _ in range(50):  # earlier files went at 1 MiB/s: 256 KiB/s per part in flight
        scheduler.throughput.add(MiB // 10)
        clock.advance(0.1)
    [upload] = scheduler.add([new_upload(sandbox, path)])
    scheduler.start()
    assert scheduler.wait(60)
    row = scheduler.store.get(upload)
    assert row is not None and row.part_size == MiB
    assert part_sizes(sandbox) == {MiB, 5}


def test_an_explicit_part_size_is_kept_on_a_slow_link(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = big_sparse(tmp_path / "video.mov", 300 * 1000**2)
    scheduler, rec = make_engine(rate=LINK, part_size=DEFAULT_PART_SIZE)
    [upload] = scheduler.add([new_upload(sandbox, path, part_size=DEFAULT_PART_SIZE)])
    scheduler.start()
    rec.wait_for(lambda e: isinstance(e, Started))
    row = scheduler.store.get(upload)
    scheduler.close()
    assert row is not None and row.part_size == DEFAULT_PART_SIZE


def test_a_fast_link_keeps_large_parts(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "big.bin", 40 * MiB + 7)
    scheduler, _rec = make_engine(parallel=4)
    clock = ManualClock()
    scheduler.throughput = Throughput(clock=clock)
    for _ in range(50):  # 400 MiB/s measured
        scheduler.throughput.add(40 * MiB)
        clock.advance(0.1)
    [upload] = scheduler.add([new_upload(sandbox, path)])
    scheduler.start()
    assert scheduler.wait(60)
    row = scheduler.store.get(upload)
    assert row is not None and row.part_size == DEFAULT_PART_SIZE


def test_a_plan_paused_before_it_grew_grows_after_the_resume(
        make_engine: EngineFactory, sandbox: SandboxInfo, tmp_path: Path) -> None:
    size = 64 * MiB + 3
    path = write_random(tmp_path / "big.bin", size)
    assert sandbox.server is not None
    # The first two answers are held, so the pause comes before the first round is in.
    sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=\d+", count=2)
    scheduler, rec = make_engine(parallel=2)
    [upload] = scheduler.add([new_upload(sandbox, path)])
    scheduler.start()
    rec.wait_for(lambda e: isinstance(e, Started))
    scheduler.pause([upload])
    assert scheduler.wait(30)
    row = scheduler.store.get(upload)
    assert row is not None and row.upload_id is not None
    assert (row.part_size, row.head_size, row.head_parts) == (
        START_PART_SIZE, START_PART_SIZE, None)
    kept = set(scheduler.store.parts(upload))

    scheduler.resume([upload])
    assert scheduler.wait(120)
    assert rec.of(Done), [e.kind for e in rec.events]
    row = scheduler.store.get(upload)
    assert row is not None and row.head_parts is not None and row.part_size is not None
    head, tail = row.head_parts, row.part_size
    assert START_PART_SIZE < tail <= DEFAULT_PART_SIZE
    sizes = sent_parts(sandbox)
    count = head + -(-(size - head * START_PART_SIZE) // tail)
    assert sorted(sizes) == list(range(1, count + 1))
    assert all(sizes[n] == START_PART_SIZE for n in range(1, head + 1))
    assert all(sizes[n] == tail for n in range(head + 1, count))
    puts = [r for r in read_access_log(sandbox.log_path) if r["method"] == "PUT"
            and r["status"] == 200 and "partNumber=" in r["query"]]
    for number in kept:  # confirmed before the pause: not sent again
        assert sum(f"partNumber={number}&" in r["query"] + "&" for r in puts) == 1
    assert_uploaded(sandbox, "big.bin", path)
