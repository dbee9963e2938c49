"""Paints the Progress column: confirmed bytes solid, sent-but-unconfirmed bytes lighter,
and the percents of both (see :func:`~ossdesk.ui.transfer_model.progress_text`).

No widget per row: the delegate reads the row snapshot from the model and paints. Colours
come from the palette for the running state and from fixed hues (picked per light/dark
palette) for done, failed and paused, so the bar reads the same in both themes.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.transfer_model import Role, TransferRow, TransferState, progress_text

# (light palette, dark palette)
_STATE_COLOURS: dict[TransferState, tuple[str, str]] = {
    TransferState.DONE: ("#2e9d4f", "#4cc46f"),
    TransferState.FAILED: ("#d64541", "#ff6b6b"),
    TransferState.PAUSED: ("#8a8f98", "#9aa0a6"),
    TransferState.CANCELLED: ("#a0a4aa", "#7d838a"),
    TransferState.SKIPPED: ("#6c9bd2", "#6c9bd2"),
}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def bar_colour(state: TransferState, palette: QPalette) -> QColor:
    """The fill colour of a bar in this state, readable on this palette."""
    pair = _STATE_COLOURS.get(state)
    if pair is None:  # waiting, checking, uploading, verifying: the system accent
        colour = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
        if is_dark(palette) and colour.lightnessF() < 0.35:
            colour = colour.lighter(150)
        return colour
    return QColor(pair[1] if is_dark(palette) else pair[0])


def text_on(fill: QColor) -> QColor:
    """Black or white, whichever reads better on ``fill`` (relative luminance)."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    lum = (
        0.2126 * channel(fill.redF())
        + 0.7152 * channel(fill.greenF())
        + 0.0722 * channel(fill.blueF())
    )
    return QColor("#000000") if lum > 0.4 else QColor("#ffffff")


class _Colours:
    """The pens and fills of one palette, worked out once (not on every paint)."""

    __slots__ = ("border", "fills", "pending", "text", "text_on_fill", "track")

    def __init__(self, palette: QPalette) -> None:
        self.track = QColor(palette.color(QPalette.ColorRole.Base))
        self.border = QColor(palette.color(QPalette.ColorRole.Mid))
        self.text = QColor(palette.color(QPalette.ColorRole.Text))
        self.fills: dict[TransferState, QColor] = {}
        self.pending: dict[TransferState, QColor] = {}
        self.text_on_fill: dict[TransferState, QColor] = {}
        for state in TransferState:
            fill = bar_colour(state, palette)
            pending = QColor(fill)
            pending.setAlphaF(0.35)
            self.fills[state] = fill
            self.pending[state] = pending
            self.text_on_fill[state] = text_on(fill)


class ProgressDelegate(QStyledItemDelegate):
    BAR_MARGIN = 3

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._colours: dict[int, _Colours] = {}

    def _colours_for(self, palette: QPalette) -> _Colours:
        key = palette.cacheKey()
        colours = self._colours.get(key)
        if colours is None:
            if len(self._colours) > 8:
                self._colours.clear()
            colours = self._colours[key] = _Colours(palette)
        return colours

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        row = index.data(Role.ROW)
        if not isinstance(row, (TransferRow, FolderNode)):  # a folder's bar: its files' sums
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        # Selection / hover background only; the bar replaces the text.
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        if row.state is TransferState.CANCELLED:
            return  # its parts were discarded: no bar at all, not even an empty outline

        palette: QPalette = opt.palette
        rect: QRect = opt.rect
        m = self.BAR_MARGIN
        bar = QRectF(rect.adjusted(m, m, -m, -m))
        if bar.width() <= 4 or bar.height() <= 4:
            return
        size = max(row.size, 0)
        confirmed = min(max(row.confirmed_bytes, 0), size)
        sent = min(max(row.sent_bytes, confirmed), size)
        if row.state is TransferState.DONE:
            confirmed = sent = size
        if size:
            fraction_confirmed = confirmed / size
        else:
            # An empty file: a full bar once it is there, an empty one before.
            whole = row.state in (TransferState.DONE, TransferState.SKIPPED)
            fraction_confirmed = 1.0 if whole else 0.0
        fraction_sent = sent / size if size else fraction_confirmed

        colours = self._colours_for(palette)
        fill = colours.fills[row.state]
        track = colours.track
        border = colours.border
        radius = min(4.0, bar.height() / 2)

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        outline = QPainterPath()
        outline.addRoundedRect(bar, radius, radius)
        painter.fillPath(outline, track)
        painter.setClipPath(outline)

        sent_rect = QRectF(bar.left(), bar.top(), bar.width() * fraction_sent, bar.height())
        painter.fillRect(sent_rect, colours.pending[row.state])
        done_rect = QRectF(bar.left(), bar.top(), bar.width() * fraction_confirmed, bar.height())
        painter.fillRect(done_rect, fill)
        painter.setClipping(False)

        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(outline)

        text = progress_text(row)
        painter.setFont(opt.font)
        text_rect = bar.toRect()
        # Text over the filled part in a contrasting colour, the rest in the normal colour.
        painter.setClipRect(done_rect)
        painter.setPen(colours.text_on_fill[row.state])
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.setClipRect(
            QRectF(done_rect.right(), bar.top(), bar.right() - done_rect.right(), bar.height())
        )
        painter.setPen(colours.text)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(max(hint.width(), 120), max(hint.height(), 22))
