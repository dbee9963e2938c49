"""A drop whose keys already exist in the bucket: asked once per drop, the answer applied
to the rest of it (the real QMessageBox, clicked)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from ossdesk.core.checksum import crc64
from ossdesk.core.walk import WalkBatch
from ossdesk.sandbox.server import SandboxServer
from ossdesk.ui import walker
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_engine_window import client, close_window, open_window
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


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


@pytest.fixture
def slow_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 100 files, 0.15 s apart: each reaches the window on its own."""
    original = walker.walk_batches

    def paced(*args: Any, **kw: Any) -> Iterator[WalkBatch]:
        kw["batch_size"] = 100
        for batch in original(*args, **kw):
            yield batch
            time.sleep(0.15)

    monkeypatch.setattr(walker, "walk_batches", paced)


class Responder(QObject):
    """Answers every "files already exist" question by clicking ``button`` in the real box;
    ``texts`` holds each question's text (one per time the box appeared)."""

    def __init__(self, button: str) -> None:
        super().__init__()
        self.button = button
        self.texts: list[str] = []
        self.timer = QTimer(self)
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "existingBox" \
                and box.isVisible() and len(self.texts) < 100:
            button = box.findChild(QPushButton, self.button)
            assert button is not None
            self.texts.append(box.text())
            button.click()


@pytest.fixture
def respond() -> Iterator[list[Responder]]:
    made: list[Responder] = []
    yield made
    for responder in made:
        responder.timer.stop()


def answer(respond: list[Responder], button: str) -> Responder:
    responder = Responder(button)
    respond.append(responder)
    return responder


def many_files(root: Path, n: int) -> Path:
    folder = root / "many"
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:04}.txt").write_bytes(b"%d" % i)
    return folder


def settle(qtbot: QtBot, window: MainWindow, rows: int) -> None:
    qtbot.waitUntil(lambda: not window.walk_jobs and not window.drops._drops, timeout=10_000)
    qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == rows, timeout=10_000)


def test_asked_once_per_drop_and_skip_applies_to_the_rest(
        qtbot: QtBot, window: MainWindow, engine: FakeEngine, tmp_path: Path,
        respond: list[Responder], slow_walk: None) -> None:
    folder = many_files(tmp_path, 600)
    # Batch 1 (files 0-99) has nothing there; batch 2 asks; batches 4 and 6 would too.
    engine.remote_keys = {"inbox/many/0150.txt", "inbox/many/0151.txt",
                          "inbox/many/0350.txt", "inbox/many/0590.txt"}
    responder = answer(respond, "skipIdentical")
    drop(window, [folder])
    settle(qtbot, window, 600)
    assert len(responder.texts) == 1  # once for the whole drop
    assert responder.texts[0] == "2 files of what you added already exist in the bucket."
    enqueued = [keys for name, keys in engine.calls if name == "enqueue"]
    assert len(enqueued) >= 3  # the batches came one by one
    assert sum(len(keys) for keys in enqueued) == 600
    # Before the question: checked and sent as they are; after it: skip, no more checks.
    assert engine.policies[0] == "overwrite" and enqueued[0][0] == "inbox/many/0000.txt"
    assert set(engine.policies[1:]) == {"skip"}
    assert len(engine.checked) == 2
    # A new drop asks again.
    other = tmp_path / "other.txt"
    other.write_bytes(b"o")
    engine.remote_keys.add("inbox/other.txt")
    drop(window, [other])
    settle(qtbot, window, 601)
    assert len(responder.texts) == 2
    assert engine.policies[-1] == "skip"


def test_nothing_existing_asks_nothing(qtbot: QtBot, window: MainWindow, engine: FakeEngine,
                                       tmp_path: Path, respond: list[Responder]) -> None:
    responder = answer(respond, "cancelDrop")
    drop(window, [many_files(tmp_path, 20)])
    settle(qtbot, window, 20)
    assert responder.texts == []
    assert set(engine.policies) == {"overwrite"}


def test_overwrite_all(qtbot: QtBot, window: MainWindow, engine: FakeEngine, tmp_path: Path,
                       respond: list[Responder]) -> None:
    engine.remote_keys = {"inbox/many/0003.txt"}
    responder = answer(respond, "overwriteAll")
    drop(window, [many_files(tmp_path, 10)])
    settle(qtbot, window, 10)
    assert len(responder.texts) == 1
    assert engine.policies == ["overwrite"]


def test_cancel_the_drop_adds_nothing(qtbot: QtBot, window: MainWindow, engine: FakeEngine,
                                      tmp_path: Path, respond: list[Responder],
                                      slow_walk: None) -> None:
    engine.remote_keys = {"inbox/many/0000.txt"}
    responder = answer(respond, "cancelDrop")
    drop(window, [many_files(tmp_path, 1000)])
    qtbot.waitUntil(lambda: not window.walk_jobs and not window.drops._drops, timeout=10_000)
    assert len(responder.texts) == 1
    assert engine.policies == []
    assert window.model.rowCount() == 0


def test_skip_identical_with_the_real_engine(qtbot: QtBot, sandbox_server: SandboxServer,
                                             tmp_path: Path, respond: list[Responder]) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    same = folder / "same.jpg"
    same.write_bytes(b"s" * 5000)
    changed = folder / "changed.jpg"
    changed.write_bytes(b"n" * 5000)
    (folder / "new.jpg").write_bytes(b"w" * 10)
    remote = client(sandbox_server)
    remote.put_object("drop/pics/same.jpg", same.read_bytes(), size=5000)
    remote.put_object("drop/pics/changed.jpg", b"o" * 5000, size=5000)
    responder = answer(respond, "skipIdentical")
    window, engine = open_window(qtbot, sandbox_server, Settings())
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 3, timeout=15_000)
        qtbot.waitUntil(lambda: all(r.state.finished for r in window.model.rows()),
                        timeout=30_000)
        states = {r.name: r.state for r in window.model.rows()}
        assert states == {"same.jpg": TransferState.SKIPPED,
                          "changed.jpg": TransferState.DONE, "new.jpg": TransferState.DONE}
        assert len(responder.texts) == 1
        data = remote.get_object_bytes("drop/pics/changed.jpg")
        assert crc64(data) == crc64(changed.read_bytes())
    finally:
        close_window(qtbot, window, engine)
        remote.close()


def test_a_check_that_fails_is_still_said_when_the_drop_ends(
    qtbot: QtBot, window: MainWindow, engine: FakeEngine, tmp_path: Path,
    respond: list[Responder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The files are queued to replace what is there: the warning must not be wiped at once
    by "Added N files" (a one-batch drop ends right after its check)."""
    def unreachable(*args: Any, **kwargs: Any) -> list[str]:
        raise OSError("the endpoint does not answer")

    monkeypatch.setattr(engine, "find_existing", unreachable)
    responder = answer(respond, "cancelDrop")
    drop(window, [many_files(tmp_path, 3)])
    settle(qtbot, window, 3)
    assert responder.texts == []
    message = window.statusBar().currentMessage()
    assert message.startswith("Added 3 files"), message
    assert "Could not check which files already exist (the endpoint does not answer)" in message


def test_shut_down_stops_the_engine_once_whether_or_not_the_window_was_closed(
    qtbot: QtBot, window: MainWindow, engine: FakeEngine,
) -> None:
    """The application may quit with the window hidden in the tray (the session ends):
    run_app then calls shut_down itself; a window closed before has done it already."""
    window.hide()
    window.shut_down()
    window.shut_down()
    window.close()
    assert engine.calls.count(("shutdown", True)) == 1
