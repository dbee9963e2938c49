"""The window's upload options (per account and bucket) reach the objects: storage class,
ACL, Content-Type, Cache-Control, Content-Disposition, metadata, tags and server-side
encryption, on a single PUT and a multipart upload, through the engine in its own process
(what the window uses) and in the window's process."""

from __future__ import annotations

import os
import re
from typing import Any

import oss2
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    SandboxServer,
)
from ossdesk.ui import engine_types as rq
from ossdesk.ui.dialogs.object_options import (
    ObjectOptionsDialog,
    UploadOptions,
    load_upload_options,
)
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from tests.gui.test_engine_window import (
    close_window,
    engine_kind,
    local_sandbox,
    open_window,
    row_of,
)

__all__ = ["engine_kind", "local_sandbox"]  # fixtures

MIB = 1024 * 1024


def _fill(dialog: ObjectOptionsDialog, *, tags: str) -> None:
    dialog.storage_class.setCurrentIndex(dialog.storage_class.findData("IA"))
    dialog.acl.setCurrentIndex(dialog.acl.findData("public-read"))
    dialog.content_type.setText("application/x-report")
    dialog.cache_control.setText("max-age=60")
    dialog.content_disposition.setText("attachment")
    dialog.metadata.setPlainText("Origin=lab\nstage = raw\n")
    dialog.tags.setText(tags)
    dialog.encryption.setCurrentIndex(dialog.encryption.findData("KMS"))
    dialog.kms_key_id.setText("key-7")


def _exec_filling(tags: str, seen: list[ObjectOptionsDialog]) -> Any:
    def fake_exec(dialog: ObjectOptionsDialog) -> int:
        seen.append(dialog)
        _fill(dialog, tags=tags)
        dialog.buttons.accepted.emit()
        return int(dialog.result())
    return fake_exec


def test_a_bad_tag_is_refused_in_the_dialog_and_nothing_saved(qtbot: QtBot, monkeypatch: Any,
                                                              local_sandbox: SandboxServer
                                                              ) -> None:
    window, engine = open_window(qtbot, local_sandbox, Settings())
    try:
        seen: list[ObjectOptionsDialog] = []
        monkeypatch.setattr(ObjectOptionsDialog, "exec", _exec_filling("team=a;b", seen))
        window.destination_bar.edit_upload_options()
        [dialog] = seen
        assert dialog.result() != QDialog.DialogCode.Accepted
        assert not dialog.error_label.isHidden()
        assert "Tags: write KEY=VALUE" in dialog.error_label.text()
        dest = window.destination_bar.destination()
        assert dest is not None
        assert load_upload_options(dest.profile, dest.bucket) == UploadOptions()
    finally:
        close_window(qtbot, window, engine)


def test_the_windows_options_reach_the_objects(qtbot: QtBot, monkeypatch: Any,
                                               engine_kind: str,
                                               local_sandbox: SandboxServer, tmp_path: Any
                                               ) -> None:
    small = tmp_path / "small.dat"
    small.write_bytes(b"x" * 1000)
    big = tmp_path / "big.dat"
    big.write_bytes(os.urandom(3 * MIB + 7))
    window, engine = open_window(qtbot, local_sandbox, Settings(part_size_mib=1), engine_kind)
    try:
        seen: list[ObjectOptionsDialog] = []
        monkeypatch.setattr(ObjectOptionsDialog, "exec",
                            _exec_filling("team=data&note=a%20b", seen))
        window.destination_bar.edit_upload_options()
        assert seen and seen[0].result() == QDialog.DialogCode.Accepted
        window.add_paths([str(small), str(big)])
        qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=10_000)
        qtbot.waitUntil(
            lambda: all(r.state is TransferState.DONE for r in window.model.rows()),
            timeout=60_000)
    finally:
        close_window(qtbot, window, engine)
    bucket = oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                         local_sandbox.endpoint, DEFAULT_BUCKET)
    for key, kind in (("drop/small.dat", "Normal"), ("drop/big.dat", "Multipart")):
        head = bucket.head_object(key).headers
        assert head["x-oss-object-type"] == kind
        assert head["Content-Type"] == "application/x-report"
        assert head["Cache-Control"] == "max-age=60"
        assert head["Content-Disposition"] == "attachment"
        assert head["x-oss-meta-origin"] == "lab" and head["x-oss-meta-stage"] == "raw"
        assert head["x-oss-storage-class"] == "IA"
        assert head["x-oss-server-side-encryption"] == "KMS"
        assert head["x-oss-server-side-encryption-key-id"] == "key-7"
        assert bucket.get_object_acl(key).acl == "public-read"
        assert bucket.get_object_tagging(key).tag_set.tagging_rule == {"team": "data",
                                                                       "note": "a b"}


