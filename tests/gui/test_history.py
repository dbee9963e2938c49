"""Finished rows are history that survives a restart until the user clears them
(issue 15, item 7): real store, real sandbox, a second and third window on one
OSSDESK_HOME."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ossdesk.sandbox.server import SandboxServer
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState, progress_text
from tests.gui.test_engine_window import client, close_window, open_window, row_of


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


def _status_lines() -> list[str]:
    """What ``ossdesk status`` lists (same OSSDESK_HOME as the window)."""
    out = subprocess.run([sys.executable, "-m", "ossdesk", "status"], capture_output=True,
                         text=True, timeout=60, check=False)
    return out.stdout.splitlines()


def test_done_rows_survive_a_restart_until_cleared(qtbot: QtBot, sandbox: SandboxServer,
                                                   tmp_path: Path) -> None:
    for name in ("one.txt", "two.txt", "three.txt"):
        (tmp_path / name).write_text(name * 100)
    settings = Settings(auto_resume=True)
    window, engine = open_window(qtbot, sandbox, settings, "process")
    try:
        window.add_paths([str(tmp_path / "one.txt"), str(tmp_path / "two.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=10_000)
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE for r in window.model.rows()),
                        timeout=60_000)
    finally:
        close_window(qtbot, window, engine)

    # A second window on the same data folder: the finished rows are back, as they were.
    window2, engine2 = open_window(qtbot, sandbox, settings, "process")
    try:
        qtbot.waitUntil(lambda: window2.model.rowCount() == 2, timeout=15_000)
        rows = window2.model.rows()
        assert sorted(r.name for r in rows) == ["one.txt", "two.txt"]
        assert all(r.state is TransferState.DONE for r in rows)
        assert all(r.confirmed_bytes == r.size > 0 for r in rows)
        assert window2.act_clear_finished.isEnabled()
        window2.act_clear_finished.trigger()
        assert window2.model.rowCount() == 0
        # A new upload after the clearing, so the next start has something to show.
        window2.add_paths([str(tmp_path / "three.txt")])
        qtbot.waitUntil(lambda: window2.model.rowCount() == 1, timeout=10_000)
        qtbot.waitUntil(lambda: window2.model.rows()[0].state is TransferState.DONE,
                        timeout=60_000)
    finally:
        close_window(qtbot, window2, engine2)

    # Cleared rows do not come back; `ossdesk status` agrees with the window.
    window3, engine3 = open_window(qtbot, sandbox, settings, "process")
    try:
        qtbot.waitUntil(lambda: window3.model.rowCount() >= 1, timeout=15_000)
        assert [r.name for r in window3.model.rows()] == ["three.txt"]
    finally:
        close_window(qtbot, window3, engine3)
    listed = "\n".join(_status_lines())
    assert "three.txt" in listed
    assert "one.txt" not in listed and "two.txt" not in listed


def test_cancelled_rows_survive_a_restart_until_cleared(qtbot: QtBot, sandbox: SandboxServer,
                                                         tmp_path: Path) -> None:
    mib = 1024 * 1024
    (tmp_path / "kept.bin").write_bytes(b"k" * (3 * mib))
    (tmp_path / "small.txt").write_text("small" * 100)
    slow = Settings(auto_resume=True, part_size_mib=1, bandwidth_limit_kib=768)
    window, engine = open_window(qtbot, sandbox, slow, "process")
    try:
        window.add_paths([str(tmp_path / "kept.bin")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        kept = window.model.ids()[0]
        qtbot.waitUntil(lambda: row_of(window, kept).confirmed_bytes >= mib, timeout=30_000)
        window.row_actions.select_ids([kept])
        window.row_actions.act_cancel.trigger()
        qtbot.waitUntil(lambda: row_of(window, kept).state is TransferState.CANCELLED,
                        timeout=15_000)
        qtbot.waitUntil(lambda: client(sandbox).list_multipart_uploads() == [],
                        timeout=10_000)
    finally:
        close_window(qtbot, window, engine)

    # `ossdesk status` lists it as cancelled, not as something left to do.
    listed = _status_lines()
    assert any("cancelled" in line and "kept.bin" in line for line in listed), listed
    assert listed[-1] == "1 cancelled", listed

    # A second window: the cancelled row is back as history, without a bar, and not
    # started again; nothing of it is counted as unfinished.
    window2, engine2 = open_window(qtbot, sandbox, Settings(auto_resume=True), "process")
    try:
        qtbot.waitUntil(lambda: window2.model.rowCount() == 1, timeout=15_000)
        row = window2.model.rows()[0]
        assert (row.name, row.state) == ("kept.bin", TransferState.CANCELLED)
        assert row.confirmed_bytes == row.sent_bytes == 0
        assert progress_text(row) == ""
        totals = window2.model.totals()
        assert totals.cancelled == totals.finished == 1, totals
        assert totals.waiting == totals.active == totals.paused == totals.failed == 0, totals
        window2.add_paths([str(tmp_path / "small.txt")])
        qtbot.waitUntil(lambda: window2.model.rowCount() == 2, timeout=10_000)
        small = window2.model.ids()[1]
        qtbot.waitUntil(lambda: row_of(window2, small).state is TransferState.DONE,
                        timeout=60_000)
        assert window2.model.current_state(row.id) is TransferState.CANCELLED
        assert client(sandbox).list_multipart_uploads() == []
        # "Clear finished" clears finished and cancelled rows, from the window ...
        window2.act_clear_finished.trigger()
        assert window2.model.rowCount() == 0
    finally:
        close_window(qtbot, window2, engine2)
    # ... and from the upload list.
    assert _status_lines() == ["The upload list is empty."]
