"""Save screenshots of the window's main states into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Runs offscreen (no display needed) with a throwaway OSSDESK_HOME, so it never touches the
user's settings, queue or keyring. Rows are put into the queue model directly: the states
shown (uploading, paused, failed, done...) are what the engine's events produce.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["OSSDESK_HOME"] = tempfile.mkdtemp(prefix="ossdesk-screens-")

from PySide6.QtCore import QCoreApplication, QEventLoop, QPoint
from PySide6.QtGui import QColor, QCursor, QFont, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QStyleFactory,
    QVBoxLayout,
    QWidget,
)

from ossdesk.core import events as ev
from ossdesk.core.object_options import ObjectOptions
from ossdesk.core.oss import Credentials
from ossdesk.core.store import NewUpload, Store
from ossdesk.core.upload import KeyFault
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    SandboxServer,
)
from ossdesk.ui.app import SessionProfile, app_icon
from ossdesk.ui.dialogs import accounts as accounts_module
from ossdesk.ui.dialogs.accounts import AccountsDialog
from ossdesk.ui.dialogs.object_options import ObjectOptionsDialog, UploadOptions
from ossdesk.ui.dialogs.settings import SettingsDialog
from ossdesk.ui.dialogs.unfinished_uploads import UnfinishedUploadsDialog
from ossdesk.ui.drop_flow import _Drop
from ossdesk.ui.engine_types import (
    Destination,
    DropQueued,
    FolderInfo,
    FoldersAdded,
    RowsRestored,
)
from ossdesk.ui.formatting import format_size
from ossdesk.ui.i18n import Translations
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.queue_filter import Show
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import Totals, TransferRow, TransferState
from ossdesk.ui.walker import Problem, ProblemKind

GIB = 1024**3
MIB = 1024**2

PROFILE = SessionProfile(
    name="work",
    endpoint="https://oss-cn-hangzhou.aliyuncs.com",
    bucket="team-media",
    region="cn-hangzhou",
    prefix="2024/launch",
    access_key_id="LTAI5tExampleKeyId",
)


class Profiles:
    def __init__(self, profiles: list[Any]) -> None:
        self.profiles = profiles

    def list(self) -> list[Any]:
        return list(self.profiles)


def settle(until: Callable[[], bool] = lambda: False, seconds: float = 0.6) -> None:
    """Run the event loop until ``until()`` or ``seconds`` passed (background calls land)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if until():
            break
        time.sleep(0.02)


def save(widget: QWidget, out: Path, name: str) -> Path:
    settle()
    if isinstance(widget, MainWindow) and not widget.property("keepMessage"):
        widget.statusBar().clearMessage()  # a hover tip of the toolbar under the cursor
    path = out / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(path)
    return path


def sample_rows() -> list[TransferRow]:
    dest = "oss://team-media/2024/launch/"

    def row(n: int, name: str, size: int, state: TransferState, **kw: Any) -> TransferRow:
        return TransferRow(
            id=n, name=name, source_path=f"/home/li/Videos/launch/{name}", size=size,
            destination=dest + name, state=state, bucket="team-media",
            key="2024/launch/" + name, **kw,
        )

    return [
        row(1, "keynote-4k-master.mov", 38 * GIB + 123 * MIB, TransferState.UPLOADING,
            confirmed_bytes=17 * GIB, sent_bytes=19 * GIB + 600 * MIB, speed=41.5 * MIB,
            eta=(21 * GIB) / (41.5 * MIB)),
        row(2, "b-roll-drone.mp4", 6 * GIB + 700 * MIB, TransferState.UPLOADING,
            confirmed_bytes=5 * GIB, sent_bytes=5 * GIB + 300 * MIB, speed=18.2 * MIB,
            eta=(1700 * MIB) / (18.2 * MIB)),
        row(3, "interviews.zip", 12 * GIB, TransferState.PAUSED,
            confirmed_bytes=4 * GIB + 512 * MIB, sent_bytes=4 * GIB + 512 * MIB),
        row(4, "press-photos.tar", 2 * GIB + 5 * MIB, TransferState.FAILED,
            confirmed_bytes=900 * MIB, sent_bytes=900 * MIB,
            error="The AccessKey secret does not match the AccessKey ID. Check the account.",
            error_detail="The AccessKey secret does not match the AccessKey ID.\n\n"
            "Error code: SignatureDoesNotMatch\nKind: permanent\nRetryable: no"),
        row(5, "poster-final.psd", 734 * MIB, TransferState.DONE, confirmed_bytes=734 * MIB,
            sent_bytes=734 * MIB),
        row(6, "subtitles-zh.srt", 48 * 1024, TransferState.DONE, confirmed_bytes=48 * 1024,
            sent_bytes=48 * 1024),
        row(7, "colour-grade-lut.cube", 3 * MIB, TransferState.VERIFYING,
            confirmed_bytes=3 * MIB, sent_bytes=3 * MIB),
        row(8, "archive-2023.7z", 210 * GIB, TransferState.QUEUED),
        row(9, "teaser-vertical.mp4", 880 * MIB, TransferState.QUEUED),
    ]


