"""The Progress column and the status bar tell what was sent from what OSS confirmed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from ossdesk.core import events as ev
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.progress_delegate import ProgressDelegate
from ossdesk.ui.transfer_model import Column, TransferModel, TransferRow, TransferState
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import PROFILE, MemoryProfiles, queue_three

MB = 1000**2
MiB = 1024**2


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def window(qtbot: QtBot, engine: FakeEngine) -> MainWindow:
    w = MainWindow(engine, profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


@pytest.fixture
def model(qapp: object) -> TransferModel:
    m = TransferModel()
    m.add_rows([TransferRow(id=1, name="video.mov", source_path="/data/video.mov",
                            size=300 * MB, destination="oss://bucket/video.mov",
                            state=TransferState.UPLOADING)])
    return m


def progress(model: TransferModel, role: Qt.ItemDataRole) -> str:
    value = model.index(0, Column.PROGRESS).data(role)
    assert isinstance(value, str)
    return value


def test_sent_bytes_show_before_oss_confirms_any(model: TransferModel) -> None:
    model.update_progress(1, 0, 36 * MB)  # 12 % sent, nothing confirmed yet
    model.flush()
    assert progress(model, Qt.ItemDataRole.DisplayRole) == "12 % (0 % confirmed)"
    tip = progress(model, Qt.ItemDataRole.ToolTipRole)
    assert "Sent: 34.3 MiB of 286 MiB (12 %)" in tip
    assert "Confirmed by OSS: 0 B (0 %)" in tip
    assert "solid bar is what OSS has confirmed" in tip
    assert "lighter bar is sent and not yet confirmed" in tip

    model.update_progress(1, 9 * MB, 36 * MB)
    model.flush()
    assert progress(model, Qt.ItemDataRole.DisplayRole) == "12 % (3 % confirmed)"

    model.update_progress(1, 36 * MB, 36 * MB)  # all that was sent is confirmed
    model.flush()
    assert progress(model, Qt.ItemDataRole.DisplayRole) == "12 %"
    assert "Confirmed by OSS: 34.3 MiB (12 %)" in progress(model, Qt.ItemDataRole.ToolTipRole)
    assert model.totals().confirmed_bytes == model.totals().sent_bytes == 36 * MB


def test_the_bar_is_solid_where_confirmed_and_lighter_where_only_sent(
        model: TransferModel) -> None:
    model.update_progress(1, 75 * MB, 180 * MB)  # 25 % confirmed, 60 % sent
    model.flush()
    delegate = ProgressDelegate()
    image = QImage(400, 24, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 400, 24)
    painter = QPainter(image)
    try:
        delegate.paint(painter, option, model.index(0, Column.PROGRESS))
    finally:
        painter.end()
    y = 5  # above the centred text
    confirmed, sent, rest = (image.pixelColor(x, y) for x in (40, 190, 340))
    assert confirmed != sent != rest != confirmed
    # The sent band is the confirmed colour, lighter: nearer the (white) track.
    assert sent.lightness() > confirmed.lightness()
    assert rest.lightness() > sent.lightness()


def test_status_bar_says_what_is_sent_and_what_is_confirmed(
        qtbot: QtBot, window: MainWindow, engine: FakeEngine, tmp_path: Path) -> None:
    ids = queue_three(qtbot, window, tmp_path)
    big = 300 * MB
    engine._post([
        ev.Started(upload=ids[0], key="k", size=big, confirmed_bytes=0, resumed=False,
                   multipart=True),
        ev.Progress(upload=ids[0], confirmed_bytes=0, sent_bytes=4 * MiB, total=big,
                    speed=2 * MiB, eta=150.0),
    ])
    qtbot.waitUntil(lambda: "sent" in window.totals_label.text(), timeout=3000)
    assert "4 MiB of 286 MiB sent, 0 B confirmed by OSS" in window.totals_label.text()
    engine._post([ev.Progress(upload=ids[0], confirmed_bytes=4 * MiB, sent_bytes=0,
                              total=big, speed=2 * MiB, eta=148.0)])
    qtbot.waitUntil(lambda: "uploaded" in window.totals_label.text(), timeout=3000)
    assert "4 MiB of 286 MiB uploaded" in window.totals_label.text()

