"""The peer: what a Python user would write with ``oss2`` alone, measured like ``ossdesk``.

    python -m tests.bench.oss2_peer FILE --endpoint URL [--threads N] [--part-size BYTES]
    python -m tests.bench.oss2_peer FOLDER --many --threads 8 ...

One file: ``oss2.resumable_upload`` (its defaults: 10 MiB parts from 10 MiB on, 1 thread;
CRC-64 checks on, as ``oss2`` does by default), with its checkpoint folder in a temporary
folder. ``--many``: every file of FOLDER with ``resumable_upload`` (a small file is one
PutObject) on a pool of ``--threads`` threads sharing one ``Bucket`` (connection pool sized
to the threads).

Prints JSON lines like ``ossdesk upload --json``: ``started`` right before the first request,
``done``/``idle`` after the last, so the parent times both clients the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import oss2


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, "time": round(time.time(), 3), **fields}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--key", default="oss2-peer")
    parser.add_argument("--threads", type=int, default=None, help="num_threads (oss2: 1)")
    parser.add_argument("--part-size", type=int, default=None, help="bytes (oss2: 10 MiB)")
    parser.add_argument("--many", action="store_true", help="upload every file of a folder")
    args = parser.parse_args(argv)

    import os

    auth = oss2.AuthV4(os.environ["OSS_ACCESS_KEY_ID"], os.environ["OSS_ACCESS_KEY_SECRET"])
    if args.many and args.threads and args.threads > oss2.defaults.connection_pool_size:
        oss2.defaults.connection_pool_size = args.threads
    bucket = oss2.Bucket(auth, args.endpoint, args.bucket, region=args.region)
    with tempfile.TemporaryDirectory(prefix="oss2-peer-") as tmp:
        store = oss2.ResumableStore(root=tmp)
        if not args.many:
            size = args.path.stat().st_size
            emit("started", size=size)
            result = oss2.resumable_upload(bucket, args.key, str(args.path), store=store,
                                           part_size=args.part_size,
                                           num_threads=args.threads)
            emit("done", size=size, crc64=result.crc, etag=result.etag)
            emit("idle")
            return 0
        files = sorted(p for p in args.path.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        emit("started", size=total, files=len(files))

        def one(path: Path) -> None:
            key = f"{args.key}/{path.relative_to(args.path).as_posix()}"
            oss2.resumable_upload(bucket, key, str(path), store=store,
                                  part_size=args.part_size, num_threads=1)

        with ThreadPoolExecutor(max_workers=args.threads or 1) as pool:
            for _ in pool.map(one, files):
                pass
        emit("done", size=total, files=len(files))
        emit("idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
