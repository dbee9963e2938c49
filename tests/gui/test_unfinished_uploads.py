"""Tools -> Unfinished uploads: the bucket's unfinished multipart uploads, ours and others',
with their parts and size; the chosen others' are aborted after a confirmation, ours are
refused (their row in the queue must be cancelled instead) and stay on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oss2
from pytestqt.qtbot import QtBot

from ossdesk import config
from ossdesk.core.store import NewUpload, State, Store
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    SandboxServer,
)
from ossdesk.ui.dialogs.unfinished_uploads import UnfinishedUploadsDialog
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from tests.gui.test_engine_window import close_window, local_sandbox, open_window

__all__ = ["local_sandbox"]  # a fixture

KIB = 1024


def _bucket(server: SandboxServer) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                       server.endpoint, DEFAULT_BUCKET)


def _uploads(server: SandboxServer) -> set[str]:
    return {u.upload_id for u in oss2.MultipartUploadIterator(_bucket(server))}


def test_lists_ours_and_others_and_aborts_only_others(qtbot: QtBot, monkeypatch: Any,
                                                      local_sandbox: SandboxServer,
                                                      tmp_path: Path) -> None:
    bucket = _bucket(local_sandbox)
    # Another program's uploads: one with two parts, one with none.
    other = bucket.init_multipart_upload("other/video.mp4").upload_id
    bucket.upload_part("other/video.mp4", other, 1, b"a" * (100 * KIB))
    bucket.upload_part("other/video.mp4", other, 2, b"b" * (50 * KIB))
    empty = bucket.init_multipart_upload("other/empty.bin").upload_id
    # One this computer's upload list records (its row is in the queue).
    ours = bucket.init_multipart_upload("drop/ours.bin").upload_id
    bucket.upload_part("drop/ours.bin", ours, 1, b"c" * (100 * KIB))
    source = tmp_path / "ours.bin"
    source.write_bytes(b"c" * (300 * KIB))
    with Store.open(config.paths().database) as store:
        [row] = store.add([NewUpload(source=source, size=300 * KIB, mtime_ns=1,
                                     key="drop/ours.bin", endpoint=local_sandbox.endpoint,
                                     bucket=DEFAULT_BUCKET)])
        store.begin_multipart(row, ours, 100 * KIB)
        store.set_state(row, State.PAUSED, reason="user")  # stays put while the test looks

    window, engine = open_window(qtbot, local_sandbox, Settings(auto_resume=False))
    try:
        qtbot.waitUntil(lambda: window.model.row(row) is not None, timeout=10_000)
        dialog = window.unfinished_uploads_dialog()
        assert isinstance(dialog, UnfinishedUploadsDialog)
        # A child of the window: it goes with the window (nothing else keeps the window).
        qtbot.waitUntil(lambda: dialog.parts_loaded, timeout=15_000)
        shown = {dialog.tree.topLevelItem(i).text(0): [  # type: ignore[union-attr]
            dialog.tree.topLevelItem(i).text(c) for c in range(1, 5)]  # type: ignore[union-attr]
            for i in range(dialog.tree.topLevelItemCount())}
        assert set(shown) == {"other/video.mp4", "other/empty.bin", "drop/ours.bin"}
        assert shown["other/video.mp4"][1:] == ["2", "150 KiB", "Another program"]
        assert shown["other/empty.bin"][1:3] == ["0", "0 B"]
        assert shown["drop/ours.bin"][1:] == ["1", "100 KiB", f"ossdesk (row {row})"]
        assert "3 unfinished upload(s), 1 of them started by ossdesk" in dialog.status.text()

        asked: list[int] = []

        def confirm(count: int) -> bool:
            asked.append(count)
            return True

        monkeypatch.setattr(dialog, "confirm", confirm)
        dialog.tree.selectAll()
        dialog.abort_selected()
        qtbot.waitUntil(lambda: dialog.loaded and "aborted" in dialog.status.text(),
                        timeout=15_000)
        assert asked == [2]  # only the others' are put to the question
        text = dialog.status.text()
        assert "2 upload(s) aborted." in text
        assert f"(rows {row}) and were not aborted: cancel those files in the queue" in text
        assert _uploads(local_sandbox) == {ours}
        assert dialog.tree.topLevelItemCount() == 1
        queued = window.model.row(row)  # the queue row is left as it was
        assert queued is not None and queued.state is TransferState.PAUSED
        with Store.open(config.paths().database, owner=False) as store:
            stored = store.get(row)
            assert stored is not None and stored.upload_id == ours
        assert empty not in _uploads(local_sandbox) and other not in _uploads(local_sandbox)
    finally:
        close_window(qtbot, window, engine)


def test_nothing_is_aborted_without_confirmation(qtbot: QtBot, monkeypatch: Any,
                                                 local_sandbox: SandboxServer) -> None:
    bucket = _bucket(local_sandbox)
    other = bucket.init_multipart_upload("keep.bin").upload_id
    window, engine = open_window(qtbot, local_sandbox, Settings())
    try:
        dialog = window.unfinished_uploads_dialog()
        assert isinstance(dialog, UnfinishedUploadsDialog)
        # A child of the window: it goes with the window (nothing else keeps the window).
        qtbot.waitUntil(lambda: dialog.parts_loaded, timeout=15_000)
        monkeypatch.setattr(dialog, "confirm", lambda n: False)
        dialog.tree.selectAll()
        dialog.abort_selected()
        assert _uploads(local_sandbox) == {other}
    finally:
        close_window(qtbot, window, engine)


def test_the_dialog_in_chinese_has_no_english_left(qtbot: QtBot, qapp: Any, english: Any,
                                                   local_sandbox: SandboxServer) -> None:
    from ossdesk.ui.app import credentials_resolver
    from ossdesk.ui.engine_types import Destination
    from tests.gui.test_engine_window import profile_for
    from tests.gui.test_i18n import untranslated, visible_texts

    bucket = _bucket(local_sandbox)
    bucket.init_multipart_upload("photos/a.bin")
    profile = profile_for(local_sandbox)
    destination = Destination(profile=profile.name, endpoint=local_sandbox.endpoint,
                              bucket=DEFAULT_BUCKET, region=profile.region)
    assert english.install(qapp, "zh_CN")
    try:
        dialog = UnfinishedUploadsDialog(credentials_resolver(), destination, None)
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: dialog.parts_loaded, timeout=15_000)
        texts = list(visible_texts(dialog))
        header = dialog.tree.headerItem()
        texts += [("header", header.text(c)) for c in range(header.columnCount())]
        item = dialog.tree.topLevelItem(0)
        assert item is not None
        texts += [("row", item.text(c)) for c in range(1, 5)]
        # the bucket's name is the user's, not a message
        assert untranslated((w, t.replace(DEFAULT_BUCKET, "")) for w, t in texts) == []
        assert item.text(4) == "其他程序"
    finally:
        english.install(qapp, "en")
