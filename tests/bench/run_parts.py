"""The engine's request path per part, on one thread: CPU per part and per GiB, calls per part.

    .venv/bin/python -m tests.bench.run_parts [--parts 256] [--part-size 2MiB] [--repeat 5]
        [--profile] [--top 30]

One :class:`~ossdesk.core.oss.OssClient` sends PARTS UploadPart requests of PART_SIZE bytes
of the 1 GiB bench file (each body a real :class:`~ossdesk.core.upload.PartReader`, its
CRC-64 checked against the answer's, as the engine does) to the bench sink (``sink.py``,
CRC ETags) in a child process, from one thread: no other thread competes for the
interpreter lock, so the figures move less with the machine's load than a whole upload's.
The thread's CPU time (``time.thread_time``) is what is counted; ``--profile``: one more
round under cProfile, its Python and C calls per part and the functions called most.

What is left out: the scheduler, the store, the events, the re-read before "done" (the
whole CLI is what ``run_loopback`` measures).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import threading
import time
from pathlib import Path
from typing import BinaryIO, cast

from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.upload import PartReader
from tests.bench.benchlib import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    BUCKET,
    REGION,
    Sink,
    machine,
    random_file,
)
from tests.bench.run_loopback import parse_size
from tests.bench.run_small_files import report_profile

GiB = 1 << 30


def one_round(client: OssClient, path: Path, parts: int, part_size: int,
              profile: cProfile.Profile | None = None) -> float:
    """Thread CPU seconds for ``parts`` UploadParts."""
    stop = threading.Event()
    upload_id = client.initiate_multipart("bench-parts")
    span = max(1, path.stat().st_size // part_size)
    if profile is not None:
        profile.enable()
    cpu0 = time.thread_time()
    for i in range(parts):
        offset = (i % span) * part_size
        reader = PartReader(path, offset, part_size, stop=stop, on_sent=lambda n: None)
        try:
            result = client.upload_part("bench-parts", upload_id, i + 1,
                                        cast(BinaryIO, reader), size=part_size)
        finally:
            reader.close()
        if result.crc64 != reader.crc:
            raise SystemExit(f"part {i + 1}: CRC-64 {result.crc64} != {reader.crc}")
    cpu = time.thread_time() - cpu0
    if profile is not None:
        profile.disable()
    client.abort_multipart("bench-parts", upload_id)
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=256)
    parser.add_argument("--part-size", type=parse_size, default=2 << 20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--file", type=Path, default=None,
                        help="the bytes sent (default: the 1 GiB bench file)")
    args = parser.parse_args(argv)
    print(machine())
    path = args.file or random_file(Path("/tmp/ossdesk-bench/random-1073741824.bin"), GiB)
    with Sink(etag="crc") as sink:
        client = OssClient(Endpoint(sink.endpoint, BUCKET, REGION),
                           Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET))
        try:
            one_round(client, path, min(args.parts, 16), args.part_size)  # warm up
            cpus = []
            for i in range(args.repeat):
                cpu = one_round(client, path, args.parts, args.part_size)
                cpus.append(cpu)
                print(f"round {i + 1}: {1000 * cpu / args.parts:.3f} ms per part, "
                      f"{cpu * GiB / (args.parts * args.part_size):.3f} CPU-s per GiB",
                      flush=True)
            median = statistics.median(cpus)
            print(f"FIGURE ms_per_part {1000 * median / args.parts:.3f}")
            print(f"FIGURE cpu_per_gib {median * GiB / (args.parts * args.part_size):.3f}")
            if args.profile:
                profile = cProfile.Profile(time.thread_time)
                one_round(client, path, args.parts, args.part_size, profile)
                report_profile("part", pstats.Stats(profile), args.parts, "part", args.top)
        finally:
            client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
