"""A drop whose walk is cut short (the window closed while listing) is finished when the
window starts again: every file of the drop ends in the bucket, none is queued twice.

Runs with the engine in the window's process and in its own process, against a real
sandbox server and a real upload list."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from ossdesk import config
from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.store import NewUpload, State, Store
from ossdesk.core.walk import WalkBatch
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    SandboxServer,
)
from ossdesk.ui import walker
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_engine_window import close_window, engine_kind, local_sandbox, open_window
from tests.gui.test_main_window import PROFILE, MemoryProfiles

__all__ = ["engine_kind", "local_sandbox"]

FILES = 600


@pytest.fixture
def paced_walk(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Batches of 100 files; after the first, the walk waits while ``hold[0]`` is true (or
    until it is cancelled), so the window can be closed in the middle of it."""
    original = walker.walk_batches
    hold = [True]

    def paced(*args: Any, **kw: Any) -> Iterator[WalkBatch]:
        kw["batch_size"] = 100
        cancel = kw.get("cancel")
        for batch in original(*args, **kw):
            yield batch
            while hold[0] and not (cancel is not None and cancel()):
                time.sleep(0.02)

    monkeypatch.setattr(walker, "walk_batches", paced)
    yield hold


def _rows_in_store() -> list[tuple[str, str]]:
    conn = sqlite3.connect(config.paths().database)
    try:
        return list(conn.execute("SELECT source, state FROM uploads"))
    finally:
        conn.close()


def _unfinished_requests() -> int:
    conn = sqlite3.connect(config.paths().database)
    try:
        return int(conn.execute(
            "SELECT COUNT(*) FROM requests WHERE walk_finished = 0").fetchone()[0])
    finally:
        conn.close()


def _object_count(server: SandboxServer, prefix: str) -> int:
    oss = OssClient(Endpoint(server.endpoint, DEFAULT_BUCKET, DEFAULT_REGION),
                    Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET))
    with oss:
        return len(oss.existing_keys(f"{prefix}{i:04}.txt" for i in range(FILES)))


def test_a_drop_cut_short_by_closing_is_finished_on_restart(
        qtbot: QtBot, engine_kind: str, local_sandbox: SandboxServer, tmp_path: Path,
        paced_walk: list[bool]) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"{i:04}.txt").write_text(str(i))
    settings = Settings(auto_resume=True)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    window.add_paths([str(folder)])
    qtbot.waitUntil(lambda: len(window.model.rows(full=False)) >= 100, timeout=20_000)
    close_window(qtbot, window, engine)  # the walk is still waiting after its first batch
    queued = len(_rows_in_store())
    assert 0 < queued < FILES
    assert _unfinished_requests() == 1

    paced_walk[0] = False
    window2, engine2 = open_window(qtbot, local_sandbox, Settings(auto_resume=True),
                                   engine_kind)
    try:
        # Rows done before the window closed are not shown again; the rest are, and the
        # files the walk had not reached yet join them.
        qtbot.waitUntil(lambda: len(window2.model.rows(full=False)) >= FILES - queued,
                        timeout=30_000)
        qtbot.waitUntil(
            lambda: all(r.state is TransferState.DONE for r in window2.model.rows()),
            timeout=120_000,
        )
    finally:
        close_window(qtbot, window2, engine2)
    rows = _rows_in_store()
    assert len(rows) == FILES and len({source for source, _ in rows}) == FILES
    assert _unfinished_requests() == 0
    assert _object_count(local_sandbox, "drop/many/") == FILES


def test_the_window_tells_the_engine_when_a_drop_is_complete(
        qtbot: QtBot, tmp_path: Path) -> None:
    engine = FakeEngine()
    from ossdesk.ui.main_window import MainWindow

    window = MainWindow(engine, profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(window)
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    window.show()
    qtbot.waitUntil(lambda: window.destination_bar.profiles_loaded, timeout=3000)
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(str(i))
    window.add_paths([str(folder)])
    qtbot.waitUntil(lambda: ("end", 1) in engine.drops, timeout=10_000)
    assert engine.drops == [("begin", 1), ("end", 1)]
    assert engine.enqueued_drops and set(engine.enqueued_drops) == {1}
    window.close()


def test_a_file_in_the_queue_already_continues_in_its_row_when_the_drop_is_finished(
        qtbot: QtBot, local_sandbox: SandboxServer, tmp_path: Path,
        paced_walk: list[bool]) -> None:
    """The walk of a drop was cut short before it reached a file whose earlier upload is
    paused in the queue: finishing the walk at the next start continues that row, as the
    drop itself does, instead of queueing it a second time or leaving it paused."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"{i:04}.txt").write_text(str(i))
    last = folder / f"{FILES - 1:04}.txt"
    with Store.open() as store:  # paused by the user before the drop
        (earlier,) = store.add([NewUpload(source=last, size=last.stat().st_size,
                                          mtime_ns=last.stat().st_mtime_ns,
                                          key=f"drop/many/{last.name}",
                                          endpoint=local_sandbox.endpoint,
                                          bucket=DEFAULT_BUCKET)])
        store.set_state(earlier, State.PAUSED, reason="user")
    window, engine = open_window(qtbot, local_sandbox, Settings(auto_resume=True))
    window.add_paths([str(folder)])
    qtbot.waitUntil(lambda: len(window.model.rows(full=False)) >= 101, timeout=20_000)
    close_window(qtbot, window, engine)  # the walk is still waiting after its first batch
    # The row as the window's own rows have it (the same account, endpoint and region).
    conn = sqlite3.connect(config.paths().database)
    try:
        with conn:
            conn.execute("UPDATE uploads SET (credentials, endpoint, region) = (SELECT "
                         "credentials, endpoint, region FROM uploads WHERE id != ? LIMIT 1) "
                         "WHERE id = ?", (earlier, earlier))
    finally:
        conn.close()

    paced_walk[0] = False
    window2, engine2 = open_window(qtbot, local_sandbox, Settings(auto_resume=True))
    try:
        qtbot.waitUntil(lambda: _unfinished_requests() == 0 and all(
            state == "done" for _, state in _rows_in_store()), timeout=120_000)
    finally:
        close_window(qtbot, window2, engine2)
    rows = _rows_in_store()
    assert len(rows) == FILES and len({source for source, _ in rows}) == FILES, rows
    with Store.open(owner=False) as store:
        row = store.get(earlier)
    assert row is not None and row.state is State.DONE  # the same row, gone on

