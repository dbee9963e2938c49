"""Watch a folder…: the local folder, the account, bucket and folder in the bucket, and the
filters (the same patterns as ``ossdesk sync --include / --exclude``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ossdesk.core.store import WatchedFolder
from ossdesk.core.sync import DEFAULT_EXCLUDES, read_patterns
from ossdesk.core.walk import normalize_prefix


class WatchFolderDialog(QDialog):
    def __init__(self, profiles: Sequence[Any], *, current: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("watchFolderDialog")
        self.setWindowTitle(self.tr("Watch a folder"))
        self.profiles = list(profiles)
        self.folder = QLineEdit(self)
        self.folder.setObjectName("watchFolderPath")
        self.browse = QPushButton(self.tr("Choose…"), self)
        self.browse.setObjectName("watchFolderBrowse")
        self.browse.clicked.connect(self.choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse)
        self.account = QComboBox(self)
        self.account.setObjectName("watchAccount")
        for profile in self.profiles:
            self.account.addItem(profile.name)
        if current:
            self.account.setCurrentText(current)
        self.bucket = QLineEdit(self)
        self.bucket.setObjectName("watchBucket")
        self.prefix = QLineEdit(self)
        self.prefix.setObjectName("watchPrefix")
        self.prefix.setPlaceholderText(self.tr("e.g. backups/renders"))
        self.includes = QPlainTextEdit(self)
        self.includes.setObjectName("watchIncludes")
        self.includes.setPlaceholderText(self.tr("Everything (one pattern a line, e.g. *.mov)"))
        self.excludes = QPlainTextEdit(self)
        self.excludes.setObjectName("watchExcludes")
        self.excludes.setPlaceholderText(self.tr("Nothing more (one pattern a line, e.g. cache)"))
        for edit in (self.includes, self.excludes):
            edit.setTabChangesFocus(True)
            edit.setFixedHeight(64)
        self.default_excludes = QCheckBox(
            self.tr("Leave out hidden and temporary files (%1)").replace(
                "%1", ", ".join(DEFAULT_EXCLUDES)), self)
        self.default_excludes.setObjectName("watchDefaultExcludes")
        self.default_excludes.setChecked(True)
        form = QFormLayout()
        form.addRow(self.tr("Folder on this computer:"), folder_row)
        form.addRow(self.tr("Account:"), self.account)
        form.addRow(self.tr("Bucket:"), self.bucket)
        form.addRow(self.tr("Folder in the bucket:"), self.prefix)
        form.addRow(self.tr("Only files matching:"), self.includes)
        form.addRow(self.tr("Leave out:"), self.excludes)
        form.addRow("", self.default_excludes)
        note = QLabel(self.tr(
            "Each file that appears or changes in the folder is uploaded once it has stopped "
            "changing for a few seconds. Nothing is ever deleted from the bucket."), self)
        note.setWordWrap(True)
        self.problem = QLabel(self)
        self.problem.setObjectName("watchProblem")
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(self.tr("Watch"))
        ok.setObjectName("watchOk")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.account.currentIndexChanged.connect(self._on_account)
        self._on_account()
        self.resize(620, self.sizeHint().height())

    def _profile(self) -> Any | None:
        index = self.account.currentIndex()
        return self.profiles[index] if 0 <= index < len(self.profiles) else None

    @Slot()
    def _on_account(self) -> None:
        profile = self._profile()
        if profile is not None:
            self.bucket.setText(profile.bucket)

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Choose a folder to watch"),
                                                  self.folder.text())
        if folder:
            self.folder.setText(folder)
            if not self.prefix.text().strip():
                self.prefix.setText(Path(folder).name)

    def watched_folder(self) -> WatchedFolder | str:
        """What to watch, or why it cannot be watched (for the user)."""
        profile = self._profile()
        text = self.folder.text().strip()
        if not text:
            return self.tr("Choose the folder to watch.")
        folder = Path(text).expanduser()
        if not folder.is_dir():
            return self.tr("%1 is not a folder.").replace("%1", str(folder))
        if profile is None:
            return self.tr("Add an account first (Accounts).")
        bucket = self.bucket.text().strip()
        if not bucket:
            return self.tr("Enter the bucket.")
        excludes = read_patterns(self.excludes.toPlainText().splitlines())
        if self.default_excludes.isChecked():
            excludes = [*DEFAULT_EXCLUDES, *excludes]
        return WatchedFolder(
            folder=folder.absolute(), credentials=profile.name, endpoint=str(profile.endpoint),
            bucket=bucket, prefix=normalize_prefix(self.prefix.text().strip()),
            region=getattr(profile, "region", None),
            signature=getattr(profile, "signature", "v4") or "v4",
            includes=tuple(read_patterns(self.includes.toPlainText().splitlines())),
            excludes=tuple(excludes))

    def accept(self) -> None:
        result = self.watched_folder()
        if isinstance(result, str):
            self.problem.setText(result)
            self.problem.show()
            return
        super().accept()