def queue_window(out: Path, suffix: str = "") -> MainWindow:
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1280, 560)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    window.model.add_rows(sample_rows())
    window.model.flush()
    window.row_actions.select_ids([4])
    window.problems = [
        Problem("/home/li/Videos/launch/old/loop", ProblemKind.LOOP),
        Problem("/home/li/Videos/launch/locked", ProblemKind.UNREADABLE, "permission denied"),
    ]
    window.drops.update_problems_button()
    window.setProperty("keepMessage", True)
    window.statusBar().showMessage(
        QCoreApplication.translate("DropFlow", "Added %n file(s)", "", 9)
        + f" ({format_size(sum(r.size for r in sample_rows()))})"
    )
    save(window, out, "queue" + suffix)
    return window


def folder_rows() -> tuple[FolderInfo, list[TransferRow]]:
    """A dropped folder of 2,000 photos mid-upload: 120 verified, 3 being sent, one failed,
    the rest waiting (rows as the engine restores them, ``folder`` set)."""
    info = FolderInfo(id=1, name="相册 2024", source_path="/home/li/Pictures/相册 2024",
                      destination="oss://team-media/2024/launch/相册 2024/",
                      bucket="team-media", profile="work", added_at=time.time())
    rows = []
    for n in range(2000):
        rel = f"{'春节' if n < 800 else 'summer trip'}/IMG_{n:04d}.jpg"
        size = 3 * MIB + (n * 7919) % (5 * MIB)
        row = TransferRow(
            id=100 + n, name=rel.rsplit("/", 1)[-1], source_path=f"{info.source_path}/{rel}",
            size=size, destination=f"{info.destination}{rel}", bucket="team-media",
            key=f"2024/launch/相册 2024/{rel}", profile="work", folder=info.id)
        if n < 3 or 6 < n < 124:
            row.state, row.check = TransferState.DONE, "crc64"
            row.confirmed_bytes = row.sent_bytes = size
        elif n == 3:
            row.state = TransferState.FAILED
            # The engine's own words (translated by the window as it restores the row).
            row.error = (f"{row.source_path} changed while it was being uploaded, so nothing "
                         "was published; upload it again once it is no longer being written "
                         "to")
        elif n < 7:
            row.state = TransferState.UPLOADING
            row.confirmed_bytes = size // 3
            row.sent_bytes = size // 2
            row.speed = 0.4 * MIB
            row.eta = (size - size // 3) / (0.4 * MIB)
        rows.append(row)
    return info, rows


def record_folder(info: FolderInfo, rows: list[TransferRow]) -> None:
    """Write the folder and its files in the scratch upload list with the ids the rows
    have (once), as the engine does before it announces them: the window reads a folder's
    files from it as it shows them."""
    import contextlib
    import sqlite3

    from ossdesk import config
    from ossdesk.core.store import NewUpload, Store

    path = config.paths().database
    with Store.open(path) as store:
        if store.folders([info.id]):
            return
        made = store.folder_for(None, Path(info.source_path), credentials=info.profile,
                                endpoint=PROFILE.endpoint, bucket=info.bucket,
                                prefix=info.destination.removeprefix(f"oss://{info.bucket}/"))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE folders SET id = ? WHERE id = ?", (info.id, made.id))
    with Store.open(path) as store:
        added = store.add(
            NewUpload(source=Path(r.source_path), size=r.size, mtime_ns=0, key=r.key,
                      endpoint=PROFILE.endpoint, bucket=r.bucket, credentials=r.profile,
                      folder=info.id)
            for r in rows)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for old in added:
            conn.execute("UPDATE uploads SET id = ? WHERE id = ?", (-old, old))
        for row, old in zip(rows, added, strict=True):
            conn.execute("UPDATE uploads SET id = ? WHERE id = ?", (row.id, -old))


def folder_window(out: Path, suffix: str = "") -> MainWindow:
    """A dropped folder as one line: closed, open, its details, and the Failed filter
    finding its one failed file."""

    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1280, 560)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    singles = sample_rows()
    window.model.add_rows([singles[0], singles[4]])
    info, rows = folder_rows()
    record_folder(info, rows)
    window.bridge.post_batch([FoldersAdded((info,)), RowsRestored(tuple(rows))])
    window.bridge.drain()
    window.model.flush()
    view = window.view
    folder_index = window.queue_filter.mapFromSource(window.model.folder_index(info.id))
    view.selectionModel().clearSelection()
    view.setCurrentIndex(folder_index)
    save(window, out, "folder-collapsed" + suffix)
    node = window.model.folder(info.id)
    assert node is not None
    window.model.set_expanded(node, True)
    save(window, out, "folder-expanded" + suffix)
    window.model.set_expanded(node, False)
    details = window.row_actions.folder_details_dialog(node)
    details.show()
    save(details, out, "folder-details" + suffix)
    details.close()
    window.filter_bar.show_only(Show.FAILED)
    window.row_actions.select_ids([103])
    save(window, out, "folder-failed-filter" + suffix)
    return window


