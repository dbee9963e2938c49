"""A dropped folder is one transfer: the engine records which dropped folder each file was
found in, tells the window of the folder before its first file, and again after a restart
(real SQLite store, real sandbox over HTTP, the engine adapter with plain threads)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ossdesk import config
from ossdesk.core import events as ev
from ossdesk.core.oss import Credentials
from ossdesk.core.store import Store
from ossdesk.core.walk import walk
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    SandboxServer,
)
from ossdesk.ui import engine_types as rq
from ossdesk.ui.engine_adapter import SchedulerAdapter
from ossdesk.ui.engine_types import Destination, FoldersAdded, RowsRestored, SourceFile
from ossdesk.ui.settings import Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    sandbox = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield sandbox
    sandbox.stop()


def _credentials(profile: str) -> Credentials:
    return Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


def _destination(server: SandboxServer) -> Destination:
    return Destination(profile="sandbox", endpoint=server.endpoint, bucket=DEFAULT_BUCKET,
                       prefix="in", region=DEFAULT_REGION)


def _found(roots: list[Path], prefix: str) -> list[SourceFile]:
    return [SourceFile(str(f.path), f.key, f.size, f.mtime_ns)
            for f in walk(roots, prefix, lambda problem: None)]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def wait(self, what: Any, count: int, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while sum(1 for e in self.events if isinstance(e, what)) < count:
            assert time.monotonic() < deadline, f"fewer than {count} {what.__name__} events"
            time.sleep(0.02)


def _tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    photos = tmp_path / "photos"
    (photos / "2024").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(b"a" * 1000)
    (photos / "2024" / "b.jpg").write_bytes(b"b" * 2000)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "c.txt").write_bytes(b"c" * 10)
    loose = tmp_path / "notes.txt"
    loose.write_bytes(b"n" * 5)
    return photos, docs, loose


def test_each_dropped_folder_is_announced_before_its_files_and_again_after_a_restart(
        tmp_path: Path, server: SandboxServer) -> None:
    photos, docs, loose = _tree(tmp_path)
    destination = _destination(server)
    recorder = Recorder()
    adapter = SchedulerAdapter(Settings(), credentials=_credentials)
    adapter.start(recorder)
    adapter.send(rq.BeginDrop(1, [str(photos), str(loose), str(docs)], destination))
    adapter.send(rq.Enqueue(_found([photos, loose, docs], "in"), destination, drop=1))
    adapter.send(rq.EndDrop(1))
    recorder.wait(ev.Done, 4)
    adapter.shutdown(pause=True)
    assert adapter.wait_closed(30)

    announced: dict[int, rq.FolderInfo] = {}
    queued: dict[str, int | None] = {}
    for event in recorder.events:
        if isinstance(event, FoldersAdded):
            announced.update({f.id: f for f in event.folders})
        elif isinstance(event, ev.Queued):
            # The window knows the folder before the first file in it.
            assert event.folder is None or event.folder in announced
            queued[event.key] = event.folder
    by_name = {f.name: f for f in announced.values()}
    assert sorted(by_name) == ["docs", "photos"]
    assert by_name["photos"].destination == f"oss://{DEFAULT_BUCKET}/in/photos/"
    assert by_name["photos"].source_path == str(photos)
    assert by_name["photos"].profile == "sandbox"
    assert queued == {
        "in/photos/a.jpg": by_name["photos"].id,
        "in/photos/2024/b.jpg": by_name["photos"].id,
        "in/notes.txt": None,
        "in/docs/c.txt": by_name["docs"].id,
    }

    # After a restart the folders are told again, before the rows (history here) in them.
    again = Recorder()
    restarted = SchedulerAdapter(Settings(), credentials=_credentials)
    restarted.start(again)
    again.wait(RowsRestored, 2)  # the unfinished rows (none), then the history
    restarted.ask(rq.WaitIdle())
    history = next(i for i, e in enumerate(again.events)
                   if isinstance(e, RowsRestored) and e.rows)
    told = [f for e in again.events[:history] if isinstance(e, FoldersAdded)
            for f in e.folders]
    assert sorted(f.name for f in told) == ["docs", "photos"]
    rows = [r for e in again.events if isinstance(e, RowsRestored) for r in e.rows]
    assert {r.key: r.folder for r in rows} == queued

    # Clearing the history forgets the folders with it.
    restarted.send(rq.ClearFinished())
    restarted.ask(rq.WaitIdle())
    restarted.shutdown(pause=True)
    assert restarted.wait_closed(30)
    with Store.open(config.paths().database, owner=False) as store:
        assert store.folders(announced) == []


def test_a_folder_walk_cut_short_is_finished_into_the_same_folder(
        tmp_path: Path, server: SandboxServer) -> None:
    """The window closed while the folder was still being listed: the rest of its files,
    queued at the next start, belong to the same folder transfer."""
    photos, _, _ = _tree(tmp_path)
    destination = _destination(server)
    recorder = Recorder()
    adapter = SchedulerAdapter(Settings(auto_resume=False), credentials=_credentials)
    adapter.start(recorder)
    adapter.send(rq.BeginDrop(7, [str(photos)], destination))
    first = [f for f in _found([photos], "in") if f.key.endswith("a.jpg")]
    adapter.send(rq.Enqueue(first, destination, drop=7))  # no EndDrop: the walk was cut short
    adapter.ask(rq.WaitIdle())
    adapter.shutdown(pause=True)
    assert adapter.wait_closed(30)
    [folder_id] = {e.folder for e in recorder.events if isinstance(e, ev.Queued)}
    assert folder_id is not None

    again = Recorder()
    restarted = SchedulerAdapter(Settings(auto_resume=False), credentials=_credentials)
    restarted.start(again)
    again.wait(RowsRestored, 1)
    restarted.shutdown(pause=True)
    assert restarted.wait_closed(30)
    rows = [r for e in again.events if isinstance(e, RowsRestored) for r in e.rows]
    assert sorted((r.key, r.folder) for r in rows) == [
        ("in/photos/2024/b.jpg", folder_id), ("in/photos/a.jpg", folder_id)]
    told = [f for e in again.events if isinstance(e, FoldersAdded) for f in e.folders]
    assert [f.id for f in told] == [folder_id]


def test_files_of_a_folder_dropped_by_a_relative_path_still_belong_to_it(
        tmp_path: Path, server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    destination = _destination(server)
    recorder = Recorder()
    adapter = SchedulerAdapter(Settings(auto_resume=False), credentials=_credentials)
    adapter.start(recorder)
    adapter.send(rq.BeginDrop(1, ["photos"], destination))
    adapter.send(rq.Enqueue(_found([Path("photos")], "in"), destination, drop=1))
    adapter.send(rq.EndDrop(1))
    adapter.ask(rq.WaitIdle())
    adapter.shutdown(pause=True)
    assert adapter.wait_closed(30)
    folders = {e.folder for e in recorder.events if isinstance(e, ev.Queued)}
    assert len(folders) == 1 and None not in folders
    [info] = [f for e in recorder.events if isinstance(e, FoldersAdded) for f in e.folders]
    assert (info.name, info.destination) == ("photos", f"oss://{DEFAULT_BUCKET}/in/photos/")
    assert info.source_path == os.path.join(str(tmp_path), "photos")


def test_a_walk_finished_at_start_continues_a_paused_row_of_its_files(
        tmp_path: Path, server: SandboxServer) -> None:
    """A folder dropped again while one of its files is paused, and the window closed while
    it was listed: at the next start the walk is finished, and the paused file continues in
    its row (queued again with the rest) instead of being left paused or queued twice."""
    photos, _, _ = _tree(tmp_path)
    destination = _destination(server)
    server.faults.delay(2.0, method="PUT", count=None)  # nothing is done before the pause
    recorder = Recorder()
    adapter = SchedulerAdapter(Settings(auto_resume=False), credentials=_credentials)
    adapter.start(recorder)
    found = _found([photos], "in")
    adapter.send(rq.BeginDrop(1, [str(photos)], destination))
    adapter.send(rq.Enqueue(found, destination, drop=1))
    adapter.send(rq.EndDrop(1))
    adapter.ask(rq.WaitIdle())
    ids = sorted(e.upload for e in recorder.events
                 if isinstance(e, ev.Queued) and e.upload is not None)
    adapter.send(rq.Pause(ids))
    adapter.ask(rq.WaitIdle())
    recorder.wait(rq.DropQueued, 1)
    # The same folder again, cut short before any of its files was handed to the engine.
    adapter.send(rq.BeginDrop(2, [str(photos)], destination))
    adapter.ask(rq.WaitIdle())
    adapter.shutdown(pause=True)
    assert adapter.wait_closed(30)
    with Store.open(config.paths().database, owner=False) as store:
        assert {r.state.value for r in store.rows()} == {"paused"}
    server.faults.clear()

    again = Recorder()
    restarted = SchedulerAdapter(Settings(auto_resume=True), credentials=_credentials)
    restarted.start(again)
    again.wait(RowsRestored, 1)
    deadline = time.monotonic() + 30
    while True:
        with Store.open(config.paths().database, owner=False) as store:
            rows = store.rows()
        if all(r.state.value == "done" for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    restarted.shutdown(pause=True)
    assert restarted.wait_closed(30)
    assert sorted(r.id for r in rows) == ids  # no second row for any file
    assert {r.state.value for r in rows} == {"done"}
    notes = [e.message for e in again.events if isinstance(e, ev.Notice)]
    assert any("were in the queue already: they continue there" in n for n in notes), notes
