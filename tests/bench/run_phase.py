"""Where a big upload's CPU goes: user and system time and context switches of the transfer.

    .venv/bin/python -m tests.bench.run_phase [--repeat 3] [--baseline DIR]
        [--variant ENV=VALUE] [--ossdesk-args ARGS]

``ossdesk upload FILE --json`` (the real CLI) sends the 1 GiB bench file to the bench sink
(CRC ETags); from its ``started`` line to its ``done`` line the child's user and system
CPU time (``/proc/PID/stat``) and its threads' voluntary and involuntary context switches
(``/proc/PID/task/*/status``) are counted: the system half is the kernel's (the loopback
TCP, whose receiving side runs in the sender's system calls; page-cache copies; the
futex waits of threads handing the interpreter lock to one another). Linux only.

``--baseline DIR`` also runs ``python -m ossdesk`` from that source tree, alternating;
``--variant ENV=VALUE`` also runs ``tests/bench/ossdesk_variant.py`` with that setting
(``OSSDESK_BENCH_VIEWS=1048576``, ``OSSDESK_BENCH_CHUNK=1048576``), alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.benchlib import BUCKET, PYTHON, REGION, REPO, Sink, client_env, machine

GiB = 1 << 30
FILE = Path("/tmp/ossdesk-bench/random-1073741824.bin")


def _cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _switches(pid: int) -> tuple[int, int]:
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    involuntary += int(line.split()[1])
        except OSError:
            pass  # the thread ended meanwhile
    return voluntary, involuntary


def one(name: str, program: list[str], cwd: Path, env: dict[str, str], endpoint: str,
        extra: list[str]) -> str:
    with tempfile.TemporaryDirectory() as home:
        env = {**client_env(Path(home)), **env}
        cmd = [*program, "upload", str(FILE), "--endpoint", endpoint, "--bucket", BUCKET,
               "--region", REGION, "--json", *extra]
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        start: tuple[tuple[float, float], tuple[int, int], float] | None = None
        line_out = f"{name}: no transfer seen"
        for line in proc.stdout:
            try:
                event = json.loads(line).get("event")
            except ValueError:
                continue
            if event == "started" and start is None:
                start = (_cpu(proc.pid), _switches(proc.pid), time.perf_counter())
            elif event == "done" and start is not None:
                (u0, s0), (v0, n0), t0 = start
                (u1, s1), (v1, n1) = _cpu(proc.pid), _switches(proc.pid)
                seconds = time.perf_counter() - t0
                line_out = (f"{name:28} user {u1 - u0:5.2f}  system {s1 - s0:5.2f}  total "
                            f"{u1 - u0 + s1 - s0:5.2f} CPU-s  {seconds:5.2f} s  "
                            f"{GiB / seconds / 1e6:6.0f} MB/s  switches {v1 - v0:6d} "
                            f"voluntary {n1 - n0:5d} involuntary")
        proc.wait()
        return line_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--variant", action="append", default=[], metavar="ENV=VALUE")
    parser.add_argument("--ossdesk-args", default="")
    args = parser.parse_args(argv)
    if not FILE.exists():
        raise SystemExit(f"{FILE} is made by `python -m tests.bench.run_loopback` first")
    print(machine())
    extra = args.ossdesk_args.split()
    clients: list[tuple[str, list[str], Path, dict[str, str]]] = [
        ("ossdesk", [PYTHON, "-m", "ossdesk"], REPO, {})]
    if args.baseline is not None:
        # From the baseline's folder, so that its ``ossdesk`` is the one imported.
        clients.append(("ossdesk baseline", [PYTHON, "-m", "ossdesk"], args.baseline,
                        {"PYTHONPATH": f"{args.baseline}{os.pathsep}{REPO}"}))
    for setting in args.variant:
        key, _, value = setting.partition("=")
        clients.append((f"variant {setting}", [PYTHON, "-m", "tests.bench.ossdesk_variant"],
                        REPO, {key: value}))
    with Sink(etag="crc") as sink:
        for _ in range(args.repeat):
            for name, program, cwd, env in clients:
                print(one(name, program, cwd, env, sink.endpoint, extra), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