def status_bar_window(out: Path, suffix: str = "") -> MainWindow:
    """A narrow window, a long message with a Chinese object key: the message is shortened
    beside the totals, never run into them, and the address reads decoded."""
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1100, 420)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    rows = sample_rows()
    rows.append(TransferRow(
        id=10, name="subtitles-en.srt", source_path="/home/li/Videos/launch/subtitles-en.srt",
        size=51_200, destination="oss://team-media/2024/launch/subtitles-en.srt",
        state=TransferState.SKIPPED, confirmed_bytes=51_200, sent_bytes=51_200))
    window.model.add_rows(rows)
    window.model.flush()
    window.setProperty("keepMessage", True)
    window.statusBar().showMessage(
        QCoreApplication.translate("RowActions", "Copied: %1").replace(
            "%1", "https://team-media.oss-cn-hangzhou.aliyuncs.com/2024/launch/"
            "%E5%B7%A5%E4%BD%9C%E8%AE%B0%E5%BD%95/%E5%8F%91%E5%B8%83%E4%BC%9A"
            "%E5%BD%95%E5%83%8F-%E7%AC%AC%E4%BA%8C%E5%A4%A9-%E5%AE%8C%E6%95%B4%E7%89%88.mp4"))
    save(window, out, "status-bar" + suffix)
    return window


def drop_again_window(out: Path, suffix: str = "") -> MainWindow:
    """The launch folder dropped again: its paused file continues in its row (waiting
    again, its 4.5 GiB kept), two new files are added; the status bar says what the engine
    did."""
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1280, 560)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    rows = sample_rows()
    rows[2].state = TransferState.QUEUED  # interviews.zip, paused before the drop
    new = [("storyboard.pdf", 18 * MIB), ("credits.txt", 4 * 1024)]
    for n, (name, size) in enumerate(new, start=20):
        rows.append(TransferRow(
            id=n, name=name, source_path=f"/home/li/Videos/launch/{name}", size=size,
            destination=f"oss://team-media/2024/launch/{name}", bucket="team-media",
            key=f"2024/launch/{name}"))
    window.model.add_rows(rows)
    window.model.flush()
    window.row_actions.select_ids([3])
    destination = window.destination_bar.destination()
    assert destination is not None
    window.setProperty("keepMessage", True)
    window.drops._telling[1] = _Drop(destination)
    window.drops.on_drop_queued(DropQueued(
        1, added=len(new), added_bytes=sum(size for _, size in new), continued=1,
        continued_name="interviews.zip"))
    save(window, out, "drop-again" + suffix)
    return window


