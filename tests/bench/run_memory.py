"""Memory benchmark: peak RSS of ``ossdesk upload`` by file size and by number of files.

    .venv/bin/python -m tests.bench.run_memory [--sizes 1GiB,10GiB] [--counts 10000,100000]

1. One sparse file of each size (``truncate``: no disk space, read like any file) uploaded to
   the loopback sink; peak RSS from the child's rusage (``ru_maxrss``) and the largest
   ``VmRSS`` sampled every 50 ms. Target (issue 7): <= 150 MiB and independent of the size.
2. Folders of COUNT files of 1 byte each (in a temporary folder, removed afterwards) uploaded
   the same way; RSS growth per queued file = (peak at the larger count - peak at the smaller)
   / (difference in files). Target: <= 2 KiB per file. Also reported: the time to queue them
   (first ``queued`` event to the first ``started`` one is not meaningful, so the time until
   the last ``queued`` line) and the whole run's time.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.benchlib import (
    GiB,
    MiB,
    Row,
    Run,
    Sink,
    client_env,
    exit_cleanly_on_sigterm,
    machine,
    measure,
    ossdesk_upload_cmd,
    rss_bytes,
    table,
)
from tests.bench.run_loopback import parse_size


def measure_rss(name: str, cmd: list[str], size: int, env: dict[str, str], sink: Sink
                ) -> tuple[Run, int]:
    """Run and sample VmRSS every 50 ms; (run, largest sample)."""
    peak = 0
    pid: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            if pid:
                with contextlib.suppress(OSError):
                    peak = max(peak, rss_bytes(pid[0]))
            time.sleep(0.05)

    def on_line(proc: subprocess.Popen[str], event: dict[str, object]) -> None:
        if not pid:
            pid.append(proc.pid)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    run = measure(name, cmd, size, env=env, sink=sink, start_event="queued", on_line=on_line)
    stop.set()
    thread.join()
    return run, peak


def make_files(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        sub = folder / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir()
        (sub / f"f{i:06d}").write_bytes(b"x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1GiB,10GiB")
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--tmp", default=None, help="where the scratch files go (default /tmp)")
    parser.add_argument("--ossdesk-args", default="")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    counts = [int(c) for c in args.counts.split(",") if c]
    extra = args.ossdesk_args.split()
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    by_size: dict[int, int] = {}
    by_count: dict[int, int] = {}
    with Sink(etag="crc") as sink, tempfile.TemporaryDirectory(prefix="bench-mem-",
                                                               dir=args.tmp) as tmp_s:
        tmp = Path(tmp_s)
        for i, size in enumerate(sizes):
            path = tmp / f"sparse-{size}.bin"
            with open(path, "wb") as fh:
                fh.truncate(size)
            run, sampled = measure_rss(f"sparse {size}", ossdesk_upload_cmd(
                [path], sink.endpoint, extra=extra), size, client_env(tmp / f"home-s{i}"), sink)
            path.unlink()
            peak = max(run.max_rss, sampled)
            by_size[size] = peak
            print(f"{size / GiB:g} GiB sparse: rc={run.returncode} peak RSS "
                  f"{run.max_rss / MiB:.1f} MiB (sampled {sampled / MiB:.1f}), "
                  f"{run.mb_s:.0f} MB/s, wall {run.wall:.1f} s", flush=True)
            if run.returncode:
                print(run.stderr[-1000:], file=sys.stderr)
        for i, count in enumerate(counts):
            folder = tmp / f"files-{count}"
            t0 = time.perf_counter()
            make_files(folder, count)
            made = time.perf_counter() - t0
            run, sampled = measure_rss(f"{count} files", ossdesk_upload_cmd(
                [folder], sink.endpoint, extra=extra), count, client_env(tmp / f"home-c{i}"),
                sink)
            shutil.rmtree(folder)
            peak = max(run.max_rss, sampled)
            by_count[count] = peak
            queued = sum(1 for e in run.events if e.get("event") == "queued")
            done = sum(1 for e in run.events if e.get("event") == "done")
            print(f"{count} files of 1 byte (made in {made:.1f} s): rc={run.returncode} "
                  f"peak RSS {run.max_rss / MiB:.1f} MiB (sampled {sampled / MiB:.1f}), "
                  f"{queued} queued / {done} done events, wall {run.wall:.1f} s, "
                  f"{count / run.wall:.0f} files/s", flush=True)
            if run.returncode:
                print(run.stderr[-1000:], file=sys.stderr)
            shutil.rmtree(tmp / f"home-c{i}", ignore_errors=True)
    if by_size:
        largest = max(by_size)
        rows.append(Row(f"peak RSS, one {largest / GiB:g} GiB file", "limit", 150,
                        by_size[largest] / MiB, "MiB", "<= 100%"))
        if len(by_size) > 1:
            smallest = min(by_size)
            rows.append(Row(f"peak RSS, {largest / GiB:g} GiB vs {smallest / GiB:g} GiB file",
                            f"{smallest / GiB:g} GiB file", by_size[smallest] / MiB,
                            by_size[largest] / MiB, "MiB", "<= 1.05x"))
    if len(by_count) > 1:
        lo, hi = min(by_count), max(by_count)
        per_file = (by_count[hi] - by_count[lo]) / (hi - lo)
        rows.append(Row(f"RSS growth per queued file ({lo:,} -> {hi:,} files)", "limit", 2048,
                        per_file, "bytes", "<= 100%"))
        rows.append(Row(f"peak RSS with {hi:,} files", f"{lo:,} files", by_count[lo] / MiB,
                        by_count[hi] / MiB, "MiB", ""))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
