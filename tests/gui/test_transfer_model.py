from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt

from ossdesk.ui.transfer_model import (
    Column,
    Role,
    TransferModel,
    TransferRow,
    TransferState,
)

GIB = 1024**3


def make_row(n: int, size: int = 1000, state: TransferState = TransferState.QUEUED) -> TransferRow:
    return TransferRow(
        id=n,
        name=f"file{n:05d}.bin",
        source_path=f"/data/file{n:05d}.bin",
        size=size,
        destination=f"oss://bucket/file{n:05d}.bin",
        state=state,
    )


@pytest.fixture
def model(qapp):
    m = TransferModel()
    yield m
    m.deleteLater()


def test_model_passes_qtmodeltester(qtmodeltester, model):
    model.add_rows([make_row(i, size=i * GIB, state=list(TransferState)[i % 9]) for i in range(12)])
    model.update_progress(3, 2 * GIB, 3 * GIB, 1e6, 3.0)
    model.flush()
    qtmodeltester.check(model, force_py=True)
    model.sort(Column.SIZE, Qt.SortOrder.DescendingOrder)
    model.remove([1, 2, 5])
    model.move_to_top([11])
    qtmodeltester.check(model, force_py=True)


def test_large_sizes_sort_as_64_bit_numbers(model):
    sizes = [5 * GIB + 1, 3, 2 * GIB + 7, 2 * GIB - 1, 48 * 1024 * GIB, 4 * GIB]
    model.add_rows([make_row(i, size=s) for i, s in enumerate(sizes)])
    model.sort(Column.SIZE, Qt.SortOrder.AscendingOrder)
    shown = [model.index(r, Column.SIZE).data(Role.SIZE) for r in range(model.rowCount())]
    assert shown == sorted(sizes)
    assert all(isinstance(v, int) for v in shown)
    model.sort(Column.SIZE, Qt.SortOrder.DescendingOrder)
    shown = [model.index(r, Column.SIZE).data(Role.SORT) for r in range(model.rowCount())]
    assert shown == sorted(sizes, reverse=True)


def test_progress_updates_are_coalesced_into_ranged_data_changed(qtbot, model):
    model.add_rows([make_row(i, size=10 * GIB) for i in range(100)])
    emitted: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda tl, br, roles=(): emitted.append((tl.row(), br.row(), tl.column(), br.column()))
    )
    # Many updates to a block of adjacent rows and one far away, several per row.
    for step in range(5):
        for i in [*range(10, 20), 70]:
            model.update_progress(i, step * GIB, step * GIB + 100, 1e6 * step, 10.0)
    assert emitted == []  # nothing until the timer flushes
    assert model.has_pending()
    qtbot.waitUntil(lambda: not model.has_pending(), timeout=2000)
    assert emitted == [
        (10, 19, Column.SIZE, Column.ETA),
        (70, 70, Column.SIZE, Column.ETA),
    ]
    assert model.row(15).confirmed_bytes == 4 * GIB
    assert model.row(15).sent_bytes == 4 * GIB + 100
    assert model.index(15, Column.PROGRESS).data(Role.CONFIRMED) == 4 * GIB


def test_state_change_repaints_the_whole_row(model):
    model.add_rows([make_row(i) for i in range(3)])
    seen = []
    model.dataChanged.connect(lambda tl, br, roles=(): seen.append((tl.column(), br.column())))
    model.update(1, state=TransferState.FAILED, error="AccessDenied: no permission")
    model.flush()
    assert seen == [(Column.NAME, Column.ACCOUNT)]
    assert model.index(1, Column.STATE).data() == "Failed"
    assert model.index(1, Column.STATE).data(Qt.ItemDataRole.ToolTipRole) == (
        "AccessDenied: no permission"
    )


def test_unknown_fields_are_rejected(model):
    model.add_rows([make_row(1)])
    with pytest.raises(ValueError, match="colour"):
        model.update(1, colour="red")
    with pytest.raises(ValueError, match="id"):
        model.update(1, id=2)