def tray_scene(out: Path, suffix: str = "") -> QWidget:
    """What the tray says: its tooltip while the queue moves and once it stopped with a
    paused upload, and the notifications (texts from TrayStatus; the operating system draws
    the real ones, here they are plain labels in its likeness)."""
    window = MainWindow(None, profile_store=Profiles([]))
    tray = window.tray_status
    moving = Totals(files=12, active=3, waiting=6, done=3, paused=0, total_bytes=12 * GIB,
                    confirmed_bytes=int(4.9 * GIB), eta=131.0)
    paused = Totals(files=12, done=11, paused=1, total_bytes=12 * GIB,
                    confirmed_bytes=int(11.4 * GIB))
    tray.show_totals(moving)
    tray.show_totals(Totals(files=12, done=11, paused=1))  # the run: 8 more done
    stopped = tray.queue_stopped_message(paused)
    failed = Totals(files=12, done=10, failed=2, total_bytes=12 * GIB,
                    confirmed_bytes=10 * GIB)
    stopped_failed = tray.queue_stopped_message(failed)
    assert stopped is not None and stopped_failed is not None
    first = tray.tr("%1 failed: %2").replace("%1", "launch-day2-full.mp4").replace(
        "%2", QCoreApplication.translate("DropFlow", "cannot be read"))
    one_failed = (tray.tr("Upload failed"), first, True)

    scene = QWidget()
    scene.setWindowTitle("ossdesk tray")
    layout = QVBoxLayout(scene)
    palette = scene.palette()

    def tip(text: str) -> QLabel:
        label = QLabel(text)
        label.setStyleSheet(
            f"QLabel {{ background: {palette.toolTipBase().color().name()}; "
            f"color: {palette.toolTipText().color().name()}; border: 1px solid #888; "
            "padding: 4px 6px; }")
        return label

    def card(title: str, text: str, warning: bool) -> QFrame:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(frame)
        icon = QLabel()
        kind = (scene.style().StandardPixmap.SP_MessageBoxWarning if warning
                else scene.style().StandardPixmap.SP_MessageBoxInformation)
        icon.setPixmap(scene.style().standardIcon(kind).pixmap(32, 32))
        row.addWidget(icon)
        words = QLabel(f"<b>{title}</b><br>{text}")
        words.setWordWrap(True)
        row.addWidget(words, 1)
        return frame

    layout.addWidget(tip(tray.tooltip(moving)))
    layout.addWidget(tip(tray.tooltip(paused)))
    for title, text, warning in (stopped, one_failed, stopped_failed):
        layout.addWidget(card(title, text, warning))
    scene.resize(460, scene.sizeHint().height())
    scene.show()
    save(scene, out, "tray" + suffix)
    window.deleteLater()
    return scene
def watched_window(out: Path, suffix: str = "") -> MainWindow:
    """The queue with the watched folders under it: one uploading (its files are the queue's
    waiting and moving rows), one watching, one on a card that was taken out, one paused;
    and the "Watch a folder" dialog."""
    from ossdesk.core.store import Store, WatchedFolder
    from ossdesk.ui.watched import WatchState, _Entry

    with Store.open() as store:  # the upload list the watched folders are kept in
        for kept in store.watched_folders():  # the other language's scene
            assert kept.id is not None
            store.remove_watched_folder(kept.id)
    window = queue_window(out, "-watch-base" + suffix)
    manager = window.watched.manager
    folders = [
        ("/home/li/Videos/launch", "2024/launch/", WatchState.WATCHING, ""),
        ("/home/li/Pictures/exports", "photos/exports/", WatchState.WATCHING, ""),
        ("/media/li/CAMERA-SD/DCIM", "camera/", WatchState.MISSING, ""),
        ("/home/li/Documents/contracts", "legal/contracts/", WatchState.PAUSED, ""),
    ]
    for folder, prefix, state, error in folders:
        spec = manager.store().add_watched_folder(WatchedFolder(
            Path(folder), PROFILE.name, PROFILE.endpoint, PROFILE.bucket, prefix,
            PROFILE.region, "v4", (), (), state is WatchState.PAUSED))
        manager.entries.append(_Entry(spec, state, error=error))  # no watch thread: a picture
    manager.refresh_counts()
    manager.changed.emit()
    window.resize(1280, 760)
    window.watched.panel.select_row(0)
    save(window, out, "watched-folders" + suffix)
    (out / f"queue-watch-base{suffix}.png").unlink(missing_ok=True)
    dialog = window.watched.dialog()
    dialog.folder.setText("/home/li/Renders/shot-04")
    dialog.prefix.setText("renders/shot-04")
    dialog.includes.setPlainText("*.exr\n*.mov")
    dialog.excludes.setPlainText("proxies\n*.lock")
    dialog.show()
    save(dialog, out, "watch-folder" + suffix)
    dialog.close()
    with Store.open(owner=False) as store:  # later scenes show a queue without them
        for kept in store.watched_folders():
            assert kept.id is not None
            store.remove_watched_folder(kept.id)
    return window


