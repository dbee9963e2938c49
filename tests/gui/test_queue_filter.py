"""Finding what matters in a long queue: filters with counts and a name search
(issue 15, item 7)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.queue_filter import QueueFilter, Show
from ossdesk.ui.transfer_model import Column, TransferRow, TransferState
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import PROFILE, MemoryProfiles

ROWS = 20_000


def done_row(n: int) -> TransferRow:
    return TransferRow(id=n, name=f"photo-{n:05d}.jpg", source_path=f"/data/photo-{n:05d}.jpg",
                       size=1000 + n, destination=f"oss://photos/photo-{n:05d}.jpg",
                       state=TransferState.DONE, confirmed_bytes=1000 + n,
                       sent_bytes=1000 + n, profile="work")


@pytest.fixture
def window(qtbot: QtBot) -> MainWindow:
    w = MainWindow(FakeEngine(), profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.resize(1200, 600)
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


def shown_names(window: MainWindow) -> list[str]:
    model = window.view.model()
    return [model.index(n, Column.NAME).data() for n in range(model.rowCount())]


def test_the_one_failed_file_among_20000_done_is_found_in_a_click(window: MainWindow) -> None:
    rows = [done_row(n) for n in range(ROWS)]
    rows[12_345].state = TransferState.FAILED
    rows[12_345].error = "AccessDenied: no permission"
    window.model.add_rows(rows)
    bar = window.filter_bar
    assert bar.button_text(Show.ALL) == "All (20000)"
    assert bar.button_text(Show.FAILED) == "Failed (1)"
    assert bar.button_text(Show.DONE) == "Done (19999)"
    assert bar.button_text(Show.ACTIVE) == "Active (0)"

    QTest.mouseClick(bar.buttons[Show.FAILED], Qt.MouseButton.LeftButton)
    assert shown_names(window) == ["photo-12345.jpg"]
    # The shown row is the failed one: selecting it acts on it.
    rect = window.view.visualRect(window.view.model().index(0, Column.NAME))
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert [r.id for r in window.row_actions.selected_rows()] == [12_345]
    assert window.row_actions.act_retry.isEnabled()

    QTest.mouseClick(bar.buttons[Show.ALL], Qt.MouseButton.LeftButton)
    assert window.view.model().rowCount() == ROWS


def test_counts_and_filters_follow_rows_as_they_change(qtbot: QtBot, window: MainWindow) -> None:
    window.model.add_rows([done_row(n) for n in range(5)])
    window.filter_bar.show_only(Show.FAILED)
    assert shown_names(window) == []
    window.model.update(3, state=TransferState.FAILED, error="boom")
    window.model.flush()
    # The row that failed joins the Failed view, and the counts move with it.
    assert shown_names(window) == ["photo-00003.jpg"]
    assert window.filter_bar.button_text(Show.FAILED) == "Failed (1)"
    assert window.filter_bar.button_text(Show.DONE) == "Done (4)"
    window.model.update(3, state=TransferState.QUEUED, error="")
    window.model.flush()
    assert shown_names(window) == []
    assert window.filter_bar.button_text(Show.ACTIVE) == "Active (1)"
    window.filter_bar.show_only(Show.ACTIVE)
    assert shown_names(window) == ["photo-00003.jpg"]


def test_search_by_name_with_and_without_a_filter(qtbot: QtBot, window: MainWindow) -> None:
    rows = [done_row(n) for n in range(30)]
    rows[7].name = "Quarterly REPORT.pdf"
    rows[8].name = "report-draft.docx"
    rows[8].state = TransferState.FAILED
    window.model.add_rows(rows)
    QTest.keyClick(window.view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.filter_bar.search_edit.hasFocus()
    QTest.keyClicks(window.filter_bar.search_edit, "report")
    qtbot.waitUntil(lambda: window.view.model().rowCount() == 2, timeout=3000)
    assert shown_names(window) == ["Quarterly REPORT.pdf", "report-draft.docx"]
    window.filter_bar.show_only(Show.FAILED)
    assert shown_names(window) == ["report-draft.docx"]
    window.filter_bar.search_edit.clear()
    qtbot.waitUntil(lambda: window.queue_filter.search() == "", timeout=3000)
    assert window.view.model().rowCount() == 1
    window.filter_bar.show_only(Show.ALL)
    assert window.view.model().rowCount() == 30


def test_adding_20000_rows_with_a_filter_on_tests_each_row_once(window: MainWindow) -> None:
    proxy = window.queue_filter
    assert isinstance(proxy, QueueFilter)
    calls = 0
    original = QueueFilter.filterAcceptsRow

    def counting(self: QueueFilter, source_row: int,
                 source_parent: QModelIndex | QPersistentModelIndex,
                 ) -> bool:
        nonlocal calls
        calls += 1
        return original(self, source_row, source_parent)

    window.filter_bar.show_only(Show.FAILED)
    QueueFilter.filterAcceptsRow = counting  # type: ignore[method-assign]
    try:
        for start in range(0, ROWS, 1000):  # as the bridge adds them: in batches
            window.model.add_rows([done_row(n) for n in range(start, start + 1000)])
    finally:
        QueueFilter.filterAcceptsRow = original  # type: ignore[method-assign]
    assert window.view.model().rowCount() == 0
    assert calls == ROWS
    assert window.filter_bar.button_text(Show.DONE) == "Done (20000)"
