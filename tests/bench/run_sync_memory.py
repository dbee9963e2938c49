"""Peak RSS of ``ossdesk sync``'s comparison against 1,000,000 remote objects.

    .venv/bin/python -m tests.bench.run_sync_memory [--objects 1000000]

Each case runs in a fresh child process: the real ``commands.sync._Sync`` (walk, upload list
lookups, the streamed pairing, the plan, the dry-run output to /dev/null) over a local folder
of 1,000 files, with the client's listing replaced by a generator of ``--objects`` objects
(what ``OssClient.list_objects`` yields, one page at a time, from ListObjectsV2): the HTTP
part is not measured, only what the comparison keeps. Reported: the child's peak RSS
(``ru_maxrss``) and its growth over a run with no remote objects.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

LOCAL_FILES = 1000


def child(objects: int, delete: bool) -> None:
    from ossdesk.commands.sync import _Sync
    from ossdesk.commands.upload import _Destination
    from ossdesk.core.oss import ObjectInfo
    from ossdesk.core.store import Store
    from ossdesk.core.sync import KeyFilter

    root = Path(tempfile.mkdtemp(prefix="sync-mem-"))
    os.environ["OSSDESK_HOME"] = str(root / "home")
    folder = root / "folder"
    folder.mkdir()
    for i in range(LOCAL_FILES):
        (folder / f"local{i:05}.bin").write_bytes(b"x" * 10)

    class Lister:
        def list_objects(self, prefix: str, *, page_size: int | None = None,
                         ) -> Iterator[ObjectInfo]:
            for i in range(objects):  # key order, as OSS lists
                yield ObjectInfo(f"{prefix}obj{i:07}.jpg", 1_000_000 + i, f'"{i:032x}"',
                                 None, None, None, {})

        def head_object(self, key: str) -> None:
            return None

    args = argparse.Namespace(folder=folder, dry_run=True, delete=delete, checksum=False,
                              json=False)
    dest = _Destination("http://127.0.0.1:1", "b", "cn-hangzhou", "backup/", "v4",
                        "environment")
    started = time.monotonic()
    with Store.open() as store, open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            code = _Sync(args, store, dest, Lister(), KeyFilter()).run()  # type: ignore[arg-type]
        finally:
            sys.stdout = stdout
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"objects": objects, "delete": delete, "code": code,
                      "peak_rss": peak, "seconds": round(seconds, 1)}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("OBJECTS", "DELETE"))
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1] == "1")
        return 0
    rows = []
    for objects, delete in ((0, False), (args.objects, False), (args.objects, True)):
        out = subprocess.run([sys.executable, "-m", "tests.bench.run_sync_memory", "--child",
                              str(objects), "1" if delete else "0"], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["peak_rss"]
    print("| remote objects | --delete | peak RSS | over 0 objects | time |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['objects']:,} | {'yes' if r['delete'] else 'no'} | "
              f"{r['peak_rss'] / 2**20:.0f} MiB | {(r['peak_rss'] - base) / 2**20:+.0f} MiB | "
              f"{r['seconds']} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
