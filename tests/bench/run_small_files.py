"""The engine's own cost per small file and per MiB, in figures a busy machine does not move.

    .venv/bin/python -m tests.bench.run_small_files [--files 1000] [--size 64KiB]
        [--repeat 3] [--profile] [--top 25] [--big 64MiB] [--big-part-size 8MiB|auto]

The real :class:`~ossdesk.core.scheduler.Scheduler` (CLI defaults: 3 files at once, 8 parts
in flight, 64 requests for tiny files) over a real upload list (SQLite) uploads FILES files
of SIZE to ``ossdesk sandbox`` running in a child process on loopback (real MD5 ETags, as
OSS answers; the sandbox's CPU is not counted). Each run has a fresh upload list; the
sandbox and the files are made once.

* **CPU per 1,000 files**: this process's CPU time (``time.process_time``: every thread,
  user + system) from ``Scheduler.add`` until the scheduler is idle, scaled to 1,000 files;
  the median of ``--repeat`` runs. Other processes on the machine slow the run down but do
  not add to its CPU time (cache and frequency effects aside).
* ``--profile``: one more run with every thread under :mod:`cProfile`: Python function
  calls per file (calls are counted, not timed, so the figure is the same on an idle and
  on a loaded machine) and the functions called most, with their calls per file; own
  time is each thread's CPU time (``time.thread_time``), so a thread waiting for the
  interpreter lock or the network adds nothing.
* ``--big SIZE``: also one file of SIZE in 8 MiB parts (``--big-part-size``: other parts,
  or ``auto``, the engine's own choice): CPU and (with ``--profile``) calls per MiB.

Prints ``FIGURE name value`` lines for scripts, then a table.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ossdesk.core.events import Done, Event, Failed
from ossdesk.core.oss import Credentials
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, Store
from tests.bench.benchlib import MiB, machine
from tests.bench.run_loopback import parse_size
from tests.support.sandbox import SandboxInfo, SandboxProcess

FIGURE = "FIGURE"


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` files of ``size`` random bytes (made once, reused while they match)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"f{i:06d}.bin" for i in range(count)]
    for path in paths:
        if not path.exists() or path.stat().st_size != size:
            path.write_bytes(os.urandom(size))
    return paths


def items(paths: list[Path], endpoint: str, bucket: str, region: str,
          part_size: int | None = None) -> list[NewUpload]:
    out = []
    for path in paths:
        st = path.stat()
        out.append(NewUpload(source=path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                             key=f"bench/{path.name}", endpoint=endpoint, bucket=bucket,
                             region=region, part_size=part_size, ctime_ns=st.st_ctime_ns,
                             file_dev=st.st_dev, file_ino=st.st_ino))
    return out


class Profiles:
    """Every thread started while :meth:`on` is in effect runs under its own profiler."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _wrap(self, run: Callable[[], None]) -> Callable[[], None]:
        def profiled() -> None:
            profile = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(profile)
            profile.enable()
            try:
                run()
            finally:
                profile.disable()

        return profiled

    @contextmanager
    def on(self) -> Iterator[None]:
        original = threading.Thread.run
        wrap = self._wrap

        def run(self: threading.Thread) -> None:
            wrap(lambda: original(self))()

        threading.Thread.run = run  # type: ignore[method-assign]
        main = cProfile.Profile(time.thread_time)
        self.profiles.append(main)
        main.enable()
        try:
            yield
        finally:
            main.disable()
            threading.Thread.run = original  # type: ignore[method-assign]

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            stats.add(profile)
        return stats


def run_once(paths: list[Path], info: SandboxInfo, store_path: Path, *, part_size: int | None,
             profiles: Profiles | None = None,
             small_parallel: int | None = None) -> tuple[float, float, int]:
    """One upload of ``paths``: (CPU seconds, wall seconds, files verified)."""
    creds = Credentials(info.access_key_id, info.access_key_secret)
    queued = items(paths, info.endpoint, info.bucket, info.region, part_size)
    done = failed = 0
    lock = threading.Lock()

    def listen(event: Event) -> None:
        nonlocal done, failed
        if isinstance(event, Done):
            with lock:
                done += 1
        elif isinstance(event, Failed):
            with lock:
                failed += 1
                print(f"failed: {event.message}", file=sys.stderr)

    store = Store.open(store_path)
    try:
        with (profiles.on() if profiles is not None else _nothing()):
            scheduler = Scheduler(store, credentials=lambda _source: creds,
                                  small_parallel=small_parallel)
            scheduler.add_listener(listen)
            cpu0, wall0 = time.process_time(), time.monotonic()
            scheduler.add(queued)
            scheduler.wait()
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            scheduler.close()
    finally:
        store.close()
    if failed or done != len(paths):
        raise SystemExit(f"{failed} failed, {done} of {len(paths)} verified")
    return cpu, wall, done


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    parts = Path(filename).parts
    for anchor in ("ossdesk", "oss2", "urllib3", "requests", "http", "email", "sqlite3"):
        if anchor in parts:
            filename = "/".join(parts[parts.index(anchor):])
            break
    else:
        filename = Path(filename).name
    return f"{filename}:{line}({name})"


def _package(func: tuple[str, int, str]) -> str:
    where = _where(func)
    if where.startswith("ossdesk/"):
        return where.split(":")[0]
    return where.split("/")[0] if "/" in where.split(":")[0] else where.split(":")[0]


