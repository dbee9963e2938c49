"""Shared pieces of the benchmark scripts: the sink process, measured child processes, files,
medians and the result table.

Every client runs in its own child process and is measured the same way:

* **transfer**: the client prints a JSON line when its upload starts and one when it is done
  (``ossdesk upload --json`` does so by itself; ``oss2_peer.py`` mirrors it). The parent reads
  those lines as they come and samples the child's CPU time (``/proc/PID/stat``, all threads)
  and the clock at each: transfer seconds and transfer CPU seconds, without interpreter start.
* **process**: wall time from spawn to exit and the child's ``rusage`` (``os.wait4``):
  what a user pays in all, start-up included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
OSSDESK = str(Path(PYTHON).with_name("ossdesk"))
GiB = 1024**3
MiB = 1024**2
TICK = os.sysconf("SC_CLK_TCK")
ACCESS_KEY_ID = "LTAI5tBenchAccessKey000"
ACCESS_KEY_SECRET = "bench-secret"
BUCKET = "bench"

# A shell starts background jobs with SIGINT ignored, children inherit that, and Python then
# never installs its Ctrl-C handler: the pause scenario's SIGINT would do nothing. A handled
# signal is reset to its default in a child at exec, so handle it here.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
REGION = "cn-hangzhou"


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (``timeout``, ``kill``) unwinds like Ctrl-C: scratch folders and child
    processes are cleaned up by the ``with``/``finally`` blocks."""
    signal.signal(signal.SIGTERM, _raise_exit)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}), {mem} MiB memory, kernel {os.uname().release}, "
            f"Python {sys.version.split()[0]}, load average {load}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def random_file(path: Path, size: int) -> Path:
    """A file of random bytes, generated once and reused while its size matches."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    block = 8 * MiB
    with open(tmp, "wb") as fh:
        left = size
        while left:
            n = min(block, left)
            fh.write(os.urandom(n))
            left -= n
    tmp.replace(path)
    return path


# -------------------------------------------------------------------------- the sink


class Sink:
    """``sink.py`` in a child process (or any server command printing ``endpoint URL``)."""

    def __init__(self, etag: str = "md5", log: Path | None = None, host: str = "127.0.0.1",
                 prefix: Sequence[str] = ()) -> None:
        cmd = [*prefix, PYTHON, "-m", "tests.bench.sink", "--host", host, "--port", "0",
               "--etag", etag]
        if log is not None:
            cmd += ["--log", str(log)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("endpoint "):
            self.stop()
            raise RuntimeError(f"the sink did not start: {line!r}")
        self.endpoint = line.split()[1]
        self.pid = self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -------------------------------------------------------------------------- measured children


@dataclass
class Run:
    """One client run."""

    name: str
    size: int
    returncode: int = 0
    wall: float = 0.0  # spawn to exit
    cpu: float = 0.0  # rusage user + sys of the whole process
    max_rss: int = 0  # bytes, from rusage
    transfer_s: float = 0.0  # started -> done line
    transfer_cpu: float = 0.0  # child CPU between those lines
    server_cpu: float = 0.0  # the sink's CPU during the run
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    @property
    def mb_s(self) -> float:  # decimal MB/s of the transfer phase
        return self.size / self.transfer_s / 1e6 if self.transfer_s else 0.0

    @property
    def cpu_per_gib(self) -> float:
        return self.transfer_cpu / (self.size / GiB) if self.size else 0.0

    @property
    def process_cpu_per_gib(self) -> float:
        return self.cpu / (self.size / GiB) if self.size else 0.0


def client_env(home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["OSS_ACCESS_KEY_ID"] = ACCESS_KEY_ID
    env["OSS_ACCESS_KEY_SECRET"] = ACCESS_KEY_SECRET
    env.pop("OSS_SESSION_TOKEN", None)
    env["PYTHONPATH"] = str(REPO)
    if home is not None:
        env["OSSDESK_HOME"] = str(home)
    return env


def measure(name: str, cmd: Sequence[str], size: int, *, env: dict[str, str] | None = None,
            sink: Sink | None = None, start_event: str = "started",
            done_event: str = "idle", timeout: float = 3600,
            on_line: Any = None) -> Run:
    """Run ``cmd``; read its JSON lines to time the transfer; wait4 for its rusage.

    ``on_line(proc, event)`` is called for every JSON line (e.g. to kill it at some point).
    """
    run = Run(name, size)
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after wait4
    server_before = sink.cpu() if sink is not None else 0.0
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
                            text=True, bufsize=1)
    t_start = c_start = None
    deadline = t0 + timeout
    assert proc.stdout is not None
    out: IO[str] = proc.stdout
    for line in out:
        now = time.perf_counter()
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        if kind not in ("progress",):
            run.events.append(event)
        if kind == start_event and t_start is None:
            with contextlib.suppress(OSError):
                c_start = cpu_seconds(proc.pid)
                t_start = now
        elif kind == done_event and t_start is not None and not run.transfer_s:
            with contextlib.suppress(OSError):
                run.transfer_cpu = cpu_seconds(proc.pid) - (c_start or 0.0)
                run.transfer_s = now - t_start
        if on_line is not None:
            on_line(proc, event)
        if now > deadline:
            proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.wall = time.perf_counter() - t0
    run.returncode = proc.returncode
    run.cpu = usage.ru_utime + usage.ru_stime
    run.max_rss = usage.ru_maxrss * 1024
    if sink is not None:
        run.server_cpu = sink.cpu() - server_before
    err.seek(0)
    run.stderr = err.read().decode("utf-8", "replace")[-4000:]
    err.close()
    out.close()
    return run


def ossdesk_upload_cmd(paths: Sequence[Path | str], endpoint: str, *,
                       extra: Sequence[str] = (), wan: bool = False) -> list[str]:
    """``ossdesk upload ... --json``; ``wan``: through ``ossdesk_wan`` (plain http allowed to
    the emulated WAN's addresses)."""
    program = [PYTHON, "-m", "tests.bench.ossdesk_wan"] if wan else [OSSDESK]
    return [*program, "upload", *map(str, paths), "--endpoint", endpoint, "--bucket", BUCKET,
            "--region", REGION, "--json", *extra]


def oss2_peer_cmd(path: Path | str, endpoint: str, *, threads: int, part_size: int | None,
                  key: str = "oss2-peer", many: bool = False) -> list[str]:
    cmd = [PYTHON, "-m", "tests.bench.oss2_peer", str(path), "--endpoint", endpoint,
           "--bucket", BUCKET, "--region", REGION, "--threads", str(threads), "--key", key]
    if part_size is not None:
        cmd += ["--part-size", str(part_size)]
    if many:
        cmd += ["--many"]
    return cmd


def curl_cmd(path: Path | str, endpoint: str, key: str = "curl-peer") -> list[str]:
    # curl is measured from its own timer (-w); it prints the matching JSON lines itself
    return ["curl", "-sS", "-o", "/dev/null", "-T", str(path), f"{endpoint}/{BUCKET}/{key}",
            "-w", '{"event": "curl", "time_total": %{time_total}, '
                  '"time_pretransfer": %{time_pretransfer}, "speed_upload": %{speed_upload}, '
                  '"http_code": %{http_code}}\n']


def measure_curl(path: Path, endpoint: str, size: int, sink: Sink | None = None,
                 prefix: Sequence[str] = ()) -> Run:
    run = measure("curl -T", [*prefix, *curl_cmd(path, endpoint)], size, sink=sink)
    for event in run.events:
        if event.get("event") == "curl":
            run.transfer_s = float(event["time_total"]) - float(event["time_pretransfer"])
            run.transfer_cpu = run.cpu  # curl starts in milliseconds
            if int(event.get("http_code", 0)) != 200:
                run.returncode = 1
    return run


# -------------------------------------------------------------------------- results


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Row:
    scenario: str
    peer: str
    peer_value: float
    ours: float
    unit: str
    target: str  # e.g. ">= 4.00x" / "<= 0.30x" / ">= 95%" / "" (information only)
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.peer_value:
            self.ratio = self.ours / self.peer_value

    @property
    def verdict(self) -> str:
        if not self.target or self.ratio is None:
            return "-"
        op, num = self.target.split()[0], self.target.split()[1]
        value = float(num.rstrip("x%")) / (100 if num.endswith("%") else 1)
        ok = self.ratio >= value if op == ">=" else self.ratio <= value
        return "PASS" if ok else "FAIL"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    head = ["scenario", "peer", "peer figure", "ossdesk", "ratio", "target", "result"]
    body = []
    for r in rows:
        ratio = "-" if r.ratio is None else (f"{r.ratio * 100:.1f}%" if r.target.endswith("%")
                                             else f"{r.ratio:.2f}x")
        body.append([r.scenario, r.peer, f"{_fmt(r.peer_value)} {r.unit}",
                     f"{_fmt(r.ours)} {r.unit}", ratio, r.target or "-", r.verdict])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
              + " |" for row in body]
    return "\n".join(lines)


@contextlib.contextmanager
def workdir(base: str | None, name: str) -> Iterator[Path]:
    """A scratch folder (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix=f"ossdesk-{name}-", dir=base) as tmp:
        yield Path(tmp)
