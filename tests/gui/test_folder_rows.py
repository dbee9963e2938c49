"""A dropped folder is one row of the queue (issue 15, item 6, the window side): its sums,
its words, its files inside it, the actions on all its files, the filters that look into it,
and the cost of 100,000 files in it."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from ossdesk import config
from ossdesk.core import events as ev
from ossdesk.ui import folder_rows
from ossdesk.ui.bridge import EventBridge
from ossdesk.ui.engine_types import RowsRemoved, TransferRow, TransferState
from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.folder_store import FolderReader
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.queue_filter import QueueFilter, Show
from ossdesk.ui.transfer_model import Column, Role, TransferModel
from tests.gui import folder_stream as fs
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import PROFILE, MemoryProfiles

MIB = fs.MIB


@pytest.fixture
def window(qtbot: QtBot) -> MainWindow:
    w = MainWindow(FakeEngine(), profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(w)
    w.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    w.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    w.resize(1400, 600)
    w.show()
    qtbot.waitUntil(lambda: w.destination_bar.profiles_loaded, timeout=3000)
    return w


def feed(window: MainWindow, events: list[Any]) -> None:
    """Hand events to the window as the engine's pipe does, and apply them."""
    window.bridge.post_batch(events)
    window.bridge.drain()
    window.model.flush()


def cell(window: MainWindow, column: Column, line: int = 0) -> Any:
    """What the view shows on a line of the queue."""
    return window.view.model().index(line, column).data()


def names(window: MainWindow) -> list[str]:
    model = window.view.model()
    return [model.index(n, Column.NAME).data() for n in range(model.rowCount())]


