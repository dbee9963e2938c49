"""What a repaint of the queue asks of Python stays small (no timing: counts only)."""

from __future__ import annotations

import pathlib

import pytest
from PySide6.QtCore import Qt

from ossdesk.core import events as ev
from ossdesk.ui import transfer_model as tm
from ossdesk.ui.bridge import EventBridge
from ossdesk.ui.formatting import format_size
from ossdesk.ui.transfer_model import Column, TransferModel, TransferRow


@pytest.fixture
def model(qapp):
    m = TransferModel()
    m.add_rows([
        TransferRow(id=i, name=f"f{i}", source_path=f"/d/f{i}", size=5 * 1024**3,
                    destination=f"oss://b/f{i}")
        for i in range(50)
    ])
    yield m
    m.deleteLater()


def test_roles_the_model_does_not_serve_cost_nothing(model, monkeypatch):
    calls = []

    def display(row, column):
        calls.append(column)
        return ""

    monkeypatch.setattr(tm.TransferModel, "_display", staticmethod(display))
    index = model.index(3, Column.NAME)
    for role in (Qt.ItemDataRole.FontRole, Qt.ItemDataRole.BackgroundRole,
                 Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.CheckStateRole,
                 Qt.ItemDataRole.SizeHintRole):
        assert model.data(index, role) is None
    assert calls == []


def test_size_texts_are_formatted_once_per_size(model, monkeypatch):
    formatted = []
    tm._size_texts.clear()

    def counting(num_bytes):
        formatted.append(num_bytes)
        return format_size(num_bytes)

    monkeypatch.setattr(tm, "format_size", counting)
    for _ in range(3):  # three repaints of 50 rows of the same size
        for row in range(model.rowCount()):
            assert model.index(row, Column.SIZE).data() == "5 GiB"
    assert formatted == [5 * 1024**3]


def test_queued_rows_are_named_without_path_objects(qapp, monkeypatch):
    model = TransferModel()
    bridge = EventBridge(model)
    try:
        def no_paths(*args, **kwargs):
            raise AssertionError("a path object was built on the GUI thread")

        monkeypatch.setattr(pathlib.PurePath, "__new__", no_paths)
        for n in range(3):
            bridge(ev.Queued(upload=n, source=f"/d/sub/file{n}.txt", key=f"k/file{n}.txt",
                             size=10, bucket="b"))
        bridge.drain()
        assert [model.row_at(i).name for i in range(3)] == [
            "file0.txt", "file1.txt", "file2.txt"]
    finally:
        bridge.stop()
        bridge.deleteLater()
        model.deleteLater()
