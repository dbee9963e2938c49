"""The queue's dropped folders as lines of its table: which line is which file or folder,
opening and closing a folder, finding the folder of a file, and a folder's files read from
the upload list when they are shown.

:class:`FolderLines` is the base of :class:`~ossdesk.ui.transfer_model.TransferModel`: the
table's lines are the top items (files on their own and folders), each open folder followed
by the ids of its files (a closed folder's files are no lines: Qt never asks for them). A
folder keeps of its files only what its sums need (:class:`FolderNode`); the rest is read by
its :class:`FolderReader`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex

from ossdesk.ui.engine_types import FolderInfo, RowKey, TransferRow, TransferState
from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.folder_store import FolderReader
from ossdesk.ui.queue_columns import Column

AnyIndex = QModelIndex | QPersistentModelIndex
Item = TransferRow | FolderNode
# A table line: a file on its own, a folder, or (an int) the id of a file of an open folder.
Line = TransferRow | FolderNode | int


def _waits(state: TransferState) -> bool:
    """Waiting or being sent (what a watched folder's count counts)."""
    return state.active or state is TransferState.QUEUED


class FolderLines(QAbstractTableModel):
    """The lines of the queue's table and the folders among them."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._top: list[Item] = []
        self._folder_infos: dict[int, FolderInfo] = {}
        self._nodes: dict[int, FolderNode] = {}  # by folder id, while the folder has files
        # The table's lines: top items, an open folder's files (their ids) after it.
        self._lines: list[Line] = []
        self._line_of: dict[object, int] = {}  # top files by id, folders by their node
        self._expanded: set[FolderNode] = set()
        #: Reads the files of folders from the upload list when they are shown.
        self.reader = FolderReader()
        self._last_node: FolderNode | None = None

    def flush(self) -> None:
        """Apply pending changes (the model's)."""

    def line_item(self, line: int) -> Item | None:
        """The file or folder on a line (a file of a folder read from the upload list)."""
        item = self._lines[line]
        if not isinstance(item, int):
            return item
        node = self._node_of(item)
        slot = None if node is None else node.slot(item)
        return None if node is None or slot is None else self.reader.row_at(node, slot)

    def line_id(self, line: int) -> int | None:
        """The id of the folder's file on a line (None: a file on its own or a folder)."""
        item = self._lines[line]
        return item if isinstance(item, int) else None

    def line_child(self, line: int) -> tuple[FolderNode, int] | None:
        """The folder and slot of a folder's file on a line (None: not such a line); no
        reading of the upload list."""
        item = self._lines[line]
        if not isinstance(item, int):
            return None
        node = self._node_of(item)
        slot = None if node is None else node.slot(item)
        return None if node is None or slot is None else (node, slot)

    def _line_for(self, key: object) -> int | None:
        """The line of a top item (files by id, folders by node) or of a file of an open
        folder."""
        n = self._line_of.get(key)
        if n is not None or isinstance(key, FolderNode):
            return n
        node = self._node_of(key)
        if node is None or node not in self._expanded:
            return None
        slot = node.slot(key)
        top = self._line_of.get(node)
        return None if slot is None or top is None else top + 1 + node.place_of(slot)

    def folder_index(self, folder: int, column: int = 0) -> QModelIndex:
        """The model index of a dropped folder's line (invalid while it has no files)."""
        node = self._nodes.get(folder)
        n = None if node is None else self._line_of.get(node)
        return QModelIndex() if n is None else self.index(n, column)

    def is_expanded(self, node: FolderNode) -> bool:
        return node in self._expanded

    def set_expanded(self, node: FolderNode, expanded: bool) -> None:
        """Open a folder (its files become lines after it) or close it."""
        n = self._line_of.get(node)
        if n is None or (node in self._expanded) == expanded:
            return
        count = len(node)
        if expanded:
            self.reader.retry()  # its files are read as they are shown
            self._expanded.add(node)
            if count:
                self.beginInsertRows(QModelIndex(), n + 1, n + count)
                self._lines[n + 1 : n + 1] = node.ids()
                self._reindex_lines(n + 1)
                self.endInsertRows()
        else:
            self._expanded.discard(node)
            if count:
                self.beginRemoveRows(QModelIndex(), n + 1, n + count)
                del self._lines[n + 1 : n + 1 + count]
                self._reindex_lines(n + 1)
                self.endRemoveRows()
        self.dataChanged.emit(self.index(n, Column.NAME), self.index(n, Column.NAME))

    def folder(self, folder: int) -> FolderNode | None:
        """A dropped folder's row while it has files here."""
        return self._nodes.get(folder)

    def folders(self) -> list[FolderNode]:
        return [item for item in self._top if isinstance(item, FolderNode)]

    def ids_where(self, wanted: Callable[[TransferState], bool]) -> list[RowKey]:
        """Every file's id whose state ``wanted`` accepts, in queue order (a folder's files
        from the states it keeps: nothing read from the upload list)."""
        self.flush()
        ids: list[RowKey] = []
        for item in self._top:
            if isinstance(item, FolderNode):
                ids.extend(item.ids_where(wanted))
            elif wanted(item.state):
                ids.append(item.id)
        return ids

    def waiting_under(self, bucket: str, prefix: str) -> int:
        """How many files for ``bucket`` whose source path begins with ``prefix`` (a
        folder's path with its separator) wait or are being sent. A dropped folder under
        ``prefix`` counts from its sums; only a ``prefix`` inside a dropped folder reads
        the paths of that folder's files (once, until its files change)."""
        self.flush()
        count = 0
        for item in self._top:
            if item.bucket != bucket:
                continue
            if not isinstance(item, FolderNode):
                if _waits(item.state) and item.source_path.startswith(prefix):
                    count += 1
                continue
            waiting = item.waiting
            if not waiting:
                continue
            inside = item.source_path.rstrip("/\\") + prefix[-1:]  # with the separator
            if inside.startswith(prefix):
                count += waiting
            elif prefix.startswith(inside):
                count += self.reader.count_under(item, prefix, _waits)
        return count

    def index_of(self, key: RowKey) -> int | None:
        """The line of a file added on its own (None for a file in a folder)."""
        return self._line_of.get(key) if self._node_of(key) is None else None

    def top_rows_of(self, keys: Iterable[RowKey]) -> set[int]:
        """The top positions of files on their own and of the folders files are in."""
        positions = self._top_positions()
        found = (positions.get(n if (n := self._node_of(key)) is not None else key)
                 for key in keys)
        return {n for n in found if n is not None}

    def file_ids(self, items: Iterable[Item | None]) -> list[RowKey]:
        """The ids of these files and of the files in these folders, each once, in order."""
        seen: set[RowKey] = set()
        ids: list[RowKey] = []
        for item in items:
            if item is None:
                continue
            keys = item.ids() if isinstance(item, FolderNode) else (item.id,)
            for key in keys:
                if key not in seen:
                    seen.add(key)
                    ids.append(key)
        return ids

    def failed_rows(self, node: FolderNode, limit: int) -> list[TransferRow]:
        """A folder's first ``limit`` failed files (in its order), read from the upload
        list, with what the window was told since."""
        self.flush()
        return self.reader.rows(node, node.failed_ids(limit))

    def folder_of(self, key: RowKey) -> FolderNode | None:
        """The dropped folder a file is in (None: on its own, or not here)."""
        return self._node_of(key)

    def _node_of(self, key: object) -> FolderNode | None:
        """The folder a file is in (None: on its own, or not here): a bisection in each
        folder's ids (the folder last found first)."""
        if not isinstance(key, int) or key in self._line_of:
            return None
        last = self._last_node
        if (last is not None and self._nodes.get(last.info.id) is last
                and last.slot(key) is not None):
            return last
        for node in self._nodes.values():
            if node.slot(key) is not None:
                self._last_node = node
                return node
        return None

    def _sorted_files(self, node: FolderNode, column: Column, reverse: bool) -> list[int]:
        """A folder's files (slots) sorted by a column: by name (and destination, which
        follows the name) from the paths read from the upload list, by the others from what
        the node keeps; the account is the folder's (the order stays)."""
        if column in (Column.NAME, Column.DESTINATION):
            names = self.reader.names(node)
            return sorted(node.order, reverse=reverse,
                          key=lambda s: names.get(node.id_of(s), "").casefold())
        if column is Column.ACCOUNT:
            return list(node.order)
        return sorted(node.order, reverse=reverse, key=node.sort_key(column.name.lower()))

    def key_of(self, row: TransferRow) -> str:
        """A file's key (a file in a folder keeps only the part after its folder's)."""
        if row.key or row.folder is None:
            return row.key
        node = self._nodes.get(row.folder)
        return row.key if node is None else node.key_prefix + row.name

    def destination_of(self, row: TransferRow) -> str:
        """Where a file goes (a file in a folder does not keep it: it is its folder's
        bucket and its key)."""
        return row.destination or f"oss://{row.bucket}/{self.key_of(row)}"

    def full_row(self, row: TransferRow) -> TransferRow:
        """A copy of a file's row with all it takes from its folder written out (for a
        dialog, a message or a request to the engine)."""
        if row.destination and row.key:
            return row
        # Its bucket and account are kept (shared with its folder): only these are derived.
        return replace(row, key=self.key_of(row), destination=self.destination_of(row))

    @staticmethod
    def _key(item: Line) -> object:
        if isinstance(item, int):
            return item
        return item if isinstance(item, FolderNode) else item.id

    def _build_lines(self) -> list[Line]:
        lines: list[Line] = []
        for item in self._top:
            lines.append(item)
            if isinstance(item, FolderNode) and item in self._expanded:
                lines.extend(item.ids())
        return lines

    def _reindex_lines(self, start: int = 0) -> None:
        line_of, key, lines = self._line_of, self._key, self._lines
        for n in range(start, len(lines)):
            item = lines[n]
            if not isinstance(item, int):  # a folder's files are found by their place
                line_of[key(item)] = n

    def _top_items(self, keys: Iterable[RowKey]) -> set[object]:
        """The top keys of these files: their own, or their folder's."""
        wanted: set[object] = set()
        for key in keys:
            node = self._node_of(key)
            if node is not None:
                wanted.add(node)
            elif key in self._line_of:
                wanted.add(key)
        return wanted

    def _top_positions(self) -> dict[object, int]:
        """Where each top item is (files by id, folders by node): worked out when a move
        needs it, not kept (a queue of files on their own has a line index already)."""
        return {self._key(item): i for i, item in enumerate(self._top)}

    def _top_of_line(self, line: int) -> int:
        """The top position of the item on a line (a folder's file: its folder's)."""
        item = self._lines[line]
        key = self._key(item)
        node = item if isinstance(item, FolderNode) else self._node_of(key)
        return self._top_positions()[node if node is not None else key]

    def add_folders(self, folders: Iterable[FolderInfo]) -> None:
        """Dropped folders that rows to come refer to (:attr:`TransferRow.folder`)."""
        for info in folders:
            self._folder_infos[info.id] = info
        self.reader.retry()  # the upload list has them now, if it could not be read before
