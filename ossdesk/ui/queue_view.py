"""The window's queue table (with its drop hint) and the first-run panel shown while no
account exists. A dropped folder is one line; opened, its files are lines under it."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QRect, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QFont, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ossdesk.ui.folder_rows import FolderNode, widest_state_text
from ossdesk.ui.queue_order import whole_row_modifiers
from ossdesk.ui.transfer_model import Column, Role, TransferState, state_label


def local_paths(urls: Sequence[QUrl]) -> list[str]:
    """The local files among dropped URLs (remote URLs are ignored)."""
    return [url.toLocalFile() for url in urls if url.isLocalFile() and url.toLocalFile()]


class QueueView(QTableView):
    """The queue table; paints a drop hint while the queue is empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(26)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        # Rows are reordered by dragging them; files dropped from outside go on to the
        # window (an internal-move view ignores drags that did not start in it).
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        self.hint_title = ""
        self.hint_detail = ""
        self._fitted_for_folders = False

    #: What the Name and Destination columns keep when the State column widens for a
    #: folder's words.
    NAME_ROOM = 240
    DESTINATION_ROOM = 200
    #: A click this far into a folder's Name cell (its ▸ mark) opens or closes it.
    MARK_WIDTH = 22

    def setModel(self, model: QAbstractItemModel | None) -> None:
        super().setModel(model)
        if model is not None:
            model.rowsInserted.connect(self._on_rows_inserted)

    def folder_at(self, index: QModelIndex) -> FolderNode | None:
        item = index.data(Role.ROW) if index.isValid() else None
        return item if isinstance(item, FolderNode) else None

    def toggle_folder(self, index: QModelIndex, expanded: bool | None = None) -> bool:
        """Open or close the folder on this line (None: the other way); False if the line
        is not a folder's."""
        node = self.folder_at(index)
        queue = getattr(self.model(), "queue", None)
        if node is None or queue is None:
            return False
        queue.set_expanded(node, not queue.is_expanded(node) if expanded is None else expanded)
        return True

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.indexAt(event.position().toPoint())
        if (index.isValid() and index.column() == Column.NAME
                and event.button() == Qt.MouseButton.LeftButton
                and event.position().x() - self.visualRect(index).left() <= self.MARK_WIDTH
                and self.toggle_folder(index)):
            self.setCurrentIndex(index)
            return
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Right (or +) opens the current folder, Left (or -) closes it."""
        index = self.currentIndex()
        key = event.key()
        opening = key in (Qt.Key.Key_Right, Qt.Key.Key_Plus)
        closing = key in (Qt.Key.Key_Left, Qt.Key.Key_Minus)
        if (opening or closing) and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier \
                and self.toggle_folder(index, opening):
            return
        super().keyPressEvent(event)

    @Slot(QModelIndex, int, int)
    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if self._fitted_for_folders:
            return
        model = self.model()
        # New folders come at the end, each on one line.
        for n in range(max(first, last - 50), last + 1):
            if isinstance(model.index(n, 0).data(Role.ROW), FolderNode):
                self.fit_state_for_folders()
                return

    def fit_state_for_folders(self) -> None:
        """Once a folder is in the queue: the State column wide enough for a folder's word
        and counts ("Uploading · 1,999/2,000 · 12 failed"), the room taken from the
        Destination column (a folder's files leave theirs empty), down to DESTINATION_ROOM,
        then from the Name column, down to NAME_ROOM (the tooltip has the words whole)."""
        self._fitted_for_folders = True
        metrics = self.fontMetrics()
        text = max(metrics.horizontalAdvance(widest_state_text(state_label(state)))
                   for state in (TransferState.UPLOADING, TransferState.QUEUED,
                                 TransferState.PAUSED))
        state_width = self.columnWidth(Column.STATE)
        extra = text + 48 - state_width  # its icon and margins
        if extra <= 0:
            return
        destination = self.columnWidth(Column.DESTINATION)
        from_destination = min(extra, max(0, destination - self.DESTINATION_ROOM))
        name = self.columnWidth(Column.NAME)
        from_name = min(extra - from_destination, max(0, name - self.NAME_ROOM))
        if from_destination:
            self.setColumnWidth(Column.DESTINATION, destination - from_destination)
        self.setColumnWidth(Column.STATE, state_width + from_destination + from_name)

    def moveCursor(
        self, cursorAction: QAbstractItemView.CursorAction, modifiers: Qt.KeyboardModifier
    ) -> QModelIndex:
        return super().moveCursor(cursorAction, whole_row_modifiers(cursorAction, modifiers))

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() > 0:
            return
        painter = QPainter(self.viewport())
        try:
            rect = self.viewport().rect()
            colour = self.palette().color(QPalette.ColorRole.PlaceholderText)
            painter.setPen(colour)
            title_font = QFont(self.font())
            title_font.setPointSizeF(max(self.font().pointSizeF(), 9.0) * 1.5)
            painter.setFont(title_font)
            title_height = painter.fontMetrics().height()
            middle = rect.center().y()
            painter.drawText(
                QRect(rect.left(), middle - title_height - 4, rect.width(), title_height),
                Qt.AlignmentFlag.AlignCenter,
                self.hint_title,
            )
            painter.setFont(self.font())
            painter.drawText(
                QRect(rect.left() + 16, middle + 4, rect.width() - 32, rect.height() // 2 - 8),
                Qt.AlignmentFlag.AlignHCenter
                | Qt.AlignmentFlag.AlignTop
                | Qt.TextFlag.TextWordWrap,
                self.hint_detail,
            )
        finally:
            painter.end()


class FirstRunPanel(QFrame):
    """Shown while no account exists: add one, or try the local sandbox."""

    addAccountRequested = Signal()
    sandboxRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRunPanel")
        # A column of at most 560 px, centred: word-wrapped labels get their full height.
        card = QWidget(self)
        card.setMaximumWidth(560)
        card.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        outer = QVBoxLayout(self)
        outer.addStretch(2)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 3)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(3)
        layout = QVBoxLayout(card)
        self.title = QLabel()
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.6)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body = QLabel()
        self.body.setWordWrap(True)
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.add_button = QPushButton()
        self.add_button.setObjectName("addAccountButton")
        self.add_button.setDefault(True)
        self.add_button.setMinimumHeight(36)
        self.sandbox_button = QPushButton()
        self.sandbox_button.setObjectName("sandboxButton")
        self.sandbox_button.setMinimumHeight(36)
        self.sandbox_note = QLabel()
        self.sandbox_note.setWordWrap(True)
        self.sandbox_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sandbox_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.sandbox_button)
        buttons.addStretch(1)
        layout.addWidget(self.title)
        layout.addSpacing(8)
        layout.addWidget(self.body)
        layout.addSpacing(20)
        layout.addLayout(buttons)
        layout.addSpacing(10)
        layout.addWidget(self.sandbox_note)
        self.add_button.clicked.connect(self.addAccountRequested)
        self.sandbox_button.clicked.connect(self.sandboxRequested)
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(self.tr("Welcome to ossdesk"))
        self.body.setText(
            self.tr(
                "ossdesk uploads files and folders to Alibaba Cloud OSS, resumes after any "
                "interruption and checks every object it uploads. Start by adding your OSS "
                "account, or try everything first with a local sandbox."
            )
        )
        self.add_button.setText(self.tr("Add an OSS account"))
        self.sandbox_button.setText(self.tr("Try it with a local sandbox"))
        self.sandbox_note.setText(
            self.tr(
                "The sandbox is a private test server on this computer: nothing leaves "
                "your machine and no account is needed."
            )
        )
