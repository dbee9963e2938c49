"""One unit system in the window: the command line's sizes and speeds, in both languages."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStatusTipEvent
from PySide6.QtWidgets import QApplication, QLabel, QStatusBar

from ossdesk.core.plan import format_size
from ossdesk.ui.i18n import Translations
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.transfer_model import Column, TransferRow, TransferState, state_label

KIB = 1024
MIB = 1024**2


@pytest.fixture(params=["en", "zh_CN"])
def language(request: pytest.FixtureRequest, qapp, english: Translations) -> Iterator[str]:
    assert english.install(qapp, request.param)
    yield request.param
    english.install(qapp, "en")


def row(n: int, size: int, speed: float, confirmed: int = 0, eta: float | None = None,
        state: TransferState = TransferState.UPLOADING) -> TransferRow:
    return TransferRow(id=n, name=f"f{n}.bin", source_path=f"/d/f{n}.bin", size=size,
                       destination=f"oss://b/f{n}.bin", state=state, confirmed_bytes=confirmed,
                       sent_bytes=confirmed, speed=speed, eta=eta)


def make_window(qtbot) -> MainWindow:
    window = MainWindow(None)
    qtbot.addWidget(window)
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    return window


def test_sizes_and_speeds_use_the_command_lines_units(qtbot, language: str) -> None:
    window = make_window(qtbot)
    per_second = "/秒" if language == "zh_CN" else "/s"
    cases = [  # size, speed, the Size text, the Speed text
        (6, 999.0, "6 B", "999 B"),
        (30 * MIB + MIB // 100, 1000.0 * KIB, "30 MiB", "0.98 MiB"),
        (1000 * KIB, 1024.0 * KIB, "0.98 MiB", "1 MiB"),
        (1023, 1536.0, "1 KiB", "1.5 KiB"),
    ]
    window.model.add_rows([row(i, size, speed) for i, (size, speed, _, _) in enumerate(cases)])
    window.model.flush()
    for i, (size, _speed, size_text, speed_text) in enumerate(cases):
        assert window.model.index(i, Column.SIZE).data(Qt.ItemDataRole.DisplayRole) == size_text
        assert size_text == format_size(size)
        speed_cell = window.model.index(i, Column.SPEED).data(Qt.ItemDataRole.DisplayRole)
        assert speed_cell == speed_text + per_second
    totals = window.totals_label.text()
    total = sum(size for size, _, _, _ in cases)
    assert format_size(total) in totals
    assert format_size(sum(speed for _, speed, _, _ in cases)) + per_second in totals
    for text in [totals] + [
        window.model.index(r, c).data(Qt.ItemDataRole.DisplayRole)
        for r in range(len(cases)) for c in (Column.SIZE, Column.SPEED)
    ]:
        assert "字节" not in text and " KB" not in text and " MB" not in text


def test_queue_time_left_is_never_shorter_than_one_of_its_rows(qtbot, language: str) -> None:
    window = make_window(qtbot)
    # A slow file with 100 MiB to go (1 MiB/s: 100 s) and a fast one (100 MiB/s): all the
    # bytes at the total speed would be 1.1 s, yet the queue is not done before the slow file.
    window.model.add_rows([
        row(1, 200 * MIB, 1.0 * MIB, confirmed=100 * MIB, eta=100.0),
        row(2, 20 * MIB, 100.0 * MIB, confirmed=10 * MIB, eta=0.1),
        row(3, 5 * MIB, 0.0, state=TransferState.QUEUED),
    ])
    window.model.flush()
    totals = window.model.totals()
    assert totals.eta is not None
    row_etas = [window.model.row(k).eta for k in (1, 2)]  # type: ignore[union-attr]
    assert all(totals.eta >= eta for eta in row_etas if eta is not None)
    eta_cell = window.model.index(0, Column.ETA).data(Qt.ItemDataRole.DisplayRole)
    assert eta_cell in window.totals_label.text()  # the slowest row's time is the queue's
    # Once the slow file speeds up, the queue's time follows its bytes again.
    window.model.update_progress(1, 100 * MIB, 100 * MIB, 50.0 * MIB, 0.5)
    window.model.flush()
    total_speed = 150.0 * MIB
    remaining = 100 * MIB + 10 * MIB + 5 * MIB
    assert window.model.totals().eta == pytest.approx(remaining / total_speed)


def test_uploading_counts_files_and_agrees_with_files_at_once(qtbot) -> None:
    window = make_window(qtbot)
    window.settings.files_at_once = 3
    window.model.add_rows([row(i, 10 * MIB, 1.0 * MIB, eta=10.0) for i in range(2)])
    window.model.add_rows([row(2, 10 * MIB, 0.0, state=TransferState.CHECKING),
                           row(3, 10 * MIB, 0.0, state=TransferState.QUEUED)])
    window.model.flush()
    text = window.totals_label.text()
    assert "2 uploading" in text and "small files" not in text  # Checking is not uploading
    # Files small enough for one request start beside the three: said plainly.
    window.model.add_rows([row(10 + i, 4 * KIB, 4.0 * KIB, eta=1.0) for i in range(57)])
    window.model.flush()
    assert "59 uploading (small files beside the 3 at once)" in window.totals_label.text()


LONG_URL = ("https://team-media.oss-cn-hangzhou.aliyuncs.com/2024/launch/"
            "%E5%B7%A5%E4%BD%9C/%E5%8F%91%E5%B8%83%E4%BC%9A/"
            + "%E8%A7%86%E9%A2%91" * 12 + ".mp4")


def test_status_message_and_totals_stay_apart(qtbot, language: str, tmp_path) -> None:
    window = make_window(qtbot)
    window.resize(900, 420)
    window.show()
    window.model.add_rows([row(i, 3 * 1024**3, 12.5 * MIB, confirmed=MIB, eta=250.0)
                           for i in range(8)])
    window.model.flush()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    window.statusBar().showMessage("Copied: " + LONG_URL, 6000)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() != "", timeout=2000)
    QApplication.processEvents()
    bar = window.statusBar()
    label = bar.findChild(QLabel, "statusMessage")
    assert label is not None
    totals = window.totals_label
    assert totals.isVisible() and label.isVisible()
    assert not label.geometry().intersects(totals.geometry())
    assert label.geometry().right() < totals.geometry().left()
    # Shortened to fit, the whole message readable in its tooltip, the address decoded.
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()
    assert "…" in label.text()
    assert "%E5" not in label.toolTip() and "工作/发布会/视频" in label.toolTip()
    assert bar.currentMessage() == label.toolTip()
    assert "8 " in totals.text()
    assert window.grab().save(str(tmp_path / f"status-{language}.png"))
    shots = os.environ.get("OSSDESK_TEST_SHOTS")  # a folder to look at the picture in
    if shots:
        window.grab().save(os.path.join(shots, f"status-bar-{language}.png"))
    # A hovered action's status tip goes to the same place, never over the totals.
    QApplication.sendEvent(window.view, QStatusTipEvent("Choose files to upload"))
    assert label.isVisible() and label.toolTip() == "Choose files to upload"
    assert QStatusBar.currentMessage(bar) == ""


def test_state_column_fits_its_longest_word(qtbot, language: str) -> None:
    window = make_window(qtbot)
    metrics = window.view.fontMetrics()
    longest = max(metrics.horizontalAdvance(state_label(s)) for s in TransferState)
    assert window.view.columnWidth(Column.STATE) >= longest + 16
