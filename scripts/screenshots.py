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
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

from ossdesk.core.object_options import ObjectOptions
from ossdesk.core.oss import Credentials
from ossdesk.core.store import NewUpload, Store
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
from ossdesk.ui.engine_types import Destination
from ossdesk.ui.formatting import format_size
from ossdesk.ui.i18n import Translations
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferRow, TransferState
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
    settle(lambda: window.profiles_loaded)
    window.model.add_rows(sample_rows())
    window.model.flush()
    window.select_ids([4])
    window.problems = [
        Problem("/home/li/Videos/launch/old/loop", ProblemKind.LOOP),
        Problem("/home/li/Videos/launch/locked", ProblemKind.UNREADABLE, "permission denied"),
    ]
    window._update_problems_button()
    window.setProperty("keepMessage", True)
    window.statusBar().showMessage(
        QCoreApplication.translate("MainWindow", "Added %n file(s)", "", 9)
        + f" ({format_size(sum(r.size for r in sample_rows()))})"
    )
    save(window, out, "queue" + suffix)
    return window


def status_bar_window(out: Path, suffix: str = "") -> MainWindow:
    """A narrow window, a long message with a Chinese object key: the message is shortened
    beside the totals, never run into them, and the address reads decoded."""
    window = MainWindow(None, settings=Settings(last_profile="work", last_folder="2024/launch"),
                        profile_store=Profiles([PROFILE]))
    window.resize(1100, 420)
    window.show()
    settle(lambda: window.profiles_loaded)
    rows = sample_rows()
    rows.append(TransferRow(
        id=10, name="subtitles-en.srt", source_path="/home/li/Videos/launch/subtitles-en.srt",
        size=51_200, destination="oss://team-media/2024/launch/subtitles-en.srt",
        state=TransferState.SKIPPED, confirmed_bytes=51_200, sent_bytes=51_200))
    window.model.add_rows(rows)
    window.model.flush()
    window.setProperty("keepMessage", True)
    window.statusBar().showMessage(
        QCoreApplication.translate("MainWindow", "Copied: %1").replace(
            "%1", "https://team-media.oss-cn-hangzhou.aliyuncs.com/2024/launch/"
            "%E5%B7%A5%E4%BD%9C%E8%AE%B0%E5%BD%95/%E5%8F%91%E5%B8%83%E4%BC%9A"
            "%E5%BD%95%E5%83%8F-%E7%AC%AC%E4%BA%8C%E5%A4%A9-%E5%AE%8C%E6%95%B4%E7%89%88.mp4"))
    save(window, out, "status-bar" + suffix)
    return window


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
    settle(lambda: first.profiles_loaded)
    save(first, out, "first-run")

    # 2. An account, an empty queue: the drop hint.
    empty = MainWindow(None, settings=Settings(last_profile="work"),
                       profile_store=Profiles([PROFILE]))
    empty.resize(1100, 560)
    empty.show()
    settle(lambda: empty.profiles_loaded)
    save(empty, out, "empty")

    # 3. The queue: uploading, verifying, paused, failed, done, waiting rows.
    window = queue_window(out)
    menu = window.context_menu()
    window._update_actions()
    menu.popup(window.mapToGlobal(QPoint(300, 300)))
    save(menu, out, "context-menu")
    menu.close()
    box = window.error_details_box(window.model.row_at(3))
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
    app.setPalette(app.style().standardPalette())
    status_bar_window(out).hide()

    # 6. Simplified Chinese.
    translations.install(app, "zh_CN")
    first_zh = MainWindow(None, profile_store=Profiles([]))
    first_zh.resize(1100, 560)
    first_zh.show()
    settle(lambda: first_zh.profiles_loaded)
    save(first_zh, out, "first-run-zh_CN")
    queue_window(out, "-zh_CN")
    status_bar_window(out, "-zh_CN")
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
