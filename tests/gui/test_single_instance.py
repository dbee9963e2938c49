"""One window per data folder: a second ``ossdesk FILE`` (a real child process) hands its
file to the window already open and exits; a crashed window's leftovers do not block the
next start; a window that does not answer is reported, not waited for forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QDir, QUrl
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtNetwork import QLocalSocket
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from ossdesk.config import paths
from ossdesk.sandbox.server import DEFAULT_BUCKET, DEFAULT_REGION, SandboxServer
from ossdesk.ui.app import (
    SANDBOX_PROFILE,
    Controller,
    Sandbox,
    SessionProfile,
    credentials_resolver,
)
from ossdesk.ui.engine_adapter import SchedulerAdapter
from ossdesk.ui.i18n import Translations
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.single_instance import (
    Answer,
    InstanceLock,
    InstanceServer,
    Request,
    hand_over,
    server_name,
)
from ossdesk.ui.transfer_model import TransferState

pytestmark = pytest.mark.timeout(120)


class NoProfiles:
    def list(self) -> list[object]:
        return []


@pytest.fixture
def local_sandbox(tmp_path):
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


@pytest.fixture
def window(qtbot: QtBot, local_sandbox: SandboxServer):
    resolver = credentials_resolver()
    engine = SchedulerAdapter(Settings(), credentials=resolver)
    profile = SessionProfile(name=SANDBOX_PROFILE, endpoint=local_sandbox.endpoint,
                             bucket=DEFAULT_BUCKET, region=DEFAULT_REGION, prefix="drop")
    win = MainWindow(engine, settings=Settings(), profile_store=NoProfiles(),
                     extra_profiles=[profile], credentials=resolver)
    qtbot.addWidget(win)
    win.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    win.show()
    qtbot.waitUntil(lambda: win.destination_bar.destination() is not None, timeout=5000)
    yield win
    win.close()
    assert engine.wait_closed(30)


def child_env() -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # OSSDESK_HOME: the test's


def start_ossdesk(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "ossdesk", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=child_env(), **kwargs)


def finish(qtbot: QtBot, child: subprocess.Popen[str], timeout_ms: int) -> tuple[str, str]:
    """Run the window's event loop until ``child`` exits (killed if it does not)."""
    try:
        qtbot.waitUntil(lambda: child.poll() is not None, timeout=timeout_ms)
    finally:
        if child.poll() is None:
            child.kill()
        out, err = child.communicate(timeout=30)
    return out, err


def claim_window(controller: Controller) -> tuple[InstanceLock, InstanceServer]:
    """What ``ossdesk`` does at start for the data folder, with this test's window."""
    data_dir = paths().ensure().data_dir
    lock = InstanceLock(data_dir)
    assert lock.acquire()
    server = InstanceServer(server_name(data_dir), controller.take_request, controller)
    assert server.listen()
    return lock, server


@pytest.mark.slow
def test_a_second_start_hands_its_file_to_the_open_window_and_exits(
    qtbot: QtBot, qapp: QApplication, window: MainWindow, english: Translations,
    tmp_path: Path,
):
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF " + os.urandom(200_000))
    controller = Controller(qapp, english, Sandbox())
    controller.window = window
    lock, server = claim_window(controller)
    try:
        window.showMinimized()
        child = start_ossdesk(str(source))
        out, err = finish(qtbot, child, 30_000)
        assert child.returncode == 0, err
        assert "1 item handed to the ossdesk window already open; it adds it to its queue" in out
        assert "Traceback" not in err
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        qtbot.waitUntil(
            lambda: window.model.rows()[0].state is TransferState.DONE, timeout=30_000)
        row = window.model.rows()[0]
        assert row.key == "drop/report.pdf" and row.source_path == str(source)
        assert not window.isMinimized()  # brought forward
    finally:
        server.close()
        lock.release()


def test_a_second_start_without_files_brings_the_window_forward(
    qtbot: QtBot, qapp: QApplication, window: MainWindow, english: Translations,
):
    controller = Controller(qapp, english, Sandbox())
    controller.window = window
    lock, server = claim_window(controller)
    try:
        window.hide()  # in the tray
        child = start_ossdesk()
        out, err = finish(qtbot, child, 30_000)
        assert child.returncode == 0, err
        assert "already open for this data folder; it was brought forward" in out
        assert window.isVisible()
        assert window.model.rowCount() == 0
    finally:
        server.close()
        lock.release()


def test_a_window_that_cannot_open_its_upload_list_refuses_with_the_reason(
    qtbot: QtBot, qapp: QApplication, window: MainWindow, english: Translations,
    tmp_path: Path,
):
    source = tmp_path / "a.txt"
    source.write_text("a")
    window.engine_error = "the upload list is in use by another ossdesk"
    controller = Controller(qapp, english, Sandbox())
    controller.window = window
    lock, server = claim_window(controller)
    try:
        child = start_ossdesk(str(source))
        _, err = finish(qtbot, child, 30_000)
        assert child.returncode == 1
        assert ("did not take the files: the upload list is in use by another ossdesk"
                in err)
    finally:
        server.close()
        lock.release()


