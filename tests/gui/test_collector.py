"""The window keeps long-lived objects (itself, the queue's rows) out of the garbage
collector's full walks: frozen after they are added, with the garbage of the moment
collected first, and thawed when the queue is empty again."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.transfer_model import TransferModel, TransferRow
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import MemoryProfiles


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield


class Node:
    """A reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def make_rows(first: int, count: int) -> list[TransferRow]:
    return [TransferRow(id=n, name=f"f{n}", source_path=f"/d/f{n}", size=n,
                        destination=f"oss://b/f{n}") for n in range(first, first + count)]


def collected_ids() -> set[int]:
    """Objects the collector walks (the frozen ones are not among them)."""
    return {id(o) for o in gc.get_objects()}


def test_added_rows_leave_the_collected_generations(qapp: object) -> None:
    model = TransferModel()
    try:
        rows = make_rows(1, 500)
        model.add_rows(rows)
        walked = collected_ids()
        assert not [r for r in rows if id(r) in walked]
        assert id(model) not in walked
        assert gc.get_freeze_count() >= len(rows)
        # the next batch too
        more = make_rows(501, 200)
        model.add_rows(more)
        walked = collected_ids()
        assert not [r for r in more if id(r) in walked]
        assert [r.id for r in model.rows()] == list(range(1, 701))
    finally:
        model.deleteLater()


def test_garbage_of_the_moment_is_freed_not_frozen(qapp: object) -> None:
    model = TransferModel()
    try:
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        model.add_rows(make_rows(1, 3))
        assert gone() is None
    finally:
        model.deleteLater()


def test_an_empty_queue_thaws_cycles_that_died_frozen(qapp: object) -> None:
    model = TransferModel()
    try:
        keep = [Node()]
        model.add_rows(make_rows(1, 3))  # freezes the cycle while it is alive
        gone = weakref.ref(keep[0])
        keep.clear()
        gc.collect()
        assert gone() is not None  # frozen: the collector does not see it
        model.remove([1, 2])
        assert gone() is not None  # rows left: still frozen
        model.remove([3])
        assert gone() is None
        assert model.rowCount() == 0
    finally:
        model.deleteLater()


def test_the_window_is_frozen_once_built(qtbot: QtBot) -> None:
    window = MainWindow(FakeEngine(), profile_store=MemoryProfiles([]))
    qtbot.addWidget(window)
    walked = collected_ids()
    assert id(window) not in walked
    assert id(window.model) not in walked
    assert id(window.bridge) not in walked
