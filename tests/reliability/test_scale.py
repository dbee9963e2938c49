"""Scale: a folder of 100,000 small files queued with a bounded memory cost per file, and an
upload of thousands of parts.

CI sizes (a few tens of seconds on two cores): 100,000 files queued (the engine then held
at its credentials, so nothing but the queue is measured; ``OSSDESK_SCALE_UPLOAD=1`` uploads
them all as well, which takes minutes) and 2,000 parts of 100 KiB (``OSSDESK_SCALE_PARTS=10000``
for the 10,000-part upload of about 1 GiB).
"""

from __future__ import annotations

import gc
import itertools
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from ossdesk.core.checksum import crc64, crc64_file
from ossdesk.core.events import Done, Failed
from ossdesk.core.oss import Credentials
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, State, Store
from ossdesk.core.walk import unique_keys, walk
from tests.reliability.conftest import FAST_RETRY, EngineFactory, Recorder, new_upload
from tests.reliability.helpers import KiB, part_puts, write_random
from tests.support.sandbox import SandboxInfo

#: Documented bound (docs/RELIABILITY.md): Python memory kept per queued file by the
#: walk + store + scheduler queue, and process RSS growth per queued file.
MAX_TRACED_PER_FILE = 1024
MAX_RSS_PER_FILE = 4096


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _make_files(folder: Path, count: int) -> None:
    folder.mkdir()
    per_dir = 1000
    for d in range(-(-count // per_dir)):
        sub = folder / f"d{d:03}"
        sub.mkdir()
        for i in range(min(per_dir, count - d * per_dir)):
            (sub / f"f{i:04}.txt").write_bytes(b"x" if i % 2 else b"")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_100k_small_files_queue_with_bounded_memory(sandbox: SandboxInfo,
                                                    tmp_path: Path) -> None:
    count = int(os.environ.get("OSSDESK_SCALE_FILES", "100000"))
    upload_all = os.environ.get("OSSDESK_SCALE_UPLOAD") == "1"
    folder = tmp_path / "many"
    began = time.monotonic()
    _make_files(folder, count)
    print(f"{count} files made in {time.monotonic() - began:.1f} s")
    gate = threading.Event()
    creds = Credentials(sandbox.access_key_id, sandbox.access_key_secret)

    def held(_source: str) -> Credentials:
        gate.wait(600)  # like a keyring prompt nobody answered yet
        return creds

    store = Store.open()
    sched = Scheduler(store, credentials=held, retry=FAST_RETRY, jobs=3, parallel=16)
    rec = Recorder() if upload_all else None
    if rec is not None:
        sched.add_listener(rec)
    problems: list[object] = []
    stream = (NewUpload(source=f.path, size=f.size, mtime_ns=f.mtime_ns, key=f.key,
                        endpoint=sandbox.endpoint, bucket=sandbox.bucket,
                        region=sandbox.region)
              # As `ossdesk upload` walks: each key's first source kept for the whole run.
              for f in unique_keys(walk([folder], "scale/", problems.append),
                                   lambda later, first: problems.append((later, first))))
    ids: list[int] = []

    def queue(n: int) -> None:
        while len(ids) < n and (batch := list(itertools.islice(stream, min(500, n - len(ids))))):
            ids.extend(sched.add(batch))

    try:
        made = time.monotonic()
        first = min(count, 20_000)
        queue(first)  # fixed costs (imports, caches, the first pages) are paid here
        gc.collect()
        rss_a = _rss()
        # Python objects kept per file, traced over the next 20,000 (tracing is slow).
        tracemalloc.start()
        traced_a = tracemalloc.get_traced_memory()[0]
        queue(min(count, 2 * first))
        gc.collect()
        traced_b = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        queue(count)
        gc.collect()
        rss_b = _rss()
        seconds = time.monotonic() - made
        assert problems == []
        assert len(ids) == count
        assert store.count() == count
        assert store.count([State.QUEUED, State.RUNNING]) == count
        if count > 2 * first:
            traced = (traced_b - traced_a) / first
            rss = (rss_b - rss_a) / (count - first)
            print(f"queued {count} files in {seconds:.1f} s ({count / seconds:.0f} files/s): "
                  f"{traced:.0f} B traced and {rss:.0f} B RSS per file beyond the first {first}")
            assert traced <= MAX_TRACED_PER_FILE
            assert rss <= MAX_RSS_PER_FILE
        if upload_all:
            gate.set()
            assert sched.wait(3600)
            assert rec is not None and rec.of(Failed) == []
            assert len(rec.of(Done)) == count
            assert store.count([State.DONE]) == count
    finally:
        sched.pause()
        gate.set()
        sched.close()
        store.close()


@pytest.mark.slow
def test_thousands_of_parts(sandbox: SandboxInfo, engine: EngineFactory,
                            tmp_path: Path) -> None:
    parts = int(os.environ.get("OSSDESK_SCALE_PARTS", "2000"))
    part = 100 * KiB
    path = write_random(tmp_path / "parts.bin", parts * part - 17)
    sched, rec = engine(part_size=part, parallel=8)
    start = time.monotonic()
    sched.add([new_upload(sandbox, path)])
    assert sched.wait(900)
    seconds = time.monotonic() - start
    assert rec.of(Failed) == []
    [done] = rec.of(Done)
    want = crc64_file(path)
    assert done.crc64 == want
    result = sandbox.bucket_client(enable_crc=False).get_object("parts.bin")
    try:
        got, size = 0, 0
        while chunk := result.read(4 << 20):
            got = crc64(chunk, got)
            size += len(chunk)
        header = int(result.headers["x-oss-hash-crc64ecma"])
    finally:
        result.close()
    assert size == path.stat().st_size and got == want and header == want
    puts = part_puts(sandbox.log_path)
    assert sorted(p.number for p in puts) == list(range(1, parts + 1))  # each sent once
    print(f"{parts} parts of {part // KiB} KiB in {seconds:.1f} s")
