"""Upload options per destination: storage class, ACL, headers, metadata, tags, encryption.

The window keeps one set of options per account and bucket (``upload_options.json`` in the
config folder); files dropped on that destination are uploaded with them, and each upload
keeps them in the upload list, so a resume writes the object the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ossdesk.config import load_json, paths, save_json
from ossdesk.core.object_options import ACLS, ObjectOptions, OptionError, parse_tags, tags_text
from ossdesk.ui.engine_types import Destination

STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
_FILE = "upload_options.json"


@dataclass(frozen=True)
class UploadOptions:
    """What objects sent to one destination are written with."""

    storage_class: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    options: ObjectOptions = field(default_factory=ObjectOptions)

    @property
    def empty(self) -> bool:
        return self == UploadOptions()

    def to_json(self) -> dict[str, Any]:
        return {"storage_class": self.storage_class,
                "metadata": [list(p) for p in self.metadata],
                "options": self.options.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadOptions:
        try:
            options = ObjectOptions.from_json(data.get("options")).checked()
            return cls(storage_class=data.get("storage_class") or None,
                       metadata=tuple((str(k), str(v)) for k, v in data.get("metadata", ())),
                       options=options)
        except (OptionError, ValueError, TypeError, AttributeError):
            return cls()  # a hand-edited file that no longer makes sense: no options


def destination_key(profile: str, bucket: str) -> str:
    return f"{profile}\n{bucket}"


def load_upload_options(profile: str, bucket: str) -> UploadOptions:
    data = load_json(paths().config_dir / _FILE).get(destination_key(profile, bucket))
    return UploadOptions.from_json(data) if isinstance(data, dict) else UploadOptions()


def save_upload_options(profile: str, bucket: str, options: UploadOptions) -> None:
    path = paths().config_dir / _FILE
    data = load_json(path)
    key = destination_key(profile, bucket)
    if options.empty:
        data.pop(key, None)
    else:
        data[key] = options.to_json()
    save_json(path, data)


def with_upload_options(destination: Destination) -> Destination:
    """The destination with the options saved for its account and bucket."""
    chosen = load_upload_options(destination.profile, destination.bucket)
    return dataclasses.replace(destination, storage_class=chosen.storage_class,
                               metadata=chosen.metadata, options=chosen.options)


def parse_metadata(text: str) -> tuple[tuple[str, str], ...]:
    """One ``NAME=VALUE`` a line (names lower-cased, as OSS keeps them)."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise OptionError(f"metadata {line.strip()!r}: write NAME=VALUE, one a line",
                              "metadata")
        if not all(c.isascii() and (c.isalnum() or c == "-") for c in name):
            raise OptionError(f"metadata name {name!r}: letters, digits and - only",
                              "metadata")
        pairs.append((name, value.strip()))
    return tuple(pairs)