def open_folder(window: MainWindow, folder: int) -> None:
    """Open a folder as a user does: a click on its ▸ mark."""
    index = window.queue_filter.mapFromSource(window.model.folder_index(folder))
    rect = window.view.visualRect(index)
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.topLeft() + QPoint(8, rect.height() // 2))


def engine(window: MainWindow) -> FakeEngine:
    assert isinstance(window.engine, FakeEngine)
    return window.engine


TREE = fs.folder(7, [("2024/img 001.jpg", 4 * MIB), ("2024/img 002.jpg", 2 * MIB),
                     ("notes.txt", 2 * MIB)])


def test_a_dropped_folder_is_one_row_with_its_sums_and_its_state_in_words(
        window: MainWindow) -> None:
    state_width = window.view.columnWidth(Column.STATE)
    feed(window, fs.queued(TREE))
    # The State column makes room for a folder's words, the Name column keeps its own.
    assert window.view.columnWidth(Column.STATE) > state_width
    assert window.view.columnWidth(Column.NAME) >= window.view.NAME_ROOM
    assert window.view.model().rowCount() == 1
    assert cell(window, Column.NAME) == "▸ 相册 folder"
    assert cell(window, Column.SIZE) == "8 MiB"
    assert cell(window, Column.STATE) == "Waiting · 0/3"
    assert cell(window, Column.DESTINATION) == "oss://photos/2024/相册 folder/"
    # The status bar and the tray count files.
    assert window.model.totals().files == 3

    feed(window, [fs.started(TREE, 0), fs.started(TREE, 1),
                  fs.progress(TREE, 0, 1 * MIB, 1 * MIB, 1.0 * MIB, 3.0),
                  fs.progress(TREE, 1, 0, 1 * MIB, 1.0 * MIB, 20.0)])
    node = window.view.model().index(0, 0).data(Role.ROW)
    assert isinstance(node, FolderNode)
    assert (node.confirmed_bytes, node.sent_bytes, node.size) == (1 * MIB, 3 * MIB, 8 * MIB)
    assert cell(window, Column.PROGRESS) == "37 % (12 % confirmed)"
    assert cell(window, Column.SPEED) == "2 MiB/s"
    # 7 MiB left at 2 MiB/s is 3.5 s, but one of its files says 20 s: never shorter.
    assert node.eta == 20.0
    assert cell(window, Column.STATE) == "Uploading · 0/3"

    feed(window, [fs.done(TREE, 0), fs.failed(TREE, 1)])
    assert cell(window, Column.STATE) == "Waiting · 1/3 · 1 failed"
    # Its tooltip (and its details) in whole words.
    assert window.view.model().index(0, Column.STATE).data(Qt.ItemDataRole.ToolTipRole) == (
        "Waiting · 1 of 3 files done · 1 failed")
    feed(window, [fs.started(TREE, 2), fs.done(TREE, 2)])
    assert cell(window, Column.STATE) == "Failed: 1 of 3 files"
    assert cell(window, Column.SPEED) == "" and cell(window, Column.ETA) == ""
    tip = window.view.model().index(0, Column.PROGRESS).data(Qt.ItemDataRole.ToolTipRole)
    # The failed file's unconfirmed MiB was sent: the tooltip says both counts.
    assert "Sent: 7 MiB of 8 MiB (87 %)" in tip and "Confirmed by OSS: 6 MiB (75 %)" in tip

    # Retried and verified: only now does the folder say Verified (CRC-64).
    feed(window, [fs.started(TREE, 1), fs.done(TREE, 1, check="md5")])
    assert cell(window, Column.STATE) == "2 verified (CRC-64), 1 verified (MD5)"
    assert cell(window, Column.PROGRESS) == "100 %"
    feed(window, [fs.started(TREE, 1), fs.done(TREE, 1)])
    assert cell(window, Column.STATE) == "Verified (CRC-64)"


def test_paused_and_cancelled_folders_say_so(window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    feed(window, [fs.paused(TREE, n) for n in range(3)])
    assert cell(window, Column.STATE) == "Paused · 0/3"
    feed(window, [fs.cancelled(TREE, n) for n in range(3)])
    assert cell(window, Column.STATE) == "Cancelled"
    assert cell(window, Column.PROGRESS) == ""


def test_expanding_shows_the_files_by_their_path_inside_the_folder(window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    assert window.view.model().rowCount() == 1  # closed: its files are no lines
    open_folder(window, TREE.id)
    assert names(window) == ["▾ 相册 folder", "\u2003\u20032024/img 001.jpg",
                             "\u2003\u20032024/img 002.jpg", "\u2003\u2003notes.txt"]
    assert cell(window, Column.SIZE, 1) == "4 MiB"
    # The folder's line says where they go; each file's whole destination is its tooltip.
    assert cell(window, Column.DESTINATION, 1) == ""
    tip = window.view.model().index(1, Column.DESTINATION).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == "oss://photos/2024/相册 folder/2024/img 001.jpg"
    first = window.model.row(1)
    assert first is not None
    assert first.destination == "oss://photos/2024/相册 folder/2024/img 001.jpg"
    # Files that arrive while it is open come in under it, before what follows.
    window.model.add_rows([TransferRow(id=50, name="a.iso", source_path="/a.iso", size=MIB,
                                       destination="oss://photos/a.iso")])
    more = fs.folder(TREE.id, [("later.txt", MIB)], first_upload=10)
    feed(window, fs.queued(more)[1:])
    assert names(window)[-2:] == ["\u2003\u2003later.txt", "a.iso"]
    # Closed again (the left arrow key on it), its files are no lines again.
    window.view.setCurrentIndex(window.view.model().index(0, 0))
    QTest.keyClick(window.view, Qt.Key.Key_Left)
    assert names(window) == ["▸ 相册 folder", "a.iso"]


def test_actions_on_a_folder_row_send_every_file_once(window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    feed(window, [fs.started(TREE, 0)])
    open_folder(window, TREE.id)
    fake = engine(window)
    fake.resume = lambda ids: fake.calls.append(("resume", list(ids)))  # type: ignore[method-assign]
    actions = window.row_actions
    # The folder and one of its files selected: each file's id goes once.
    selection = window.view.selectionModel()
    actions.select_folder(TREE.id)
    selection.select(window.queue_filter.from_key(TREE.upload(1)),
                     selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
    assert [r.id for r in actions.selected_rows()] == TREE.uploads
    assert actions.act_pause.isEnabled() and not actions.act_retry.isEnabled()
    actions.pause_selected()
    assert engine(window).calls[-1] == ("pause", TREE.uploads)
    feed(window, [])
    window.bridge.drain()
    window.model.flush()
    assert cell(window, Column.STATE) == "Paused · 0/3"
    actions.update_actions()
    assert actions.act_resume.isEnabled()
    actions.resume_selected()
    assert engine(window).calls[-1] == ("resume", TREE.uploads)

    actions.select_folder(TREE.id)
    actions.cancel_selected()
    assert engine(window).calls[-1] == ("cancel", TREE.uploads)
    window.bridge.drain()
    window.model.flush()
    actions.update_actions()
    assert actions.act_retry.isEnabled()
    actions.retry_selected()
    assert engine(window).calls[-1] == ("retry", TREE.uploads)
    window.model.flush()
    # Retry keeps it where it is (open, its files under it), waiting again.
    assert names(window) == ["▾ 相册 folder", "\u2003\u20032024/img 001.jpg",
                             "\u2003\u20032024/img 002.jpg", "\u2003\u2003notes.txt"]
    assert cell(window, Column.STATE) == "Waiting · 0/3"

    actions.move_selected_to_top()
    assert engine(window).calls[-1] == ("move_top", TREE.uploads)
    actions.remove_selected()
    assert engine(window).calls[-1] == ("remove", TREE.uploads)
    assert window.view.model().rowCount() == 0


def test_a_folder_sits_where_its_first_file_came_and_moves_whole(window: MainWindow) -> None:
    other = fs.folder(8, 2, source="/home/ann/scans", first_upload=100)
    single = TransferRow(id=50, name="a.iso", source_path="/a.iso", size=MIB,
                         destination="oss://photos/a.iso")
    window.model.add_rows([single])
    feed(window, fs.queued(TREE))
    feed(window, fs.queued(other))
    assert names(window) == ["a.iso", "▸ 相册 folder", "▸ scans"]
    assert window.model.ids() == [50, *TREE.uploads, *other.uploads]
    window.row_actions.select_folder(other.id)
    window.row_actions.move_selected_up()
    assert names(window) == ["a.iso", "▸ scans", "▸ 相册 folder"]
    # The engine hears the order shown: every file from the moved folder to the end.
    assert engine(window).calls[-1] == ("move_bottom", [*other.uploads, *TREE.uploads])


def test_the_failed_filter_finds_the_one_failed_file_among_20000_done(
        window: MainWindow) -> None:
    big = fs.folder(9, 20_000, source="/data/shoot")
    states = {n: TransferRow(
        id=big.upload(n), name=big.files[n][0], source_path=f"{big.source}/{big.files[n][0]}",
        size=MIB, destination="", key=big.key(n), bucket=big.bucket, profile=big.profile,
        folder=big.id, state=TransferState.DONE, confirmed_bytes=MIB, sent_bytes=MIB,
        check="crc64") for n in range(20_000) if n != 12_345}
    feed(window, fs.restored(big, states))
    failed_id = big.upload(12_345)
    feed(window, [fs.started(big, 12_345), fs.failed(big, 12_345)])
    bar = window.filter_bar
    assert bar.button_text(Show.FAILED) == "Failed (1)"
    assert bar.button_text(Show.DONE) == "Done (19999)"
    assert cell(window, Column.STATE) == "Failed: 1 of 20,000 files"

    QTest.mouseClick(bar.buttons[Show.FAILED], Qt.MouseButton.LeftButton)
    # The folder, opened, with just its failed file under it.
    assert names(window) == ["▾ shoot", "\u2003\u2003img 12345.jpg"]
    window.row_actions.select_ids([failed_id])
    assert [r.id for r in window.row_actions.selected_rows()] == [failed_id]
    assert window.row_actions.act_retry.isEnabled()

    # Back to All: the folder the filter opened is closed again.
    QTest.mouseClick(bar.buttons[Show.ALL], Qt.MouseButton.LeftButton)
    assert names(window) == ["▸ shoot"]
    # A search by name looks into the folder too.
    window.queue_filter.set_search("img 00042")
    assert names(window) == ["▾ shoot", "\u2003\u2003img 00042.jpg"]
    window.queue_filter.set_search("nothing like it")
    assert names(window) == []
    window.queue_filter.set_search("")
    assert names(window) == ["▸ shoot"]


def test_a_search_shows_a_matching_file_that_arrives_in_an_open_folder(
        window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    open_folder(window, TREE.id)
    window.queue_filter.set_search("later")
    assert names(window) == []
    more = fs.folder(TREE.id, [("later.txt", MIB), ("other.txt", MIB)], first_upload=10)
    feed(window, fs.queued(more)[1:])
    assert names(window) == ["▾ 相册 folder", "\u2003\u2003later.txt"]
    window.queue_filter.set_search("")
    assert len(names(window)) == 6


def test_a_folders_files_listed_at_once_are_what_it_keeps_of_each(window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    feed(window, [fs.started(TREE, 0), fs.progress(TREE, 0, MIB, MIB, 2.0 * MIB, 1.5),
                  fs.failed(TREE, 1)])
    node = window.model.folder(TREE.id)
    assert node is not None
    assert folder_rows._FAST_ROWS  # a field added to TransferRow: set it in light_rows too
    assert node.light_rows() == [node.light(slot) for slot in node.order]
    assert [(r.state, r.confirmed_bytes, r.speed, r.error) for r in node.light_rows()] == [
        (TransferState.UPLOADING, MIB, 2.0 * MIB, ""),
        (TransferState.FAILED, 0, 0.0, "AccessDenied: no permission"),
        (TransferState.QUEUED, 0, 0.0, "")]


def test_sorting_orders_the_top_rows_and_the_files_inside_each_folder(
        window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    window.model.add_rows([TransferRow(id=50, name="a.iso", source_path="/a.iso",
                                       size=100 * MIB, destination="oss://photos/a.iso")])
    open_folder(window, TREE.id)
    window.model.sort(Column.SIZE)
    assert names(window)[0] == "▾ 相册 folder" and names(window)[-1] == "a.iso"
    assert [cell(window, Column.SIZE, n) for n in range(5)] == [
        "8 MiB", "2 MiB", "2 MiB", "4 MiB", "100 MiB"]
    # By name, its files in the order of their paths inside it (read from the upload list).
    window.model.sort(Column.NAME, Qt.SortOrder.DescendingOrder)
    assert names(window) == ["▾ 相册 folder", "\u2003\u2003notes.txt",
                             "\u2003\u20032024/img 002.jpg", "\u2003\u20032024/img 001.jpg",
                             "a.iso"]
    # What looks for files already in the queue gets their paths and keys.
    listed = {r.id: (r.source_path, r.key) for r in window.model.rows(full=False)}
    assert listed[TREE.upload(2)] == (f"{TREE.source}/notes.txt", TREE.key(2))


def test_a_restart_rebuilds_the_folder_from_its_restored_rows(window: MainWindow) -> None:
    feed(window, fs.restored(TREE))
    assert window.view.model().rowCount() == 1
    assert cell(window, Column.NAME) == "▸ 相册 folder"
    assert cell(window, Column.STATE) == "Waiting · 0/3"
    open_folder(window, TREE.id)
    assert cell(window, Column.NAME, 1) == "\u2003\u20032024/img 001.jpg"


def test_the_folder_goes_when_its_last_file_goes(window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    feed(window, [RowsRemoved((TREE.upload(0), TREE.upload(1)))])
    assert window.view.model().rowCount() == 1
    assert cell(window, Column.SIZE) == "2 MiB"
    feed(window, [fs.started(TREE, 2), fs.done(TREE, 2)])
    window.model.clear_finished()
    assert window.view.model().rowCount() == 0
    assert window.model.totals().files == 0


def test_100000_files_in_a_folder_keep_the_tick_budget(qapp: Any) -> None:
    model = TransferModel()
    proxy = QueueFilter(model)
    big = fs.folder(3, 100_000)
    fs.record(big)
    model.add_folders([big.info])
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda parent, first, last: inserted.append((first, last)))
    rows = [TransferRow(id=big.upload(n), name=big.files[n][0],
                        source_path=f"{big.source}/{big.files[n][0]}", size=MIB,
                        destination=f"oss://{big.bucket}/{big.key(n)}", bucket=big.bucket,
                        key=big.key(n), profile=big.profile, folder=big.id)
            for n in range(100_000)]
    chunk = 200  # what the bridge applies per step
    for start in range(0, len(rows), chunk):
        model.add_rows(rows[start:start + chunk])
    # The folder's line, once: its files are no lines while it is closed.
    assert inserted == [(0, 0)]
    assert model.rowCount() == 1 and proxy.rowCount() == 1
    assert model.totals().files == 100_000
    # The folder keeps of its files only what its sums need: nothing was read yet.
    assert model.reader.reads == 0
    kept = model.item(model.index_for(big.upload(5)))
    assert kept is None  # a closed folder's files are no lines
    node = model.folder(big.id)
    assert node is not None
    model.set_expanded(node, True)
    assert model.rowCount() == 100_001 and proxy.rowCount() == 100_001
    # A file shown is read from the upload list with the page around it, once.
    kept = model.item(model.index_for(big.upload(5)))
    assert isinstance(kept, TransferRow)
    assert (kept.name, kept.key, kept.destination) == (
        "img 00005.jpg", big.key(5), f"oss://photos/{big.key(5)}")
    assert kept.bucket is big.info.bucket and kept.profile is big.info.profile
    assert model.reader.reads == 1
    assert model.item(model.index_for(big.upload(60))) is not None
    assert model.reader.reads == 1
    last = model.item(model.index(100_000, 0))
    assert isinstance(last, TransferRow) and last.name == "img 99999.jpg"
    assert model.reader.reads == 2
    whole = model.row(big.upload(5))
    assert whole is not None and (whole.key, whole.destination) == (
        big.key(5), f"oss://photos/{big.key(5)}")
    model.set_expanded(node, False)
    reads = model.reader.reads

    # A progress tick of 8 moving files: 8 shares taken away and added again, no walk of
    # the folder's files, one range of changed files and one folder row repainted.
    calls = {"count": 0}
    original = FolderNode.count

    def counting(self: FolderNode, row: TransferRow, sign: int) -> None:
        calls["count"] += 1
        original(self, row, sign)

    FolderNode.count = counting  # type: ignore[method-assign]
    try:
        for n in range(8):
            model.update(big.upload(n), state=TransferState.UPLOADING)
        model.flush()
        calls["count"] = 0
        ranges = model.data_changed_ranges
        for n in range(8):
            model.update_progress(big.upload(n), MIB // 2, MIB // 2, 1.0 * MIB, 1.0)
        model.flush()
    finally:
        FolderNode.count = original  # type: ignore[method-assign]
    assert calls["count"] == 16
    assert model.data_changed_ranges - ranges == 1  # the closed folder's line
    assert model.reader.reads == reads  # a closed folder's tick reads nothing
    assert node.speed == 8.0 * MIB
    assert node.state_text("Uploading") == "Uploading · 0 of 100,000 files done"
    assert node.state_text("Uploading", short=True) == "Uploading · 0/100,000"
    proxy.deleteLater()
    model.deleteLater()


def test_a_folders_files_take_little_memory_in_the_window(qapp: Any) -> None:
    """20,000 files of a folder as the engine announces them: the window keeps well under
    100 bytes a file (names, paths and keys stay in the upload list), and shows them all."""
    big = fs.folder(5, 20_000)
    fs.record(big)
    model = TransferModel()
    bridge = EventBridge(model)
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        events = fs.queued(big)  # made here, freed once applied (as the pipe's are)
        for start in range(0, len(events), 2000):
            bridge.post_batch(events[start:start + 2000])
            bridge.drain()
        del events
        model.flush()
        gc.collect()
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model.totals().files == 20_000
    assert (used - base) / 20_000 < 100
    node = model.folder(big.id)
    assert node is not None
    model.set_expanded(node, True)
    last = model.item(model.index(20_000, Column.NAME))
    assert isinstance(last, TransferRow) and last.name == "img 19999.jpg"
    bridge.deleteLater()
    model.deleteLater()


def test_a_folders_details_give_its_counts_sizes_destination_and_first_failures(
        window: MainWindow) -> None:
    many = fs.folder(4, 8, source="/data/scans")
    feed(window, fs.queued(many))
    feed(window, [fs.started(many, 0), fs.done(many, 0)])
    feed(window, [fs.failed(many, n, f"AccessDenied: file {n}") for n in range(1, 8)])
    window.row_actions.select_folder(many.id)
    window.row_actions.update_actions()
    assert window.row_actions.act_details.isEnabled()
    assert window.row_actions.act_retry.isEnabled()
    node = window.model.folder(many.id)
    assert node is not None
    dialog = window.row_actions.folder_details_dialog(node)
    values = dialog.values
    assert values["state"] == "Failed: 7 of 8 files"
    assert values["files"] == "Done: 1, Failed: 7"
    assert values["size"] == "8 MiB"
    assert values["destination"] == "oss://photos/2024/scans/"
    lines = values["failures"].splitlines()
    assert lines[0] == "img 00001.jpg: AccessDenied: file 1"
    assert len(lines) == 6 and lines[-1] == "and 2 more (the Failed filter shows them all)"
    dialog.deleteLater()


def test_dragging_a_folder_line_moves_all_its_files(window: MainWindow) -> None:
    window.model.add_rows([TransferRow(id=50, name="a.iso", source_path="/a.iso", size=MIB,
                                       destination="oss://photos/a.iso")])
    feed(window, fs.queued(TREE))
    model = window.model
    dragged: list[tuple[object, object]] = []
    model.rowsDragged.connect(lambda moved, tail: dragged.append((moved, tail)))
    mime = model.mimeData([model.folder_index(TREE.id)])
    # Dropped on the first line: before it.
    model.dropMimeData(mime, Qt.DropAction.MoveAction, -1, 0, model.index(0, 0))
    assert names(window) == ["▸ 相册 folder", "a.iso"]
    assert dragged == [(TREE.uploads, [*TREE.uploads, 50])]
    assert engine(window).calls[-1] == ("move_bottom", [*TREE.uploads, 50])


def test_moving_some_files_of_a_folder_tells_the_engine_the_order_shown(
        window: MainWindow) -> None:
    """Some files of a folder moved to its top: the engine is sent the order the window
    shows (those files first within the folder, the folder where it was), not a move to
    the top of the whole queue."""
    first = fs.folder(3, [("a.jpg", MIB), ("b.jpg", MIB)])
    second = fs.folder(4, [("c.jpg", MIB), ("d.jpg", MIB), ("e.jpg", MIB)],
                       source="/home/ann/trip", first_upload=10)
    feed(window, fs.queued(first) + fs.queued(second))
    open_folder(window, second.id)
    window.row_actions.select_ids([second.upload(2)])
    window.row_actions.move_selected_to_top()
    shown = [r.id for r in window.model.rows()]
    assert shown == [*first.uploads, second.upload(2), second.upload(0), second.upload(1)]
    assert engine(window).calls[-1] == (
        "move_bottom", [second.upload(2), second.upload(0), second.upload(1)])
    # A whole folder still moves to the top of the queue.
    window.row_actions.select_folder(second.id)
    window.row_actions.move_selected_to_top()
    assert engine(window).calls[-1] == ("move_top", shown[2:])


def test_what_waits_under_a_watched_folder_is_counted_without_reading_the_folders_files(
        window: MainWindow) -> None:
    """The watched folders' "uploading N" is counted every second: a dropped folder under
    the watched one counts from its sums; only a watched folder inside a dropped one needs
    the paths of that folder's files."""
    feed(window, fs.queued(TREE))
    feed(window, [fs.started(TREE, 0), fs.done(TREE, 0), fs.started(TREE, 1)])
    model = window.model
    reads = model.reader.reads
    assert model.waiting_under("photos", "/home/ann/") == 2  # one uploading, one waiting
    assert model.waiting_under("photos", "/home/ann/相册 folder/") == 2
    assert model.waiting_under("other", "/home/ann/") == 0
    assert model.waiting_under("photos", "/home/bob/") == 0
    assert model.reader.reads == reads
    # Inside the dropped folder: its files' paths are read.
    assert model.waiting_under("photos", "/home/ann/相册 folder/2024/") == 1
    assert model.waiting_under("photos", "/home/ann/相册 folder/2025/") == 0


def test_pause_all_and_resume_all_take_a_folders_files_from_its_states(
        window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    feed(window, [fs.started(TREE, 0), fs.done(TREE, 0), fs.started(TREE, 1)])
    fake = engine(window)
    reads = window.model.reader.reads
    window.pause_all()
    assert fake.calls[-1] == ("pause", [TREE.upload(1), TREE.upload(2)])
    feed(window, [fs.paused(TREE, 1), fs.paused(TREE, 2)])
    # (The fake engine answers Resume only for files it queued itself: record the call.)
    fake.resume = lambda ids: fake.calls.append(("resume", list(ids)))  # type: ignore[method-assign]
    window.resume_all()
    assert fake.calls[-1] == ("resume", [TREE.upload(1), TREE.upload(2)])
    assert window.model.reader.reads == reads  # nothing read from the upload list


# ---- the cost of failures, damaged reads, restarts and watched folders inside ---------------


def test_failures_of_a_folders_files_are_read_together_not_one_read_each(
        window: MainWindow) -> None:
    """3,000 files of a closed folder fail at once (a network outage): the window reads the
    failed files of each applied batch together, and still tells each by name."""
    big = fs.folder(9, 3_000)
    feed(window, fs.queued(big))
    told: list[TransferRow] = []
    window.bridge.uploadFailed.connect(told.append)
    reads = window.model.reader.reads
    feed(window, [fs.failed(big, n, f"RequestError: down {n}") for n in range(3_000)])
    node = window.model.folder(big.id)
    assert node is not None and node.states[TransferState.FAILED] == 3_000
    assert window.model.reader.reads - reads <= 3_000 // EventBridge.DRAIN_CHUNK
    assert [r.name for r in told] == [f"img {n:05d}.jpg" for n in range(3_000)]
    assert [r.error for r in told] == [f"RequestError: down {n}" for n in range(3_000)]
    assert window.statusBar().currentMessage() == "img 02999.jpg failed: RequestError: down 2999"


def test_a_failure_is_told_with_its_error_when_the_file_is_queued_again_in_the_same_batch(
        window: MainWindow) -> None:
    feed(window, fs.queued(TREE))
    told: list[TransferRow] = []
    window.bridge.uploadFailed.connect(told.append)
    queued_again = ev.Queued(upload=TREE.upload(1), source=f"{TREE.source}/2024/img 002.jpg",
                             key=TREE.key(1), size=2 * MIB, bucket=TREE.bucket,
                             account=TREE.profile, folder=TREE.id)
    feed(window, [fs.failed(TREE, 1), queued_again])
    assert [(r.name, r.state, r.error) for r in told] == [
        ("2024/img 002.jpg", TransferState.FAILED, "AccessDenied: no permission")]
    node = window.model.folder(TREE.id)
    assert node is not None and node.states[TransferState.QUEUED] == 3


def _folder_rows_model(big: fs.DroppedFolder, reader: FolderReader | None = None,
                       ) -> TransferModel:
    model = TransferModel()
    if reader is not None:
        model.reader = reader
    fs.record(big)
    model.add_folders([big.info])
    model.add_rows([TransferRow(id=big.upload(n), name="", source_path="", size=MIB,
                                destination="", bucket=big.bucket, key="",
                                profile=big.profile, folder=big.id)
                    for n in range(len(big.files))])
    return model


def shown(model: TransferModel, line: int) -> str:
    """The Name cell of a line (without the indent of a folder's file)."""
    return str(model.index(line, Column.NAME).data()).strip()


def test_a_damaged_page_of_the_upload_list_shows_the_row_without_its_name(qapp: Any) -> None:
    """An SQLite error while the query runs (here a damaged page) is not let into Qt's
    data(): the file's line shows what the window keeps of it."""
    big = fs.folder(4, 3_000)
    model = _folder_rows_model(big)
    path = config.paths().database
    with contextlib.closing(sqlite3.connect(path)) as conn:  # fold the WAL in, damage pages
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    with open(path, "r+b") as fh:
        for p in range(2, pages):
            fh.seek(p * page)
            fh.write(b"\xff" * 64)
    node = model.folder(big.id)
    assert node is not None
    model.set_expanded(node, True)
    row = model.item(model.index(1, 0))  # Qt's data() path: must not raise
    assert isinstance(row, TransferRow)
    assert row.id == big.upload(0) and row.name == "" and row.size == MIB
    assert shown(model, 1) == ""


def test_a_failed_read_is_tried_again_after_a_while_not_only_when_a_folder_is_reopened(
        qapp: Any, tmp_path: Path) -> None:
    big = fs.folder(4, 300)
    now = [1000.0]
    broken = tmp_path / "uploads.db"
    broken.write_bytes(b"not a database, " * 512)
    model = _folder_rows_model(big, FolderReader(broken, clock=lambda: now[0]))
    node = model.folder(big.id)
    assert node is not None
    model.set_expanded(node, True)
    assert shown(model, 1) == ""  # cannot be read: no name
    reads = model.reader.reads
    assert shown(model, 2) == ""
    assert model.reader.reads == reads  # not tried at every line asked for
    with contextlib.closing(sqlite3.connect(config.paths().database)) as source, \
            contextlib.closing(sqlite3.connect(broken.with_name("good.db"))) as good:
        source.backup(good)
    broken.unlink()
    broken.with_name("good.db").rename(broken)  # the list can be read again
    now[0] += FolderReader.RETRY_S - 0.5
    assert shown(model, 2) == ""
    assert model.reader.reads == reads
    now[0] += 1.0
    assert shown(model, 2) == "img 00001.jpg"  # the folder still open
    assert shown(model, 1) == "img 00000.jpg"


def test_a_restart_with_a_half_done_folder_sorts_its_ids_a_few_times_not_per_batch(
        qapp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a restart the engine sends a folder's unfinished files, then its finished ones,
    applied 200 at a time: the finished ones' ids fall between those added."""
    sorts = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        sorts[0] += 1
        return sorted(*args, **kwargs)

    monkeypatch.setattr(folder_rows, "sorted", counted, raising=False)
    files = 20_000
    big = fs.folder(6, 1)

    def rows(numbers: range, state: TransferState) -> list[TransferRow]:
        return [TransferRow(id=big.upload(n), name="", source_path="", size=MIB,
                            destination="", bucket=big.bucket, key="", profile=big.profile,
                            folder=big.id, state=state) for n in numbers]

    order = rows(range(1, files, 2), TransferState.QUEUED) + rows(range(0, files, 2),
                                                                  TransferState.DONE)
    model = TransferModel()
    model.add_folders([big.info])
    for start in range(0, len(order), EventBridge.DRAIN_CHUNK):
        model.add_rows(order[start:start + EventBridge.DRAIN_CHUNK])
    assert model.totals().files == files
    assert sorts[0] <= 5  # not one per batch of 200 (50 batches of finished files)
    node = model.folder(big.id)
    assert node is not None
    assert all(node.id_of(node.slot(big.upload(n)) or 0) == big.upload(n)
               for n in range(files))
    assert node.slot(big.upload(files)) is None
    assert node.states[TransferState.DONE] == files // 2


def test_a_watched_folder_inside_a_dropped_one_reads_its_paths_once_not_every_second(
        qapp: Any) -> None:
    big = fs.folder(5, [(f"sub/img {n:06d}.jpg", MIB) for n in range(20_000)]
                    + [(f"other/{n}.jpg", MIB) for n in range(100)])
    model = _folder_rows_model(big)
    inside = big.source + "/sub/"
    reads = model.reader.reads
    for _ in range(3):  # three ticks of the watched folders' counts
        assert model.waiting_under(big.bucket, inside) == 20_000
    assert model.reader.reads - reads == 1
    # A file done: counted from the states the folder keeps, nothing read.
    model.update(big.upload(0), state=TransferState.DONE)
    model.update(big.upload(20_000), state=TransferState.DONE)  # not under sub/
    assert model.waiting_under(big.bucket, inside) == 19_999
    assert model.reader.reads - reads == 1
    # Files added to the folder: its paths are read again.
    more = fs.folder(5, [(f"sub/img {n:06d}.jpg", MIB) for n in range(20_000, 20_010)],
                     first_upload=big.upload(len(big.files)))
    fs.record(more)
    model.add_rows([TransferRow(id=more.upload(n), name="", source_path="", size=MIB,
                                destination="", bucket=more.bucket, key="",
                                profile=more.profile, folder=more.id) for n in range(10)])
    assert model.waiting_under(big.bucket, inside) == 20_009
    assert model.reader.reads - reads == 2
    # Files removed: read again.
    model.remove([big.upload(n) for n in range(1, 11)])
    assert model.waiting_under(big.bucket, inside) == 19_999
    assert model.reader.reads - reads == 3
