"""The upload queue as one table model: row snapshots, coalesced updates, Python sorting.

The model never talks to the engine. It holds :class:`TransferRow` snapshots of the files
on their own and, for each dropped folder, what its sums need of its files (the rest is read
from the upload list as it is shown: :mod:`ossdesk.ui.folder_lines`); the bridge keeps them
current. Progress updates are merged into a pending dict and
applied by a short timer as ranged ``dataChanged`` signals (one per run of adjacent
rows), so 8 busy uploads cost a handful of repaints per second, whatever the queue size.
Byte counts are Python ints end to end (sizes over 2 GiB sort correctly).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any, ClassVar

from PySide6.QtCore import (
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
from ossdesk.ui.engine_types import FolderInfo as FolderInfo  # noqa: PLC0414
from ossdesk.ui.engine_types import RowKey as RowKey  # noqa: PLC0414
from ossdesk.ui.engine_types import TransferRow as TransferRow  # noqa: PLC0414
from ossdesk.ui.engine_types import TransferState as TransferState  # noqa: PLC0414
from ossdesk.ui.folder_lines import FolderLines
from ossdesk.ui.folder_lines import Item as Item  # noqa: PLC0414
from ossdesk.ui.folder_lines import Line as Line  # noqa: PLC0414
from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.formatting import format_duration, format_size, format_speed

# The columns, the words of a row and the totals; re-exported here.
from ossdesk.ui.queue_columns import _SORT_KEYS
from ossdesk.ui.queue_columns import CHILD_INDENT as CHILD_INDENT  # noqa: PLC0414
from ossdesk.ui.queue_columns import CLOSED_MARK as CLOSED_MARK  # noqa: PLC0414
from ossdesk.ui.queue_columns import OPEN_MARK as OPEN_MARK  # noqa: PLC0414
from ossdesk.ui.queue_columns import Column as Column  # noqa: PLC0414
from ossdesk.ui.queue_columns import Role as Role  # noqa: PLC0414
from ossdesk.ui.queue_columns import progress_parts as progress_parts  # noqa: PLC0414
from ossdesk.ui.queue_columns import progress_text as progress_text  # noqa: PLC0414
from ossdesk.ui.queue_columns import progress_tooltip as progress_tooltip  # noqa: PLC0414
from ossdesk.ui.queue_columns import state_label as state_label  # noqa: PLC0414
from ossdesk.ui.queue_columns import verified_label as verified_label  # noqa: PLC0414
from ossdesk.ui.queue_totals import QueueTotals
from ossdesk.ui.queue_totals import Totals as Totals  # noqa: PLC0414

AnyIndex = QModelIndex | QPersistentModelIndex

_ROW_FIELDS = frozenset(f.name for f in fields(TransferRow))
# Fields a row added again does not change: its id and folder; in a folder also what it
# takes from the folder (and its name there, its path inside the folder).
_KEPT_FIELDS = frozenset({"id", "folder"})
_FOLDER_FIELDS = _KEPT_FIELDS | {"name", "bucket", "profile", "key", "destination"}

_COLUMNS = tuple(Column)
_ROW_FLAGS = (
    Qt.ItemFlag.ItemIsEnabled
    | Qt.ItemFlag.ItemIsSelectable
    | Qt.ItemFlag.ItemNeverHasChildren
    | Qt.ItemFlag.ItemIsDragEnabled
    | Qt.ItemFlag.ItemIsDropEnabled
)

# A folder's files are not dragged on their own (the folder is).
_CHILD_FLAGS = (
    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
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


class TransferModel(FolderLines):
    """The queue. Mutate it only from the GUI thread (the bridge does).

    Two levels: the top holds the files added on their own and the dropped folders, in
    queue order (a folder where its first file came); a folder's files are in it. The
    table's lines are the top items, each open folder followed by its files' ids (a closed
    folder's files are no lines: Qt never asks for them). The totals count files, wherever
    they are.
    """

    totalsChanged = Signal(object)  # Totals
    rowsDragged = Signal(object, object)  # moved ids, ids from the first moved to the end

    FLUSH_INTERVAL_MS: ClassVar[int] = 250

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._file_count = 0
        self._pending: dict[RowKey, dict[str, Any]] = {}
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(self.FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._totals = Totals()
        self._running = QueueTotals(self._nodes)  # counts the files as they change
        self.state_icons: dict[TransferState, QIcon] = {}
        self.last_flush_seconds = 0.0
        self.flush_count = 0
        self.data_changed_ranges = 0
        #: Counts the adds and removals of files (before their lines are announced).
        self.file_changes = 0

    # ---- Qt model API -------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._lines)

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
        # Top lines can be dragged; a drop lands between them (or on one: before it).
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        n = index.row()
        item = self._lines[n] if 0 <= n < len(self._lines) else None
        return _CHILD_FLAGS if isinstance(item, int) else _ROW_FLAGS

    # ---- reordering by drag and drop (within the queue) --------------------------------

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [ROW_IDS_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        ids = self.file_ids(self.item(i) for i in indexes if i.isValid())
        mime = QMimeData()
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
        line = parent.row() if parent.isValid() else row
        self.move_before(ids, self._top_of_line(line) if 0 <= line < len(self._lines) else None)
        return False

    def move_before(self, keys: Iterable[RowKey], row: int | None) -> None:
        """Put rows just before top row number ``row`` (None: at the end), keeping their
        order; a file in a folder moves its whole folder. Emits ``rowsDragged`` with the
        moved ids and every id from them to the end."""
        self.flush()
        wanted = self._top_items(keys)
        if not wanted:
            return
        anchor = None if row is None else self._top[row]
        moving = [r for r in self._top if self._key(r) in wanted]
        staying = [r for r in self._top if self._key(r) not in wanted]
        if anchor is None or self._key(anchor) in wanted:
            cut = len(staying) if anchor is None else sum(
                1 for r in self._top[: self._top_positions()[self._key(anchor)]]
                if self._key(r) not in wanted
            )
        else:
            cut = next(i for i, r in enumerate(staying) if r is anchor)
        new_top = staying[:cut] + moving + staying[cut:]
        if all(a is b for a, b in zip(new_top, self._top, strict=True)):
            return
        self._relayout(new_top)
        self.rowsDragged.emit(self.file_ids(moving), self.file_ids(new_top[cut:]))

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called several times per visible cell on every paint (the view asks for font,
        # colours, check state...): roles the model does not serve return at once, and
        # nothing here parses paths or touches the file system.
        if role not in _SERVED_ROLES or not index.isValid():
            return None
        col_no = index.column()
        if not 0 <= col_no < len(_COLUMNS):
            return None
        row = self.item(index)
        if row is None:
            return None
        column = _COLUMNS[col_no]
        if role == _DISPLAY:
            if isinstance(row, FolderNode):
                return self._folder_display(row, column)
            if row.folder is not None:
                return self._child_display(row, column)
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
            return row.total_size if isinstance(row, FolderNode) else row.size
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

    def _child_display(self, row: TransferRow, column: Column) -> str:
        """A file in a folder: its path inside the folder, set in under the folder's name
        (the folder's line says where the folder goes; the tooltip has the file's whole
        destination)."""
        if column is Column.DESTINATION or column is Column.ACCOUNT:
            return ""
        if column is Column.NAME:
            return CHILD_INDENT + printable(row.name)
        return self._display(row, column)

    def _folder_display(self, node: FolderNode, column: Column) -> str:
        if column is Column.NAME:
            mark = OPEN_MARK if node in self._expanded else CLOSED_MARK
            return f"{mark} {printable(node.name)}"
        if column is Column.SIZE:
            return _cached_size(node.total_size)
        if column is Column.PROGRESS:
            return progress_text(node)
        moving = node.moving > 0
        if column is Column.SPEED:
            return format_speed(node.speed) if moving else ""
        if column is Column.ETA:
            return format_duration(node.eta) if moving else ""
        if column is Column.STATE:
            return node.state_text(state_label(node.state), short=True)
        if column is Column.ACCOUNT:
            return printable(node.profile)
        return printable(node.destination)

    def _tooltip(self, row: Item, column: Column) -> str | None:
        if column is Column.NAME:
            return printable(row.source_path)
        if column is Column.STATE and isinstance(row, FolderNode):
            return row.state_text(state_label(row.state))  # whole, if the column cuts it
        if column is Column.STATE and row.error:
            return printable(row.error)
        if column is Column.PROGRESS:
            return progress_tooltip(row)
        if column is Column.DESTINATION:
            if isinstance(row, TransferRow):
                return printable(self.destination_of(row))
            return printable(row.destination)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort in Python (64-bit sizes compare as ints), keeping selections in place: the
        top rows among themselves, and each folder's files inside it."""
        if not 0 <= column < len(Column):
            return
        self.flush()
        key = _SORT_KEYS[Column(column)]
        reverse = order == Qt.SortOrder.DescendingOrder
        children = {node: self._sorted_files(node, Column(column), reverse)
                    for node in self._top if isinstance(node, FolderNode)}
        self._relayout(sorted(self._top, key=key, reverse=reverse), children)

    # ---- reading ------------------------------------------------------------------------

    def item(self, index: AnyIndex) -> Item | None:
        """The file or folder on a (model) index's line."""
        if not index.isValid():
            return None
        n = index.row()
        return self.line_item(n) if 0 <= n < len(self._lines) else None

    def index_for(self, key: RowKey, column: int = 0) -> QModelIndex:
        """The model index of a file's line (invalid while its folder is closed)."""
        n = self._line_for(key)
        return QModelIndex() if n is None else self.index(n, column)

    def top_count(self) -> int:
        """How many top items (files on their own and folders) the queue has."""
        return len(self._top)

    def row(self, key: RowKey) -> TransferRow | None:
        """The current snapshot of a row (with pending updates applied; a file in a folder
        with what it takes from its folder written out)."""
        found = self.rows_of([key])
        return found[0] if found else None

    def rows_of(self, keys: Sequence[RowKey]) -> list[TransferRow]:
        """The current snapshots of these rows (those still here) in the order given: one
        flush, and the files of each folder read from the upload list together."""
        self.flush()
        wanted: dict[FolderNode, list[int]] = {}
        for key in keys:
            node = self._node_of(key)
            if node is not None and isinstance(key, int):
                wanted.setdefault(node, []).append(key)
        read: dict[RowKey, TransferRow] = {}
        for node, ids in wanted.items():
            read.update(zip(ids, self.reader.rows(node, ids), strict=True))
        out = []
        for key in keys:
            row = read.get(key)
            if row is None:
                plain = self._get(key)
                row = None if plain is None else self.full_row(plain)
            if row is not None:
                out.append(row)
        return out

    def contains(self, key: RowKey) -> bool:
        return key in self._line_of or self._node_of(key) is not None

    def current_state(self, key: RowKey) -> TransferState | None:
        """The row's state including a pending (not yet flushed) change; no flush."""
        pending = self._pending.get(key)
        if pending is not None and "state" in pending:
            state: TransferState = pending["state"]
            return state
        row = self._get(key)
        return None if row is None else row.state

    def current_confirmed(self, key: RowKey) -> int | None:
        """The row's confirmed bytes including a pending change; no flush."""
        pending = self._pending.get(key)
        if pending is not None and "confirmed_bytes" in pending:
            confirmed: int = pending["confirmed_bytes"]
            return confirmed
        row = self._get(key)
        return None if row is None else row.confirmed_bytes

    def row_at(self, row_no: int) -> TransferRow:
        """The file on line ``row_no`` (a folder's line is not a file: see :meth:`item`)."""
        item = self.line_item(row_no)
        if not isinstance(item, TransferRow):
            raise TypeError(f"line {row_no} is a folder")
        return item

    def rows(self, *, full: bool = True) -> list[TransferRow]:
        """Every file in queue order (a folder's files where the folder is), each with what
        it takes from its folder written out (key, destination, bucket, account), a
        folder's files read from the upload list; with ``full=False`` cheaper: a folder's
        files have only their ids, states, bytes, source paths and keys."""
        self.flush()
        rows: list[TransferRow] = []
        for item in self._top:
            if not isinstance(item, FolderNode):
                rows.append(self.full_row(item) if full else item)
            elif full:
                rows.extend(self.reader.all_rows(item))  # one read of the upload list
            else:
                rows.extend(self.reader.listed(item))  # one read of its paths
        return rows

    def ids(self) -> list[RowKey]:
        """Every file's id in queue order."""
        return self.file_ids(self._top)

    def totals(self) -> Totals:
        return self._totals

    def has_pending(self) -> bool:
        return bool(self._pending)

    def _get(self, key: RowKey) -> TransferRow | None:
        """A file's row as the model keeps it (a folder's file: what its folder keeps of
        it, :meth:`FolderNode.light`)."""
        n = self._line_of.get(key)  # a file on its own always has a line
        if n is not None:
            item = self._lines[n]
            return item if isinstance(item, TransferRow) else None
        node = self._node_of(key)
        slot = None if node is None else node.slot(key)
        return None if node is None or slot is None else node.light(slot)

    # ---- changing -----------------------------------------------------------------------

    def add_rows(self, rows: Sequence[TransferRow]) -> None:
        """Add rows (a folder's files go into its row); rows already here are updated."""
        self.file_changes += 1
        new_top: list[Item] = []
        into: dict[FolderNode, list[TransferRow]] = {}  # files for their folders
        new_ids: set[RowKey] = set()
        for row in rows:
            if row.id in new_ids or self.contains(row.id):
                kept = _FOLDER_FIELDS if self._node_of(row.id) is not None else _KEPT_FIELDS
                self.update(row.id, **{f: getattr(row, f) for f in _ROW_FIELDS if f not in kept})
                continue
            new_ids.add(row.id)
            info = self._folder_infos.get(row.folder) if row.folder is not None else None
            if info is None or not isinstance(row.id, int):
                row.folder = None  # a folder the window was not told of: a file on its own
                new_top.append(row)
                continue
            node = self._nodes.get(info.id)
            if node is None:
                node = self._nodes[info.id] = FolderNode(info)
                new_top.append(node)
            # The folder keeps what its sums need; the rest is read from the upload list.
            into.setdefault(node, []).append(row)
        for node, files in into.items():
            first = len(node)
            for row in files:
                self._running.count(node.light(node.add(row)), +1)
            self._file_count += len(files)
            n = self._line_of.get(node)
            if n is None:
                continue  # a new folder: its line comes below
            if node in self._expanded:
                at = n + 1 + first
                self.beginInsertRows(QModelIndex(), at, at + len(files) - 1)
                self._lines[at:at] = [int(row.id) for row in files]
                self._reindex_lines(at)
                self.endInsertRows()
            self.dataChanged.emit(self.index(n, Column.NAME), self.index(n, Column.ACCOUNT))
        if new_top:
            line = len(self._lines)
            self.beginInsertRows(QModelIndex(), line, line + len(new_top) - 1)
            for item in new_top:
                self._top.append(item)
                self._line_of[self._key(item)] = len(self._lines)
                self._lines.append(item)
                if not isinstance(item, FolderNode):
                    self._file_count += 1
                    self._running.count(item, +1)
            self.endInsertRows()
        if new_ids:
            self._update_totals()
            # The rows stay for long: out of the collector's full walks (see collector).
            collector.settle()

    def update(self, key: RowKey, /, **changes: Any) -> None:
        """Queue a change of any fields of a row; applied at the next flush (coalesced)."""
        bad = (set(changes) - _ROW_FIELDS) | (_KEPT_FIELDS & set(changes))
        if bad:
            raise ValueError(f"not changeable row fields: {sorted(bad)}")
        if not self.contains(key):
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
        """Apply pending updates; emit one ``dataChanged`` per run of adjacent rows (and
        one per folder whose files changed)."""
        self._flush_timer.stop()
        if not self._pending:
            return
        started = time.perf_counter()
        pending, self._pending = self._pending, {}
        live_rows: list[int] = []
        full_rows: list[int] = []
        folders: set[FolderNode] = set()
        for key, changes in pending.items():
            row = self._get(key)
            if row is None:
                continue
            if all(getattr(row, name) == value for name, value in changes.items()):
                continue
            self._running.count(row, -1)
            node = self._node_of(key)
            if node is None:
                for name, value in changes.items():
                    setattr(row, name, value)
                self._running.count(row, +1)
            else:
                slot = node.slot(key)
                assert slot is not None
                node.set(slot, changes)  # what the folder keeps of it (the sums')
                self._running.count(node.light(slot), +1)
                folders.add(node)
            n = self._line_for(key)
            if n is not None:  # a closed folder's files have no line
                (live_rows if set(changes) <= _LIVE_FIELDS else full_rows).append(n)
        self._emit_ranges(live_rows, Column.SIZE, Column.ETA)
        self._emit_ranges(full_rows, Column.NAME, Column.ACCOUNT)
        self._emit_ranges([self._line_of[node] for node in folders if node in self._line_of],
                          Column.NAME, Column.ACCOUNT)
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
        """Remove rows (one ``rowsRemoved`` per run of adjacent lines); returns how many. A
        folder whose files are all gone goes too."""
        self.flush()
        doomed = [row for row in map(self._get, set(keys)) if row is not None]
        if not doomed:
            return 0
        self.file_changes += 1
        gone = {row.id for row in doomed}
        lines = {n for n in map(self._line_for, gone) if n is not None}
        per_node: dict[FolderNode, list[RowKey]] = {}
        for key in gone:
            node = self._node_of(key)
            if node is not None:
                per_node.setdefault(node, []).append(key)
        touched = set(per_node)
        for row in doomed:
            self._forget(row)
        self.reader.forget(list(gone))
        emptied: set[FolderNode] = set()
        for node, node_keys in per_node.items():
            node.drop(node_keys)
            if not len(node):
                emptied.add(node)
                lines.add(self._line_of[node])
                self._nodes.pop(node.info.id, None)
                self._expanded.discard(node)
        self._top = [item for item in self._top
                     if (item not in emptied if isinstance(item, FolderNode)
                         else item.id not in gone)]
        self._remove_lines(sorted(lines, reverse=True))
        self._line_of = {}
        self._reindex_lines()
        self._emit_ranges([self._line_of[node] for node in touched - emptied],
                          Column.NAME, Column.ACCOUNT)
        self._update_totals()
        if not self._file_count:  # a good time for cycles that died frozen (see collector)
            collector.thaw()
        return len(doomed)

    def _remove_lines(self, doomed: list[int]) -> None:
        """Take lines away, in runs from the bottom (earlier line numbers stay valid)."""
        if not doomed:
            return
        end = start = doomed[0]
        for n in [*doomed[1:], None]:
            if n is not None and n == start - 1:
                start = n
                continue
            self.beginRemoveRows(QModelIndex(), start, end)
            del self._lines[start : end + 1]
            self.endRemoveRows()
            if n is not None:
                end = start = n

    def _forget(self, row: TransferRow) -> None:
        self._file_count -= 1
        self._pending.pop(row.id, None)
        self._running.count(row, -1)

    def clear_finished(self) -> list[RowKey]:
        """Remove done, cancelled and skipped rows; failed ones stay until dealt with."""
        self.flush()
        keys: list[RowKey] = []
        for item in self._top:
            if isinstance(item, FolderNode):
                keys += [item.id_of(s) for s in item.order if item.state_of(s).finished]
            elif item.state.finished:
                keys.append(item.id)
        self.remove(keys)
        return keys

    def move_to_top(self, keys: Iterable[RowKey]) -> None:
        self._move(keys, top=True)

    def move_to_bottom(self, keys: Iterable[RowKey]) -> None:
        self._move(keys, top=False)

    def _move(self, keys: Iterable[RowKey], *, top: bool) -> None:
        """Files on their own and whole folders move in the queue; some files of a
        folder move to the top (or bottom) of their folder."""
        self.flush()
        wanted = {k for k in keys if self.contains(k)}
        if not wanted:
            return
        per_folder: dict[FolderNode, int] = {}
        for key in wanted:
            node = self._node_of(key)
            if node is not None:
                per_folder[node] = per_folder.get(node, 0) + 1
        whole = {node for node, n in per_folder.items() if n == len(node)}

        def goes(item: Item) -> bool:
            return item in whole if isinstance(item, FolderNode) else item.id in wanted

        moving = [r for r in self._top if goes(r)]
        staying = [r for r in self._top if not goes(r)]
        children: dict[FolderNode, list[int]] = {}
        for node in per_folder:
            if node in whole:
                continue
            chosen = [s for s in node.order if node.id_of(s) in wanted]
            rest = [s for s in node.order if node.id_of(s) not in wanted]
            children[node] = chosen + rest if top else rest + chosen
        self._relayout(moving + staying if top else staying + moving, children)

    def _relayout(
        self,
        new_top: list[Item],
        new_children: dict[FolderNode, list[int]] | None = None,
    ) -> None:
        """Replace the order of the top items (and of some folders' files), remapping
        persistent indexes (selection survives)."""
        self.layoutAboutToBeChanged.emit()
        old_lines = self._lines
        persistent = self.persistentIndexList()
        self._top = new_top
        for node, slots in (new_children or {}).items():
            node.set_order(slots)
        self._lines = self._build_lines()
        self._line_of = {}
        self._reindex_lines()
        new_persistent = []
        for idx in persistent:
            n = idx.row()
            line = self._line_for(self._key(old_lines[n])) if 0 <= n < len(old_lines) else None
            new_persistent.append(
                QModelIndex() if line is None else self.index(line, idx.column()))
        self.changePersistentIndexList(persistent, new_persistent)
        self.layoutChanged.emit()

    def _update_totals(self) -> None:
        totals = self._running.totals(self._file_count)
        if totals != self._totals:
            self._totals = totals
            self.totalsChanged.emit(totals)
