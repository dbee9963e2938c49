"""The upload queue as one table model: row snapshots, coalesced updates, Python sorting.

The model never talks to the engine. It holds a list of :class:`TransferRow` snapshots
that the bridge keeps current. Progress updates are merged into a pending dict and
applied by a short timer as ranged ``dataChanged`` signals (one per run of adjacent
rows), so 8 busy uploads cost a handful of repaints per second, whatever the queue size.
Byte counts are Python ints end to end (sizes over 2 GiB sort correctly).
"""

from __future__ import annotations

import enum
import html
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QByteArray,
    QCoreApplication,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QIcon

from ossdesk.core.names import printable
from ossdesk.ui import collector

# Defined Qt-free (the engine process sends them); re-exported here.
from ossdesk.ui.engine_types import RowKey as RowKey  # noqa: PLC0414
from ossdesk.ui.engine_types import TransferRow as TransferRow  # noqa: PLC0414
from ossdesk.ui.engine_types import TransferState as TransferState  # noqa: PLC0414
from ossdesk.ui.formatting import format_duration, format_size, format_speed, percent

AnyIndex = QModelIndex | QPersistentModelIndex


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


def progress_parts(row: TransferRow) -> tuple[int, int]:
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


def progress_text(row: TransferRow) -> str:
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


def progress_tooltip(row: TransferRow) -> str:
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


_ROW_FIELDS = frozenset(f.name for f in fields(TransferRow))


@dataclass(frozen=True, slots=True)
class Totals:
    files: int = 0
    active: int = 0
    waiting: int = 0
    paused: int = 0
    done: int = 0
    failed: int = 0
    finished: int = 0  # done, cancelled or skipped: what "Clear finished" removes
    pausable: int = 0
    total_bytes: int = 0
    confirmed_bytes: int = 0
    sent_bytes: int = 0  # sent, confirmed or not: at least ``confirmed_bytes``
    speed: float = 0.0
    eta: float | None = None
    #: Files being sent now (state Uploading): what the status bar calls "uploading".
    uploading: int = 0
    #: How many accounts the rows belong to (the Account column shows when more than one).
    accounts: int = 0
    skipped: int = 0
    cancelled: int = 0


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


_SORT_KEYS: dict[Column, Callable[[TransferRow], Any]] = {
    Column.NAME: lambda r: (r.name.casefold(), r.source_path),
    Column.SIZE: lambda r: r.size,
    Column.PROGRESS: lambda r: (r.confirmed_bytes / r.size) if r.size else 1.0,
    Column.SPEED: lambda r: r.speed,
    Column.ETA: lambda r: (r.eta is None, r.eta or 0.0),
    Column.STATE: lambda r: list(TransferState).index(r.state),
    Column.DESTINATION: lambda r: r.destination.casefold(),
    Column.ACCOUNT: lambda r: r.profile.casefold(),
}

# Indexes into TransferModel._sums (running totals, all ints).
(
    _S_ACTIVE, _S_WAITING, _S_PAUSED, _S_DONE, _S_FAILED, _S_SIZE, _S_CONFIRMED, _S_SPEED,
    _S_REMAINING, _S_FINISHED, _S_PAUSABLE, _S_SENT,
) = range(12)

_COLUMNS = tuple(Column)
_ROW_FLAGS = (
    Qt.ItemFlag.ItemIsEnabled
    | Qt.ItemFlag.ItemIsSelectable
    | Qt.ItemFlag.ItemNeverHasChildren
    | Qt.ItemFlag.ItemIsDragEnabled
    | Qt.ItemFlag.ItemIsDropEnabled
)

#: Drag payload of rows moved inside the queue: a JSON list of row ids.
ROW_IDS_MIME = "application/x-ossdesk-row-ids"

# The roles data() answers; any other role (font, colours, check state, size hint...)
# is None without further work.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_SERVED_ROLES = frozenset(
    {
        _DISPLAY,
        _ALIGNMENT,
        int(Qt.ItemDataRole.ToolTipRole),
        int(Qt.ItemDataRole.DecorationRole),
        *(int(r) for r in Role),
    }
)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_RIGHT_COLUMNS = frozenset({Column.SIZE, Column.SPEED, Column.ETA})

_size_texts: dict[int, str] = {}