def history_scenes(out: Path, suffix: str = "") -> None:
    """The filters with their counts (2,000 finished rows of two accounts, one failed),
    the Failed filter clicked, a search, and a done row's details."""
    from ossdesk.ui.dialogs.details import DetailsDialog
    from ossdesk.ui.engine_types import UploadDetails
    from ossdesk.ui.queue_filter import Show

    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1280, 560)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    rows = sample_rows()
    for r in rows:
        r.profile = "work"
        if r.state is TransferState.DONE:
            r.check = "crc64"
    rows[2].state = TransferState.CANCELLED
    for n in range(2000):
        name = f"相册 2024/照片-{n:04d}.jpg" if n % 2 else f"photos/IMG_{n:04d}.jpg"
        rows.append(TransferRow(
            id=100 + n, name=name.rsplit("/", 1)[1], source_path=f"/home/li/Pictures/{name}",
            size=3 * MIB + n * 1024, destination=f"oss://family-photos/{name}",
            state=TransferState.DONE, confirmed_bytes=3 * MIB + n * 1024,
            sent_bytes=3 * MIB + n * 1024, profile="home", check="crc64"))
    window.model.add_rows(rows)
    window.model.flush()
    save(window, out, "filters" + suffix)
    window.filter_bar.show_only(Show.FAILED)
    window.row_actions.select_ids([4])
    save(window, out, "filters-failed" + suffix)
    window.filter_bar.show_only(Show.DONE)
    window.filter_bar.search_edit.setText("照片-19")
    window.filter_bar.apply_search()
    window.view.clearSelection()
    save(window, out, "filters-search" + suffix)
    done = rows[4]
    details = UploadDetails(
        source=done.source_path, size=done.size, account="work",
        endpoint="https://oss-cn-hangzhou.aliyuncs.com", bucket="team-media", key=done.key,
        url="https://team-media.oss-cn-hangzhou.aliyuncs.com/" + done.key, state="done",
        skipped=False, check="crc64", crc64=11_602_384_190_722_531_485,
        etag='"5B3D1A0E6C8F4E2A9D7B1C3E5F7A9B1D-47"', upload_id="0004B9895DBBB6EC98E36",
        parts=47, part_size=16 * MIB, queued_at=1_764_842_400.0, started_at=1_764_842_403.5,
        finished_at=1_764_842_461.2)
    dialog = DetailsDialog(done, details, details.url, window)
    dialog.show()
    save(dialog, out, "details" + suffix)
    dialog.close()
    window.hide()


def cancelled_history_scene(out: Path, suffix: str = "") -> None:
    """After a restart: done and cancelled rows read back from a real upload list as
    history (a cancelled one in the middle, without a bar), an unfinished one paused."""
    from ossdesk.ui.engine_adapter import transfer_row

    scratch = Path(tempfile.mkdtemp(prefix="ossdesk-history-"))
    names = (("poster-final.psd", 734 * MIB), ("interviews.zip", 12 * GIB),
             ("subtitles-zh.srt", 48 * 1024), ("archive-2023.7z", 2 * GIB))
    store = Store.open(scratch / "queue.db")
    try:
        ids = store.add(NewUpload(source=Path("/home/li/Videos/launch") / name, size=size,
                                  mtime_ns=1, key="2024/launch/" + name,
                                  endpoint="https://oss-cn-hangzhou.aliyuncs.com",
                                  bucket="team-media", credentials="work")
                        for name, size in names)
        store.finish(ids[0], crc64=1, etag="e", checked_by="crc64")
        store.begin_multipart(ids[1], "0004B9895DBBB6EC98E36", 16 * MIB)
        store.confirm_part(ids[1], 1, 16 * MIB, "etag", 7)
        store.cancelled(ids[1])
        store.finish(ids[2], crc64=2, etag="e", checked_by="crc64")
        rows = [transfer_row(r, auto_resume=False) for r in store.rows()]
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1100, 360)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    window.model.add_rows(rows)
    window.model.flush()
    window.row_actions.select_ids([rows[1].id])
    window.row_actions.update_actions()
    save(window, out, "history-cancelled" + suffix)
    window.hide()


def refused_names_box(out: Path, suffix: str = "") -> None:
    """What a drop left out and why: names OSS cannot take, a loop, two files for one
    name (the details shown, as after a click on "Show Details...")."""
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1100, 420)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    home = "/home/li/Videos/launch"
    key = "2024/launch/launch"
    deep = "/".join(f"{c * 8} take {n:02} - {'raw footage ' * 9}" for n, c in
                    enumerate("abcdefgh"))
    window.problems = [
        Problem(f"{home}/notes\x07.txt", ProblemKind.BAD_KEY, f"{key}/notes\x07.txt",
                KeyFault.CONTROL),
        Problem(f"{home}/caf\udce9.txt", ProblemKind.BAD_NAME),
        Problem(f"{home}/old/loop", ProblemKind.LOOP),
        Problem(f"{home}/copy/poster.psd", ProblemKind.COLLISION, f"{key}/poster.psd",
                other=f"{home}/poster.psd"),
        Problem(f"{home}/{deep}/cut.mov", ProblemKind.BAD_KEY, f"{key}/{deep}/cut.mov",
                KeyFault.TOO_LONG),
    ]
    window.drops.update_problems_button()
    box = window.drops.problems_box()
    box.show()
    for button in box.buttons():
        if box.buttonRole(button) == QMessageBox.ButtonRole.ActionRole:
            button.click()  # "Show Details..."
    settle()
    box.adjustSize()
    settle()
    save(box, out, "refused-names" + suffix)
    box.close()
    window.hide()


