"""The queue's columns and the words of a row: the column and role numbers, what the State
and Progress columns say (and their tooltips), and how each column sorts.

Used by :class:`~ossdesk.ui.transfer_model.TransferModel` (which re-exports these names),
the progress bar's delegate and the details dialogs.
"""

from __future__ import annotations

import enum
import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt

from ossdesk.ui.engine_types import TransferRow, TransferState
from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.formatting import format_size, percent


def state_label(state: TransferState) -> str:
    """The word a user sees in the State column."""
    translate = QCoreApplication.translate
    labels = {
        TransferState.QUEUED: translate("TransferState", "Waiting"),
        TransferState.CHECKING: translate("TransferState", "Checking"),
        TransferState.UPLOADING: translate("TransferState", "Uploading"),
        TransferState.VERIFYING: translate("TransferState", "Verifying"),
        TransferState.PAUSED: translate("TransferState", "Paused"),
        TransferState.DONE: translate("TransferState", "Done"),
        TransferState.FAILED: translate("TransferState", "Failed"),
        TransferState.CANCELLED: translate("TransferState", "Cancelled"),
        TransferState.SKIPPED: translate("TransferState", "Skipped (already there)"),
    }
    return labels[state]


def verified_label(check: str) -> str:
    """What the State column says of a done row, by how it was verified."""
    translate = QCoreApplication.translate
    if check == "crc64":
        return translate("TransferState", "Verified (CRC-64)")
    if check == "md5":
        return translate("TransferState", "Verified (MD5)")
    return state_label(TransferState.DONE)


def progress_parts(row: TransferRow | FolderNode) -> tuple[int, int]:
    """The whole percents of the row's bytes (sent, confirmed by OSS); sent counts the
    confirmed bytes too, so it is never below confirmed."""
    if row.state is TransferState.DONE:
        return 100, 100
    if row.state is TransferState.CANCELLED:
        return 0, 0  # its parts were discarded: nothing of it stays in OSS
    if row.size <= 0:
        # An empty file is whole once it is there, not before.
        return (100, 100) if row.state is TransferState.SKIPPED else (0, 0)
    confirmed = min(max(row.confirmed_bytes, 0), max(row.size, 0))
    sent = max(row.sent_bytes, confirmed)
    return percent(sent, row.size), percent(confirmed, row.size)


def progress_text(row: TransferRow | FolderNode) -> str:
    """What the Progress column says: ``"12 %"`` once OSS confirmed all that was sent,
    else the share sent and the share confirmed (``"12 % (3 % confirmed)"``); nothing for a
    cancelled row."""
    if row.state is TransferState.CANCELLED:
        return ""
    sent, confirmed = progress_parts(row)
    if sent == confirmed:
        return f"{confirmed} %"
    return QCoreApplication.translate("TransferModel", "%1 % (%2 % confirmed)").replace(
        "%1", str(sent)).replace("%2", str(confirmed))


def progress_tooltip(row: TransferRow | FolderNode) -> str:
    """The Progress column's tooltip: the two counts, and what the bar's two shades mean."""
    translate = QCoreApplication.translate
    if row.state is TransferState.CANCELLED:  # no bar to explain
        return translate("CancelledRow", "Cancelled: the parts it had sent were discarded on "
                                         "the server. Retry starts it over.")
    sent, confirmed = progress_parts(row)
    size = max(row.size, 0)
    lines = (
        translate("TransferModel", "Sent: %1 of %2 (%3 %)").replace(
            "%1", format_size(min(max(row.sent_bytes, row.confirmed_bytes), size)))
        .replace("%2", format_size(size)).replace("%3", str(sent)),
        translate("TransferModel", "Confirmed by OSS: %1 (%2 %)").replace(
            "%1", format_size(min(row.confirmed_bytes, size))).replace("%2", str(confirmed)),
        translate("TransferModel",
                  "The solid bar is what OSS has confirmed; the lighter bar is sent and "
                  "not yet confirmed (OSS confirms a part once all of it has arrived)."),
    )
    # Rich text: lines without a raw newline, and a long sentence wraps.
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


class Column(enum.IntEnum):
    NAME = 0
    SIZE = 1
    PROGRESS = 2
    SPEED = 3
    ETA = 4
    STATE = 5
    DESTINATION = 6
    ACCOUNT = 7


class Role(enum.IntEnum):
    ROW = Qt.ItemDataRole.UserRole + 1  # the TransferRow snapshot
    ID = Qt.ItemDataRole.UserRole + 2
    SORT = Qt.ItemDataRole.UserRole + 3  # a Python value that orders the column
    STATE = Qt.ItemDataRole.UserRole + 4
    CONFIRMED = Qt.ItemDataRole.UserRole + 5
    SENT = Qt.ItemDataRole.UserRole + 6
    SIZE = Qt.ItemDataRole.UserRole + 7


_SORT_KEYS: dict[Column, Callable[[TransferRow | FolderNode], Any]] = {
    Column.NAME: lambda r: (r.name.casefold(), r.source_path),
    Column.SIZE: lambda r: r.total_size if isinstance(r, FolderNode) else r.size,
    Column.PROGRESS: lambda r: (r.confirmed_bytes / r.size) if r.size else 1.0,
    Column.SPEED: lambda r: r.speed,
    Column.ETA: lambda r: (r.eta is None, r.eta or 0.0),
    Column.STATE: lambda r: list(TransferState).index(r.state),
    Column.DESTINATION: lambda r: r.destination.casefold(),
    Column.ACCOUNT: lambda r: r.profile.casefold(),
}

#: Before a folder's name: open (its files below it) or closed.
OPEN_MARK = "▾"
CLOSED_MARK = "▸"
#: Before the name of a file in a folder (set in under the folder's name).
CHILD_INDENT = "\u2003\u2003"
