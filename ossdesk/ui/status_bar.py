"""The window's status bar: a message on the left, the queue's totals on the right.

``QStatusBar`` paints a temporary message across the whole bar, over and into the
permanent widgets, and never shortens it. Here the message lives in its own label that
takes the room the totals leave, shortened with an ellipsis (the whole text is its
tooltip), so the two never overlap. Addresses in a message are shown decoded: an object
key in Chinese reads as Chinese, not as ``%E5%B7%A5``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QResizeEvent, QStatusTipEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

_URL = re.compile(r"\b(?:https?|oss)://\S+")


def readable_urls(text: str) -> str:
    """``"Copied: https://b.example/%E5%B7%A5.txt"`` -> ``"Copied: https://b.example/工.txt"``."""
    return _URL.sub(lambda m: unquote(m.group(0), errors="replace"), text)


class _MessageLabel(QLabel):
    """A one-line label that shortens its text to its width (the full text is kept)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(
            self.full_text, Qt.TextElideMode.ElideMiddle, max(self.width(), 0)))


class StatusBar(QStatusBar):
    """A status bar whose message is a label of its own, elided, beside the totals."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_label = _MessageLabel(self)
        self.message_label.setObjectName("statusMessage")
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        # Ignored: the label takes what the permanent widgets leave, never pushes them.
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.Preferred)
        self.message_label.setMinimumWidth(0)
        self.addWidget(self.message_label, 1)
        self._message = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.clearMessage)
        # Qt shows status tips (hovered actions) with QStatusBar's own message, which would
        # hide the label and paint over the bar: take them into the label instead.
        if parent is not None:
            parent.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.StatusTip and isinstance(event, QStatusTipEvent):
            self.showMessage(event.tip())
            return True
        return super().eventFilter(watched, event)

    def showMessage(self, text: str, timeout: int | None = 0) -> None:
        self._message = readable_urls(text)
        self.message_label.set_full_text(self._message)
        if timeout is not None and timeout > 0:
            self._timer.start(timeout)
        else:
            self._timer.stop()
        self.messageChanged.emit(self._message)

    def clearMessage(self) -> None:
        self._timer.stop()
        if self._message:
            self._message = ""
            self.message_label.set_full_text("")
            self.messageChanged.emit("")

    def currentMessage(self) -> str:
        return self._message
