"""Window memory per file: FILES rows fed into the queue as the engine sends them.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.bench.run_folder_memory
        [--files 100000] [--flat] [--rss]

The window's model and event bridge (``TransferModel``, ``EventBridge``), fed ``Queued``
events in the bridge's chunks as the engine's pipe delivers them (each event's strings
their own objects, as unpickled events are). The files are first recorded in a real upload
list (a SQLite file in a temporary ``OSSDESK_HOME``), as the engine records them before it
announces them: the window reads from it what it does not keep. Without ``--flat`` the
files are in one dropped folder (``FoldersAdded`` first, ``Queued.folder`` set), with
``--flat`` each is a file on its own (the window before folders were one row). Prints the
bytes per file Python allocated for the rows (``tracemalloc``, the events themselves
freed), or with ``--rss`` (no tracing) the growth of the process's resident memory per
file; each run in a fresh interpreter. Also the time the GUI thread spent applying the
events (the first chunk, and all of them), and with a folder the time to open it in a
table view and paint it, to scroll to its end and paint that, to list every file
(``rows(full=False)``) and to search one by name.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

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
    os.environ["OSSDESK_HOME"] = tempfile.mkdtemp(prefix="ossdesk-bench-")

    from PySide6.QtWidgets import QApplication, QTableView

    from ossdesk.core import events as ev
    from ossdesk.core.store import NewUpload, Store
    from ossdesk.ui.bridge import EventBridge

    try:
        from ossdesk.ui.engine_types import FolderInfo, FoldersAdded
    except ImportError:  # before folders: only --flat
        FolderInfo = FoldersAdded = None  # type: ignore[assignment,misc]
    from ossdesk.ui.transfer_model import TransferModel

    root = "/home/ann/Pictures/相册 folder 2024"
    prefix = "2024/相册 folder 2024/"

    def relative(n: int) -> str:
        return f"day {n // 500:03d}/IMG_{n:06d}.jpg"

    # The upload list the engine writes (outside the measured part).
    store = Store.open()
    folder_id = None if args.flat else store.folder_for(
        None, Path(root), credentials="work", endpoint="https://oss.example.com",
        bucket="photos-archive", prefix=prefix).id
    ids = store.add(
        NewUpload(source=Path(f"{root}/{relative(n)}"), size=3_000_000 + n, mtime_ns=0,
                  key=f"{prefix}{relative(n)}", endpoint="https://oss.example.com",
                  bucket="photos-archive", credentials="work", folder=folder_id)
        for n in range(args.files))

    app = QApplication.instance() or QApplication(sys.argv)
    model = TransferModel()
    bridge = EventBridge(model)

    def text(value: str) -> str:
        return "".join(value)  # its own object, as an unpickled event's string is

    def events(start: int, stop: int) -> list[object]:
        folder = {} if folder_id is None else {"folder": folder_id}
        out: list[object] = [
            ev.Queued(upload=ids[n], source=text(f"{root}/{relative(n)}"),
                      key=text(f"{prefix}{relative(n)}"),
                      size=3_000_000 + n, bucket=text("photos-archive"),
                      account=text("work"), **folder)
            for n in range(start, stop)
        ]
        return out

    gc.collect()
    if not args.rss:
        tracemalloc.start()
    rss0 = rss_bytes()
    base, _ = tracemalloc.get_traced_memory()
    if folder_id is not None:
        assert FolderInfo is not None and FoldersAdded is not None
        info = FolderInfo(id=folder_id, name="相册 folder 2024", source_path=root,
                          destination=f"oss://photos-archive/{prefix}",
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
    if folder_id is None:
        return
    # Open the folder in a table view and paint it, then scroll to its end and paint that.
    view = QTableView()
    view.setModel(model)
    view.resize(1200, 700)
    view.show()
    app.processEvents()
    view.grab()
    node = model.folders()[0]
    began = time.perf_counter()
    model.set_expanded(node, True)
    app.processEvents()
    view.grab()
    opened = time.perf_counter() - began
    began = time.perf_counter()
    view.scrollToBottom()
    app.processEvents()
    view.grab()
    scrolled = time.perf_counter() - began
    last = model.index(model.rowCount() - 1, 0).data()
    print(f"opening the folder and painting it {opened * 1000:.0f} ms, scrolling to its end "
          f"and painting it {scrolled * 1000:.0f} ms (last line {last.strip()!r})")
    # What looks for files already in the queue, and a search by name in the window.
    from ossdesk.ui.queue_filter import QueueFilter

    began = time.perf_counter()
    listed = model.rows(full=False)
    listing = time.perf_counter() - began
    proxy = QueueFilter(model)
    view.setModel(proxy)
    began = time.perf_counter()
    proxy.set_search("IMG_099999")
    app.processEvents()
    view.grab()
    searching = time.perf_counter() - began
    assert len(listed) == args.files and proxy.rowCount() == 2
    print(f"rows(full=False) {listing * 1000:.0f} ms, a search by name and painting it "
          f"{searching * 1000:.0f} ms")


if __name__ == "__main__":
    main()
