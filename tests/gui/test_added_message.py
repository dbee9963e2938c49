""""Added N files" is said once the drop is complete: after the "already in the bucket"
question is answered, with what the answer really put in the queue (the real engine and a
real sandbox; the real QMessageBox, clicked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from ossdesk.sandbox.server import SandboxServer
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from tests.gui.test_engine_window import client, close_window, open_window

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


class Answerer:
    """Clicks ``button`` in the "already in the bucket" box; notes each status bar message
    and whether the question had been answered when it was shown."""

    def __init__(self, window: MainWindow, button: str) -> None:
        self.window = window
        self.button = button
        self.status_while_asked: list[str] = []
        self.answered = False
        self.messages: list[tuple[bool, str]] = []  # (answered, message)
        window.statusBar().messageChanged.connect(
            lambda text: self.messages.append((self.answered, text)))
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "existingBox" \
                and box.isVisible():
            self.status_while_asked.append(self.window.statusBar().currentMessage())
            button = box.findChild(QPushButton, self.button)
            assert button is not None
            self.answered = True
            button.click()

    def said(self, word: str) -> list[tuple[bool, str]]:
        return [(answered, text) for answered, text in self.messages if word in text]


def pictures(tmp_path: Path, server: SandboxServer) -> Path:
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "same.jpg").write_bytes(b"s" * 5000)
    (folder / "new.jpg").write_bytes(b"w" * 10)
    remote = client(server)
    try:
        remote.put_object("drop/pics/same.jpg", b"s" * 5000, size=5000)
    finally:
        remote.close()
    return folder


def test_added_is_said_after_the_question_is_answered(
    qtbot: QtBot, sandbox_server: SandboxServer, tmp_path: Path,
):
    folder = pictures(tmp_path, sandbox_server)
    window, engine = open_window(qtbot, sandbox_server, Settings())
    answerer = Answerer(window, "skipIdentical")
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: bool(answerer.status_while_asked), timeout=15_000)
        qtbot.waitUntil(lambda: not window.drops._drops and not window.walk_jobs, timeout=15_000)
        # Said once the engine has queued the drop's files.
        qtbot.waitUntil(lambda: bool(answerer.said("Added")), timeout=15_000)
        assert not any("Added" in text for text in answerer.status_while_asked)
        assert answerer.said("Added") == [(True, "Added 2 files (4.89 KiB)")]
    finally:
        answerer.timer.stop()
        close_window(qtbot, window, engine)


def test_a_cancelled_drop_is_not_said_to_be_added(
    qtbot: QtBot, sandbox_server: SandboxServer, tmp_path: Path,
):
    folder = pictures(tmp_path, sandbox_server)
    window, engine = open_window(qtbot, sandbox_server, Settings())
    answerer = Answerer(window, "cancelDrop")
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: bool(answerer.status_while_asked), timeout=15_000)
        qtbot.waitUntil(lambda: not window.drops._drops and not window.walk_jobs, timeout=15_000)
        qtbot.waitUntil(lambda: bool(answerer.said("cancelled")), timeout=15_000)
        assert answerer.said("Added") == []
        assert answerer.said("cancelled") == [(True, "The drop was cancelled.")]
        assert window.model.rowCount() == 0
    finally:
        answerer.timer.stop()
        close_window(qtbot, window, engine)
