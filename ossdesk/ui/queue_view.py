"""The window's queue (with its drop hint) and the first-run panel shown while no account
exists. The queue is a tree of two levels: a dropped folder is one row, its files inside."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QRect, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QFont, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ossdesk.ui.queue_order import whole_row_modifiers


def local_paths(urls: Sequence[QUrl]) -> list[str]:
    """The local files among dropped URLs (remote URLs are ignored)."""
    return [url.toLocalFile() for url in urls if url.isLocalFile() and url.toLocalFile()]


class QueueView(QTreeView):
    """The queue; paints a drop hint while the queue is empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self.setRootIsDecorated(True)
        self.setExpandsOnDoubleClick(False)  # a double click acts; the arrow expands
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        # Rows are reordered by dragging them; files dropped from outside go on to the
        # window (an internal-move view ignores drags that did not start in it).
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        self.hint_title = ""
        self.hint_detail = ""

    @Slot()
    def expand_filtered(self) -> None:
        """While a filter or a search is on, open the folders it shows: what it found in
        them is in sight at once (all shown, the folders stay as they were)."""
        model = self.model()
        if model is None or not getattr(model, "is_filtering", lambda: False)():
            return
        for n in range(model.rowCount()):
            index = model.index(n, 0)
            if model.hasChildren(index):
                self.expand(index)

    def horizontalHeader(self) -> QHeaderView:
        """The column header (as a table names it)."""
        return self.header()

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