def test_the_dialog_in_chinese_has_no_english_left_but_oss_names(qtbot: QtBot, qapp: Any,
                                                                 english: Any) -> None:
    from tests.gui.test_i18n import untranslated, visible_texts
    assert english.install(qapp, "zh_CN")
    try:
        dialog = ObjectOptionsDialog("oss://photos/", UploadOptions())
        qtbot.addWidget(dialog)
        # OSS's own names stay as OSS spells them: header names, ACL and algorithm names,
        # example values.
        keep = re.compile(r"Content-Type|Cache-Control|Content-Disposition|KMS|AES256|ACL|"
                          r"\bIA\b|private|public-read(?:-write)?|max-age=3600|attachment|"
                          r"team=data&year=2026|Latin-1|filename\*=UTF-8''\.\.\.")

        def english_left() -> list[tuple[str, str]]:
            return [(where, text) for where, text in untranslated(visible_texts(dialog))
                    if untranslated(iter([(where, keep.sub("", text))]))]

        assert english_left() == []
        for field, value in ((dialog.tags, "a;b"), (dialog.cache_control, "x\u00e9\u4e2d")):
            field.setText(value)
            dialog.accept()
            assert not dialog.error_label.isHidden()
            assert english_left() == [], dialog.error_label.text()
            field.clear()
        assert dialog.windowTitle() == "上传选项"
        assert dialog.acl.itemText(1) == "私有 (private)"
    finally:
        english.install(qapp, "en")


def test_a_cancelled_upload_tried_again_keeps_its_options(qtbot: QtBot, monkeypatch: Any,
                                                          local_sandbox: SandboxServer,
                                                          tmp_path: Any) -> None:
    source = tmp_path / "again.dat"
    source.write_bytes(os.urandom(3 * MIB))
    settings = Settings(part_size_mib=1, bandwidth_limit_kib=768)
    window, engine = open_window(qtbot, local_sandbox, settings)
    try:
        seen: list[ObjectOptionsDialog] = []
        monkeypatch.setattr(ObjectOptionsDialog, "exec", _exec_filling("team=data", seen))
        window.destination_bar.edit_upload_options()
        window.add_paths([str(source)])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        upload = window.model.ids()[0]
        qtbot.waitUntil(lambda: row_of(window, upload).confirmed_bytes >= MIB, timeout=30_000)
        window.row_actions.select_ids([upload])
        window.row_actions.act_cancel.trigger()
        qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.CANCELLED,
                        timeout=15_000)
        # Options changed meanwhile apply to new files, not to this one.
        monkeypatch.setattr(ObjectOptionsDialog, "exec", _exec_filling("team=other", seen))
        window.destination_bar.edit_upload_options()
        engine.send(rq.ApplySettings(Settings(part_size_mib=1)))
        window.row_actions.select_ids([upload])
        window.row_actions.act_retry.trigger()
        qtbot.waitUntil(
            lambda: [r.state for r in window.model.rows()] == [TransferState.DONE],
            timeout=60_000)
    finally:
        close_window(qtbot, window, engine)
    bucket = oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                         local_sandbox.endpoint, DEFAULT_BUCKET)
    assert bucket.get_object_tagging("drop/again.dat").tag_set.tagging_rule == {"team": "data"}
    assert bucket.get_object_acl("drop/again.dat").acl == "public-read"
