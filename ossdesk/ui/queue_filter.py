"""Finding rows in a long queue: the state filters (with their counts) and a name search.

:class:`QueueFilter` sits between the queue model and the view. It filters in Python with
one cheap test per row (the row's state and, while a search is typed, its name), so adding
20,000 rows with a filter on costs one pass over the new rows; the counts on the filter
buttons come from the model's running totals (kept in O(1) per change), never from a walk
of the rows. Sorting is left to the model (64-bit sizes, the queue order kept apart).

The filters look into dropped folders: a folder is shown while one of its files is (its
state counts say so at once; a search walks its files' names once per search text and
remembers the answer), opened, with only its files that pass under it; back to All, the
folders a filter opened close again. A folder's files are judged by what the folder keeps of
them (their states) and, while a search is typed, their names read once per search from the
upload list (:meth:`FolderReader.names`), never row by row.
"""

from __future__ import annotations

import enum

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLineEdit,
    QToolButton,
    QWidget,
)

from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.transfer_model import RowKey, Totals, TransferModel, TransferState


class Show(enum.IntEnum):
    """Which rows the queue shows."""

    ALL = 0
    ACTIVE = 1  # still to do: waiting, checking, uploading, verifying, paused
    FAILED = 2
    DONE = 3  # uploaded and verified, or already there (skipped)


_STATES: dict[Show, frozenset[TransferState]] = {
    Show.ACTIVE: frozenset({
        TransferState.QUEUED, TransferState.CHECKING, TransferState.UPLOADING,
        TransferState.VERIFYING, TransferState.PAUSED,
    }),
    Show.FAILED: frozenset({TransferState.FAILED}),
    Show.DONE: frozenset({TransferState.DONE, TransferState.SKIPPED}),
}


def count_of(show: Show, totals: Totals) -> int:
    """How many rows a filter shows, from the model's running totals."""
    if show is Show.ALL:
        return totals.files
    if show is Show.ACTIVE:
        return totals.active + totals.waiting + totals.paused
    if show is Show.FAILED:
        return totals.failed
    return totals.done + totals.skipped


def show_label(show: Show) -> str:
    translate = QCoreApplication.translate
    return {
        Show.ALL: translate("QueueFilter", "All"),
        Show.ACTIVE: translate("QueueFilter", "Active"),
        Show.FAILED: translate("QueueFilter", "Failed"),
        Show.DONE: translate("QueueFilter", "Done"),
    }[show]


