"""A dropped folder's details: how many of its files are in each state, its sizes, where it
goes, and why the first failed files failed."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QVBoxLayout,
    QWidget,
)

from ossdesk.core.names import printable
from ossdesk.ui.dialogs.details import add_values, fit_width
from ossdesk.ui.folder_rows import FolderNode, count_text
from ossdesk.ui.formatting import format_size
from ossdesk.ui.transfer_model import TransferRow, TransferState, progress_parts, state_label

#: How many failed files the dialog names (the Failed filter finds all of them).
FAILED_SHOWN = 5


class FolderDetailsDialog(QDialog):
    """Read-only facts of one dropped folder; every value can be selected and copied."""

    def __init__(self, node: FolderNode, parent: QWidget | None = None, *,
                 failed: Sequence[TransferRow] = ()) -> None:
        """``failed``: its first failed files (read from the upload list by the model's
        :meth:`~ossdesk.ui.transfer_model.TransferModel.failed_rows`)."""
        super().__init__(parent)
        self.setObjectName("folderDetailsDialog")
        self.setWindowTitle(self.tr("Details of %1").replace("%1", printable(node.name)))
        self.values: dict[str, str] = {}
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        layout.addLayout(form)
        self.values.update(add_values(self, form, self._fields(node, failed)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText(self.tr("Close"))
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        fit_width(self)

    def _fields(self, node: FolderNode,
                failed: Sequence[TransferRow]) -> list[tuple[str, str, str]]:
        states = node.states
        counts = [
            (state, states[state]) for state in TransferState if states[state]
        ]
        sent, confirmed = progress_parts(node)
        fields = [
            ("state", self.tr("State:"), node.state_text(state_label(node.state))),
            ("files", self.tr("Files:"), ", ".join(
                f"{state_label(state)}: {count_text(n)}" for state, n in counts)
             or count_text(0)),
            ("size", self.tr("Size:"), format_size(node.total_size)),
            ("confirmed", self.tr("Confirmed by OSS:"),
             self.tr("%1 of %2 (%3 %)").replace("%1", format_size(node.confirmed_bytes))
             .replace("%2", format_size(node.size)).replace("%3", str(confirmed))),
            ("sent", self.tr("Sent:"),
             self.tr("%1 of %2 (%3 %)").replace("%1", format_size(node.sent_bytes))
             .replace("%2", format_size(node.size)).replace("%3", str(sent))),
            ("source", self.tr("Folder:"), printable(node.source_path)),
            ("destination", self.tr("Destination:"), printable(node.destination)),
            ("account", self.tr("Account:"), printable(node.profile)),
        ]
        if failed:
            lines = [f"{printable(r.name)}: {printable(r.error)}" for r in failed]
            more = states[TransferState.FAILED] - len(failed)
            if more > 0:
                lines.append(self.tr("and %1 more (the Failed filter shows them all)")
                             .replace("%1", count_text(more)))
            fields.append(("failures", self.tr("Failed files:"), "\n".join(lines)))
        return fields
