"""Crash-and-resume benchmark: SIGKILL a many-part ``ossdesk upload``, then ``ossdesk resume``.

    .venv/bin/python -m tests.bench.run_resume [--parts 10000] [--part-size 100KiB]
         [--kill-at 0.3] [--server sandbox|sink]

1. A sparse file of PARTS x PART_SIZE bytes (read like any file).
2. ``ossdesk upload FILE --part-size PART_SIZE --json`` against the server (default: the real
   ``ossdesk sandbox`` with its access log; ``--server sink``: the benchmark sink, same log
   format, no data stored); SIGKILL once the confirmed bytes pass KILL_AT of the file.
3. ``ossdesk resume --json`` with the same upload list, until done.

From the access log (one line per request: method, path, query, status, bytes received):
* **re-sent bytes** = every UploadPart byte the server received in both runs - the file size.
  Target (issue 7): <= parts in flight (``--parallel``, default 8) x part size.
* **time to first byte on resume** = from spawning ``ossdesk resume`` until the first
  UploadPart of the resume run shows up in the log (the log is polled every 5 ms; a line is
  written when the part's response goes out, so this over-estimates by one part's transfer).
  Target: <= 2 s for a 10,000-part upload.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from tests.bench.benchlib import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    OSSDESK,
    REPO,
    Row,
    Sink,
    client_env,
    exit_cleanly_on_sigterm,
    machine,
    measure,
    ossdesk_upload_cmd,
    table,
)
from tests.bench.run_loopback import parse_size


class Sandbox:
    """``ossdesk sandbox`` in a child process, with an access log."""

    def __init__(self, root: Path, log: Path) -> None:
        env = dict(os.environ, OSS_ACCESS_KEY_ID=ACCESS_KEY_ID,
                   OSS_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET, OSSDESK_HOME=str(root / "home"))
        self.proc = subprocess.Popen(
            [OSSDESK, "sandbox", "--port", "0", "--root", str(root / "data"), "--bucket",
             "bench", "--log", str(log)], cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=(root / "sandbox.err").open("w"), text=True)  # resets after SIGKILL go here
        assert self.proc.stdout is not None
        self.endpoint = ""
        for line in self.proc.stdout:
            if "endpoint:" in line:
                self.endpoint = line.split("endpoint:", 1)[1].strip()
            if line.startswith("Press Ctrl-C"):
                break
        if not self.endpoint:
            self.stop()
            raise RuntimeError("the sandbox did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class LogWatch:
    """Polls the access log; remembers when each line was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[tuple[float, list[str]]] = []
        self._pos = 0
        self._partial = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            time.sleep(0.005)

    def poll_once(self) -> None:
        with self._lock:
            try:
                with open(self.path) as fh:
                    fh.seek(self._pos)
                    data = fh.read()
                    self._pos = fh.tell()
            except OSError:
                return
            now = time.perf_counter()
            *complete, self._partial = (self._partial + data).split("\n")
            self.lines.extend((now, line.split("\t")) for line in complete if line)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.poll_once()


def is_part(fields: list[str]) -> bool:
    return len(fields) >= 6 and fields[1] == "PUT" and "uploadId=" in fields[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--part-size", type=parse_size, default=100 * 1024)
    parser.add_argument("--kill-at", type=float, default=0.3)
    parser.add_argument("--parallel", type=int, default=8, help="ossdesk --parallel")
    parser.add_argument("--server", choices=("sandbox", "sink"), default="sandbox")
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    size = args.parts * args.part_size
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-resume-", dir=args.tmp) as tmp_s:
        tmp = Path(tmp_s)
        log = tmp / "access.log"
        server: Sandbox | Sink = (Sandbox(tmp, log) if args.server == "sandbox"
                                  else Sink(etag="md5", log=log))
        watch = LogWatch(log)
        try:
            path = tmp / "big.bin"
            with open(path, "wb") as fh:
                fh.truncate(size)
            env = client_env(tmp / "home")
            limits = ["--parallel", str(args.parallel)]
            killed: dict[str, float] = {}

            def on_line(proc: subprocess.Popen[str], event: dict[str, object]) -> None:
                confirmed = event.get("confirmed_bytes")
                if ("kill" not in killed and isinstance(confirmed, int)
                        and confirmed >= args.kill_at * size):
                    proc.send_signal(signal.SIGKILL)
                    killed["kill"] = time.perf_counter()

            first = measure("upload", ossdesk_upload_cmd(
                [path], server.endpoint,
                extra=["--part-size", str(args.part_size), *limits]), size, env=env,
                on_line=on_line)
            time.sleep(0.5)
            watch.poll_once()
            before = len(watch.lines)
            print(f"upload: killed={bool(killed)} rc={first.returncode} after "
                  f"{first.wall:.1f} s; {before} requests in the log", flush=True)
            t_spawn = time.perf_counter()
            second = measure("resume", [OSSDESK, "resume", "--json", *limits], size, env=env)
            time.sleep(0.3)
        finally:
            watch.stop()
            server.stop()
        if second.returncode:
            print(second.stderr, file=sys.stderr)
        lines = watch.lines
        phase1 = [f for _, f in lines[:before] if is_part(f)]
        phase2 = [(t, f) for t, f in lines[before:] if is_part(f)]
        received = sum(int(f[5]) for f in phase1) + sum(int(f[5]) for _, f in phase2)
        resent = received - size
        ok1 = Counter(f[3] for f in phase1 if f[4] == "200")
        parts_done_before = len(ok1)
        again = {f[3] for _, f in phase2} & {f[3] for f in phase1 if f[4] == "200"}
        ttfb = (phase2[0][0] - t_spawn) if phase2 else float("nan")
        resume_events = [e.get("event") for e in second.events]
        started = [e for e in second.events if e.get("event") == "started"]
        print(f"before the kill: {parts_done_before} parts confirmed by the server; resume: "
              f"{len(phase2)} part requests, {len(again)} of them for parts the server had "
              f"confirmed; resume rc={second.returncode}, done={'done' in resume_events}, "
              f"started: {started[:1]}", flush=True)
        print(f"resume wall {second.wall:.1f} s, first UploadPart seen {ttfb:.2f} s after spawn",
              flush=True)
    rows = [
        Row(f"re-sent after SIGKILL ({args.parts:,} x {args.part_size // 1024} KiB)",
            f"{args.parallel} x part size", args.parallel * args.part_size / 1024,
            resent / 1024, "KiB", "<= 100%"),
        Row(f"time to first byte on resume ({args.parts:,} parts)", "limit", 2.0, ttfb, "s",
            "<= 100%"),
    ]
    print()
    print(table(rows))
    return 0 if second.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