class QueueFilter(QSortFilterProxyModel):
    """The rows of one filter whose name contains the search text (case-insensitive)."""

    def __init__(self, source: TransferModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue = source
        self._show = Show.ALL
        self._states: frozenset[TransferState] | None = None
        self._needle = ""
        # The folders' files whose names hold the search text: (needle, files, their ids).
        self._name_ids: dict[FolderNode, tuple[str, int, frozenset[int]]] = {}
        # The folders' files a search alone shows: (needle, the queue's file_changes), ids.
        self._search_ids: tuple[object, frozenset[int]] = ((), frozenset())
        self._opened: set[FolderNode] = set()  # folders a filter or search opened
        self.setSourceModel(source)
        # Rows whose state changes join or leave the filter at once.
        self.setDynamicSortFilter(True)

    @property
    def queue(self) -> TransferModel:
        return self._queue

    def show_only(self, show: Show) -> None:
        if show is self._show:
            return
        self.beginFilterChange()
        self._show = show
        self._states = _STATES.get(show)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        self._open_folders()

    def shown(self) -> Show:
        return self._show

    def set_search(self, text: str) -> None:
        needle = text.strip().casefold()
        if needle == self._needle:
            return
        self.beginFilterChange()
        self._needle = needle
        self._name_ids.clear()
        self._search_ids = ((), frozenset())
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        self._open_folders()

    def search(self) -> str:
        return self._needle

    def is_filtering(self) -> bool:
        return self._states is not None or bool(self._needle)

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        states, needle = self._states, self._needle
        if states is None and not needle:
            return True
        queue = self._queue
        if states is None:
            key = queue.line_id(source_row)
            if key is not None:  # a folder's file, a search alone: one look in a set
                return key in self._searched(needle)
        child = queue.line_child(source_row)
        if child is not None:
            # A file of a folder: its state as the folder keeps it, its name searched for
            # in the folder's names (or the folder's own name matches).
            node, slot = child
            if states is not None and node.state_of(slot) not in states:
                return False
            return (not needle or needle in node.name.casefold()
                    or node.id_of(slot) in self._matching(node, needle))
        item = queue.line_item(source_row)
        if isinstance(item, FolderNode):
            return self._folder_shown(item, states, needle)
        if item is None:
            return False
        if states is not None and item.state not in states:
            return False
        return not needle or needle in item.name.casefold()

    def _searched(self, needle: str) -> frozenset[int]:
        """The ids of the folders' files a search shows: those whose name holds ``needle``,
        and all the files of a folder whose own name holds it."""
        queue = self._queue
        counted = (needle, queue.file_changes)  # files came or went: found again
        if self._search_ids[0] != counted:
            found: set[int] = set()
            for node in queue.folders():
                found.update(node.ids() if needle in node.name.casefold()
                             else self._matching(node, needle))
            self._search_ids = (counted, frozenset(found))
        return self._search_ids[1]

    def _matching(self, node: FolderNode, needle: str) -> frozenset[int]:
        """The ids of a folder's files whose name (path inside it) holds ``needle``: one
        read of its names from the upload list per search text."""
        hit = self._name_ids.get(node)
        if hit is None or hit[0] != needle or hit[1] != len(node):
            names = self._queue.reader.names(node)
            found = frozenset(k for k, name in names.items() if needle in name.casefold())
            hit = self._name_ids[node] = (needle, len(node), found)
        return hit[2]

    def _open_folders(self) -> None:
        """Open the folders a filter or search shows (what it found in them is in sight at
        once); close those it opened when it is off again."""
        queue = self._queue
        if not self.is_filtering():
            for node in self._opened:
                queue.set_expanded(node, False)
            self._opened.clear()
            return
        for node in queue.folders():
            if not queue.is_expanded(node) and self._folder_shown(
                    node, self._states, self._needle):
                self._opened.add(node)
                queue.set_expanded(node, True)

    def _folder_shown(
        self, node: FolderNode, states: frozenset[TransferState] | None, needle: str
    ) -> bool:
        """Whether a folder shows: one of its files passes the state filter (from its
        counts) and its name, or one of its files' names, holds the search text."""
        if states is not None and not any(node.states[s] for s in states):
            return False
        if not needle or needle in node.name.casefold():
            return True
        matching = self._matching(node, needle)
        if states is not None:
            # The files that pass both: a walk of those whose name matches.
            return any(slot is not None and node.state_of(slot) in states
                       for slot in map(node.slot, matching))
        return bool(matching)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        # The model sorts (in Python, 64-bit sizes as ints); this proxy keeps its order.
        self._queue.sort(column, order)

    def to_source_row(self, index: QModelIndex | QPersistentModelIndex) -> int:
        return self.mapToSource(index).row()

    def from_source_row(self, row: int, column: int = 0) -> QModelIndex:
        """The view's index of a top model row (invalid while the filter hides it)."""
        return self.mapFromSource(self._queue.index(row, column))

    def from_key(self, key: RowKey, column: int = 0) -> QModelIndex:
        """The view's index of a file, in a folder or not (invalid while hidden)."""
        return self.mapFromSource(self._queue.index_for(key, column))


class FilterBar(QWidget):
    """All / Active / Failed / Done, each with its count, and a search line."""

    showChanged = Signal(int)  # Show

    SEARCH_DELAY_MS = 150

    def __init__(self, queue_filter: QueueFilter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterBar")
        self._filter = queue_filter
        self._totals = queue_filter.queue.totals()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[Show, QToolButton] = {}
        for show in Show:
            button = QToolButton(self)
            button.setObjectName(f"filter{show.name.title()}")
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            self.group.addButton(button, int(show))
            self.buttons[show] = button
            layout.addWidget(button)
        self.buttons[Show.ALL].setChecked(True)
        layout.addStretch(1)
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("searchEdit")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setMinimumWidth(220)
        layout.addWidget(self.search_edit)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(self.SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_search)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.group.idClicked.connect(self._on_clicked)
        queue_filter.queue.totalsChanged.connect(self._on_totals)
        self.find_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), parent or self)
        self.find_shortcut.activated.connect(self.focus_search)
        self.retranslate()

    def focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def apply_search(self) -> None:
        self._search_timer.stop()
        self._filter.set_search(self.search_edit.text())

    def show_only(self, show: Show) -> None:
        self.buttons[show].setChecked(True)
        self._on_clicked(int(show))

    def _on_clicked(self, show_id: int) -> None:
        show = Show(show_id)
        self._filter.show_only(show)
        self.showChanged.emit(int(show))

    def _on_totals(self, totals: object) -> None:
        if isinstance(totals, Totals):
            self._totals = totals
            self._update_counts()

    def _update_counts(self) -> None:
        for show, button in self.buttons.items():
            text = f"{show_label(show)} ({count_of(show, self._totals)})"
            if button.text() != text:
                button.setText(text)

    def button_text(self, show: Show) -> str:
        return self.buttons[show].text()

    def retranslate(self) -> None:
        self.search_edit.setPlaceholderText(
            QCoreApplication.translate("QueueFilter", "Search by name"))
        self.search_edit.setToolTip(
            QCoreApplication.translate("QueueFilter", "Show only the files whose name "
                                       "contains this text"))
        self._update_counts()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
