from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from ossdesk.core import events as ev
from ossdesk.ui.app import SessionProfile
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.transfer_model import Column, RowKey, TransferState
from tests.gui.fake_engine import FakeEngine


class MemoryProfiles:
    def __init__(self, profiles: list[SessionProfile]) -> None:
        self.profiles = list(profiles)

    def list(self) -> list[SessionProfile]:
        return list(self.profiles)


PROFILE = SessionProfile(
    name="work", endpoint="https://oss-cn-hangzhou.aliyuncs.com", bucket="photos",
    region="cn-hangzhou", prefix="inbox",
)


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def window(qtbot, engine):
    w = MainWindow(engine, profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


def drag_enter(pos: QPoint, mime: QMimeData) -> QDragEnterEvent:
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    try:  # Qt >= 6.12 takes a QPointF (the QPoint form is deprecated there)
        event: QDragEnterEvent = QDragEnterEvent(QPointF(pos), *args)  # type: ignore[call-overload]
    except TypeError:
        event = QDragEnterEvent(pos, *args)
    return event


def drop(window: MainWindow, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.view.geometry().center())
    enter = drag_enter(pos.toPoint(), mime)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, event)
    assert event.isAccepted()


def make_tree(root: Path) -> list[Path]:
    (root / "album" / "2024").mkdir(parents=True)
    files = [root / "notes.txt", root / "album" / "a.jpg", root / "album" / "2024" / "b.jpg"]
    for i, f in enumerate(files):
        f.write_bytes(b"x" * (100 * (i + 1)))
    return files


def test_destination_bar_shows_the_profile(window):
    assert window.destination_bar.account_combo.currentText() == "work"
    assert window.destination_bar.bucket_edit.text() == "photos"
    assert window.destination_bar.folder_edit.text() == "inbox"
    assert window.stack.currentWidget() is window.view
    dest = window.destination_bar.destination()
    assert dest is not None and dest.key_for("a/b.txt") == "inbox/a/b.txt"


def test_drop_of_files_and_folders_creates_rows(qtbot, window, engine, tmp_path):
    make_tree(tmp_path)
    drop(window, [tmp_path / "notes.txt", tmp_path / "album"])
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=5000)
    keys = sorted(r.key for r in window.model.rows())
    assert keys == ["inbox/album/2024/b.jpg", "inbox/album/a.jpg", "inbox/notes.txt"]
    rows = {r.name: r for r in window.model.rows()}
    assert rows["b.jpg"].size == 300
    assert rows["b.jpg"].destination == "oss://photos/inbox/album/2024/b.jpg"
    assert window.model.index(0, Column.STATE).data() == "Waiting"
    qtbot.waitUntil(lambda: not window.walk_jobs, timeout=5000)
    assert "3 files" in window.totals_label.text()
    # The same folder again: the window leaves out none of it; the engine decides from the
    # upload list (a file in the queue already continues in its row: test_drop_again.py).
    drop(window, [tmp_path / "album"])
    qtbot.waitUntil(lambda: not window.walk_jobs, timeout=5000)
    qtbot.waitUntil(lambda: [n for n in engine.names() if n == "enqueue"] == ["enqueue"] * 2,
                    timeout=5000)
    assert sorted(engine.calls[-1][1]) == ["inbox/album/2024/b.jpg", "inbox/album/a.jpg"]
    assert not window.problems_button.isVisible()


def test_remote_urls_are_not_accepted(window):
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.invalid/file.bin")])
    enter = drag_enter(QPoint(10, 10), mime)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def queue_three(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> list[int]:
    make_tree(tmp_path)
    window.add_paths([str(tmp_path / "notes.txt"), str(tmp_path / "album")])
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=5000)
    return [int(i) for i in window.model.ids()]