def _cached_size(num_bytes: int) -> str:
    """``format_size`` for the Size column, remembered: each visible row's size is asked
    for on every repaint. Sizes under 1 KiB are cheap and not kept."""
    if num_bytes < 1024:
        return format_size(num_bytes)
    text = _size_texts.get(num_bytes)
    if text is None:
        if len(_size_texts) > 50_000:
            _size_texts.clear()
        text = _size_texts[num_bytes] = format_size(num_bytes)
    return text


# Fields whose change touches only the live columns (progress, speed, time left).
_LIVE_FIELDS = frozenset({"confirmed_bytes", "sent_bytes", "speed", "eta"})


class TransferModel(QAbstractTableModel):
    """The queue. Mutate it only from the GUI thread (the bridge does)."""

    totalsChanged = Signal(object)  # Totals
    rowsDragged = Signal(object, object)  # moved ids, ids from the first moved to the end

    FLUSH_INTERVAL_MS: ClassVar[int] = 250

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[TransferRow] = []
        self._index_of: dict[RowKey, int] = {}
        self._pending: dict[RowKey, dict[str, Any]] = {}
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(self.FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._totals = Totals()
        self._sums = [0] * 12
        self._accounts: dict[str, int] = {}  # rows per account
        self._skipped = self._cancelled = 0
        # The active rows themselves (a few dozen at most): the queue's time left is never
        # shorter than one of theirs.
        self._active_rows: dict[RowKey, TransferRow] = {}
        self.state_icons: dict[TransferState, QIcon] = {}
        self.last_flush_seconds = 0.0
        self.flush_count = 0
        self.data_changed_ranges = 0

    # ---- Qt model API -------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.column_title(Column(section))
        if role == Qt.ItemDataRole.TextAlignmentRole and section in (
            Column.SIZE,
            Column.SPEED,
            Column.ETA,
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def column_title(column: Column) -> str:
        translate = QCoreApplication.translate
        return {
            Column.NAME: translate("TransferModel", "Name"),
            Column.SIZE: translate("TransferModel", "Size"),
            Column.PROGRESS: translate("TransferModel", "Progress"),
            Column.SPEED: translate("TransferModel", "Speed"),
            Column.ETA: translate("TransferModel", "Time left"),
            Column.STATE: translate("TransferModel", "State"),
            Column.DESTINATION: translate("TransferModel", "Destination"),
            Column.ACCOUNT: translate("TransferModel", "Account"),
        }[column]

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        # Rows can be dragged; a drop lands between rows (or on a row: before it).
        return _ROW_FLAGS if index.isValid() else Qt.ItemFlag.ItemIsDropEnabled

    # ---- reordering by drag and drop (within the queue) --------------------------------

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [ROW_IDS_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        rows = sorted({i.row() for i in indexes if i.isValid()})
        mime = QMimeData()
        ids = [self._rows[r].id for r in rows if 0 <= r < len(self._rows)]
        mime.setData(ROW_IDS_MIME, QByteArray(json.dumps(ids).encode()))
        return mime

    def canDropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        column: int,
        parent: AnyIndex,
    ) -> bool:
        return action == Qt.DropAction.MoveAction and data.hasFormat(ROW_IDS_MIME)

    def dropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        column: int,
        parent: AnyIndex,
    ) -> bool:
        """Move the dragged rows before ``row`` (or before ``parent``'s row, or to the end).

        Returns False so the view does not remove the "source" rows itself: the move is
        done here, in one layout change.
        """
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        try:
            ids = json.loads(bytes(data.data(ROW_IDS_MIME).data()).decode())
        except (ValueError, UnicodeDecodeError):
            return False
        if not isinstance(ids, list):
            return False
        target = parent.row() if parent.isValid() else row
        self.move_before(ids, target if 0 <= target < len(self._rows) else None)
        return False

    def move_before(self, keys: Iterable[RowKey], row: int | None) -> None:
        """Put rows just before row number ``row`` (None: at the end), keeping their order;
        emits ``rowsDragged`` with the moved ids and every id from them to the end."""
        self.flush()
        wanted = {k for k in keys if k in self._index_of}
        if not wanted:
            return
        anchor = None if row is None else self._rows[row].id
        moving = [r for r in self._rows if r.id in wanted]
        staying = [r for r in self._rows if r.id not in wanted]
        if anchor is None or anchor in wanted:
            # Dropped at the end, or onto one of the dragged rows: after the last row
            # before the drop point that stays.
            cut = len(staying) if anchor is None else sum(
                1 for r in self._rows[: self._index_of[anchor]] if r.id not in wanted
            )
        else:
            cut = next(i for i, r in enumerate(staying) if r.id == anchor)
        new_rows = staying[:cut] + moving + staying[cut:]
        if [r.id for r in new_rows] == [r.id for r in self._rows]:
            return
        self._reorder(new_rows)
        self.rowsDragged.emit([r.id for r in moving], [r.id for r in new_rows[cut:]])

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called several times per visible cell on every paint (the view asks for font,
        # colours, check state...): roles the model does not serve return at once, and
        # nothing here parses paths or touches the file system.
        if role not in _SERVED_ROLES or not index.isValid():
            return None
        row_no, col_no = index.row(), index.column()
        if not (0 <= row_no < len(self._rows) and 0 <= col_no < len(_COLUMNS)):
            return None
        row = self._rows[row_no]
        column = _COLUMNS[col_no]
        if role == _DISPLAY:
            return self._display(row, column)
        if role == _ALIGNMENT:
            return _RIGHT if column in _RIGHT_COLUMNS else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.DecorationRole and column is Column.STATE:
            return self.state_icons.get(row.state)
        if role == Role.ROW:
            return row
        if role == Role.ID:
            return row.id
        if role == Role.SORT:
            return _SORT_KEYS[column](row)
        if role == Role.STATE:
            return row.state.value
        if role == Role.CONFIRMED:
            return row.confirmed_bytes
        if role == Role.SENT:
            return row.sent_bytes
        if role == Role.SIZE:
            return row.size
        return None

    @staticmethod
    def _display(row: TransferRow, column: Column) -> str:
        if column is Column.NAME:
            return printable(row.name)
        if column is Column.SIZE:
            return _cached_size(row.size)
        if column is Column.PROGRESS:
            return progress_text(row)
        if column is Column.SPEED:
            return format_speed(row.speed) if row.state.active else ""
        if column is Column.ETA:
            return format_duration(row.eta) if row.state.active else ""
        if column is Column.STATE:
            if row.state is TransferState.UPLOADING and row.error:
                # A request failed and waits for its next try (the tooltip says why).
                return QCoreApplication.translate("TransferState", "Retrying")
            if row.state is TransferState.DONE:
                return verified_label(row.check)
            return state_label(row.state)
        if column is Column.ACCOUNT:
            return printable(row.profile)
        return printable(row.destination)

    @staticmethod
    def _tooltip(row: TransferRow, column: Column) -> str | None:
        if column is Column.NAME:
            return printable(row.source_path)
        if column is Column.STATE and row.error:
            return printable(row.error)
        if column is Column.PROGRESS:
            return progress_tooltip(row)
        if column is Column.DESTINATION:
            return printable(row.destination)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort in Python (64-bit sizes compare as ints), keeping selections in place."""
        if not 0 <= column < len(Column):
            return
        self.flush()
        key = _SORT_KEYS[Column(column)]
        self._reorder(
            sorted(
                self._rows,
                key=key,
                reverse=order == Qt.SortOrder.DescendingOrder,
            )
        )

    # ---- reading ------------------------------------------------------------------------

    def row(self, key: RowKey) -> TransferRow | None:
        """The current snapshot of a row (with pending updates applied)."""
        self.flush()
        i = self._index_of.get(key)
        return None if i is None else self._rows[i]

    def current_state(self, key: RowKey) -> TransferState | None:
        """The row's state including a pending (not yet flushed) change; no flush."""
        pending = self._pending.get(key)
        if pending is not None and "state" in pending:
            state: TransferState = pending["state"]
            return state
        i = self._index_of.get(key)
        return None if i is None else self._rows[i].state

    def current_confirmed(self, key: RowKey) -> int | None:
        """The row's confirmed bytes including a pending change; no flush."""
        pending = self._pending.get(key)
        if pending is not None and "confirmed_bytes" in pending:
            confirmed: int = pending["confirmed_bytes"]
            return confirmed
        i = self._index_of.get(key)
        return None if i is None else self._rows[i].confirmed_bytes

    def row_at(self, row_no: int) -> TransferRow:
        return self._rows[row_no]

    def rows(self) -> list[TransferRow]:
        self.flush()
        return list(self._rows)

    def index_of(self, key: RowKey) -> int | None:
        return self._index_of.get(key)

    def ids(self) -> list[RowKey]:
        return [r.id for r in self._rows]

    def totals(self) -> Totals:
        return self._totals

    def has_pending(self) -> bool:
        return bool(self._pending)

    # ---- changing -----------------------------------------------------------------------

    def add_rows(self, rows: Sequence[TransferRow]) -> None:
        """Append rows (one ``rowsInserted``); rows whose id is already here are updated."""
        new: list[TransferRow] = []
        new_ids: set[RowKey] = set()
        for row in rows:
            if row.id in self._index_of or row.id in new_ids:
                self.update(row.id, **{f: getattr(row, f) for f in _ROW_FIELDS if f != "id"})
            else:
                new.append(row)
                new_ids.add(row.id)
        if not new:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for offset, row in enumerate(new):
            self._rows.append(row)
            self._index_of[row.id] = first + offset
            self._count(row, +1)
        self.endInsertRows()
        self._update_totals()
        # The rows stay for long: out of the collector's full walks (see collector).
        collector.settle()

    def update(self, key: RowKey, /, **changes: Any) -> None:
        """Queue a change of any fields of a row; applied at the next flush (coalesced)."""
        bad = (set(changes) - _ROW_FIELDS) | ({"id"} & set(changes))
        if bad:
            raise ValueError(f"not changeable row fields: {sorted(bad)}")
        if key not in self._index_of:
            return
        if "state" in changes:
            changes["state"] = TransferState(changes["state"])
        self._pending.setdefault(key, {}).update(changes)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def update_progress(
        self,
        key: RowKey,
        confirmed_bytes: int,
        sent_bytes: int,
        speed: float | None = None,
        eta: float | None = None,
    ) -> None:
        changes: dict[str, Any] = {
            "confirmed_bytes": confirmed_bytes,
            "sent_bytes": max(sent_bytes, confirmed_bytes),
        }
        if speed is not None:
            changes["speed"] = speed
            changes["eta"] = eta
        self.update(key, **changes)

    def flush(self) -> None:
        """Apply pending updates; emit one ``dataChanged`` per run of adjacent rows."""
        self._flush_timer.stop()
        if not self._pending:
            return
        started = time.perf_counter()
        pending, self._pending = self._pending, {}
        live_rows: list[int] = []
        full_rows: list[int] = []
        for key, changes in pending.items():
            i = self._index_of.get(key)
            if i is None:
                continue
            row = self._rows[i]
            if all(getattr(row, name) == value for name, value in changes.items()):
                continue
            self._count(row, -1)
            for name, value in changes.items():
                setattr(row, name, value)
            self._count(row, +1)
            if set(changes) <= _LIVE_FIELDS:
                live_rows.append(i)
            else:
                full_rows.append(i)
        self._emit_ranges(live_rows, Column.SIZE, Column.ETA)
        self._emit_ranges(full_rows, Column.NAME, Column.ACCOUNT)
        self._update_totals()
        self.flush_count += 1
        self.last_flush_seconds = time.perf_counter() - started

    def _emit_ranges(self, row_numbers: list[int], first_col: Column, last_col: Column) -> None:
        if not row_numbers:
            return
        row_numbers.sort()
        start = prev = row_numbers[0]
        for n in [*row_numbers[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            self.dataChanged.emit(self.index(start, first_col), self.index(prev, last_col))
            self.data_changed_ranges += 1
            if n is not None:
                start = prev = n

    def remove(self, keys: Iterable[RowKey]) -> int:
        """Remove rows (one ``rowsRemoved`` per run of adjacent rows); returns how many."""
        self.flush()
        doomed = sorted({self._index_of[k] for k in keys if k in self._index_of}, reverse=True)
        if not doomed:
            return 0
        # Walk runs from the bottom so earlier row numbers stay valid.
        end = start = doomed[0]
        for n in [*doomed[1:], None]:
            if n is not None and n == start - 1:
                start = n
                continue
            self.beginRemoveRows(QModelIndex(), start, end)
            for row in self._rows[start : end + 1]:
                self._pending.pop(row.id, None)
                self._count(row, -1)
            del self._rows[start : end + 1]
            self.endRemoveRows()
            if n is not None:
                end = start = n
        self._reindex()
        self._update_totals()
        if not self._rows:  # a good time for cycles that died frozen (see collector)
            collector.thaw()
        return len(doomed)

    def clear_finished(self) -> list[RowKey]:
        """Remove done, cancelled and skipped rows; failed ones stay until dealt with."""
        self.flush()
        keys = [r.id for r in self._rows if r.state.finished]
        self.remove(keys)
        return keys

    def move_to_top(self, keys: Iterable[RowKey]) -> None:
        self._move(keys, top=True)

    def move_to_bottom(self, keys: Iterable[RowKey]) -> None:
        self._move(keys, top=False)

    def _move(self, keys: Iterable[RowKey], *, top: bool) -> None:
        self.flush()
        wanted = {k for k in keys if k in self._index_of}
        if not wanted:
            return
        moving = [r for r in self._rows if r.id in wanted]
        staying = [r for r in self._rows if r.id not in wanted]
        self._reorder(moving + staying if top else staying + moving)

    def _reorder(self, new_rows: list[TransferRow]) -> None:
        """Replace the row order, remapping persistent indexes (selection survives)."""
        self.layoutAboutToBeChanged.emit()
        old_keys = [row.id for row in self._rows]
        persistent = self.persistentIndexList()
        self._rows = new_rows
        self._reindex()
        new_persistent = []
        for idx in persistent:
            old_row = idx.row()
            key = old_keys[old_row] if 0 <= old_row < len(old_keys) else None
            new_row = self._index_of.get(key) if key is not None else None
            new_persistent.append(
                self.index(new_row, idx.column()) if new_row is not None else QModelIndex()
            )
        self.changePersistentIndexList(persistent, new_persistent)
        self.layoutChanged.emit()

    def _reindex(self) -> None:
        self._index_of = {row.id: i for i, row in enumerate(self._rows)}

    def _count(self, row: TransferRow, sign: int) -> None:
        """Add (+1) or take away (-1) a row's share of the totals: O(1) per change, so a
        flush costs the same with 10 rows or 100,000."""
        state = row.state
        sums = self._sums
        accounts = self._accounts
        left = accounts.get(row.profile, 0) + sign
        if left > 0:
            accounts[row.profile] = left
        else:
            accounts.pop(row.profile, None)
        if state is TransferState.SKIPPED:
            self._skipped += sign
        elif state is TransferState.CANCELLED:
            self._cancelled += sign
        if state.finished:
            sums[_S_FINISHED] += sign
        if state.can_pause:
            sums[_S_PAUSABLE] += sign
        if state in (TransferState.CANCELLED, TransferState.SKIPPED):
            return
        sums[_S_SIZE] += sign * row.size
        sums[_S_CONFIRMED] += sign * min(row.confirmed_bytes, row.size)
        sums[_S_SENT] += sign * min(max(row.sent_bytes, row.confirmed_bytes), row.size)
        if state.active:
            sums[_S_ACTIVE] += sign
            sums[_S_SPEED] += sign * round(row.speed)
            if sign > 0:
                self._active_rows[row.id] = row
            else:
                self._active_rows.pop(row.id, None)
        if state is TransferState.QUEUED:
            sums[_S_WAITING] += sign
        elif state is TransferState.PAUSED:
            sums[_S_PAUSED] += sign
        elif state is TransferState.DONE:
            sums[_S_DONE] += sign
        elif state is TransferState.FAILED:
            sums[_S_FAILED] += sign
        if state.active or state is TransferState.QUEUED:
            sums[_S_REMAINING] += sign * max(row.size - row.confirmed_bytes, 0)

    def _update_totals(self) -> None:
        sums = self._sums
        speed = sums[_S_SPEED]
        remaining = sums[_S_REMAINING]
        eta = remaining / speed if speed > 0 and remaining > 0 else None
        if eta is not None:
            # The queue's time left: all remaining bytes (active and queued rows) at the total
            # speed, but never less than the time left of one of its rows, which has to
            # finish before the queue does.
            row_etas = [r.eta for r in self._active_rows.values()
                        if r.eta is not None and math.isfinite(r.eta)]
            if row_etas:
                eta = max(eta, *row_etas)
        uploading = sum(1 for r in self._active_rows.values()
                        if r.state is TransferState.UPLOADING)
        totals = Totals(
            files=len(self._rows),
            active=sums[_S_ACTIVE],
            waiting=sums[_S_WAITING],
            paused=sums[_S_PAUSED],
            done=sums[_S_DONE],
            failed=sums[_S_FAILED],
            finished=sums[_S_FINISHED],
            pausable=sums[_S_PAUSABLE],
            total_bytes=sums[_S_SIZE],
            confirmed_bytes=sums[_S_CONFIRMED],
            sent_bytes=sums[_S_SENT],
            speed=float(speed),
            eta=eta,
            uploading=uploading,
            accounts=len(self._accounts),
            skipped=self._skipped,
            cancelled=self._cancelled,
        )
        if totals != self._totals:
            self._totals = totals
            self.totalsChanged.emit(totals)
