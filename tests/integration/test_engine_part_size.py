"""New uploads size their parts from the throughput, so a slow link sees OSS confirm parts
every few seconds (and a fast one keeps large parts); an explicit part size and a resumed
upload's recorded one are kept."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from ossdesk.core.events import Progress, Started
from ossdesk.core.plan import DEFAULT_PART_SIZE, MiB
from ossdesk.core.throttle import Throughput
from tests.integration.test_engine_upload import write_random
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