def engine_text_scene(out: Path, suffix: str = "") -> None:
    """A failure, a retry note and the queue's context menu as the engine reports them (its
    English words, through the window's bridge), and Qt's own file dialog."""
    window = queue_window(out, "-engine" + suffix)
    window.bridge(ev.Failed(
        upload=4, code="SignatureDoesNotMatch", retryable=False, error_kind="permanent",
        message="The AccessKey secret does not match the AccessKey ID (the request signature "
        "was rejected). Enter the secret of the profile 'work' again; for signature V4 also "
        "check the region."))
    window.bridge(ev.Retrying(
        upload=2, reason="cannot connect to oss-cn-hangzhou.aliyuncs.com: connection refused",
        code="ConnectionRefused", attempt=2, tries=5, delay=4.0, at=time.time() + 4))
    settle(lambda: "AccessKey" in window.model.row_at(3).error)
    save(window, out, "queue-engine" + suffix)
    box = window.row_actions.error_details_box(window.model.row_at(3))
    box.show()
    save(box, out, "error-details-engine" + suffix)
    box.close()
    window.row_actions.select_ids([2])
    window.row_actions.update_actions()
    menu = window.row_actions.context_menu()
    menu.popup(window.mapToGlobal(QPoint(300, 300)))
    save(menu, out, "context-menu-reorder" + suffix)
    menu.close()
    window.hide()
    for name, mode in (("file-dialog", QFileDialog.FileMode.ExistingFiles),
                       ("folder-dialog", QFileDialog.FileMode.Directory)):
        dialog = QFileDialog(None, QCoreApplication.translate("MainWindow",
                                                              "Choose files to upload"))
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setFileMode(mode)
        dialog.setDirectory(str(Path(__file__).resolve().parents[1]))
        dialog.resize(900, 460)
        dialog.show()
        save(dialog, out, name + suffix)
        dialog.close()


def engine_messages_scene(out: Path, endpoint: str, suffix: str = "") -> None:
    """Engine messages the window used to show in English: a proxy that cannot carry the
    request, OSS's own words, a file gone whose abort failed, a retry through a proxy, a drop
    finished at start with its walk's problems; and the Accounts dialog's real connection
    test (against a sandbox) refusing a bucket name."""
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1280, 420)
    window.show()
    settle(lambda: window.destination_bar.profiles_loaded)
    rows = [r for r in sample_rows() if r.id in (1, 3, 4, 8, 9)]
    window.model.add_rows(rows)
    window.model.flush()
    home = "/home/li/Videos/launch"
    window.bridge(ev.Failed(
        upload=4, code="ProxyFailed", retryable=True, error_kind="retryable",
        message="The proxy http://proxy.corp:3128 could not carry the request to "
        "https://oss-cn-hangzhou.aliyuncs.com (Connection refused). Check HTTPS_PROXY / "
        "HTTP_PROXY / NO_PROXY. Tried 5 times. `ossdesk resume` tries it again."))
    window.bridge(ev.Failed(
        upload=8, code="InvalidArgument", retryable=False, error_kind="permanent",
        message="OSS rejected an argument of the request. OSS says: The value of the "
        "x-oss-storage-class header is not valid."))
    window.bridge(ev.Failed(
        upload=9, code="SourceMissing", retryable=False, error_kind="source",
        message=f"{home}/teaser-vertical.mp4 is gone; its unfinished upload could not be "
        "aborted on the server (OSS could not be reached or did not accept it "
        "(ServiceUnavailable, HTTP 503)): `ossdesk resume` tries again, `ossdesk cancel 9` "
        "aborts it and keeps it in the list as cancelled"))
    window.bridge(ev.Retrying(
        upload=1, reason="the proxy http://proxy.corp:3128 could not carry the request "
        "(Connection refused)", code="ProxyFailed", attempt=2, tries=5, delay=4.0,
        at=time.time() + 4))
    settle(lambda: "proxy" in window.model.row_at(2).error)
    window.row_actions.select_ids([4])
    window.setProperty("keepMessage", True)
    window.bridge(ev.Notice(
        upload=None, message=f"Finished adding {home}, which was still being listed when "
        f"ossdesk stopped: 1204 more file(s) added; 2 item(s) skipped: {home}/old/loop: a link "
        f"back to a folder already included (a loop); skipped; {home}/pipe: not a regular "
        "file; skipped."))
    settle()
    save(window, out, "engine-messages" + suffix)
    box = window.row_actions.error_details_box(window.model.row_at(2))
    box.show()
    save(box, out, "engine-messages-details" + suffix)
    box.close()
    window.hide()
    accounts = AccountsDialog(Profiles([]))
    accounts.show()
    settle(lambda: accounts.keyring_ok is not None)
    for field, value in (("name", "sandbox"), ("endpoint", endpoint),
                         ("region", DEFAULT_REGION), ("bucket", "Team_Media"),
                         ("key_id", DEFAULT_ACCESS_KEY_ID),
                         ("secret", DEFAULT_ACCESS_KEY_SECRET)):
        getattr(accounts, field).setText(value)
    accounts.test_button.click()
    settle(lambda: accounts.last_verdict_ok is not None and accounts.test_button.isEnabled(),
           seconds=20)
    save(accounts, out, "engine-messages-accounts" + suffix)
    accounts.close()