class ObjectOptionsDialog(QDialog):
    """Edits the :class:`UploadOptions` of one destination; OK only with valid values."""

    def __init__(self, destination: str, options: UploadOptions,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("objectOptionsDialog")
        self.setWindowTitle(self.tr("Upload options"))
        self.result_options = options
        o = options.options

        intro = QLabel(self.tr("Files added to %1 are uploaded with these options. Uploads "
                               "already in the queue keep theirs.").replace("%1", destination))
        intro.setWordWrap(True)
        self.storage_class = QComboBox()
        self.storage_class.setObjectName("storageClass")
        self.storage_class.addItem(self.tr("Bucket default"), None)
        class_names = (self.tr("Standard"), self.tr("Infrequent Access (IA)"),
                       self.tr("Archive"), self.tr("Cold Archive"), self.tr("Deep Cold Archive"))
        for name, label in zip(STORAGE_CLASSES, class_names, strict=True):
            self.storage_class.addItem(label, name)
        self._select(self.storage_class, options.storage_class)
        self.acl = QComboBox()
        self.acl.setObjectName("objectAcl")
        self.acl.addItem(self.tr("Bucket default"), None)
        acl_names = (self.tr("Private"), self.tr("Public read"), self.tr("Public read and write"))
        for name, label in zip(ACLS[1:], acl_names, strict=True):
            self.acl.addItem(f"{label} ({name})", name)
        self._select(self.acl, None if o.acl == "default" else o.acl)
        self.content_type = QLineEdit(o.content_type or "")
        self.content_type.setObjectName("contentType")
        self.content_type.setPlaceholderText(self.tr("From the file name"))
        self.cache_control = QLineEdit(o.cache_control or "")
        self.cache_control.setObjectName("cacheControl")
        self.cache_control.setPlaceholderText("max-age=3600")
        self.content_disposition = QLineEdit(o.content_disposition or "")
        self.content_disposition.setObjectName("contentDisposition")
        self.content_disposition.setPlaceholderText("attachment")
        self.metadata = QPlainTextEdit("\n".join(f"{k}={v}" for k, v in options.metadata))
        self.metadata.setObjectName("metadata")
        self.metadata.setPlaceholderText(self.tr("NAME=VALUE, one a line"))
        self.metadata.setTabChangesFocus(True)
        self.metadata.setFixedHeight(self.fontMetrics().lineSpacing() * 4 + 12)
        self.tags = QLineEdit(tags_text(o.tags))
        self.tags.setObjectName("tags")
        self.tags.setPlaceholderText("team=data&year=2026")
        self.encryption = QComboBox()
        self.encryption.setObjectName("encryption")
        self.encryption.addItem(self.tr("None (bucket default)"), None)
        self.encryption.addItem(self.tr("Managed by OSS (AES256)"), "AES256")
        self.encryption.addItem(self.tr("KMS"), "KMS")
        self._select(self.encryption, o.encryption)
        self.kms_key_id = QLineEdit(o.kms_key_id or "")
        self.kms_key_id.setObjectName("kmsKeyId")
        self.kms_key_id.setPlaceholderText(self.tr("OSS's default key"))
        self.encryption.currentIndexChanged.connect(self._update_key_id)
        self._update_key_id()

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(self.tr("Storage class:"), self.storage_class)
        form.addRow(self.tr("Access (ACL):"), self.acl)
        form.addRow(self.tr("Content-Type:"), self.content_type)
        form.addRow(self.tr("Cache-Control:"), self.cache_control)
        form.addRow(self.tr("Content-Disposition:"), self.content_disposition)
        form.addRow(self.tr("Metadata:"), self.metadata)
        form.addRow(self.tr("Tags:"), self.tags)
        form.addRow(self.tr("Server-side encryption:"), self.encryption)
        form.addRow(self.tr("KMS key ID:"), self.kms_key_id)
        self.error_label = QLabel()
        self.error_label.setObjectName("optionsError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.Reset)
        self.buttons.button(QDialogButtonBox.StandardButton.Reset).setText(
            self.tr("Clear all"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Reset).clicked.connect(self.clear)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

    @staticmethod
    def _select(combo: QComboBox, value: str | None) -> None:
        index = combo.findData(value)
        combo.setCurrentIndex(max(index, 0))

    @Slot()
    def _update_key_id(self) -> None:
        self.kms_key_id.setEnabled(self.encryption.currentData() == "KMS")

    @Slot()
    def clear(self) -> None:
        for combo in (self.storage_class, self.acl, self.encryption):
            combo.setCurrentIndex(0)
        for edit in (self.content_type, self.cache_control, self.content_disposition,
                     self.tags, self.kms_key_id):
            edit.clear()
        self.metadata.clear()
        self.error_label.hide()

    def chosen(self) -> UploadOptions:
        """The options as entered; :class:`OptionError` says what is wrong."""
        encryption = self.encryption.currentData()
        options = ObjectOptions(
            acl=self.acl.currentData(), content_type=self.content_type.text(),
            cache_control=self.cache_control.text(),
            content_disposition=self.content_disposition.text(),
            tags=parse_tags(self.tags.text()), encryption=encryption,
            kms_key_id=self.kms_key_id.text() if encryption == "KMS" else None,
        ).checked()
        return UploadOptions(storage_class=self.storage_class.currentData(),
                             metadata=parse_metadata(self.metadata.toPlainText()),
                             options=options)

    def explain(self, exc: OptionError) -> tuple[str, QWidget | None]:
        """What is wrong, in the window's language, and the field to fix."""
        header = self.tr("%1 can hold neither line breaks nor characters outside Latin-1 "
                         "(for a file name write filename*=UTF-8''...).")
        known: dict[str, tuple[str, QWidget]] = {
            "tags": (self.tr("Tags: write KEY=VALUE, several joined by &; at most 10 tags, "
                             "no key twice; keys of up to 128 and values of up to 256 "
                             "characters, made of letters, digits, spaces and + - = . _ : /"),
                     self.tags),
            "metadata": (self.tr("Metadata: write NAME=VALUE, one a line; a name holds "
                                 "letters, digits and - only."), self.metadata),
            "content_type": (header.replace("%1", "Content-Type"), self.content_type),
            "cache_control": (header.replace("%1", "Cache-Control"), self.cache_control),
            "content_disposition": (header.replace("%1", "Content-Disposition"),
                                    self.content_disposition),
            "kms_key_id": (self.tr("The KMS key ID can hold neither line breaks nor "
                                   "characters outside Latin-1."), self.kms_key_id),
        }
        if exc.field in known:
            return known[exc.field]
        return str(exc), None

    def accept(self) -> None:
        try:
            self.result_options = self.chosen()
        except OptionError as exc:
            text, widget = self.explain(exc)
            self.error_label.setText(self.tr("Not saved. %1").replace("%1", text))
            self.error_label.show()
            self.adjustSize()  # room for the message: the fields keep their size
            if widget is not None:
                widget.setFocus()
            return
        super().accept()
