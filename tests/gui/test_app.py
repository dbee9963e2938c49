"""``ossdesk --sandbox PATH``: the real entry point, in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from ossdesk.ui import app as ui_app
    from ossdesk.ui.main_window import MainWindow

    qapp = QApplication(sys.argv[:1])

    def check():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if not windows:
            return
        rows = windows[0].model.rows()
        if len(rows) == 2 and all(r.state.value == "done" for r in rows):
            print("ALL DONE", sorted(r.key for r in rows), flush=True)
            timer.stop()
            windows[0].quit_now()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(200)
    sys.exit(ui_app.run(sys.argv[:1], sandbox=True, paths=sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_sandbox_window_uploads_the_paths_given_and_quits_cleanly(tmp_path: Path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    (folder / "b.bin").write_bytes(os.urandom(300_000))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OSSDESK_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ALL DONE ['drop/a.txt', 'drop/b.bin']" in result.stdout
    assert "Traceback" not in result.stderr and "Fatal" not in result.stderr
    settings = (tmp_path / "home" / "config" / "settings.json").read_text()
    assert '"last_profile": "sandbox"' in settings


KILLED_CHILD = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from ossdesk.ui import app as ui_app
    from ossdesk.ui.main_window import MainWindow

    qapp = QApplication(sys.argv[:1])
    seen = set()

    def report():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if not windows:
            return
        for row in windows[0].model.rows():
            if row.id not in seen:
                seen.add(row.id)
                print("ROW", row.state.value, row.confirmed_bytes, flush=True)
            print("CONFIRMED", row.state.value, row.confirmed_bytes, flush=True)
            if row.state.value == "done":
                timer.stop()
                windows[0].quit_now()

    timer = QTimer()
    timer.timeout.connect(report)
    timer.start(100)
    sys.exit(ui_app.run(sys.argv[:1], sandbox=True, paths=sys.argv[1:]))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL of the child")
def test_killed_window_continues_where_it_stopped(tmp_path: Path):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    # 1 MiB/s and 1 MiB parts: the 6 MiB file is mid-way when the process is killed.
    (home / "config" / "settings.json").write_text(
        '{"window": {"bandwidth_limit_kib": 1024, "part_size_mib": 1}}'
    )
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 * 1024 * 1024))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OSSDESK_HOME": str(home)}
    killed_at = 0
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    ) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("CONFIRMED uploading"):
                    confirmed = int(line.split()[2])
                    if confirmed >= 2 * 1024 * 1024:
                        killed_at = confirmed
                        child.send_signal(signal.SIGKILL)
                        break
        finally:
            child.kill()
            child.wait(30)
    assert killed_at >= 2 * 1024 * 1024

    # Full speed now; the row must come back with its confirmed bytes, and finish.
    (home / "config" / "settings.json").write_text('{"window": {"part_size_mib": 1}}')
    result = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD], capture_output=True, text=True, timeout=120,
        env=env, check=False,
    )
    assert result.returncode == 0, result.stderr
    first = next(line for line in result.stdout.splitlines() if line.startswith("ROW"))
    restored = int(first.split()[2])
    assert restored >= killed_at - 1024 * 1024  # at most the part in flight is lost
    assert "CONFIRMED done 6291456" in result.stdout
    assert "Traceback" not in result.stderr


MOVED_CHILD = KILLED_CHILD.replace(
    "\ntimer = QTimer()",
    textwrap.dedent(
        """
        def notice():
            for box in QApplication.allWidgets():
                if box.objectName() == "sandboxMovedNotice" and box.isVisible():
                    print("NOTICE", box.text(), flush=True)
                    notice_timer.stop()

        notice_timer = QTimer()
        notice_timer.timeout.connect(notice)
        notice_timer.start(20)
        timer = QTimer()"""
    ),
)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL of the child")
def test_sandbox_rows_follow_the_sandbox_when_its_port_is_taken(tmp_path: Path):
    """The window's sandbox keeps one port; when another program holds it at the next
    start, the sandbox takes another, says so, and the row queued to it resumes there."""
    import json
    import socket

    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(
        '{"window": {"bandwidth_limit_kib": 1024, "part_size_mib": 1}}'
    )
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 * 1024 * 1024))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OSSDESK_HOME": str(home)}
    killed_at = 0
    with subprocess.Popen(
        [sys.executable, "-c", MOVED_CHILD, str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    ) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("CONFIRMED uploading"):
                    confirmed = int(line.split()[2])
                    if confirmed >= 2 * 1024 * 1024:
                        killed_at = confirmed
                        child.send_signal(signal.SIGKILL)
                        break
        finally:
            child.kill()
            child.wait(30)
    assert killed_at >= 2 * 1024 * 1024
    kept = json.loads((home / "config" / "settings.json").read_text())["window"]
    port = kept["sandbox_port"]
    assert port > 0

    kept["bandwidth_limit_kib"] = 0
    (home / "config" / "settings.json").write_text(json.dumps({"window": kept}))
    with socket.socket() as holder:  # another program now holds the sandbox's port
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the killed child's
        holder.bind(("127.0.0.1", port))                                # TIME_WAITs
        holder.listen()
        result = subprocess.run(
            [sys.executable, "-c", MOVED_CHILD], capture_output=True, text=True, timeout=120,
            env=env, check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    first = next(line for line in result.stdout.splitlines() if line.startswith("ROW"))
    assert int(first.split()[2]) >= killed_at - 1024 * 1024  # resumed, not started again
    assert "CONFIRMED done 6291456" in result.stdout
    moved = json.loads((home / "config" / "settings.json").read_text())["window"]
    assert moved["sandbox_port"] not in (0, port)
    notice = next(line for line in result.stdout.splitlines() if line.startswith("NOTICE"))
    assert f"port {port}" in notice and f"port {moved['sandbox_port']}" in notice
    assert "Uploads queued to the sandbox continue there." in notice


def test_sandbox_button_with_its_port_taken_says_when_rows_follow(qtbot, qapp):
    """Started from the button (the engine already holds the upload list): the sandbox
    takes another port, keeps it, and says the rows queued before move at the next
    ``--sandbox`` start, the moment they do."""
    import socket

    from PySide6.QtWidgets import QMessageBox

    from ossdesk.ui.app import Controller, Sandbox
    from ossdesk.ui.i18n import Translations
    from ossdesk.ui.main_window import MainWindow
    from ossdesk.ui.settings import load_settings
    from tests.gui.fake_engine import FakeEngine
    from tests.gui.test_main_window import MemoryProfiles

    sandbox = Sandbox()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        window = MainWindow(FakeEngine(), profile_store=MemoryProfiles([]))
        qtbot.addWidget(window)
        window.settings.sandbox_port = port
        controller = Controller(qapp, Translations(), sandbox)
        controller.window = window
        controller.start_sandbox()
        qtbot.waitUntil(
            lambda: window.findChild(QMessageBox, "sandboxMovedNotice") is not None,
            timeout=10_000)
    try:
        notice = window.findChild(QMessageBox, "sandboxMovedNotice")
        assert notice is not None
        new_port = sandbox.server.port
        assert new_port != port and window.settings.sandbox_port == new_port
        assert notice.text() == (
            f"Another program is using port {port}, where the local sandbox usually runs. "
            f"The sandbox now runs on port {new_port} and keeps that port from now on. "
            "Uploads queued to the sandbox before are moved to the new port the next time "
            "ossdesk is started with --sandbox.")
        qtbot.waitUntil(lambda: load_settings().sandbox_port == new_port, timeout=10_000)
    finally:
        sandbox.stop()
