"""Watched folders in the window: a real store, a real sandbox, real files.

A watched folder is saved and survives a restart; the files that appear in it are queued
and uploaded like any dropped file; a folder that vanishes is shown as missing, nothing of
it is deleted, and it is watched again when it is back."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from ossdesk.core.store import Store, WatchedFolder
from ossdesk.sandbox.server import DEFAULT_BUCKET, DEFAULT_REGION
from ossdesk.ui.app import SANDBOX_PROFILE, SessionProfile
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from ossdesk.ui.watched import WatchedFolderModel
from tests.gui.test_engine_window import (  # noqa: F401 - fixtures
    NoProfiles,
    client,
    close_window,
    engine_kind,
    local_sandbox,
    open_window,
)


def _spec(folder: Path, endpoint: str = "http://127.0.0.1:9") -> WatchedFolder:
    return WatchedFolder(folder, SANDBOX_PROFILE, endpoint, DEFAULT_BUCKET, "watched/",
                         DEFAULT_REGION, "v4", (), ("*.tmp",))


def _states(window: MainWindow) -> list[tuple[str, str]]:
    model = window.watched.panel.model
    return [(model.data(model.index(r, WatchedFolderModel.FOLDER)),
             model.data(model.index(r, WatchedFolderModel.STATE)))
            for r in range(model.rowCount())]


def _bare_window(qtbot, profile: SessionProfile | None = None) -> MainWindow:
    window = MainWindow(None, settings=Settings(), profile_store=NoProfiles(),
                        extra_profiles=[profile] if profile else [])
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_watched_folder_is_kept_across_a_restart_with_its_pause(qtbot, tmp_path) -> None:
    Store.open().close()  # the upload list exists (the engine makes it at its first start)
    folder = tmp_path / "renders"
    folder.mkdir()
    window = _bare_window(qtbot)
    assert not window.watched.dock.isVisibleTo(window)  # nothing watched: no panel
    assert window.watched.action.text() == "Watch a folder…"
    saved = window.watched.add(_spec(folder))
    assert saved is not None and saved.id is not None
    assert window.watched.dock.isVisibleTo(window)
    assert _states(window) == [(str(folder), "Watching")]
    panel = window.watched.panel
    panel.select_row(0)
    assert panel.pause_button.isEnabled() and not panel.resume_button.isEnabled()
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert _states(window) == [(str(folder), "Paused")]
    assert panel.resume_button.isEnabled()
    window.close()

    again = _bare_window(qtbot)
    qtbot.waitUntil(lambda: again.watched.panel.model.rowCount() == 1, timeout=5000)
    assert _states(again) == [(str(folder), "Paused")]
    [entry] = again.watched.manager.entries
    assert entry.spec == WatchedFolder(folder, SANDBOX_PROFILE, "http://127.0.0.1:9",
                                       DEFAULT_BUCKET, "watched/", DEFAULT_REGION, "v4", (),
                                       ("*.tmp",), True, saved.id)
    assert again.watched.dock.isVisibleTo(again)
    again.watched.panel.select_row(0)
    qtbot.mouseClick(again.watched.panel.remove_button, Qt.MouseButton.LeftButton)
    assert again.watched.panel.model.rowCount() == 0
    assert folder.is_dir()  # "Stop watching" deletes nothing
    again.close()
    with Store.open() as store:
        assert store.watched_folders() == []


def test_the_dialog_says_what_is_missing_and_builds_the_watched_folder(qtbot, tmp_path) -> None:
    profile = SessionProfile(name="work", endpoint="https://oss-cn-hangzhou.aliyuncs.com",
                             bucket="media", region="cn-hangzhou")
    window = _bare_window(qtbot, profile)
    qtbot.waitUntil(lambda: window.destination_bar.destination() is not None, timeout=5000)
    dialog = window.watched.dialog()
    qtbot.addWidget(dialog)
    dialog.folder.setText(str(tmp_path / "nowhere"))
    dialog.accept()
    assert dialog.problem.isVisibleTo(dialog)
    assert dialog.problem.text() == f"{tmp_path / 'nowhere'} is not a folder."
    assert dialog.result() == 0
    (tmp_path / "cam").mkdir()
    dialog.folder.setText(str(tmp_path / "cam"))
    dialog.prefix.setText("/footage\\day1")
    dialog.includes.setPlainText("*.mov\n# comment\n")
    dialog.excludes.setPlainText("proxies\n")
    spec = dialog.watched_folder()
    assert spec == WatchedFolder(tmp_path / "cam", "work", "https://oss-cn-hangzhou.aliyuncs.com",
                                 "media", "footage/day1/", "cn-hangzhou", "v4", ("*.mov",),
                                 (".DS_Store", "Thumbs.db", "~$*", "*.tmp", "*.part",
                                  "*.crdownload", "proxies"))


def test_files_of_a_watched_folder_are_uploaded_and_a_vanished_folder_deletes_nothing(
        qtbot, engine_kind, local_sandbox, tmp_path) -> None:  # noqa: F811 - fixtures
    folder = tmp_path / "disk"
    folder.mkdir()
    (folder / "first.bin").write_bytes(b"1" * 5000)
    (folder / "skip.tmp").write_bytes(b"x")
    window, engine = open_window(qtbot, local_sandbox, Settings(), engine_kind)
    try:
        manager = window.watched.manager
        manager.settle, manager.rescan = 0.5, 3.0
        qtbot.waitUntil(lambda: manager._store is not None or _try_store(manager), timeout=30_000)
        assert window.watched.add(_spec(folder, local_sandbox.endpoint)) is not None

        def done(key: str) -> bool:
            return any(r.key == key and r.state is TransferState.DONE
                       for r in window.model.rows())

        qtbot.waitUntil(lambda: done("watched/first.bin"), timeout=60_000)
        (folder / "sub").mkdir()
        (folder / "sub" / "later.bin").write_bytes(b"2" * 7000)
        qtbot.waitUntil(lambda: done("watched/sub/later.bin"), timeout=60_000)
        assert [r.key for r in window.model.rows()] == ["watched/first.bin",
                                                        "watched/sub/later.bin"]
        qtbot.waitUntil(lambda: _states(window) == [(str(folder), "Watching")], timeout=5000)

        away = tmp_path / "unplugged"
        folder.rename(away)
        qtbot.waitUntil(lambda: _states(window) == [
            (str(folder), "Folder missing (unplugged or moved?): waiting for it")],
            timeout=10_000)
        oss = client(local_sandbox)
        keys = sorted(o.key for o in oss.list_objects("watched/"))
        assert keys == ["watched/first.bin", "watched/sub/later.bin"]
        away.rename(folder)
        (folder / "back.bin").write_bytes(b"3" * 300)
        qtbot.waitUntil(lambda: done("watched/back.bin"), timeout=60_000)
        qtbot.waitUntil(lambda: _states(window) == [(str(folder), "Watching")], timeout=5000)
        assert sorted(o.key for o in oss.list_objects("watched/")) == [
            "watched/back.bin", "watched/first.bin", "watched/sub/later.bin"]
        assert len(window.model.rows()) == 3  # nothing queued twice
    finally:
        close_window(qtbot, window, engine)


def _try_store(manager) -> bool:
    try:
        manager.store()
    except Exception:
        return False
    return True


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, request: object) -> None:
        self.sent.append(request)


def test_a_watched_folders_files_get_the_buckets_upload_options(qtbot, tmp_path) -> None:
    """Options… applies to what a watched folder queues, as it does to a drop."""
    from ossdesk.core.object_options import ObjectOptions
    from ossdesk.ui import engine_types as rq
    from ossdesk.ui.dialogs.object_options import UploadOptions, save_upload_options
    from ossdesk.ui.engine_types import SourceFile
    from ossdesk.ui.watched import WatchManager, _Entry

    Store.open().close()
    chosen = UploadOptions(storage_class="IA", metadata=(("origin", "lab"),),
                           options=ObjectOptions(acl="private"))
    save_upload_options(SANDBOX_PROFILE, DEFAULT_BUCKET, chosen)
    engine = _Recorder()
    manager = WatchManager(engine, lambda bucket, prefix: 0)  # type: ignore[arg-type]
    folder = tmp_path / "renders"
    folder.mkdir()
    (folder / "a.exr").write_bytes(b"frame")
    manager._queue(_Entry(_spec(folder)),
                   [SourceFile(str(folder / "a.exr"), "watched/a.exr", 5, 1)])
    [request] = engine.sent
    assert isinstance(request, rq.Enqueue)
    assert request.destination.storage_class == "IA"
    assert request.destination.metadata == (("origin", "lab"),)
    assert request.destination.options == ObjectOptions(acl="private")
