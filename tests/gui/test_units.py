"""One unit system in the window: the command line's sizes and speeds, in both languages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt

from ossdesk.core.plan import format_size
from ossdesk.ui.i18n import Translations
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.transfer_model import Column, TransferRow, TransferState

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
