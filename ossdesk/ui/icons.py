"""Small symbol icons painted in the palette's text colour, so they read in light and dark
themes alike (the style's stock media icons are black on every palette)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap

SYMBOLS = ("up", "pause", "play", "check", "warning", "reload", "cancel", "blank")


def symbol_icon(kind: str, palette: QPalette, size: int = 32) -> QIcon:
    """``kind`` is one of :data:`SYMBOLS`; drawn at ``size`` px, scaled down by Qt."""
    if kind not in SYMBOLS:
        raise ValueError(f"unknown symbol {kind!r}")
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    ink = QColor(palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText))
    dark = palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5
    s = float(size)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    if kind == "up":
        path = QPainterPath()
        path.moveTo(s * 0.5, s * 0.12)
        path.lineTo(s * 0.88, s * 0.52)
        path.lineTo(s * 0.64, s * 0.52)
        path.lineTo(s * 0.64, s * 0.88)
        path.lineTo(s * 0.36, s * 0.88)
        path.lineTo(s * 0.36, s * 0.52)
        path.lineTo(s * 0.12, s * 0.52)
        path.closeSubpath()
        p.fillPath(path, ink)
    elif kind == "pause":
        p.setBrush(ink)
        p.drawRoundedRect(QRectF(s * 0.22, s * 0.16, s * 0.2, s * 0.68), s * 0.04, s * 0.04)
        p.drawRoundedRect(QRectF(s * 0.58, s * 0.16, s * 0.2, s * 0.68), s * 0.04, s * 0.04)
    elif kind == "play":
        path = QPainterPath()
        path.moveTo(s * 0.26, s * 0.14)
        path.lineTo(s * 0.84, s * 0.5)
        path.lineTo(s * 0.26, s * 0.86)
        path.closeSubpath()
        p.fillPath(path, ink)
    elif kind == "check":
        green = QColor("#4cc46f" if dark else "#2e9d4f")
        pen = QPen(green, s * 0.14, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        p.drawPolyline([QPointF(s * 0.18, s * 0.52), QPointF(s * 0.42, s * 0.76),
                        QPointF(s * 0.84, s * 0.26)])
    elif kind == "warning":
        path = QPainterPath()
        path.moveTo(s * 0.5, s * 0.08)
        path.lineTo(s * 0.94, s * 0.88)
        path.lineTo(s * 0.06, s * 0.88)
        path.closeSubpath()
        p.fillPath(path, QColor("#ff6b6b" if dark else "#d64541"))
        p.setBrush(QColor("#ffffff"))
        p.drawRoundedRect(QRectF(s * 0.45, s * 0.32, s * 0.1, s * 0.3), s * 0.03, s * 0.03)
        p.drawEllipse(QRectF(s * 0.44, s * 0.68, s * 0.12, s * 0.12))
    elif kind == "reload":
        pen = QPen(ink, s * 0.11, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawArc(QRectF(s * 0.18, s * 0.18, s * 0.64, s * 0.64), 60 * 16, 280 * 16)
        p.setPen(Qt.PenStyle.NoPen)
        head = QPainterPath()
        head.moveTo(s * 0.62, s * 0.06)
        head.lineTo(s * 0.86, s * 0.24)
        head.lineTo(s * 0.58, s * 0.36)
        head.closeSubpath()
        p.fillPath(head, ink)
    elif kind == "cancel":
        pen = QPen(ink, s * 0.12, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawLine(QPointF(s * 0.24, s * 0.24), QPointF(s * 0.76, s * 0.76))
        p.drawLine(QPointF(s * 0.76, s * 0.24), QPointF(s * 0.24, s * 0.76))
    p.end()
    return QIcon(pixmap)