def upload_options_dialogs(out: Path, suffix: str = "") -> None:
    """The upload options of a destination: filled in, and refusing a bad tag."""
    chosen = UploadOptions(
        storage_class="IA", metadata=(("origin", "lab"), ("project", "atlas")),
        options=ObjectOptions(acl="private", cache_control="max-age=3600",
                              content_disposition="attachment",
                              tags=(("team", "media"), ("year", "2026")), encryption="KMS",
                              kms_key_id="key-0a1b2c3d"))
    dialog = ObjectOptionsDialog("oss://team-media/", chosen)
    dialog.show()
    save(dialog, out, f"upload-options{suffix}")
    dialog.tags.setText("team=media;video")
    dialog.accept()
    save(dialog, out, f"upload-options-refused{suffix}")
    dialog.close()


def unfinished_uploads_sandbox(root: Path) -> tuple[SandboxServer, Destination, Path]:
    """A sandbox holding unfinished uploads of another program and one of ossdesk's."""
    import oss2

    server = SandboxServer(root / "sandbox", port=0).start()
    bucket = oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                         server.endpoint, DEFAULT_BUCKET)
    for key, parts in (("2024/launch/keynote-4k-master.mov", 3), ("backup/db-2026-03.tar", 1),
                       ("tmp/upload-test.bin", 0)):
        upload_id = bucket.init_multipart_upload(key).upload_id
        for n in range(1, parts + 1):
            bucket.upload_part(key, upload_id, n, b"x" * (256 * 1024))
    ours = bucket.init_multipart_upload("2024/launch/b-roll-drone.mp4").upload_id
    bucket.upload_part("2024/launch/b-roll-drone.mp4", ours, 1, b"y" * (512 * 1024))
    database = root / "uploads.sqlite3"
    with Store.open(database) as store:
        [row] = store.add([NewUpload(source=root / "b-roll-drone.mp4", size=7 * 1024**3,
                                     mtime_ns=1, key="2024/launch/b-roll-drone.mp4",
                                     endpoint=server.endpoint, bucket=DEFAULT_BUCKET)])
        store.begin_multipart(row, ours, 512 * 1024)
    destination = Destination(profile="work", endpoint=server.endpoint, bucket=DEFAULT_BUCKET,
                              region=DEFAULT_REGION)
    return server, destination, database


