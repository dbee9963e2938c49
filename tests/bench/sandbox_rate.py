"""The sandbox's receive rate: PUTs of one file, sent with ``sendfile`` over raw sockets.

    .venv/bin/python -m tests.bench.sandbox_rate [--size 1GiB] [--streams 1 2] [--rounds 3]
        [--root DIR] [--file FILE] [-- SANDBOX OPTIONS...]

Starts ``ossdesk sandbox`` in its own process (``--port 0``, ``--root`` DIR, default a fresh
folder under /dev/shm, removed afterwards, plus the options after ``--``, e.g.
``--fast-etag`` or ``--discard``), creates a random file of ``--size`` (default under
/dev/shm, removed afterwards), then for each stream count runs ``--rounds`` rounds of
``streams`` parallel PutObject requests of the whole file, each on its own connection, the
body sent by the kernel (``socket.sendfile``: the client costs one copy, no Python per chunk).
Each round also checks the answer: 200 and the CRC-64 the sandbox computed (equal to the
file's).

Prints, per stream count, the best and the median round: body bytes received per second (MB/s =
10^6 bytes/s, from the first request's start to the last answer) and the sandbox process's
CPU seconds per GiB received (from /proc, Linux only), plus the load average before starting.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import anycrc
import oss2

from ossdesk.sandbox import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

_CRC = anycrc.Model("CRC64-XZ")
_SIZE_RE = re.compile(r"^(\d+)\s*(B|KiB|MiB|GiB)?$")
_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _size(text: str) -> int:
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _random_file(path: Path, size: int) -> int:
    crc = 0
    block = 4 << 20
    with path.open("wb") as fh:
        left = size
        while left:
            data = os.urandom(min(block, left))
            crc = _CRC.calc(data, crc) if crc or left != size else _CRC.calc(data)
            fh.write(data)
            left -= len(data)
    return crc


def _put(bucket: oss2.Bucket, key: str, path: Path, size: int, answers: list[str]) -> None:
    url = urlsplit(bucket.sign_url("PUT", key, 3600))
    with socket.create_connection((url.hostname, url.port)) as sock, path.open("rb") as fh:
        sock.sendall(f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                     f"Content-Length: {size}\r\n\r\n".encode())
        sock.sendfile(fh)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                break
            head += data
        answers.append(head.decode("latin-1"))


def _round(bucket: oss2.Bucket, path: Path, size: int, streams: int,
           expected_crc: int) -> float:
    answers: list[str] = []
    threads = [threading.Thread(target=_put, args=(bucket, f"bench/{i}", path, size, answers))
               for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for i in range(streams):  # not timed: an overwrite would time the old body's deletion
        bucket.delete_object(f"bench/{i}")
    for head in answers:
        if not head.startswith("HTTP/1.1 200") or f"x-oss-hash-crc64ecma: {expected_crc}" \
                not in head:
            raise SystemExit(f"unexpected answer:\n{head}")
    if len(answers) != streams:
        raise SystemExit("a request got no answer")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=_size, default=1 << 30)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None,
                        help="the sandbox's storage (default: a fresh folder under /dev/shm)")
    parser.add_argument("--file", type=Path, default=None,
                        help="the file to send (default: a random one under /dev/shm)")
    parser.add_argument("sandbox_args", nargs=argparse.REMAINDER,
                        help="options for ossdesk sandbox, after --")
    args = parser.parse_args()
    extra = [a for a in args.sandbox_args if a != "--"]

    work = Path(tempfile.mkdtemp(prefix="sandbox-rate-", dir="/dev/shm"))
    root = args.root if args.root is not None else work / "root"
    made_root = args.root is not None and not args.root.exists()
    proc: subprocess.Popen[str] | None = None
    try:
        path = args.file or work / "body"
        if args.file is None:
            expected_crc = _random_file(path, args.size)
        else:
            expected_crc = _CRC.calc(path.read_bytes())
        size = path.stat().st_size
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
        cmd = [sys.executable, "-m", "ossdesk", "sandbox", "--port", "0", "--root", str(root),
               *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        assert proc.stdout is not None
        endpoint = ""
        banner = []
        for line in proc.stdout:
            banner.append(line.rstrip())
            m = re.search(r"endpoint:\s+(http://\S+)", line)
            if m:
                endpoint = m.group(1)
            if line.startswith("Press Ctrl-C"):
                break
        if not endpoint:
            raise SystemExit("the sandbox did not start:\n" + "\n".join(banner))
        print(f"sandbox {' '.join(extra) or '(faithful)'}, root {root}; body {size} bytes; "
              f"load average before: {' '.join(load)}; {os.cpu_count()} CPUs")
        bucket = oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                             endpoint, "sandbox")
        _round(bucket, path, size, 1, expected_crc)  # warm-up
        for streams in args.streams:
            rates, cpus = [], []
            for _ in range(args.rounds):
                cpu0 = _cpu_seconds(proc.pid)
                elapsed = _round(bucket, path, size, streams, expected_crc)
                cpu = _cpu_seconds(proc.pid) - cpu0
                rates.append(streams * size / elapsed / 1e6)
                cpus.append(cpu / (streams * size / (1 << 30)))
            print(f"  {streams} stream(s): best {max(rates):.0f} MB/s, median "
                  f"{statistics.median(rates):.0f} MB/s (rounds: "
                  f"{', '.join(f'{r:.0f}' for r in rates)}); sandbox CPU "
                  f"{statistics.median(cpus):.2f} s/GiB", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