def test_files_opened_with_ossdesk_on_macos_are_queued(
    qtbot: QtBot, qapp: QApplication, window: MainWindow, english: Translations,
    tmp_path: Path,
):
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text("one")
    second.write_text("two")
    controller = Controller(qapp, english, Sandbox())
    controller.window = window
    handler = controller.install_file_open(qapp)
    try:
        QApplication.postEvent(qapp, QFileOpenEvent(str(first)))
        QApplication.postEvent(qapp, QFileOpenEvent(QUrl.fromLocalFile(str(second))))
        qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=10_000)
        assert sorted(r.key for r in window.model.rows()) == ["drop/one.txt", "drop/two.txt"]
    finally:
        qapp.removeEventFilter(handler)


def wait_for_listener(name: str, child: subprocess.Popen[str], timeout: float) -> None:
    """Until a window listens on ``name`` (connect, then hang up without a request)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate(timeout=10)
        socket = QLocalSocket()
        socket.connectToServer(name)
        connected = socket.waitForConnected(200)
        socket.abort()
        if connected:
            return
        time.sleep(0.1)
    pytest.fail("the window never listened")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="a killed process group is POSIX")
def test_a_crashed_window_does_not_block_the_next_start(
    qtbot: QtBot, qapp: QApplication, tmp_path: Path,
):
    data_dir = paths().ensure().data_dir
    name = server_name(data_dir)
    crashed = start_ossdesk(start_new_session=True)
    try:
        wait_for_listener(name, crashed, 60)
    finally:
        os.killpg(crashed.pid, signal.SIGKILL)  # the window and its engine, as in a crash
        crashed.communicate(timeout=30)
    # What the crash left: the lock file naming a dead process and the server's socket.
    assert (data_dir / "window.lock").exists()
    assert Path(QDir.tempPath(), name).exists()
    assert hand_over(name, [], timeout_ms=1000).outcome == "no-answer"

    taken: list[Request] = []

    def take(request: Request) -> Answer:
        taken.append(request)
        return Answer(True)

    lock = InstanceLock(data_dir)
    assert lock.acquire()  # the dead window's lock is taken over
    server = InstanceServer(name, take)
    try:
        assert server.listen(), server.server.errorString()
        source = tmp_path / "after-crash.txt"
        source.write_text("x")
        child = start_ossdesk(str(source))
        _, err = finish(qtbot, child, 30_000)
        assert child.returncode == 0, err
        assert [r.paths for r in taken] == [[str(source)]]
    finally:
        server.close()
        lock.release()


@pytest.mark.slow
def test_a_window_that_does_not_answer_is_reported_not_waited_for(tmp_path: Path):
    data_dir = paths().ensure().data_dir
    lock = InstanceLock(data_dir)
    assert lock.acquire()
    server = InstanceServer(server_name(data_dir), lambda request: Answer(True))
    assert server.listen()
    source = tmp_path / "a.txt"
    source.write_text("a")
    try:
        # This process runs no event loop meanwhile: the window is "hung".
        result = subprocess.run(
            [sys.executable, "-m", "ossdesk", str(source)], capture_output=True, text=True,
            env=child_env(), timeout=60, check=False)
    finally:
        server.close()
        lock.release()
    assert result.returncode == 1
    assert "already open for this data folder" in result.stderr
    assert "did not answer within 5 s" in result.stderr
    assert "nothing was added" in result.stderr


def test_a_maximised_window_stays_maximised_when_brought_forward(
    qtbot: QtBot, qapp: QApplication, window: MainWindow, english: Translations,
):
    controller = Controller(qapp, english, Sandbox())
    controller.window = window
    window.showMaximized()
    qtbot.waitUntil(window.isMaximized, timeout=5000)
    answer = controller.take_request(Request(paths=[], sandbox=False))
    assert answer.queued
    assert window.isMaximized() and window.isVisible()


def test_a_window_that_fails_to_take_the_files_says_so(qtbot: QtBot, tmp_path: Path):
    data_dir = paths().ensure().data_dir
    lock = InstanceLock(data_dir)
    assert lock.acquire()

    def broken(request: Request) -> Answer:
        raise RuntimeError("no room")

    server = InstanceServer(server_name(data_dir), broken)
    assert server.listen()
    source = tmp_path / "a.txt"
    source.write_text("a")
    try:
        child = start_ossdesk(str(source))
        _, err = finish(qtbot, child, 30_000)
    finally:
        server.close()
        lock.release()
    assert child.returncode == 1
    assert "did not take the files: the window could not take them: no room" in err