def test_move_remove_and_clear_finished_keep_selection_and_totals(qtbot, model):
    model.add_rows(
        [
            make_row(0, 100, TransferState.DONE),
            make_row(1, 200, TransferState.UPLOADING),
            make_row(2, 300, TransferState.FAILED),
            make_row(3, 400, TransferState.CANCELLED),
            make_row(4, 500, TransferState.PAUSED),
        ]
    )
    selection = QItemSelectionModel(model)
    selection.select(
        model.index(4, 0),
        QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
    )
    model.move_to_top([4])
    assert model.ids() == [4, 0, 1, 2, 3]
    assert [i.row() for i in selection.selectedRows()] == [0]
    model.move_to_bottom([4, 0])
    assert model.ids() == [1, 2, 3, 4, 0]
    assert sorted(model.clear_finished()) == [0, 3]
    assert model.ids() == [1, 2, 4]
    assert [i.row() for i in selection.selectedRows()] == [2]
    totals = model.totals()
    assert (totals.files, totals.active, totals.failed, totals.paused) == (3, 1, 1, 1)
    assert totals.total_bytes == 200 + 300 + 500
    assert model.remove([2, 99]) == 1
    assert model.ids() == [1, 4]
    assert model.index_of(4) == 1


def test_ten_thousand_rows_flush_quickly(qtbot, model):
    model.add_rows([make_row(i, size=(i + 1) * 1_000_000) for i in range(10_000)])
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda top, bottom, *_: changed.append((top.row(), bottom.row())))
    # 8 active uploads, as if the engine reported 4 times a second for a while.
    for tick in range(20):
        for i in range(5000, 5008):
            model.update_progress(i, tick * 1000, tick * 1000 + 500, 1e6, 100.0)
        model.flush()
    assert model.flush_count == 20
    # A flush touches only the changed rows: one signal for the run of 8, none for the rest.
    assert changed == [(5000, 5007)] * 20
    model.sort(Column.SIZE, Qt.SortOrder.DescendingOrder)
    assert model.row_at(0).size == 10_000 * 1_000_000
    assert model.rowCount(QModelIndex()) == 10_000


def test_rows_dragged_before_another_row_keep_their_order(qtbot, model):
    model.add_rows([make_row(i) for i in range(6)])
    dragged = []
    model.rowsDragged.connect(lambda moved, tail: dragged.append((moved, tail)))
    # Drag rows 4 and 1 (selection order does not matter) onto row 2.
    mime = model.mimeData([model.index(4, 0), model.index(1, 3), model.index(1, 0)])
    assert mime.hasFormat("application/x-ossdesk-row-ids")
    assert model.canDropMimeData(mime, Qt.DropAction.MoveAction, -1, -1, model.index(2, 0))
    # False: the model moved the rows itself, the view must not remove "the source".
    assert not model.dropMimeData(mime, Qt.DropAction.MoveAction, -1, -1, model.index(2, 0))
    assert model.ids() == [0, 1, 4, 2, 3, 5]
    assert dragged == [([1, 4], [1, 4, 2, 3, 5])]
    # Between rows (row given, no parent), and to the end (row -1).
    model.dropMimeData(model.mimeData([model.index(5, 0)]), Qt.DropAction.MoveAction, 0, 0,
                       QModelIndex())
    assert model.ids() == [5, 0, 1, 4, 2, 3]
    model.dropMimeData(model.mimeData([model.index(0, 0)]), Qt.DropAction.MoveAction, -1, -1,
                       QModelIndex())
    assert model.ids() == [0, 1, 4, 2, 3, 5]
    # Onto itself: nothing changes, nothing is reported.
    before = len(dragged)
    model.dropMimeData(model.mimeData([model.index(2, 0)]), Qt.DropAction.MoveAction, -1, -1,
                       model.index(2, 0))
    assert model.ids() == [0, 1, 4, 2, 3, 5] and len(dragged) == before
    assert not model.canDropMimeData(mime, Qt.DropAction.CopyAction, -1, -1, QModelIndex())


def test_names_with_controls_are_shown_escaped(model):
    """A name's escape sequences, newlines and bidi overrides never reach a cell raw (the
    row keeps the real name; only what is shown is escaped)."""
    row = make_row(1)
    row.name = "photo\u202egpj.exe"
    row.source_path = "/data/two\nlines\x1b[2J.txt"
    row.destination = "oss://bucket/photo\u202egpj.exe"
    row.error = "cannot read /data/two\nlines\x1b[2J.txt"
    row.state = TransferState.FAILED
    model.add_rows([row])
    model.flush()
    shown = [model.index(0, c).data(role) for c in Column
             for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)]
    text = "".join(s for s in shown if isinstance(s, str))
    for raw in ("\u202e", "\n", "\x1b"):
        assert raw not in text
    assert model.index(0, Column.NAME).data() == "photo\\u202egpj.exe"
    assert model.index(0, Column.NAME).data(Qt.ItemDataRole.ToolTipRole) == \
        "/data/two\\nlines\\x1b[2J.txt"
    assert model.index(0, Column.NAME).data(Role.ROW).name == "photo\u202egpj.exe"
