"""Guards against Qt binding defects that would crash a long-running window."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QStringListModel, Signal


class Emitter(QObject):
    changed = Signal(object)


def test_emitting_signals_from_python_keeps_reference_counts(qapp):
    # PySide6 6.12.0 drops a reference to True on every Python-side emit(); on Python 3.11
    # (where True is not immortal) the window then dies with "bool_dealloc" after a few
    # thousand progress updates. pyproject excludes that release; this catches a relapse.
    model = QStringListModel(["a", "b"])
    emitter = Emitter()
    top, bottom = model.index(0, 0), model.index(1, 0)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        model.dataChanged.emit(top, bottom)
        emitter.changed.emit(12 * 1024**3)
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert after == before
