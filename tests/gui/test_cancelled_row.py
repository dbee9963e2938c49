"""A cancelled row shows no progress bar at all: not a bar, not an empty outline (its parts
were discarded; nothing of it is on its way). Rows read back from a real upload list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from ossdesk.core.store import NewUpload, State, Store
from ossdesk.ui.engine_adapter import transfer_row
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.transfer_model import Column, TransferRow, TransferState
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import PROFILE, MemoryProfiles

MiB = 1024 * 1024


@pytest.fixture
def window(qtbot: QtBot) -> MainWindow:
    w = MainWindow(FakeEngine(), profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.resize(1200, 400)
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


def _rows_from_a_real_list(tmp_path: Path) -> list[TransferRow]:
    """A cancelled upload (16 MiB of it had been confirmed) between a waiting one and a
    paused one, as the upload list holds them after a restart."""
    store = Store.open(tmp_path / "queue.db")
    try:
        ids = store.add(NewUpload(source=tmp_path / name, size=64 * MiB, mtime_ns=1, key=name,
                                  endpoint="https://oss-cn-hangzhou.aliyuncs.com",
                                  bucket="photos", credentials="work")
                        for name in ("waiting.bin", "cancelled.bin", "paused.bin"))
        for upload in ids[1:]:
            store.begin_multipart(upload, f"UPLOAD{upload}", 16 * MiB)
            store.confirm_part(upload, 1, 16 * MiB, "etag", 7)
        store.cancelled(ids[1])
        store.set_state(ids[2], State.PAUSED, reason="user")
        return [transfer_row(r, auto_resume=True) for r in store.rows()]
    finally:
        store.close()


def _cell(window: MainWindow, n: int) -> QImage:
    rect = window.view.visualRect(window.view.model().index(n, Column.PROGRESS))
    image: QImage = window.view.viewport().grab(rect).toImage()
    return image


def _colours(image: QImage) -> set[int]:
    return {image.pixel(x, y) for x in range(image.width()) for y in range(image.height())}


def test_a_cancelled_row_paints_no_bar(window: MainWindow, tmp_path: Path) -> None:
    window.model.add_rows(_rows_from_a_real_list(tmp_path))
    window.model.flush()
    states = [window.model.row_at(n).state for n in range(3)]
    assert states == [TransferState.QUEUED, TransferState.CANCELLED, TransferState.PAUSED]
    window.view.clearSelection()
    # The check sees a bar where there is one: an empty one (waiting) and a filled one.
    assert len(_colours(_cell(window, 0))) > 1
    assert len(_colours(_cell(window, 2))) > 1
    # The cancelled row's cell is its background only: no track, outline or text.
    cancelled = _cell(window, 1)
    assert cancelled.width() > 50 and cancelled.height() > 10
    assert len(_colours(cancelled)) == 1, "a cancelled row paints part of a progress bar"


def test_a_cancelled_rows_progress_tooltip_explains_no_bar(
        window: MainWindow, tmp_path: Path, qapp, english) -> None:
    window.model.add_rows(_rows_from_a_real_list(tmp_path))
    window.model.flush()
    tip = window.model.index(1, Column.PROGRESS).data(Qt.ItemDataRole.ToolTipRole)
    assert "Sent:" not in tip and "bar" not in tip, tip  # no counts of a bar not shown
    assert "discarded" in tip, tip
    assert english.install(qapp, "zh_CN")
    tip = window.model.index(1, Column.PROGRESS).data(Qt.ItemDataRole.ToolTipRole)
    assert "\u5df2\u53d6\u6d88" in tip and not re.search(r"[A-Za-z]{3,}", tip), tip
