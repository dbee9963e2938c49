"""The request pattern of many small files at its cheapest: PUTs with no client work.

    python -m tests.bench.raw_puts FOLDER --endpoint URL [--connections 64] [--bucket B]

One asyncio thread keeps ``--connections`` keep-alive connections busy, each sending one
whole file per request (head and body prepared beforehand: no signing, no checksums, no
store) and reading the answer. It prints ``{"files": N, "bytes": B, "seconds": S}`` on one
line: the transfer time from the first request to the last answer.

A peer for the small-files benchmark: what the link and the server give this pattern of
requests when the client costs next to nothing. The bench sink does not check signatures;
a real OSS server would refuse these requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit


async def _worker(host: str, port: int, requests: list[bytes], done: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while requests:
            request = requests.pop()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if status != 200:
                raise SystemExit(f"HTTP {status}: {head[:200]!r}")
            done[0] += 1
    finally:
        writer.close()


async def _run(folder: Path, endpoint: str, bucket: str, connections: int) -> dict[str, float]:
    url = urlsplit(endpoint)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    files = sorted(p for p in folder.iterdir() if p.is_file())
    requests = []
    total = 0
    for p in reversed(files):
        body = p.read_bytes()
        total += len(body)
        requests.append(
            f"PUT /{bucket}/raw/{p.name} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)
    done = [0]
    start = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, requests, done) for _ in range(connections)))
    return {"files": done[0], "bytes": total, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.folder, args.endpoint, args.bucket, args.connections))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
