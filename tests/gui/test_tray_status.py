"""The tray: the queue's overall progress in the icon's tooltip, and notifications that say
what is true (a paused upload is paused, not finished; failures are counted)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ossdesk.sandbox.server import DEFAULT_BUCKET, DEFAULT_REGION, SandboxServer
from ossdesk.ui.app import SANDBOX_PROFILE, SessionProfile, credentials_resolver
from ossdesk.ui.engine_adapter import SchedulerAdapter
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import Totals, TransferState

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024


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
    # A slow link (512 KiB/s) and small parts, so that an upload can be caught moving.
    settings = Settings(bandwidth_limit_kib=512, part_size_mib=1, files_at_once=2)
    engine = SchedulerAdapter(settings, credentials=resolver)
    profile = SessionProfile(name=SANDBOX_PROFILE, endpoint=local_sandbox.endpoint,
                             bucket=DEFAULT_BUCKET, region=DEFAULT_REGION, prefix="drop")
    win = MainWindow(engine, settings=settings, profile_store=NoProfiles(),
                     extra_profiles=[profile], credentials=resolver)
    qtbot.addWidget(win)
    win.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    win.show()
    qtbot.waitUntil(lambda: win.destination_bar.destination() is not None, timeout=5000)
    yield win
    win.close()
    assert engine.wait_closed(30)


def notifications(window: MainWindow) -> list[tuple[str, str, bool]]:
    seen: list[tuple[str, str, bool]] = []
    window.tray_status.notified.connect(lambda *message: seen.append(message))
    return seen


def state_of(window: MainWindow, name: str) -> TransferState | None:
    return next((r.state for r in window.model.rows() if r.name == name), None)


def test_the_tooltip_words_for_each_state_of_the_queue(window: MainWindow):
    tray = window.tray_status
    moving = Totals(files=12, active=2, waiting=7, done=3, total_bytes=1000,
                    confirmed_bytes=413, eta=125.0)
    assert tray.summary(moving) == "3 of 12 files uploaded, 41 %, 2 min 5 s left"
    paused = Totals(files=12, paused=1, done=11, total_bytes=1000, confirmed_bytes=700)
    assert tray.summary(paused) == "1 upload paused, 11 of 12 files uploaded, 70 %"
    failed = Totals(files=12, done=10, failed=2, total_bytes=1000, confirmed_bytes=900)
    assert tray.summary(failed) == "10 of 12 files uploaded and verified, 2 failed"
    done = Totals(files=13, done=12, finished=13, total_bytes=1000, confirmed_bytes=1000)
    assert tray.summary(done) == "12 files uploaded and verified"  # one was cancelled
    assert tray.summary(Totals()) == "No uploads in the queue"
    cancelled = Totals(files=2, finished=2)  # cancelled, or already in the bucket
    assert tray.summary(cancelled) == "Nothing left to upload"


@pytest.mark.slow
def test_the_tooltip_follows_the_queue_and_the_end_is_notified(
    qtbot: QtBot, window: MainWindow, tmp_path: Path,
):
    (tmp_path / "small.txt").write_text("small")
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * MIB))
    seen = notifications(window)
    window.hide()  # in the tray: notifications are wanted
    window.add_paths([str(tmp_path / "small.txt"), str(tmp_path / "big.bin")])
    tooltip = window.tray_status.icon.toolTip
    qtbot.waitUntil(
        lambda: re.search(r"^ossdesk\n1 of 2 files uploaded, [1-9]\d? %", tooltip()) is not None,
        timeout=60_000)
    qtbot.waitUntil(lambda: bool(seen), timeout=60_000)
    assert tooltip() == "ossdesk\n2 files uploaded and verified"
    assert seen == [("Uploads finished", "2 files uploaded and verified.", False)]


@pytest.mark.slow
def test_a_paused_upload_is_not_called_finished(
    qtbot: QtBot, window: MainWindow, tmp_path: Path,
):
    (tmp_path / "big.bin").write_bytes(os.urandom(8 * MIB))
    (tmp_path / "small.txt").write_text("small")
    seen = notifications(window)
    window.hide()
    window.add_paths([str(tmp_path / "big.bin")])
    qtbot.waitUntil(lambda: state_of(window, "big.bin") is TransferState.UPLOADING,
                    timeout=30_000)
    window.pause_all()
    qtbot.waitUntil(lambda: state_of(window, "big.bin") is TransferState.PAUSED,
                    timeout=30_000)
    qtbot.waitUntil(lambda: bool(seen), timeout=30_000)
    assert seen[-1] == ("Uploads paused", "1 upload paused.", False)
    assert window.tray_status.icon.toolTip().startswith(
        "ossdesk\n1 upload paused, 0 of 1 file uploaded, ")

    window.add_paths([str(tmp_path / "small.txt")])
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=30_000)
    assert seen[-1] == ("Uploads paused", "1 file uploaded and verified. 1 upload paused.",
                        False)
    assert state_of(window, "big.bin") is TransferState.PAUSED
    assert not any("finished" in text.lower() or "finished" in title.lower()
                   for title, text, _ in seen)


@pytest.mark.slow
def test_failures_are_notified_and_counted(
    qtbot: QtBot, window: MainWindow, tmp_path: Path,
):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    seen = notifications(window)
    window.hide()
    window.destination_bar.bucket_edit.setText("no-such-bucket")
    window.add_paths([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=60_000)
    (title, text, warning), stopped = seen
    assert warning and title == "Uploads failed"
    assert text.startswith("2 uploads failed. The first: ")
    assert stopped == ("Uploads stopped", "2 uploads failed.", True)
    assert window.tray_status.icon.toolTip() == (
        "ossdesk\n0 of 2 files uploaded and verified, 2 failed")


def test_nothing_is_notified_while_the_window_is_in_front(
    qtbot: QtBot, window: MainWindow,
):
    seen = notifications(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.tray_status.notify("Uploads finished", "1 file uploaded and verified.")
    assert seen == []


def test_the_same_end_of_the_queue_is_not_told_twice(window: MainWindow):
    """A queue that stops again with nothing new (the window in the tray, a watched folder
    queueing now and then) does not repeat "1 upload failed." each time."""
    seen = notifications(window)
    window.hide()
    tray = window.tray_status
    stopped = Totals(files=2, done=1, failed=1)
    tray.show_totals(Totals(files=2, waiting=1, done=0, failed=1))
    tray.show_totals(stopped)
    tray.queue_idle()
    tray.show_totals(stopped)
    tray.queue_idle()  # nothing new since
    tray.show_totals(Totals(files=3, done=1, failed=1, waiting=1))
    tray.show_totals(Totals(files=3, done=2, failed=1))
    tray.queue_idle()  # one more uploaded: told, with the failure still there
    assert [text for _, text, _ in seen] == [
        "1 file uploaded and verified. 1 upload failed.",
        "1 file uploaded and verified. 1 upload failed.",
    ]
