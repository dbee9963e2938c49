"""Qt's own dialogs (the file dialog's "Look in:", "Files of type:", its buttons) speak the
window's language."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from PySide6.QtCore import QFileInfo, QLocale, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFileIconProvider,
    QLabel,
    QPushButton,
    QToolButton,
)

from ossdesk.ui.main_window import MainWindow
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_i18n import untranslated
from tests.gui.test_main_window import PROFILE, MemoryProfiles

COLON = "\uff1a"  # the full-width colon of Chinese labels


def dialog_texts(open_dialog: Callable[[], None]) -> dict[str, str]:
    seen: dict[str, str] = {}

    def read() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(50, read)
            return
        for label in dialog.findChildren(QLabel):
            if label.objectName():
                seen[label.objectName()] = label.text()
        for button in dialog.findChildren(QPushButton):
            if button.isVisible():
                seen[f"button:{button.text()}"] = button.text()
        for tool in dialog.findChildren(QToolButton):
            if tool.isVisible() and tool.toolTip():
                seen[f"tool:{tool.objectName()}"] = tool.toolTip()
        seen["title"] = dialog.windowTitle()
        dialog.reject()

    QTimer.singleShot(0, read)
    open_dialog()
    return seen


def test_the_add_files_dialog_is_chinese_in_the_chinese_window(qtbot, qapp, english):
    assert english.install(qapp, "zh_CN")
    window = MainWindow(FakeEngine(), profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(window)
    window.show()
    texts = dialog_texts(window.add_files_dialog)
    assert texts["lookInLabel"] == f"查找范围(&L){COLON}"
    assert texts["fileTypeLabel"] == f"文件类型(&T){COLON}"
    assert texts["fileNameLabel"] == f"文件名称(&N){COLON}"
    assert "打开(&O)" in texts.values() and "取消" in texts.values(), texts
    assert not untranslated(visible_texts_of(texts)), texts


def test_the_add_folder_dialog_is_chinese_in_the_chinese_window(qtbot, qapp, english):
    assert english.install(qapp, "zh_CN")
    window = MainWindow(FakeEngine(), profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(window)
    window.show()
    texts = dialog_texts(window.add_folder_dialog)
    assert texts["lookInLabel"] == f"查找范围(&L){COLON}"
    assert texts["fileNameLabel"] == f"目录{COLON}"
    assert not untranslated(visible_texts_of(texts)), texts


def visible_texts_of(texts: dict[str, str]) -> Iterator[tuple[str, str]]:
    return iter(texts.items())


def test_the_file_dialog_names_folders_and_dates_in_chinese(qapp, english, tmp_path):
    assert english.install(qapp, "zh_CN")
    assert QFileIconProvider().type(QFileInfo(str(tmp_path))) == "文件夹"
    assert QLocale().name() == "zh_CN"
    assert english.install(qapp, "en")
    assert QFileIconProvider().type(QFileInfo(str(tmp_path))) == "Folder"
    assert QLocale().name() == QLocale.system().name()
