"""A drop that would send two files to one object key: the window asks once per drop
(skip the later ones / cancel the drop) and never queues a second row for a key that an
unfinished row already has (the real QMessageBox, clicked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.walker import ProblemKind
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_existing_drop import settle
from tests.gui.test_main_window import PROFILE, MemoryProfiles, drop


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def window(qtbot: QtBot, engine: FakeEngine) -> MainWindow:
    w = MainWindow(engine, profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


class Responder(QObject):
    """Clicks ``button`` in every collision question; keeps each question's texts."""

    def __init__(self, button: str) -> None:
        super().__init__()
        self.button = button
        self.texts: list[tuple[str, str]] = []
        self.timer = QTimer(self)
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "collisionBox" \
                and box.isVisible() and len(self.texts) < 100:
            button = box.findChild(QPushButton, self.button)
            assert button is not None
            self.texts.append((box.text(), box.detailedText()))
            button.click()


@pytest.fixture
def answer() -> Iterator[list[Responder]]:
    made: list[Responder] = []
    yield made
    for responder in made:
        responder.timer.stop()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _enqueued(engine: FakeEngine) -> list[str]:
    return [k for name, keys in engine.calls if name == "enqueue" for k in keys]


def _two_folders(tmp_path: Path) -> tuple[Path, Path]:
    _write(tmp_path / "x" / "data" / "same.txt", "x")
    _write(tmp_path / "x" / "data" / "only-x.txt", "x")
    _write(tmp_path / "y" / "data" / "same.txt", "y")
    _write(tmp_path / "y" / "data" / "only-y.txt", "y")
    return tmp_path / "x" / "data", tmp_path / "y" / "data"


def test_two_folders_of_one_name_ask_and_skip_the_later(
        qtbot: QtBot, window: MainWindow, engine: FakeEngine, tmp_path: Path,
        answer: list[Responder]) -> None:
    responder = Responder("skipLater")
    answer.append(responder)
    first, later = _two_folders(tmp_path)
    drop(window, [first, later])
    settle(qtbot, window, 3)
    assert len(responder.texts) == 1
    text, details = responder.texts[0]
    assert "1 file" in text
    assert str(later / "same.txt") in details and str(first / "same.txt") in details
    assert "inbox/data/same.txt" in details
    keys = _enqueued(engine)
    assert sorted(keys) == ["inbox/data/only-x.txt", "inbox/data/only-y.txt",
                            "inbox/data/same.txt"]
    [row] = [r for r in window.model.rows() if r.key == "inbox/data/same.txt"]
    assert row.source_path == str(first / "same.txt")
    [problem] = window.problems
    assert problem.kind is ProblemKind.COLLISION and problem.path == str(later / "same.txt")


def test_cancel_the_drop_queues_none_of_it(qtbot: QtBot, window: MainWindow,
                                           engine: FakeEngine, tmp_path: Path,
                                           answer: list[Responder]) -> None:
    responder = Responder("cancelDrop")
    answer.append(responder)
    drop(window, list(_two_folders(tmp_path)))
    qtbot.waitUntil(lambda: not window.walk_jobs and not window.drops._drops, timeout=10_000)
    assert len(responder.texts) == 1
    assert _enqueued(engine) == []
    assert window.model.rowCount() == 0


def test_a_key_an_unfinished_row_has_is_not_queued_again(
        qtbot: QtBot, window: MainWindow, engine: FakeEngine, tmp_path: Path,
        answer: list[Responder]) -> None:
    responder = Responder("skipLater")
    answer.append(responder)
    old = _write(tmp_path / "old" / "r.txt", "old")
    drop(window, [old])
    settle(qtbot, window, 1)
    assert responder.texts == []
    new = _write(tmp_path / "new" / "r.txt", "new")
    other = _write(tmp_path / "new" / "s.txt", "s")
    drop(window, [new, other])
    settle(qtbot, window, 2)
    assert len(responder.texts) == 1
    assert str(old) in responder.texts[0][1] and str(new) in responder.texts[0][1]
    assert sorted(_enqueued(engine)) == ["inbox/r.txt", "inbox/s.txt"]
    assert [r.source_path for r in window.model.rows() if r.key == "inbox/r.txt"] == [str(old)]
