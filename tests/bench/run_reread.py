"""What reading the file again before "done" costs: one big random file, the loopback sink.

    .venv/bin/python -m tests.bench.run_reread [--size 1GiB] [--repeat 3]

Measures, for the same file:
  re-read hot     ``crc64_file`` of the whole file with the file in the page cache
  re-read cold    the same after ``echo 3 > /proc/sys/vm/drop_caches`` (root only; else n/a)
  upload          ``ossdesk upload FILE --json`` (re-read before Complete, the default) and
                  ``... --no-reread-above 0`` (no re-read), alternating, into the sink
and prints the medians and the re-read as a share of the upload time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ossdesk.core.checksum import crc64_file
from tests.bench.benchlib import (
    GiB,
    Run,
    Sink,
    client_env,
    exit_cleanly_on_sigterm,
    machine,
    measure,
    median,
    ossdesk_upload_cmd,
    random_file,
)
from tests.bench.run_loopback import parse_size


def drop_caches() -> bool:
    """Empty the page cache (root on Linux only); False when not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    except OSError:
        return False
    return True


def time_reread(path: Path, *, cold: bool) -> float | None:
    if cold and not drop_caches():
        return None
    if not cold:
        crc64_file(path)  # warm the cache
    start = time.perf_counter()
    crc64_file(path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=GiB, help="file size (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--file", type=Path, default=None,
                        help="the random file (default /tmp/ossdesk-bench/random-SIZE.bin)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    path = args.file or Path(f"/tmp/ossdesk-bench/random-{args.size}.bin")
    print(f"machine: {machine()}", flush=True)
    random_file(path, args.size)

    hot: list[float] = []
    cold: list[float] = []
    uploads: dict[str, list[Run]] = {"re-read": [], "no re-read": []}
    with Sink(etag="crc") as sink, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for round_no in range(args.repeat):
            for label in (["re-read", "no re-read"] if round_no % 2 == 0
                          else ["no re-read", "re-read"]):
                extra = ["--no-reread-above", "0"] if label == "no re-read" else []
                home = Path(tmp) / f"home-{round_no}-{len(uploads[label])}-{label[:2]}"
                crc64_file(path)  # the file in the page cache for both, as after a write
                run = measure(label, ossdesk_upload_cmd([path], sink.endpoint, extra=extra),
                              args.size, env=client_env(home), sink=sink)
                uploads[label].append(run)
                print(f"round {round_no + 1} upload, {label:<10} {run.transfer_s:6.2f} s "
                      f"(rc {run.returncode})", flush=True)
            h = time_reread(path, cold=False)
            c = time_reread(path, cold=True)
            assert h is not None
            hot.append(h)
            if c is not None:
                cold.append(c)
            print(f"round {round_no + 1} re-read hot {h:6.2f} s, cold "
                  f"{'n/a' if c is None else f'{c:6.2f} s'}", flush=True)

    def up(label: str) -> float:
        ok = [r.transfer_s for r in uploads[label] if r.returncode == 0 and r.transfer_s]
        return median(ok) if ok else float("nan")

    with_reread, without = up("re-read"), up("no re-read")
    print()
    print(f"median of {args.repeat}; file {args.size:,} bytes")
    print(f"upload without re-read: {without:.2f} s; with re-read: {with_reread:.2f} s")
    print(f"re-read hot:  {median(hot):.2f} s = {median(hot) / without:.0%} of the upload")
    if cold:
        print(f"re-read cold: {median(cold):.2f} s = {median(cold) / without:.0%} of the upload "
              f"({args.size / median(cold) / 1e6:.0f} MB/s from the disk)")
    else:
        print("re-read cold: n/a (dropping the page cache needs root)")
    failed = any(r.returncode for runs in uploads.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
