"""Simplified Chinese: the translation loads and no visible English is left."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QLocale, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from ossdesk.ui import engine_types as rq
from ossdesk.ui.app import SessionProfile
from ossdesk.ui.dialogs.accounts import AccountsDialog
from ossdesk.ui.dialogs.settings import SettingsDialog
from ossdesk.ui.i18n import Translations, choose_language, translations_dir
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import Column, TransferRow, TransferState
from ossdesk.ui.walker import Problem, ProblemKind, SourceFile

# Words that stay as they are in a Chinese UI: product and OSS terms, units, examples.
_KEEP = re.compile(
    r"https?://\S+|oss://\S+|\bossdesk\b|\bOSS\b|\bBucket\b|\bAccessKey\b|\bSecret\b|\bID\b|"
    r"\bSTS\b|\bCRC-64\b|\bEndpoint\b|\bV[14]\b|\b[KMGTP]?i?B\b|\bLTAI\w*|\bcn-hangzhou\b|\bmy-photos\b|"
    r"\bphotos/2024\b|\bEnglish\b|[\w.-]+\.(?:bin|txt|mp4|tar)\b"
)
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")


class Profiles:
    def __init__(self, profiles: list[SessionProfile]) -> None:
        self.profiles = profiles

    def list(self) -> list[SessionProfile]:
        return list(self.profiles)


PROFILE = SessionProfile(name="工作", endpoint="https://oss-cn-hangzhou.aliyuncs.com",
                         bucket="team-media", region="cn-hangzhou")


@pytest.fixture
def chinese(qapp, english: Translations) -> Iterator[Translations]:
    assert english.install(qapp, "zh_CN")
    assert english.language == "zh_CN"
    yield english
    english.install(qapp, "en")


def visible_texts(root: QWidget) -> Iterator[tuple[str, str]]:
    """(where, text) of every string a user can read in ``root``."""
    widgets = [root, *root.findChildren(QWidget)]
    for w in widgets:
        where = f"{type(w).__name__}#{w.objectName()}"
        if w.isWindow() and w.windowTitle():
            yield where + ".windowTitle", w.windowTitle()
        if w.toolTip():
            yield where + ".toolTip", w.toolTip()
        if isinstance(w, (QLabel, QAbstractButton)):
            yield where, w.text()
        elif isinstance(w, QLineEdit):
            yield where + ".placeholder", w.placeholderText()
        elif isinstance(w, QGroupBox):
            yield where, w.title()
        elif isinstance(w, QComboBox) and w.objectName() != "accountCombo":
            for i in range(w.count()):
                yield f"{where}[{i}]", w.itemText(i)
        for action in w.actions():
            yield f"{where}/{action.objectName()}", action.text()
            yield f"{where}/{action.objectName()}.toolTip", action.toolTip()


def untranslated(texts: Iterator[tuple[str, str]]) -> list[tuple[str, str]]:
    bad = []
    for where, text in texts:
        rest = _KEEP.sub("", text.replace("&", ""))
        if _ENGLISH_WORD.search(rest):
            bad.append((where, text))
    return bad


def test_every_message_of_the_catalogue_is_translated():
    root = ET.parse(translations_dir() / "ossdesk_zh_CN.ts").getroot()
    messages = list(root.iter("message"))
    assert len(messages) > 150
    for message in messages:
        translation = message.find("translation")
        assert translation is not None
        assert translation.get("type") not in ("unfinished", "obsolete", "vanished"), (
            message.findtext("source")
        )
        forms = [f.text for f in translation.findall("numerusform")] or [translation.text]
        assert all(forms), message.findtext("source")
    assert (translations_dir() / "ossdesk_zh_CN.qm").stat().st_size > 1000


def test_language_follows_the_setting_and_the_system():
    assert choose_language("zh_CN") == "zh_CN"
    assert choose_language("en", QLocale(QLocale.Language.Chinese)) == "en"
    assert choose_language("system", QLocale("zh_CN")) == "zh_CN"
    assert choose_language("system", QLocale("de_DE")) == "en"


def test_main_window_in_chinese_has_no_english_left(qtbot, chinese):
    window = MainWindow(None, profile_store=Profiles([PROFILE]))
    qtbot.addWidget(window)
    # Its rows include uploads in flight: closing it at the end asks nobody.
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    window.show()
    qtbot.waitUntil(lambda: window.destination_bar.profiles_loaded, timeout=3000)
    states = list(TransferState)
    window.model.add_rows([
        TransferRow(id=i, name=f"f{i}.bin", source_path=f"/d/f{i}.bin", size=5 * 1024**3,
                    destination=f"oss://team-media/f{i}.bin", state=s, confirmed_bytes=1024**3,
                    speed=1e6, eta=4000.0)
        for i, s in enumerate(states)
    ])
    window.model.flush()
    window.problems = [Problem("/x", ProblemKind.LOOP)]
    window.drops.update_problems_button()
    bad = untranslated(visible_texts(window))
    for row in range(window.model.rowCount()):
        for column in Column:
            index = window.model.index(row, column)
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                value = index.data(role)
                if isinstance(value, str):
                    bad += untranslated(iter([(f"cell {row},{column.name}", value)]))
    for column in Column:
        header = window.model.headerData(column, Qt.Orientation.Horizontal)
        bad += untranslated(iter([(f"header {column.name}", header)]))
    bad += untranslated(iter([("totals", window.totals_label.text())]))
    bad += untranslated(iter([("problem", window.problem_text(window.problems[0]))]))
    # Files of a drop that the queue had already (what the engine did with them).
    again = window.drops.in_queue_lines(rq.DropQueued(1, continued=1, continued_name="a.bin",
                                                      unchanged=2))
    bad += untranslated((f"in queue already {n}", text) for n, text in enumerate(again))
    assert again == ["a.bin 已在队列中：在原来的位置继续上传",  # noqa: RUF001
                     "2 个文件已在队列中：保持不变"]  # noqa: RUF001
    menu = window.row_actions.context_menu()
    bad += untranslated((f"menu/{a.objectName()}", a.text()) for a in menu.actions())
    failed = window.model.row_at(states.index(TransferState.FAILED))
    box = window.row_actions.error_details_box(failed)
    bad += untranslated(visible_texts(box))
    existing = window.drops.existing_box(2, ["a.txt", "b.txt"])
    bad += untranslated(visible_texts(existing))
    bad += untranslated(iter([("existing.informative", existing.informativeText())]))
    collision = window.drops.collision_box([(SourceFile("/b/x.txt", "in/x.txt", 1, 1), "/a/x.txt")])
    bad += untranslated(visible_texts(collision))
    bad += untranslated(iter([("collision.informative", collision.informativeText())]))
    assert bad == []
    assert collision.text() == "有 1 个文件要上传到的名称已被另一个文件占用。"
    assert collision.detailedText() == "/b/x.txt 和 /a/x.txt 都要上传到 in/x.txt"
    assert existing.text() == "您添加的文件中有 2 个已存在于存储空间中。"
    assert window.model.index(0, Column.STATE).data() == "等待中"
    assert "个文件" in window.totals_label.text()
    assert window.act_pause_all.text() == "全部暂停"


def test_first_run_and_dialogs_in_chinese_have_no_english_left(qtbot, chinese):
    first = MainWindow(None, profile_store=Profiles([]))
    qtbot.addWidget(first)
    first.show()
    qtbot.waitUntil(lambda: first.destination_bar.profiles_loaded, timeout=3000)
    assert first.stack.currentWidget() is first.first_run
    settings = SettingsDialog(Settings())
    qtbot.addWidget(settings)
    accounts = AccountsDialog(Profiles([PROFILE]))
    qtbot.addWidget(accounts)
    qtbot.waitUntil(lambda: accounts.keyring_ok is not None, timeout=10_000)
    bad = []
    for widget in (first, settings, accounts):
        bad += untranslated(visible_texts(widget))
    assert bad == []
    assert first.first_run.add_button.text() == "添加 OSS 账号"


def test_switching_language_retranslates_the_open_window(qtbot, english):
    window = MainWindow(None, profile_store=Profiles([PROFILE]))
    qtbot.addWidget(window)
    assert window.act_add_files.text() == "Add files…"
    english.install(QApplication.instance(), "zh_CN")
    try:
        qtbot.waitUntil(lambda: window.act_add_files.text() == "添加文件…", timeout=3000)
        assert window.view.hint_title == "将文件或文件夹拖放到这里"
    finally:
        english.install(QApplication.instance(), "en")
    qtbot.waitUntil(lambda: window.act_add_files.text() == "Add files…", timeout=3000)


def test_untranslated_text_is_detected():
    # The checker itself must catch English (a test that cannot fail proves nothing).
    found = untranslated(iter([("a", "已上传 Pause"), ("b", "已上传 5 MB / 7 GB"),
                               ("c", "Close")]))
    assert [w for w, _ in found] == ["a", "c"]


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_shipped_qm_is_compiled_from_the_current_ts(tmp_path, language):
    lrelease = Path(sys.executable).with_name("pyside6-lrelease")
    if not lrelease.exists():
        pytest.skip("pyside6-lrelease is not installed next to this Python")
    source = translations_dir() / f"ossdesk_{language}.ts"
    compiled = tmp_path / f"ossdesk_{language}.qm"
    subprocess.run([str(lrelease), "-silent", str(source), "-qm", str(compiled)], check=True,
                   timeout=60)
    assert compiled.read_bytes() == (translations_dir() / f"ossdesk_{language}.qm").read_bytes()