def by_package(raw: dict[tuple[str, int, str], tuple[int, int, float, float, dict[Any, Any]]]
               ) -> dict[str, int]:
    """Calls per module: a built-in (C) function's calls count for the module calling it."""
    counts: dict[str, int] = {}
    for func, (_, nc, _, _, callers) in raw.items():
        if func[0] == "~" and callers:
            for caller, value in callers.items():
                calls = int(value[0] if isinstance(value, tuple) else value)
                counts[_package(caller)] = counts.get(_package(caller), 0) + calls
        else:
            counts[_package(func)] = counts.get(_package(func), 0) + nc
    return counts


def report_profile(label: str, stats: pstats.Stats, per: float, unit: str, top: int) -> int:
    raw = stats.stats  # type: ignore[attr-defined]
    total = int(sum(nc for (_, nc, _, _, _) in raw.values()))
    print(f"{FIGURE} calls_per_{unit}_{label} {total / per:.0f}")
    print(f"\n{label}: {total:,} Python and C function calls, {total / per:,.0f} per {unit}")
    print(f"  by module (a built-in's calls count for its caller; calls per {unit}):")
    for name, calls in sorted(by_package(raw).items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {calls / per:10.1f}  {name}")
    print(f"  the {top} functions called most (calls per {unit}; own CPU share):")
    own = sum(tt for (_, _, tt, _, _) in raw.values()) or 1.0
    ranked = sorted(raw.items(), key=lambda kv: kv[1][1], reverse=True)[:top]
    for func, (_, nc, tt, _, _) in ranked:
        print(f"  {nc / per:10.1f}  {100 * tt / own:5.1f} %  {_where(func)}")
    print(f"  the {top} functions with the most own time (calls per {unit}; own CPU share):")
    ranked = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for func, (_, nc, tt, _, _) in ranked:
        print(f"  {nc / per:10.1f}  {100 * tt / own:5.1f} %  {_where(func)}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=parse_size, default=64 * 1024)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--small-parallel", type=int, default=None, metavar="N",
                        help="requests in flight for tiny files (default: the CLI's, 64)")
    parser.add_argument("--profile", action="store_true",
                        help="one more run under cProfile: calls per file, top functions")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", type=Path, default=None,
                        help="with --profile: write the small files' profile here (pstats)")
    parser.add_argument("--big", type=parse_size, default=0,
                        help="also one file of this size (8 MiB parts): per-MiB figures")
    parser.add_argument("--big-part-size", default="8MiB", metavar="SIZE",
                        help="the big file's part size (default 8MiB); 'auto': the engine's "
                             "own choice for a new upload (2 MiB parts before any "
                             "throughput was measured, as the CLI's first file)")
    parser.add_argument("--big-dump", type=Path, default=None,
                        help="with --profile and --big: write the big file's profile here")
    args = parser.parse_args(argv)
    big_part = None if args.big_part_size == "auto" else parse_size(args.big_part_size)

    print(machine())
    scratch = Path(tempfile.mkdtemp(prefix="ossdesk-small-"))
    sandbox = SandboxProcess(scratch / "root", scratch / "access.log")
    try:
        info = sandbox.start()
        files = make_files(Path(f"/tmp/ossdesk-bench/small-{args.files}x{args.size}"),
                           args.files, args.size)
        cpus: list[float] = []
        for i in range(args.repeat):
            cpu, wall, _ = run_once(files, info, scratch / f"list-{i}.sqlite", part_size=None,
                                    small_parallel=args.small_parallel)
            cpus.append(cpu)
            print(f"run {i + 1}: {cpu:.2f} CPU-s, {wall:.2f} s wall, "
                  f"{1000 * cpu / args.files:.2f} CPU-s per 1,000 files", flush=True)
        if cpus:
            median = statistics.median(cpus)
            print(f"{FIGURE} cpu_per_1000_files {1000 * median / args.files:.3f}")
            print(f"median: {1000 * median / args.files:.2f} CPU-s per 1,000 files of "
                  f"{args.size // 1024} KiB ({args.files} files, runs: "
                  f"{', '.join(f'{c:.2f}' for c in cpus)} CPU-s)")
        if args.profile:
            profiles = Profiles()
            run_once(files, info, scratch / "list-profile.sqlite", part_size=None,
                     profiles=profiles, small_parallel=args.small_parallel)
            stats = profiles.stats()
            report_profile("small", stats, args.files, "file", args.top)
            if args.dump is not None:
                stats.dump_stats(args.dump)
        if args.big:
            big = make_files(Path(f"/tmp/ossdesk-bench/big-{args.big}"), 1, args.big)
            cpu, wall, _ = run_once(big, info, scratch / "list-big.sqlite", part_size=big_part)
            mib = args.big / MiB
            print(f"{FIGURE} cpu_per_gib_big {cpu * 1024 / mib:.3f}")
            print(f"big: {cpu:.2f} CPU-s, {wall:.2f} s wall for {mib:g} MiB "
                  f"({cpu * 1024 / mib:.2f} CPU-s per GiB)")
            if args.profile:
                profiles = Profiles()
                run_once(big, info, scratch / "list-big-profile.sqlite", part_size=big_part,
                         profiles=profiles)
                stats = profiles.stats()
                report_profile("big", stats, mib, "MiB", args.top)
                if args.big_dump is not None:
                    stats.dump_stats(args.big_dump)
    finally:
        sandbox.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
