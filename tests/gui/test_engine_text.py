"""Engine messages in the Chinese window: real failures against the sandbox (a wrong
secret, a missing bucket, a closed port) leave no English sentence in a row's state,
tooltip and details, nor in the Accounts dialog's connection test. In English the engine's
words are shown exactly as the CLI prints them."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from ossdesk.core.oss import Credentials
from ossdesk.credentials import ProfileStore
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    SandboxServer,
)
from ossdesk.ui.app import SANDBOX_PROFILE, SessionProfile
from ossdesk.ui.dialogs.accounts import AccountsDialog
from ossdesk.ui.engine_text import KIND_LABELS, TEMPLATES, engine_text
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import Column, TransferState
from tests.gui.test_dialogs import fill
from tests.gui.test_engine_window import NoProfiles, close_window, make_engine, row_of

# What may stay in ASCII: addresses, file names, keys, OSS codes and product words.
_ALLOWED = re.compile(
    r"https?://\S+|\S*/\S*|\b[a-z0-9]+(?:-[a-z0-9]+)+\b|\b[\w.-]+\.(?:txt|bin)\b|'[^']*'|\b\d+(?:\.\d+)*(?::\d+)?\b"
    r"|\b(?:OSS|AccessKey|ID|Secret|Endpoint|HTTP|HTTPS|STS|V4|CRC-64|RAM)\b"
    r"|\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b"
)
_SENTENCE = re.compile(r"[A-Za-z]{2,}(?:[\s,;:()'-]+[A-Za-z]{2,}){2,}")


def english_left(text: str) -> list[str]:
    return _SENTENCE.findall(_ALLOWED.sub(" ", text))


@pytest.fixture
def chinese(qapp, english):
    assert english.install(qapp, "zh_CN")
    return english


@pytest.fixture
def sandbox(tmp_path):
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_window(qtbot: Any, endpoint: str, secret: str, kind: str) -> tuple[MainWindow, Any]:
    def resolve(source: str) -> Credentials:
        return Credentials(DEFAULT_ACCESS_KEY_ID, secret)

    profile = SessionProfile(name=SANDBOX_PROFILE, endpoint=endpoint, bucket=DEFAULT_BUCKET,
                             region=DEFAULT_REGION, prefix="drop")
    engine = make_engine(kind, Settings(), resolve)
    window = MainWindow(engine, settings=Settings(), profile_store=NoProfiles(),
                        extra_profiles=[profile], credentials=resolve)
    qtbot.addWidget(window)
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    window.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    window.show()
    qtbot.waitUntil(lambda: window.destination_bar.destination() is not None, timeout=5000)
    return window, engine


def shown_texts(window: MainWindow, upload: Any) -> list[str]:
    n = window.model.index_of(upload)
    assert n is not None
    texts = [row_of(window, upload).error, row_of(window, upload).error_detail]
    for column in (Column.NAME, Column.STATE):
        index = window.model.index(n, column)
        for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            value = index.data(role)
            if isinstance(value, str):
                texts.append(value)
    return texts


@pytest.mark.parametrize("kind", ["in-process", "process"])
@pytest.mark.parametrize("case", ["wrong secret", "missing bucket", "closed port"])
def test_real_failures_read_in_chinese(qtbot, chinese, sandbox, tmp_path, kind, case):
    endpoint = f"http://127.0.0.1:{closed_port()}" if case == "closed port" else sandbox.endpoint
    secret = "a-mistyped-secret" if case == "wrong secret" else DEFAULT_ACCESS_KEY_SECRET
    (tmp_path / "a.txt").write_text("a")
    window, engine = open_window(qtbot, endpoint, secret, kind)
    try:
        if case == "missing bucket":
            window.destination_bar.bucket_edit.setText("no-such-bucket")
        window.add_paths([str(tmp_path / "a.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        upload = window.model.ids()[0]
        if case == "closed port":  # tried again and again: the row says so
            qtbot.waitUntil(lambda: bool(row_of(window, upload).error), timeout=30_000)
        else:
            qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.FAILED,
                            timeout=30_000)
        texts = shown_texts(window, upload)
        assert row_of(window, upload).error
        for text in texts:
            assert not english_left(text), (text, english_left(text))
    finally:
        close_window(qtbot, window, engine)
    if case == "closed port":
        return
    # The next start reads the failure back from the upload list: Chinese too.
    window, engine = open_window(qtbot, endpoint, secret, kind)
    try:
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        assert row_of(window, upload).state is TransferState.FAILED
        assert row_of(window, upload).error
        for text in shown_texts(window, upload):
            assert not english_left(text), (text, english_left(text))
    finally:
        close_window(qtbot, window, engine)


def test_the_connection_test_reads_in_chinese(qtbot, chinese, sandbox, tmp_path):
    dialog = AccountsDialog(ProfileStore(tmp_path / "profiles.json", service="ossdesk-unused"))
    qtbot.addWidget(dialog)
    dialog.show()
    fill(dialog, name="sb", endpoint=sandbox.endpoint, region=DEFAULT_REGION,
         bucket=DEFAULT_BUCKET, key_id=DEFAULT_ACCESS_KEY_ID, secret="wrong-secret")
    QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_verdict_ok is not None, timeout=20_000)
    assert dialog.last_verdict_ok is False
    assert "Secret" in dialog.verdict.text()
    assert not english_left(dialog.verdict.text()), dialog.verdict.text()
    fill(dialog, endpoint=f"http://127.0.0.1:{closed_port()}", secret=DEFAULT_ACCESS_KEY_SECRET)
    QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.test_button.isEnabled, timeout=30_000)
    assert dialog.last_verdict_ok is False
    assert not english_left(dialog.verdict.text()), dialog.verdict.text()


def test_every_template_and_kind_has_a_chinese_text(qapp, chinese):
    for template in (*TEMPLATES, *KIND_LABELS.values()):
        sample = (template.replace("%1", "'x.txt'").replace("%2", "'y'")
                  .replace("%3", "'z'"))
        text = engine_text(sample)
        if template in KIND_LABELS.values():
            continue
        assert text != sample, template
        assert not english_left(text), (template, text)


def test_a_composed_failure_is_translated_part_by_part(qapp, chinese):
    message = ("127.0.0.1:9 refused the connection (nothing listens there, or a firewall "
               "blocks it). Check the endpoint. Tried 5 times. `ossdesk resume` tries it again.")
    text = engine_text(message)
    assert "127.0.0.1:9" in text and "5" in text
    assert "\u3002 " not in text, text  # Chinese sentences follow each other without a space
    assert not english_left(text), text


def test_english_stays_exactly_as_the_engine_wrote_it(qapp):
    message = ("127.0.0.1:9 refused the connection (nothing listens there, or a firewall "
               "blocks it). Check the endpoint.")
    assert engine_text(message) == message
