"""Moving selected uploads one step up or down the queue.

The queue view keeps the navigation keys of every item view (Home/End, Ctrl+Home/End,
PgUp/PgDn, the arrows); reordering has its own shortcuts, none of which an item view uses
to move the cursor or extend the selection."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractItemView

MOVE_TOP_KEYS = QKeySequence("Alt+Home")
MOVE_BOTTOM_KEYS = QKeySequence("Alt+End")
MOVE_UP_KEYS = QKeySequence("Alt+Up")
MOVE_DOWN_KEYS = QKeySequence("Alt+Down")


class StayPut(Exception):
    """The rows are already as far as they can go."""


def step_target(selected: Sequence[int], count: int, *, up: bool) -> int | None:
    """The row the selected rows go just before (``TransferModel.move_before``) to move one
    step: None is the end of the queue. Raises StayPut at the top (or bottom) already."""
    if not selected or count <= 0:
        raise StayPut
    if up:
        first = min(selected)
        if first == 0:
            raise StayPut
        return first - 1
    last = max(selected)
    if last >= count - 1:
        raise StayPut
    after = last + 2
    return after if after < count else None


def whole_row_modifiers(
    action: QAbstractItemView.CursorAction, modifiers: Qt.KeyboardModifier
) -> Qt.KeyboardModifier:
    """Home and End in a view that selects whole rows go to the first and last row, as in
    list and tree views (a table sends them to the first and last column: no use here)."""
    if action in (QAbstractItemView.CursorAction.MoveHome, QAbstractItemView.CursorAction.MoveEnd):
        return modifiers | Qt.KeyboardModifier.ControlModifier
    return modifiers
