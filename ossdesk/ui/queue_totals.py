"""The queue's totals: what the status bar, the tray and the actions show of all its files
(:class:`Totals`), kept as the files change (:class:`QueueTotals`).

Used by :class:`~ossdesk.ui.transfer_model.TransferModel` (which re-exports
:class:`Totals`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ossdesk.ui.engine_types import RowKey, TransferRow, TransferState
from ossdesk.ui.folder_rows import FolderNode


@dataclass(frozen=True, slots=True)
class Totals:
    files: int = 0
    active: int = 0
    waiting: int = 0
    paused: int = 0
    done: int = 0
    failed: int = 0
    finished: int = 0  # done, cancelled or skipped: what "Clear finished" removes
    pausable: int = 0
    total_bytes: int = 0
    confirmed_bytes: int = 0
    sent_bytes: int = 0  # sent, confirmed or not: at least ``confirmed_bytes``
    speed: float = 0.0
    eta: float | None = None
    #: Files being sent now (state Uploading): what the status bar calls "uploading".
    uploading: int = 0
    #: How many accounts the rows belong to (the Account column shows when more than one).
    accounts: int = 0
    skipped: int = 0
    cancelled: int = 0


# Indexes into QueueTotals._sums (running totals, all ints).
(
    _S_ACTIVE, _S_WAITING, _S_PAUSED, _S_DONE, _S_FAILED, _S_SIZE, _S_CONFIRMED, _S_SPEED,
    _S_REMAINING, _S_FINISHED, _S_PAUSABLE, _S_SENT,
) = range(12)


class QueueTotals:
    """The running totals of the queue's files, and of the sums of the folders they are in."""

    def __init__(self, nodes: dict[int, FolderNode]) -> None:
        self._nodes = nodes  # the model's folders by id (the same dict, kept current by it)
        self._sums = [0] * 12
        self._accounts: dict[str, int] = {}  # rows per account
        self._skipped = self._cancelled = 0
        # The active rows themselves (a few dozen at most): the queue's time left is never
        # shorter than one of theirs.
        self._active_rows: dict[RowKey, TransferRow] = {}

    def count(self, row: TransferRow, sign: int) -> None:
        """Add (+1) or take away (-1) a row's share of the totals (and of its folder's
        sums): O(1) per change, so a flush costs the same with 10 rows or 100,000."""
        if row.folder is not None:
            node = self._nodes.get(row.folder)
            if node is not None:
                node.count(row, sign)
        state = row.state
        sums = self._sums
        accounts = self._accounts
        left = accounts.get(row.profile, 0) + sign
        if left > 0:
            accounts[row.profile] = left
        else:
            accounts.pop(row.profile, None)
        if state is TransferState.SKIPPED:
            self._skipped += sign
        elif state is TransferState.CANCELLED:
            self._cancelled += sign
        if state.finished:
            sums[_S_FINISHED] += sign
        if state.can_pause:
            sums[_S_PAUSABLE] += sign
        if state in (TransferState.CANCELLED, TransferState.SKIPPED):
            return
        sums[_S_SIZE] += sign * row.size
        sums[_S_CONFIRMED] += sign * min(row.confirmed_bytes, row.size)
        sums[_S_SENT] += sign * min(max(row.sent_bytes, row.confirmed_bytes), row.size)
        if state.active:
            sums[_S_ACTIVE] += sign
            sums[_S_SPEED] += sign * round(row.speed)
            if sign > 0:
                self._active_rows[row.id] = row
            else:
                self._active_rows.pop(row.id, None)
        if state is TransferState.QUEUED:
            sums[_S_WAITING] += sign
        elif state is TransferState.PAUSED:
            sums[_S_PAUSED] += sign
        elif state is TransferState.DONE:
            sums[_S_DONE] += sign
        elif state is TransferState.FAILED:
            sums[_S_FAILED] += sign
        if state.active or state is TransferState.QUEUED:
            sums[_S_REMAINING] += sign * max(row.size - row.confirmed_bytes, 0)

    def totals(self, files: int) -> Totals:
        """The totals now, of ``files`` files."""
        sums = self._sums
        speed = sums[_S_SPEED]
        remaining = sums[_S_REMAINING]
        eta = remaining / speed if speed > 0 and remaining > 0 else None
        if eta is not None:
            # The queue's time left: all remaining bytes (active and queued rows) at the total
            # speed, but never less than the time left of one of its rows, which has to
            # finish before the queue does.
            row_etas = [r.eta for r in self._active_rows.values()
                        if r.eta is not None and math.isfinite(r.eta)]
            # Nor shorter than a moving folder's (its remaining bytes at its speed).
            row_etas += [e for e in (n.eta for n in self._nodes.values() if n.active)
                         if e is not None]
            if row_etas:
                eta = max(eta, *row_etas)
        uploading = sum(1 for r in self._active_rows.values()
                        if r.state is TransferState.UPLOADING)
        totals = Totals(
            files=files,
            active=sums[_S_ACTIVE],
            waiting=sums[_S_WAITING],
            paused=sums[_S_PAUSED],
            done=sums[_S_DONE],
            failed=sums[_S_FAILED],
            finished=sums[_S_FINISHED],
            pausable=sums[_S_PAUSABLE],
            total_bytes=sums[_S_SIZE],
            confirmed_bytes=sums[_S_CONFIRMED],
            sent_bytes=sums[_S_SENT],
            speed=float(speed),
            eta=eta,
            uploading=uploading,
            accounts=len(self._accounts),
            skipped=self._skipped,
            cancelled=self._cancelled,
        )
        return totals
