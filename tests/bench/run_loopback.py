"""Loopback benchmark: one big random file, same sink, same run, four clients.

    .venv/bin/python -m tests.bench.run_loopback [--size 1GiB] [--repeat 3] [--etag md5|crc]

Clients (each in its own child process, order rotated every round):
  oss2 defaults   ``oss2.resumable_upload`` as shipped (10 MiB parts, 1 thread)
  oss2 8x8MiB     ``num_threads=8, part_size=8 MiB``
  ossdesk         ``ossdesk upload FILE --json`` (the real CLI, its defaults)
  curl -T         one PUT of the file: the link's ceiling with this sink

Figures per client (median of the rounds): transfer throughput (MB/s = 10^6 bytes/s, from
the client's ``started`` to its ``done`` line) and client CPU seconds per GiB over the same
span; process wall/CPU/peak RSS (start-up included) and the sink's CPU are shown too.
Targets (issue 7): ossdesk throughput >= 4x oss2 defaults; CPU-s/GiB <= 0.3x oss2 defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.bench.benchlib import (
    PYTHON,
    GiB,
    MiB,
    Row,
    Run,
    Sink,
    client_env,
    exit_cleanly_on_sigterm,
    machine,
    measure,
    measure_curl,
    median,
    oss2_peer_cmd,
    ossdesk_upload_cmd,
    random_file,
    table,
)

UNITS = {"KiB": 1024, "MiB": MiB, "GiB": GiB, "K": 1024, "M": MiB, "G": GiB, "": 1}


def parse_size(text: str) -> int:
    for unit in sorted(UNITS, key=len, reverse=True):
        if unit and text.endswith(unit):
            return int(float(text[: -len(unit)]) * UNITS[unit])
    return int(text)


def details(runs: dict[str, list[Run]]) -> str:
    head = ("client", "MB/s (runs)", "CPU-s/GiB (runs)", "wall s", "proc CPU-s", "max RSS MiB",
            "sink CPU-s/GiB")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rs in runs.items():
        ok = [r for r in rs if r.returncode == 0 and r.transfer_s]
        if not ok:
            lines.append(f"| {name} | failed | | | | | |")
            continue
        size_gib = ok[0].size / GiB
        lines.append(
            f"| {name} | {median([r.mb_s for r in ok]):.0f} "
            f"({', '.join(f'{r.mb_s:.0f}' for r in ok)}) "
            f"| {median([r.cpu_per_gib for r in ok]):.2f} "
            f"({', '.join(f'{r.cpu_per_gib:.2f}' for r in ok)}) "
            f"| {median([r.wall for r in ok]):.2f} | {median([r.cpu for r in ok]):.2f} "
            f"| {median([r.max_rss / MiB for r in ok]):.0f} "
            f"| {median([r.server_cpu / size_gib for r in ok]):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=GiB, help="file size (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--file", type=Path, default=None,
                        help="the random file (default /tmp/ossdesk-bench/random-SIZE.bin, "
                             "generated once and reused)")
    parser.add_argument("--etag", choices=("md5", "crc"), default="crc",
                        help="the sink's ETag: a cheap stand-in from CRC-64 and size (default;"
                             " MD5 would cap the sink near 270 MB/s on 2 cores) or real MD5")
    parser.add_argument("--only", default="",
                        help="comma-separated subset: oss2,oss2x8,ossdesk,curl,baseline,"
                             "pycurl (ossdesk over pycurl: tests/bench/ossdesk_pycurl.py)")
    parser.add_argument("--ossdesk-args", default="", help="extra arguments for ossdesk upload")
    parser.add_argument("--chunk", type=parse_size, default=0,
                        help="experiment: run ossdesk with this read/write block size "
                             "(tests/bench/ossdesk_variant.py) instead of the engine's")
    parser.add_argument("--json-out", type=Path, default=None, help="write every run here")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="also run ossdesk from this source tree (e.g. made with `git "
                             "archive main ossdesk | tar -x -C /tmp/base`), side by side")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()

    path = args.file or Path(f"/tmp/ossdesk-bench/random-{args.size}.bin")
    print(f"machine: {machine()}", flush=True)
    print(f"file: {path} ({args.size:,} bytes); generating if needed...", flush=True)
    random_file(path, args.size)

    with Sink(etag=args.etag) as sink, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        print(f"sink: {sink.endpoint} (ETag {args.etag}), pid {sink.pid}", flush=True)
        env = client_env()
        counter = iter(range(1_000_000))

        def ossdesk() -> Run:
            home = Path(tmp) / f"home-{next(counter)}"
            cmd = ossdesk_upload_cmd([path], sink.endpoint, extra=args.ossdesk_args.split())
            env_o = client_env(home)
            if args.chunk:
                cmd[:1] = [PYTHON, "-m", "tests.bench.ossdesk_variant"]
                env_o["OSSDESK_BENCH_CHUNK"] = str(args.chunk)
            return measure("ossdesk", cmd, args.size, env=env_o, sink=sink)

        def baseline() -> Run:
            home = Path(tmp) / f"home-{next(counter)}"
            cmd = ossdesk_upload_cmd([path], sink.endpoint, extra=args.ossdesk_args.split())
            # -P: the child runs in this repository (cwd), which ``-m`` would otherwise put
            # first on sys.path, ahead of the baseline's tree.
            cmd[:1] = [PYTHON, "-P", "-m", "ossdesk"]
            env_b = client_env(home)
            env_b["PYTHONPATH"] = f"{args.baseline}{os.pathsep}{env_b['PYTHONPATH']}"
            return measure("ossdesk baseline", cmd, args.size, env=env_b, sink=sink)

        clients: dict[str, Callable[[], Run]] = {
            "oss2": lambda: measure(
                "oss2 defaults", oss2_peer_cmd(path, sink.endpoint, threads=1, part_size=None),
                args.size, env=env, sink=sink),
            "oss2x8": lambda: measure(
                "oss2 8 threads 8 MiB",
                oss2_peer_cmd(path, sink.endpoint, threads=8, part_size=8 * MiB),
                args.size, env=env, sink=sink),
            "ossdesk": ossdesk,
            "curl": lambda: measure_curl(path, sink.endpoint, args.size, sink=sink),
        }
        if args.baseline is not None:
            clients["baseline"] = baseline

        def curl_engine() -> Run:
            home = Path(tmp) / f"home-{next(counter)}"
            cmd = ossdesk_upload_cmd([path], sink.endpoint, extra=args.ossdesk_args.split())
            cmd[:1] = [PYTHON, "-m", "tests.bench.ossdesk_pycurl"]
            return measure("ossdesk pycurl", cmd, args.size, env=client_env(home), sink=sink)

        if "pycurl" in args.only.split(","):  # needs `pip install pycurl`: asked for only
            clients["pycurl"] = curl_engine
        if args.only:
            wanted = [c.strip() for c in args.only.split(",")]
            clients = {k: v for k, v in clients.items() if k in wanted}
        names = {"oss2": "oss2 defaults", "oss2x8": "oss2 8 threads 8 MiB",
                 "ossdesk": "ossdesk", "curl": "curl -T", "baseline": "ossdesk baseline",
                 "pycurl": "ossdesk pycurl"}
        runs: dict[str, list[Run]] = {names[k]: [] for k in clients}
        order = list(clients)
        for round_no in range(args.repeat):
            rotated = order[round_no % len(order):] + order[: round_no % len(order)]
            for key in rotated:
                run = clients[key]()
                runs[names[key]].append(run)
                status = "ok" if run.returncode == 0 and run.transfer_s else (
                    f"FAILED rc={run.returncode}: {run.stderr.strip()[-300:]}")
                print(f"round {round_no + 1} {names[key]:<22} {run.mb_s:8.1f} MB/s "
                      f"{run.cpu_per_gib:6.2f} CPU-s/GiB  wall {run.wall:6.2f} s  "
                      f"sink {run.server_cpu:5.2f} CPU-s  {status}", flush=True)

    def fig(name: str, attr: str) -> float:
        ok = [r for r in runs.get(name, []) if r.returncode == 0 and r.transfer_s]
        return median([getattr(r, attr) for r in ok]) if ok else float("nan")

    size_label = f"{args.size / GiB:g} GiB" if args.size >= GiB else f"{args.size // MiB} MiB"
    rows: list[Row] = []
    if "ossdesk" in runs:
        ours_tp, ours_cpu = fig("ossdesk", "mb_s"), fig("ossdesk", "cpu_per_gib")
        if "oss2 defaults" in runs:
            rows += [
                Row(f"loopback {size_label}: throughput", "oss2 defaults",
                    fig("oss2 defaults", "mb_s"), ours_tp, "MB/s", ">= 4.00x"),
                Row(f"loopback {size_label}: client CPU per GiB", "oss2 defaults",
                    fig("oss2 defaults", "cpu_per_gib"), ours_cpu, "CPU-s", "<= 0.30x"),
            ]
        if "oss2 8 threads 8 MiB" in runs:
            rows += [
                Row(f"loopback {size_label}: throughput", "oss2 8 threads 8 MiB",
                    fig("oss2 8 threads 8 MiB", "mb_s"), ours_tp, "MB/s", ""),
                Row(f"loopback {size_label}: client CPU per GiB", "oss2 8 threads 8 MiB",
                    fig("oss2 8 threads 8 MiB", "cpu_per_gib"), ours_cpu, "CPU-s", ""),
            ]
        if "curl -T" in runs:
            rows.append(Row(f"loopback {size_label}: share of the link", "curl -T",
                            fig("curl -T", "mb_s"), ours_tp, "MB/s", ""))
        if "ossdesk pycurl" in runs:
            rows += [
                Row(f"loopback {size_label}: throughput", "ossdesk pycurl",
                    fig("ossdesk pycurl", "mb_s"), ours_tp, "MB/s", ""),
                Row(f"loopback {size_label}: client CPU per GiB", "ossdesk pycurl",
                    fig("ossdesk pycurl", "cpu_per_gib"), ours_cpu, "CPU-s", ""),
            ]
        if "ossdesk baseline" in runs:
            rows += [
                Row(f"loopback {size_label}: throughput", "ossdesk baseline",
                    fig("ossdesk baseline", "mb_s"), ours_tp, "MB/s", ""),
                Row(f"loopback {size_label}: client CPU per GiB", "ossdesk baseline",
                    fig("ossdesk baseline", "cpu_per_gib"), ours_cpu, "CPU-s", ""),
            ]
    print()
    print(f"median of {args.repeat} round(s); MB/s = 10^6 bytes/s of the transfer phase")
    print(table(rows))
    print()
    print(details(runs))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(
            {"machine": machine(), "size": args.size, "etag": args.etag,
             "runs": {k: [{f: getattr(r, f) for f in ("returncode", "wall", "cpu", "max_rss",
                                                       "transfer_s", "transfer_cpu",
                                                       "server_cpu")} for r in v]
                      for k, v in runs.items()}}, indent=1))
    failed = any(r.returncode for rs in runs.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