def unfinished_uploads_dialog(out: Path, place: tuple[Destination, Path],
                              suffix: str = "") -> None:
    destination, database = place
    dialog = UnfinishedUploadsDialog(
        lambda profile: Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        destination, database)
    dialog.show()
    settle(lambda: dialog.parts_loaded, seconds=10)
    save(dialog, out, f"unfinished-uploads{suffix}")
    dialog.close()


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#171717",
        QPalette.ColorRole.AlternateBase: "#242526",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2d2e30",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.Highlight: "#3d7bd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Mid: "#5f6368",
        QPalette.ColorRole.ToolTipBase: "#2d2e30",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    return palette


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1]
                        / "docs" / "screenshots")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    app = QApplication(sys.argv[:1])
    QCursor.setPos(5000, 5000)  # no hover effects in the pictures
    app.setStyle(QStyleFactory.create("Fusion"))
    app.setWindowIcon(app_icon())
    font = QFont(app.font())
    font.setPointSize(10)
    app.setFont(font)
    translations = Translations()
    translations.install(app, "en")
    # The keyring is checked off the GUI thread; here it answers "available".
    accounts_module._keyring_available = lambda: True

    # 1. First run: no account yet.
    first = MainWindow(None, profile_store=Profiles([]))
    first.resize(1100, 560)
    first.show()
    settle(lambda: first.destination_bar.profiles_loaded)
    save(first, out, "first-run")

    # 2. An account, an empty queue: the drop hint.
    empty = MainWindow(None, settings=Settings(last_profile="work"),
                       profile_store=Profiles([PROFILE]))
    empty.resize(1100, 560)
    empty.show()
    settle(lambda: empty.destination_bar.profiles_loaded)
    save(empty, out, "empty")

    # 3. The queue: uploading, verifying, paused, failed, done, waiting rows.
    window = queue_window(out)
    menu = window.row_actions.context_menu()
    window.row_actions.update_actions()
    menu.popup(window.mapToGlobal(QPoint(300, 300)))
    save(menu, out, "context-menu")
    menu.close()
    box = window.row_actions.error_details_box(window.model.row_at(3))
    box.show()
    save(box, out, "error-details")
    box.close()

    # 4. Settings and accounts.
    settings = SettingsDialog(Settings(part_size_mib=16, bandwidth_limit_kib=0))
    settings.show()
    save(settings, out, "settings")
    settings.close()

    accounts = AccountsDialog(Profiles([PROFILE]))
    accounts.show()
    settle(lambda: bool(accounts.profile_names()) and accounts.keyring_ok is not None)
    accounts.list.setCurrentRow(0)
    accounts._show_verdict(
        accounts.tr("✔ Connected: bucket “%1” can be reached with these credentials.").replace(
            "%1", PROFILE.bucket
        ),
        ok=True,
    )
    save(accounts, out, "accounts")
    accounts._set_keyring_state(False)
    accounts._show_verdict("", ok=None)
    save(accounts, out, "accounts-no-keyring")
    accounts.close()
    upload_options_dialogs(out)
    scratch = Path(tempfile.mkdtemp(prefix="ossdesk-shots-"))
    server, destination, database = unfinished_uploads_sandbox(scratch)
    unfinished_uploads_dialog(out, (destination, database))

    # 5. Dark palette: the bar colours must read on it too.
    app.setPalette(dark_palette())
    dark = queue_window(out, "-dark")
    dark.hide()
    folder_window(out, "-dark").hide()
    app.setPalette(app.style().standardPalette())
    status_bar_window(out).hide()
    drop_again_window(out).hide()
    folder_window(out).hide()
    tray_scene(out).hide()
    watched_window(out).hide()
    history_scenes(out)
    cancelled_history_scene(out)
    refused_names_box(out)
    engine_text_scene(out)
    engine_messages_scene(out, server.endpoint)

    # 6. Simplified Chinese.
    translations.install(app, "zh_CN")
    first_zh = MainWindow(None, profile_store=Profiles([]))
    first_zh.resize(1100, 560)
    first_zh.show()
    settle(lambda: first_zh.destination_bar.profiles_loaded)
    save(first_zh, out, "first-run-zh_CN")
    queue_window(out, "-zh_CN")
    status_bar_window(out, "-zh_CN")
    drop_again_window(out, "-zh_CN").hide()
    folder_window(out, "-zh_CN").hide()
    tray_scene(out, "-zh_CN").hide()
    watched_window(out, "-zh_CN").hide()
    history_scenes(out, "-zh_CN")
    cancelled_history_scene(out, "-zh_CN")
    refused_names_box(out, "-zh_CN")
    engine_text_scene(out, "-zh_CN")
    engine_messages_scene(out, server.endpoint, "-zh_CN")
    settings_zh = SettingsDialog(Settings())
    settings_zh.show()
    save(settings_zh, out, "settings-zh_CN")
    accounts_zh = AccountsDialog(Profiles([PROFILE]))
    accounts_zh.show()
    settle(lambda: bool(accounts_zh.profile_names()) and accounts_zh.keyring_ok is not None)
    accounts_zh.list.setCurrentRow(0)
    save(accounts_zh, out, "accounts-zh_CN")
    upload_options_dialogs(out, "-zh_CN")
    unfinished_uploads_dialog(out, (destination, database), "-zh_CN")
    server.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    for widget in app.topLevelWidgets():
        widget.hide()  # closing would ask about the (pretend) running uploads
    settle()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
