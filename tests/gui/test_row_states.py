"""What a row's progress and account say in each state (issue 15, item 5)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.progress_delegate import bar_colour
from ossdesk.ui.transfer_model import (
    Column,
    TransferModel,
    TransferRow,
    TransferState,
    progress_parts,
    progress_text,
)
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import PROFILE, MemoryProfiles


@pytest.fixture
def window(qtbot: QtBot) -> MainWindow:
    w = MainWindow(FakeEngine(), profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


def make_row(n: int, *, size: int = 1000, state: TransferState = TransferState.QUEUED,
             confirmed: int = 0, profile: str = "work") -> TransferRow:
    return TransferRow(id=n, name=f"f{n}.bin", source_path=f"/data/f{n}.bin", size=size,
                       destination=f"oss://photos/f{n}.bin", state=state,
                       confirmed_bytes=confirmed, sent_bytes=confirmed, profile=profile)


def test_a_cancelled_row_shows_no_progress(qapp):
    row = make_row(1, size=1000, confirmed=680, state=TransferState.UPLOADING)
    assert progress_text(row) == "68 %"
    row.state = TransferState.CANCELLED
    # Its parts were discarded: nothing of it is in OSS any more.
    assert progress_parts(row) == (0, 0)
    assert progress_text(row) == ""


def test_an_empty_file_is_not_100_percent_before_it_is_uploaded(qapp):
    for state in (TransferState.QUEUED, TransferState.CHECKING, TransferState.PAUSED,
                  TransferState.FAILED, TransferState.CANCELLED):
        row = make_row(1, size=0, state=state)
        assert progress_parts(row) == (0, 0), state
        assert "100" not in progress_text(row)
    for state in (TransferState.DONE, TransferState.SKIPPED):
        assert progress_text(make_row(1, size=0, state=state)) == "100 %"


def _bar(window: MainWindow, n: int) -> QImage:
    rect = window.view.visualRect(window.view.model().index(n, Column.PROGRESS))
    image: QImage = window.view.viewport().grab(rect).toImage()
    return image


def _filled(image: QImage, fill: QColor) -> int:
    """How many columns of the bar's middle line are painted in the fill colour."""
    y = image.height() // 2
    return sum(
        1 for x in range(image.width())
        if abs(image.pixelColor(x, y).red() - fill.red()) < 20
        and abs(image.pixelColor(x, y).green() - fill.green()) < 20
        and abs(image.pixelColor(x, y).blue() - fill.blue()) < 20
    )


def test_the_bars_of_cancelled_and_empty_waiting_rows_are_empty(window: MainWindow) -> None:
    window.resize(1200, 400)
    window.model.add_rows([
        make_row(1, size=1000, confirmed=680, state=TransferState.CANCELLED),
        make_row(2, size=0, state=TransferState.QUEUED),
        make_row(3, size=1000, confirmed=680, state=TransferState.PAUSED),
    ])
    window.view.clearSelection()
    palette = window.view.palette()
    paused = _filled(_bar(window, 2), bar_colour(TransferState.PAUSED, palette))
    assert paused > 50  # the check sees a filled bar where there is one
    assert _filled(_bar(window, 0), bar_colour(TransferState.CANCELLED, palette)) == 0
    assert _filled(_bar(window, 1), bar_colour(TransferState.QUEUED, palette)) == 0


def test_the_account_column_tells_two_accounts_apart(window: MainWindow) -> None:
    model: TransferModel = window.model
    model.add_rows([make_row(1, profile="work"), make_row(2, profile="work")])
    # One account in use: the column would say the same on every row.
    assert window.view.isColumnHidden(Column.ACCOUNT)
    model.add_rows([make_row(3, profile="home")])
    assert not window.view.isColumnHidden(Column.ACCOUNT)
    assert model.headerData(Column.ACCOUNT, Qt.Orientation.Horizontal) == "Account"
    shown = [model.index(n, Column.ACCOUNT).data() for n in range(3)]
    assert shown == ["work", "work", "home"]
    model.remove([3])
    assert window.view.isColumnHidden(Column.ACCOUNT)
