"""Window memory per file: FILES rows fed into the queue as the engine sends them.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.bench.run_folder_memory
        [--files 100000] [--flat] [--rss]

The window's model and event bridge (``TransferModel``, ``EventBridge``), fed ``Queued``
events in the bridge's chunks as the engine's pipe delivers them (each event's strings
their own objects, as unpickled events are). Without ``--flat`` the files are in one dropped
folder (``FoldersAdded`` first, ``Queued.folder`` set), with ``--flat`` each is a file on its
own (the window before folders were one row). Prints the bytes per file Python allocated
for the rows (``tracemalloc``, the events themselves freed), or with ``--rss`` (no tracing)
the growth of the process's resident memory per file; each run in a fresh interpreter. Also
the time the GUI thread spent applying the events (the first chunk, and all of them).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

CHUNK = 2000


def rss_bytes() -> int:
    """The process's resident memory (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--flat", action="store_true")
    parser.add_argument("--rss", action="store_true")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from ossdesk.core import events as ev
    from ossdesk.ui.bridge import EventBridge

    try:
        from ossdesk.ui.engine_types import FolderInfo, FoldersAdded
    except ImportError:  # before folders: only --flat
        FolderInfo = FoldersAdded = None  # type: ignore[assignment,misc]
    from ossdesk.ui.transfer_model import TransferModel

    app = QApplication.instance() or QApplication(sys.argv)
    model = TransferModel()
    bridge = EventBridge(model)
    root = "/home/ann/Pictures/相册 folder 2024"

    def text(value: str) -> str:
        return "".join(value)  # its own object, as an unpickled event's string is

    def events(start: int, stop: int) -> list[object]:
        folder = None if args.flat else 1
        out: list[object] = [
            ev.Queued(upload=n, source=text(f"{root}/day {n // 500:03d}/IMG_{n:06d}.jpg"),
                      key=text(f"2024/相册 folder 2024/day {n // 500:03d}/IMG_{n:06d}.jpg"),
                      size=3_000_000 + n, bucket=text("photos-archive"),
                      account=text("work"), **({} if folder is None else {"folder": folder}))
            for n in range(start, stop)
        ]
        return out

    gc.collect()
    if not args.rss:
        tracemalloc.start()
    rss0 = rss_bytes()
    base, _ = tracemalloc.get_traced_memory()
    if not args.flat:
        assert FolderInfo is not None and FoldersAdded is not None
        info = FolderInfo(id=1, name="相册 folder 2024", source_path=root,
                          destination="oss://photos-archive/2024/相册 folder 2024/",
                          bucket="photos-archive", profile="work", added_at=0.0)
        bridge.post_batch([FoldersAdded((info,))])
    applying = 0.0
    first = 0.0
    for start in range(0, args.files, CHUNK):
        batch = events(start, min(start + CHUNK, args.files))
        began = time.perf_counter()
        bridge.post_batch(batch)
        bridge.drain()
        applying += time.perf_counter() - began
        first = first or applying
    model.flush()
    app.processEvents()
    gc.collect()
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = rss_bytes()
    assert model.totals().files == args.files
    figure = (f"{(rss1 - rss0) / args.files:.0f} B per file (RSS growth)" if args.rss
              else f"{(used - base) / args.files:.0f} B per file (tracemalloc)")
    print(f"{'flat' if args.flat else 'folder'}: {args.files} files, {figure}, "
          f"top rows {model.rowCount()}; applying the events: first {CHUNK} rows "
          f"{first * 1000:.0f} ms, all {applying:.2f} s")


if __name__ == "__main__":
    main()
