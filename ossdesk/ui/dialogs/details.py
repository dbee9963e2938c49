"""A row's details: how it was verified (CRC-64 or MD5), the checksum, the upload id and
parts, the destination, the account and the times, from the upload list on disk."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ossdesk.core.names import printable
from ossdesk.ui import engine_types as rq
from ossdesk.ui.bridge import EngineAdapter
from ossdesk.ui.engine_types import TransferRow, UploadDetails
from ossdesk.ui.formatting import format_size
from ossdesk.ui.transfer_model import TransferState, state_label, verified_label

_log = logging.getLogger(__name__)


def add_values(dialog: QDialog, form: QFormLayout,
               fields: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """One form row per ``(name, label, value)``, the value selectable to copy it; returns
    the values by name."""
    values: dict[str, str] = {}
    for name, label, value in fields:
        values[name] = value
        field = QLabel(value, dialog)
        field.setObjectName(f"detail_{name}")
        field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(label, field)
    return values


def fit_width(dialog: QDialog) -> None:
    """At least 560 px wide, and wide enough for the longest value (a URL or a path)."""
    dialog.setMinimumWidth(560)
    hint = dialog.sizeHint()
    dialog.resize(max(560, hint.width()), hint.height())


class DetailsDialog(QDialog):
    """Read-only facts of one row; every value can be selected and copied."""

    @classmethod
    def for_row(cls, engine: EngineAdapter | None, row: TransferRow,
                parent: QWidget | None) -> DetailsDialog:
        """The dialog of a row, with what the engine's upload list knows of it."""
        details, url = None, ""
        if engine is not None:
            try:
                details = engine.ask(rq.Details(row))
            except Exception:  # noqa: BLE001 - the dialog shows what is known without it
                _log.exception("could not read the details of %s", row.name)
            if details is not None:
                url = details.url
            else:
                try:
                    url = engine.ask(rq.ObjectUrl(row))
                except Exception:  # noqa: BLE001 - shown without its URL
                    _log.exception("could not make the URL of %s", row.name)
        return cls(row, details, url, parent)

    def __init__(self, row: TransferRow, details: UploadDetails | None, url: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailsDialog")
        self.setWindowTitle(self.tr("Details of %1").replace("%1", printable(row.name)))
        self.url = url
        self.values: dict[str, str] = {}
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        layout.addLayout(form)
        self.values.update(add_values(self, form, self._fields(row, details)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText(self.tr("Close"))
        self.copy_button = buttons.addButton(self.tr("Copy URL"),
                                             QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setEnabled(bool(url))
        self.copy_button.clicked.connect(self.copy_url)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        fit_width(self)

    def copy_url(self) -> None:
        QGuiApplication.clipboard().setText(self.url)

    def _part_size(self, details: UploadDetails) -> str:
        if details.part_size is None:
            return "—"
        if details.head_size and details.head_parts and details.head_size != details.part_size:
            # A plan that grew once the link's speed was known.
            return (self.tr("%1 (the first %2 parts), then %3")
                    .replace("%1", format_size(details.head_size))
                    .replace("%2", str(details.head_parts))
                    .replace("%3", format_size(details.part_size)))
        return format_size(details.part_size)

    def _when(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        # Local time, to the second, in a form that reads the same in every language.
        moment = QDateTime.fromMSecsSinceEpoch(round(seconds * 1000))
        return moment.toString("yyyy-MM-dd HH:mm:ss")

    def _fields(self, row: TransferRow,
                details: UploadDetails | None) -> list[tuple[str, str, str]]:
        tr = self.tr
        state = (verified_label(row.check) if row.state is TransferState.DONE
                 else state_label(row.state))
        fields = [
            ("file", tr("File:"), printable(row.source_path)),
            ("destination", tr("Destination:"), printable(row.destination)),
            ("url", tr("URL:"), self.url or "—"),
            ("account", tr("Account:"), printable(details.account if details else row.profile)),
            ("size", tr("Size:"), tr("%1 (%2 bytes)").replace("%1", format_size(row.size))
             .replace("%2", str(row.size))),
            ("state", tr("State:"), state),
        ]
        if details is None:
            fields.append(("note", tr("Note:"),
                           tr("The upload list no longer holds this file: only what the window "
                              "shows is known.")))
            return fields
        if details.state == "done" and details.skipped:
            check = tr("Not sent: an object with the same size and CRC-64 was already there")
        elif details.state == "done" and details.check == "md5":
            check = tr("MD5 of each part (the server gave no CRC-64)")
        elif details.state == "done" and details.check == "crc64":
            check = tr("CRC-64: the object's CRC-64 equals the file's")
        else:
            check = tr("Not verified yet")
        if details.upload_id:
            upload_id = details.upload_id
        elif details.state == "done" and details.parts == 0:
            upload_id = tr("None (sent in one request)")
        else:
            upload_id = "—"
        fields += [
            ("check", tr("Verified by:"), check),
            ("crc64", tr("CRC-64:"), "—" if details.crc64 is None else str(details.crc64)),
            ("etag", tr("ETag:"), details.etag or "—"),
            ("upload_id", tr("Upload id:"), upload_id),
            ("parts", tr("Parts:"), "—" if not details.parts else str(details.parts)),
            ("part_size", tr("Part size:"), self._part_size(details)),
            ("queued", tr("Queued:"), self._when(details.queued_at)),
            ("started", tr("Started:"), self._when(details.started_at)),
            ("finished", tr("Finished:"), self._when(details.finished_at)),
        ]
        return fields