def test_pause_resume_cancel_from_the_keyboard_reach_the_engine(qtbot, window, engine, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    window.view.setFocus()
    window.row_actions.select_ids(ids[:2])
    QTest.keyClick(window.view, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert ("pause", ids[:2]) in engine.calls
    qtbot.waitUntil(
        lambda: [window.model.current_state(i) for i in ids[:2]] == [TransferState.PAUSED] * 2,
        timeout=3000,
    )
    window.model.flush()
    window.row_actions.select_ids(ids[:2])
    assert window.row_actions.act_resume.isEnabled()
    QTest.keyClick(window.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert ("resume", ids[:2]) in engine.calls
    qtbot.waitUntil(
        lambda: window.model.current_state(ids[0]) is TransferState.QUEUED, timeout=3000
    )
    window.row_actions.select_ids([ids[2]])
    QTest.keyClick(window.view, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ControlModifier)
    assert ("cancel", [ids[2]]) in engine.calls
    qtbot.waitUntil(
        lambda: window.model.current_state(ids[2]) is TransferState.CANCELLED, timeout=3000
    )
    window.model.flush()
    window.row_actions.select_ids([ids[2]])
    assert window.row_actions.act_retry.isEnabled()
    window.row_actions.act_retry.trigger()
    assert ("retry", [ids[2]]) in engine.calls
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert ("remove", [ids[2]]) in engine.calls
    assert window.model.index_of(ids[2]) is None


def test_progress_from_engine_threads_reaches_rows_and_totals(qtbot, window, engine, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    big = 6 * 1024**3
    engine._post([
        ev.Started(upload=ids[0], key="k", size=big, confirmed_bytes=0, resumed=False,
                   multipart=True),
        *[
            ev.Progress(upload=ids[0], confirmed_bytes=n * 1024**3, sent_bytes=512 * 1024**2,
                        total=big, speed=50e6, eta=60.0)
            for n in range(1, 4)
        ],
        ev.Failed(upload=ids[1], message="The AccessKey secret is wrong.",
                  code="SignatureDoesNotMatch", retryable=False, error_kind="permanent"),
        ev.Done(upload=ids[2], key="k", size=300, crc64=1, etag="e", seconds=1.0),
    ])
    qtbot.waitUntil(lambda: window.model.row(ids[0]).confirmed_bytes == 3 * 1024**3, timeout=3000)
    row = window.model.row(ids[0])
    assert row.state is TransferState.UPLOADING
    assert row.sent_bytes == 3 * 1024**3 + 512 * 1024**2
    assert window.model.row(ids[1]).state is TransferState.FAILED
    assert window.model.row(ids[2]).state is TransferState.DONE
    text = window.totals_label.text()
    assert "1 uploading" in text and "1 failed" in text and "left" in text
    # Error details for the failed row.
    window.row_actions.select_ids([ids[1]])
    assert window.row_actions.act_error_details.isEnabled()
    box = window.row_actions.error_details_box(window.model.row(ids[1]))
    assert "SignatureDoesNotMatch" in box.detailedText()
    assert "secret is wrong" in box.informativeText()
    # Clear finished removes the done row only, and tells the engine.
    window.clear_finished()
    assert window.model.index_of(ids[2]) is None
    assert window.model.index_of(ids[1]) is not None
    assert "clear_finished" in engine.names()


def test_copy_url_and_presigned_link(qtbot, window, engine, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    engine._post([ev.Done(upload=ids[0], key="k", size=100, crc64=1, etag="e", seconds=1.0)])
    qtbot.waitUntil(lambda: window.model.current_state(ids[0]) is TransferState.DONE, timeout=3000)
    window.model.flush()
    window.row_actions.select_ids([ids[0]])
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    key = window.model.row(ids[0]).key
    assert QGuiApplication.clipboard().text() == f"https://photos.example.invalid/{key}"
    window.row_actions.ask_presign_expiry = lambda: 86_400
    assert window.row_actions.act_copy_presigned.isEnabled()
    window.row_actions.act_copy_presigned.trigger()
    qtbot.waitUntil(lambda: "Expires=86400" in QGuiApplication.clipboard().text(), timeout=3000)
    assert ("presign", (ids[0], 86_400)) in engine.calls


def test_move_to_top_and_bottom(qtbot, window, engine, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    window.row_actions.select_ids([ids[2]])
    window.row_actions.act_move_top.trigger()
    assert window.model.ids()[0] == ids[2]
    assert ("move_top", [ids[2]]) in engine.calls
    window.row_actions.select_ids([ids[2]])
    window.row_actions.act_move_bottom.trigger()
    assert window.model.ids()[-1] == ids[2]


def test_context_menu_lists_the_row_actions(qtbot, window, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    window.row_actions.select_ids([ids[0]])
    menu = window.row_actions.context_menu()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    for wanted in ("Pause", "Resume", "Retry", "Cancel upload", "Remove from list",
                   "Open containing folder", "Copy object URL", "Copy pre-signed link…",
                   "Show error details…", "Move to top", "Move to bottom"):
        assert wanted in texts
    enabled = {a.text() for a in menu.actions() if a.isEnabled()}
    assert "Pause" in enabled and "Resume" not in enabled and "Retry" not in enabled


def test_first_run_panel_without_accounts(qtbot, engine):
    w = MainWindow(engine, profile_store=MemoryProfiles([]))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    assert w.stack.currentWidget() is w.first_run
    assert w.first_run.add_button.text() == "Add an OSS account"
    with qtbot.waitSignal(w.sandboxRequested, timeout=1000):
        QTest.mouseClick(w.first_run.sandbox_button, Qt.MouseButton.LeftButton)
    # A session profile (the sandbox's) turns the panel into the queue.
    w.destination_bar.add_extra_profile(SessionProfile(
        name="sandbox", endpoint="http://127.0.0.1:9", bucket="sb", region="cn-hangzhou"))
    qtbot.waitUntil(lambda: w.destination_bar.current_profile() is not None, timeout=3000)
    assert w.stack.currentWidget() is w.view
    assert w.destination_bar.bucket_edit.text() == "sb"


def test_closing_with_active_uploads_asks_and_pauses(qtbot, window, engine, tmp_path):
    queue_three(qtbot, window, tmp_path)
    asked: list[int] = []

    def stay(active: int) -> str:
        asked.append(active)
        return "stay"

    window.ask_quit = stay
    window.close()
    assert asked == [3] and window.isVisible() and not engine.closed
    window.ask_quit = lambda active: "pause"
    window.close()
    assert not window.isVisible()
    assert ("shutdown", True) in engine.calls


def _has_colour(image: QImage, predicate: Callable[[QColor], bool]) -> bool:
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            if predicate(image.pixelColor(x, y)):
                return True
    return False


def test_delegate_paints_states_in_their_colours(qtbot, window, engine, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    engine._post([
        ev.Failed(upload=ids[0], message="no", code="X", retryable=True, error_kind="retryable"),
        ev.Done(upload=ids[1], key="k", size=200, crc64=1, etag="e", seconds=1.0),
    ])
    qtbot.waitUntil(lambda: window.model.current_state(ids[1]) is TransferState.DONE, timeout=3000)
    window.model.flush()
    window.view.clearSelection()
    window.resize(1200, 500)

    def bar_image(row_id: RowKey) -> QImage:
        n = window.model.index_of(row_id)
        assert n is not None
        index = window.queue_filter.from_source_row(n, Column.PROGRESS)  # the view's index
        rect = window.view.visualRect(index)
        image: QImage = window.view.viewport().grab(rect).toImage()
        return image

    failed = bar_image(ids[0])
    done = bar_image(ids[1])
    assert not failed.isNull() and failed.width() > 50
    # Failed: no red fill yet (0 bytes), Done: the whole bar is green.
    assert _has_colour(done, lambda c: c.green() > 120 and c.red() < 100 and c.blue() < 120)
    assert not _has_colour(failed, lambda c: c.green() > 120 and c.red() < 100 and c.blue() < 120)
    window.model.update_progress(ids[0], 50, 80)
    window.model.flush()
    failed = bar_image(ids[0])
    assert _has_colour(failed, lambda c: c.red() > 180 and c.green() < 110 and c.blue() < 110)


@pytest.mark.skipif(os.name != "posix", reason="symlinks need privileges on Windows")
def test_symlink_loop_is_reported_not_fatal(qtbot, window, tmp_path):
    (tmp_path / "top" / "sub").mkdir(parents=True)
    (tmp_path / "top" / "sub" / "file.txt").write_text("hello")
    (tmp_path / "top" / "sub" / "back").symlink_to(tmp_path / "top")
    window.add_paths([str(tmp_path / "top")])
    qtbot.waitUntil(lambda: not window.walk_jobs, timeout=5000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=3000)
    assert [p.kind.value for p in window.problems] == ["loop"]
    assert "link loop" in window.problem_text(window.problems[0])


def test_ten_thousand_rows_and_eight_busy_uploads_stay_responsive(qtbot, window, engine):
    rows = [
        ev.Queued(upload=i, source=f"/big/{i:05d}.bin", key=f"big/{i:05d}.bin",
                  size=(i + 1) * 1_000_003, bucket="photos")
        for i in range(1, 10_001)
    ]
    engine._post(rows)
    qtbot.waitUntil(lambda: window.model.rowCount() == 10_000, timeout=10_000)
    window.view.scrollTo(window.model.index(5000, 0))
    busy = range(5000, 5008)
    engine._post([
        ev.Started(upload=i, key="k", size=(i + 1) * 1_000_003, confirmed_bytes=0,
                   resumed=False, multipart=True)
        for i in busy
    ])
    window.bridge.drain()
    QApplication.processEvents()
    changed: set[int] = set()
    window.model.dataChanged.connect(
        lambda top, bottom, *_: changed.update(range(top.row(), bottom.row() + 1)))
    for tick in range(1, 16):
        # What the engine sends in a quarter second: up to 10 events per file per second.
        engine._post([
            ev.Progress(upload=i, confirmed_bytes=tick * 100_000 + n, sent_bytes=50_000,
                        total=(i + 1) * 1_000_003, speed=4e6, eta=30.0)
            for i in busy for n in range(3)
        ])
        window.bridge.drain()
        QApplication.processEvents()  # the repaint of the changed cells
    assert window.model.row(5003).confirmed_bytes == 15 * 100_000 + 2
    assert "8 uploading" in window.totals_label.text()
    # No work that grows with the queue: only the busy uploads' rows were touched.
    assert changed == {window.model.index_of(i) for i in busy}


def test_files_dropped_on_the_queue_view_reach_the_window(qtbot, window, tmp_path):
    (tmp_path / "one.txt").write_text("1")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "one.txt"))])
    viewport = window.view.viewport()
    enter = drag_enter(viewport.rect().center(), mime)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    drop_event = QDropEvent(QPointF(viewport.rect().center()), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop_event)
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=5000)


def test_dragging_rows_reorders_the_engine_queue(qtbot, window, engine, tmp_path):
    ids = queue_three(qtbot, window, tmp_path)
    window.view.sortByColumn(Column.SIZE, Qt.SortOrder.DescendingOrder)
    order = window.model.ids()
    mime = window.model.mimeData([window.model.index(2, 0)])
    window.model.dropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert window.model.ids() == [order[2], order[0], order[1]]
    assert ("move_bottom", [order[2], order[0], order[1]]) in engine.calls
    assert window.view.horizontalHeader().sortIndicatorSection() == -1
    assert sorted(ids) == sorted(order)
