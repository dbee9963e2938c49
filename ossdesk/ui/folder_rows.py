"""A dropped folder in the queue: one row whose children are the files found in it.

A :class:`FolderNode` keeps the sums of its files (sizes, sent and confirmed bytes, speed,
how many are in each state) up to date as each file changes: the model adds a file's share
before a change and takes it away after (:meth:`FolderNode.count`), so a progress tick of a
folder of 100,000 files costs the same as one of a single file, and the folder's state,
progress and time left are read from these sums, never from a walk of its files.

A node answers the attributes a :class:`TransferRow` has that the queue's columns, sorting
and progress bar read (``name``, ``size``, ``confirmed_bytes``, ``sent_bytes``, ``speed``,
``eta``, ``state``, ``destination``, ``profile``, ...), so it is painted like a file row.

A node keeps of each of its files only what its sums need as events arrive, in parallel
``array`` columns (id, state, size, confirmed and sent bytes, check: 34 bytes a file, plus
8 for its place in the folder's order), and the speed, time left and error of the few files
that have them; everything else of a file (its path, key, times...) is read from the upload
list when it is shown (:mod:`ossdesk.ui.folder_store`).
"""

from __future__ import annotations

import math
import os
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any

from PySide6.QtCore import QCoreApplication

from ossdesk.ui.engine_types import FolderInfo, RowKey, TransferRow, TransferState

_MOVING = (TransferState.UPLOADING, TransferState.VERIFYING, TransferState.CHECKING)
_STATES = tuple(TransferState)
_STATE_CODE = {state: code for code, state in enumerate(_STATES)}
_CHECKS = ("", "crc64", "md5")
_CHECK_CODE = {check: code for code, check in enumerate(_CHECKS)}
# TransferRow made without its __init__ (see FolderNode.light_rows), while the fields are
# those light_rows sets.
_new_row = object.__new__
_FAST_ROWS = tuple(f.name for f in fields(TransferRow)) == (
    "id", "name", "source_path", "size", "destination", "state", "confirmed_bytes",
    "sent_bytes", "speed", "eta", "error", "error_detail", "bucket", "key", "profile",
    "added_at", "check", "folder")
#: The fields of a file a node keeps (the others are read from the upload list).
KEPT_FIELDS = frozenset({"state", "size", "confirmed_bytes", "sent_bytes", "check", "speed",
                         "eta", "error", "error_detail"})


def count_text(count: int) -> str:
    """A count of files as the window writes it (``2,000``)."""
    return f"{count:,}"


def key_prefix(info: FolderInfo) -> str:
    """What the keys of a folder's files begin with (``2024/相册/``), from its destination
    ``oss://bucket/2024/相册/``."""
    head = f"oss://{info.bucket}/"
    return info.destination[len(head) :] if info.destination.startswith(head) else ""


def relative_name(info: FolderInfo, row: TransferRow) -> str:
    """A file's path inside its dropped folder, with ``/`` between the parts
    (``2024/img 001.jpg``); its own name if it is not under the folder's path."""
    return inside_name(info, row.source_path, row.key, row.name)


def inside_name(info: FolderInfo, source: str, key: str, name: str | None = None) -> str:
    """The path inside the folder of a file at ``source`` going to ``key`` (``name``, or
    the last part of ``source``, if neither is under the folder's)."""
    root = info.source_path.rstrip("/\\")
    cut = len(root)
    if root and source.startswith(root) and len(source) > cut + 1 and source[cut] in "/\\":
        inside = source[cut + 1 :]
        return inside.replace(os.sep, "/") if os.sep != "/" else inside
    prefix = key_prefix(info)
    if prefix and key.startswith(prefix) and len(key) > len(prefix):
        return key[len(prefix) :]
    return name if name is not None else source.replace("\\", "/").rsplit("/", 1)[-1]


def widest_state_text(state_word: str) -> str:
    """A folder's State column as long as it gets in most cases (what the column is made
    wide enough for)."""
    translate = QCoreApplication.translate
    return (
        translate("FolderRow", "%1 · %2/%3").replace("%1", state_word)
        .replace("%2", count_text(1999)).replace("%3", count_text(2000))
        + " · " + translate("FolderRow", "%1 failed").replace("%1", count_text(12))
    )


class FolderNode:
    """A dropped folder's row: its files in queue order and their running sums."""

    #: Ids added out of order kept aside (a dict) before all are sorted again: at least
    #: this many, or a quarter of the sorted ones (so a restart sorts a few times, not once
    #: per batch of rows).
    LATE = 4096

    __slots__ = (
        "_by_id",
        "_check",
        "_confirmed",
        "_ids",
        "_late",
        "_rank",
        "_sent",
        "_size",
        "_state",
        "active",
        "confirmed_bytes",
        "crc64",
        "info",
        "key_prefix",
        "live",
        "md5",
        "notes",
        "order",
        "remaining",
        "sent_bytes",
        "size",
        "speed_sum",
        "states",
        "total_size",
        "version",
    )

    def __init__(self, info: FolderInfo) -> None:
        self.info = info
        #: Its files' keys begin with this (``prefix/name/``): a file keeps only the rest.
        self.key_prefix = key_prefix(info)
        # Its files, one slot each (in the order they came), as parallel columns.
        self._ids = array("q")
        self._state = array("b")
        self._size = array("q")
        self._confirmed = array("q")
        self._sent = array("q")
        self._check = array("b")
        #: Its files' slots in the order shown (queue order, or a column's sort).
        self.order = array("i")
        # The slots by id (sorted ids, their slots): a file is found by bisection.
        self._by_id: tuple[array[int], array[int]] | None = None
        # Slots of the ids added out of order since the sorted ones were made (a restart
        # sends a folder's unfinished files, then its finished ones): looked in after the
        # sorted ids, folded into them when they grow to a share of them.
        self._late: dict[int, int] = {}
        #: Changes whenever files are added or dropped (what is kept of them is stale).
        self.version = 0
        # The place in ``order`` of each slot (made when asked for, after a change of order).
        self._rank: array[int] | None = None
        #: Speed and time left of its files that have them (the few moving ones).
        self.live: dict[int, tuple[float, float | None]] = {}
        #: The error of its files the window was told of (a failure, a retry, a pause).
        self.notes: dict[int, tuple[str, str]] = {}
        self.states: dict[TransferState, int] = dict.fromkeys(TransferState, 0)
        self.crc64 = 0
        self.md5 = 0
        #: All its files' sizes (the Size column).
        self.total_size = 0
        #: The bytes the progress bar counts: cancelled files are left out (their parts
        #: were discarded), done and already-there files count whole.
        self.size = 0
        self.confirmed_bytes = 0
        self.sent_bytes = 0
        self.speed_sum = 0
        #: Bytes still to send by the files that are moving or waiting.
        self.remaining = 0
        #: Its files that are moving now (a few at most): its time left is never shorter
        #: than one of theirs.
        self.active: dict[RowKey, TransferRow] = {}

    # ---- what a row has ------------------------------------------------------------------

    @property
    def id(self) -> str:
        return f"folder:{self.info.id}"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def source_path(self) -> str:
        return self.info.source_path

    @property
    def destination(self) -> str:
        return self.info.destination

    @property
    def profile(self) -> str:
        return self.info.profile

    @property
    def bucket(self) -> str:
        return self.info.bucket

    @property
    def error(self) -> str:
        return ""

    @property
    def check(self) -> str:
        return ""

    @property
    def speed(self) -> float:
        return float(self.speed_sum)

    @property
    def files(self) -> int:
        return len(self.order)

    @property
    def finished(self) -> int:
        """Files done or already there."""
        return self.states[TransferState.DONE] + self.states[TransferState.SKIPPED]

    @property
    def waiting(self) -> int:
        """Files waiting or being sent."""
        return self.states[TransferState.QUEUED] + self.moving

    @property
    def moving(self) -> int:
        return sum(self.states[s] for s in _MOVING)

    @property
    def state(self) -> TransferState:
        """One state that stands for the folder (its icon, bar colour and filter): moving
        while any file moves, then waiting, paused, failed, done; cancelled when all are."""
        states = self.states
        for state in _MOVING:
            if states[state]:
                return state
        for state in (TransferState.QUEUED, TransferState.PAUSED, TransferState.FAILED):
            if states[state]:
                return state
        if states[TransferState.DONE]:
            return TransferState.DONE
        if states[TransferState.SKIPPED]:
            return TransferState.SKIPPED
        if states[TransferState.CANCELLED]:
            return TransferState.CANCELLED
        return TransferState.QUEUED

    @property
    def eta(self) -> float | None:
        """Its remaining bytes at its speed, never shorter than one of its moving files'."""
        speed, remaining = self.speed_sum, self.remaining
        if speed <= 0 or remaining <= 0:
            return None
        eta = remaining / speed
        etas = [r.eta for r in self.active.values() if r.eta is not None and math.isfinite(r.eta)]
        return max(eta, *etas) if etas else eta

    # ---- the sums ------------------------------------------------------------------------

    def count(self, row: TransferRow, sign: int) -> None:
        """Add (+1) or take away (-1) one file's share of the sums."""
        state = row.state
        self.states[state] += sign
        size = max(row.size, 0)
        self.total_size += sign * size
        if state is TransferState.CANCELLED:
            pass
        elif state in (TransferState.DONE, TransferState.SKIPPED):
            self.size += sign * size
            self.confirmed_bytes += sign * size
            self.sent_bytes += sign * size
            if state is TransferState.DONE:
                if row.check == "crc64":
                    self.crc64 += sign
                elif row.check == "md5":
                    self.md5 += sign
        else:
            confirmed = min(max(row.confirmed_bytes, 0), size)
            self.size += sign * size
            self.confirmed_bytes += sign * confirmed
            self.sent_bytes += sign * min(max(row.sent_bytes, confirmed), size)
        if state.active:
            self.speed_sum += sign * round(row.speed)
            if sign > 0:
                self.active[row.id] = row
            else:
                self.active.pop(row.id, None)
        if state.active or state is TransferState.QUEUED:
            self.remaining += sign * max(size - row.confirmed_bytes, 0)

    # ---- words ---------------------------------------------------------------------------

    def state_text(self, state_word: str, *, short: bool = False) -> str:
        """The truth in a word and counts of files (``short``: what the State column
        shows, ``Uploading · 120/2,000``; else ``Uploading · 120 of 2,000 files done``).

        ``state_word`` is the word of :attr:`state` (from the model's labels)."""
        translate = QCoreApplication.translate
        states = self.states
        files = len(self.order)
        failed = states[TransferState.FAILED]
        waiting = states[TransferState.QUEUED]
        paused = states[TransferState.PAUSED]
        if self.moving or waiting or paused:
            text = (
                (translate("FolderRow", "%1 · %2/%3") if short
                 else translate("FolderRow", "%1 · %2 of %3 files done"))
                .replace("%1", state_word)
                .replace("%2", count_text(self.finished))
                .replace("%3", count_text(files))
            )
            if failed:
                text += " · " + translate("FolderRow", "%1 failed").replace(
                    "%1", count_text(failed))
            return text
        if failed:
            return translate("FolderRow", "Failed: %1 of %2 files").replace(
                "%1", count_text(failed)).replace("%2", count_text(files))
        cancelled = states[TransferState.CANCELLED]
        if files and cancelled == files:
            return state_word
        if files and self.crc64 == files:
            return translate("TransferState", "Verified (CRC-64)")
        if files and self.md5 == files:
            return translate("TransferState", "Verified (MD5)")
        other_done = states[TransferState.DONE] - self.crc64 - self.md5
        parts = [
            (self.crc64, translate("FolderRow", "%1 verified (CRC-64)")),
            (self.md5, translate("FolderRow", "%1 verified (MD5)")),
            (other_done, translate("FolderRow", "%1 done")),
            (states[TransferState.SKIPPED], translate("FolderRow", "%1 already there")),
            (cancelled, translate("FolderRow", "%1 cancelled")),
        ]
        return ", ".join(text.replace("%1", count_text(n)) for n, text in parts if n)

    def failed_ids(self, limit: int) -> list[int]:
        """The ids of its first ``limit`` failed files in the order shown (a walk of its
        state column, no more)."""
        found: list[int] = []
        if not self.states[TransferState.FAILED]:
            return found
        code = _STATE_CODE[TransferState.FAILED]
        state, ids = self._state, self._ids
        for slot in self.order:
            if state[slot] == code:
                found.append(ids[slot])
                if len(found) >= limit:
                    break
        return found

    # ---- its files -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.order)

    def add(self, row: TransferRow) -> int:
        """Keep a new file (at the end of the order); returns its slot. Its share of the
        sums is for the caller to count (:meth:`light`)."""
        key = int(row.id)
        slot = len(self._ids)
        self.version += 1
        by_id = self._by_id
        if by_id is not None:
            if not self._late and (not by_id[0] or by_id[0][-1] < key):
                by_id[0].append(key)
                by_id[1].append(slot)
            else:
                self._late[key] = slot
                if len(self._late) > max(self.LATE, len(by_id[0]) // 4):
                    self._by_id = None  # sorted again (once) when next looked in
        self._ids.append(key)
        self._state.append(_STATE_CODE[row.state])
        self._size.append(row.size)
        self._confirmed.append(row.confirmed_bytes)
        self._sent.append(row.sent_bytes)
        self._check.append(_CHECK_CODE.get(row.check, 0))
        if self._rank is not None:
            self._rank.append(len(self.order))
        self.order.append(slot)
        if row.speed or row.eta is not None:
            self.live[key] = (row.speed, row.eta)
        if row.error or row.error_detail:
            self.notes[key] = (row.error, row.error_detail)
        return slot

    def slot(self, key: object) -> int | None:
        """A file's slot, or None if it is not in this folder."""
        if not isinstance(key, int):
            return None
        by_id = self._by_id
        if by_id is None:
            ids = self._ids
            slots = sorted(range(len(ids)), key=ids.__getitem__)
            by_id = self._by_id = (array("q", (ids[s] for s in slots)), array("i", slots))
            self._late = {}
        keys = by_id[0]
        n = bisect_left(keys, key)
        if n < len(keys) and keys[n] == key:
            return by_id[1][n]
        return self._late.get(key)

    def id_of(self, slot: int) -> int:
        return self._ids[slot]

    def id_at(self, place: int) -> int:
        """The id of the file at ``place`` in the order shown."""
        return self._ids[self.order[place]]

    def place_of(self, slot: int) -> int:
        """Where a file is in the order shown."""
        rank = self._rank
        if rank is None:
            rank = self._rank = array("i", bytes(4 * len(self._ids)))
            for place, s in enumerate(self.order):
                rank[s] = place
        return rank[slot]

    def ids(self) -> list[int]:
        """Its files' ids in the order shown."""
        ids = self._ids
        return [ids[s] for s in self.order]

    def ids_where(self, wanted: Callable[[TransferState], bool]) -> list[int]:
        """The ids of its files in a state ``wanted`` accepts, in the order shown (from the
        states it keeps: nothing read)."""
        codes = {code for code, state in enumerate(_STATES) if wanted(state)}
        if not codes:
            return []
        ids, state = self._ids, self._state
        return [ids[s] for s in self.order if state[s] in codes]

    def count_where(self, slots: Iterable[int], wanted: Callable[[TransferState], bool]) -> int:
        """How many of these files (slots) are in a state ``wanted`` accepts (from the
        states it keeps: nothing read)."""
        codes = {code for code, state in enumerate(_STATES) if wanted(state)}
        state = self._state
        return sum(1 for s in slots if state[s] in codes) if codes else 0

    def state_of(self, slot: int) -> TransferState:
        return _STATES[self._state[slot]]

    def light(self, slot: int) -> TransferRow:
        """A file as the sums and the actions see it: what the node keeps of it (its
        state, bytes, check, speed, error); no name, path or key."""
        key = self._ids[slot]
        speed, eta = self.live.get(key, (0.0, None))
        error, detail = self.notes.get(key, ("", ""))
        info = self.info
        return TransferRow(
            id=key, name="", source_path="", size=self._size[slot], destination="",
            state=_STATES[self._state[slot]], confirmed_bytes=self._confirmed[slot],
            sent_bytes=self._sent[slot], speed=speed, eta=eta, error=error,
            error_detail=detail, bucket=info.bucket, profile=info.profile, added_at=0.0,
            check=_CHECKS[self._check[slot]], folder=info.id)

    def light_rows(self) -> list[TransferRow]:
        """Its files in the order shown, as :meth:`light` makes them (made field by field,
        not through the dataclass's checks: 100,000 in a tenth of a second)."""
        if not _FAST_ROWS:
            return [self.light(slot) for slot in self.order]
        ids, state, size, confirmed, sent, check = (
            self._ids, self._state, self._size, self._confirmed, self._sent, self._check)
        live, notes, info = self.live, self.notes, self.info
        still, quiet = (0.0, None), ("", "")
        rows = []
        for slot in self.order:
            key = ids[slot]
            row = _new_row(TransferRow)
            row.id, row.name, row.source_path, row.size, row.destination = (
                key, "", "", size[slot], "")
            row.state, row.confirmed_bytes, row.sent_bytes = (
                _STATES[state[slot]], confirmed[slot], sent[slot])
            row.speed, row.eta = live.get(key, still)
            row.error, row.error_detail = notes.get(key, quiet)
            row.bucket, row.key, row.profile, row.added_at = info.bucket, "", info.profile, 0.0
            row.check, row.folder = _CHECKS[check[slot]], info.id
            rows.append(row)
        return rows

    def set(self, slot: int, changes: Mapping[str, Any]) -> None:
        """Write a file's changed fields (those of :data:`KEPT_FIELDS`; others are read
        from the upload list)."""
        key = self._ids[slot]
        for name, value in changes.items():
            if name == "state":
                self._state[slot] = _STATE_CODE[TransferState(value)]
            elif name == "size":
                self._size[slot] = value
            elif name == "confirmed_bytes":
                self._confirmed[slot] = value
            elif name == "sent_bytes":
                self._sent[slot] = value
            elif name == "check":
                self._check[slot] = _CHECK_CODE.get(value, 0)
        if "speed" in changes or "eta" in changes:
            speed, eta = self.live.get(key, (0.0, None))
            speed = changes.get("speed", speed)
            eta = changes.get("eta", eta)
            if speed or eta is not None:
                self.live[key] = (speed, eta)
            else:
                self.live.pop(key, None)
        if "error" in changes or "error_detail" in changes:
            error, detail = self.notes.get(key, ("", ""))
            error = changes.get("error", error)
            detail = changes.get("error_detail", detail)
            if error or detail:
                self.notes[key] = (error, detail)
            else:
                self.notes.pop(key, None)

    def drop(self, keys: Iterable[RowKey]) -> None:
        """Forget these files (their shares of the sums taken away by the caller)."""
        gone = {s for s in map(self.slot, keys) if s is not None}
        if not gone:
            return
        gone_ids = {self._ids[s] for s in gone}
        keep = [s for s in range(len(self._ids)) if s not in gone]
        new_slot = {old: new for new, old in enumerate(keep)}
        order = [new_slot[s] for s in self.order if s not in gone]
        for name in ("_ids", "_state", "_size", "_confirmed", "_sent", "_check"):
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, (column[s] for s in keep)))
        for kept in (self.live, self.notes):
            for key in gone_ids.intersection(kept):
                del kept[key]
        self._by_id = None
        self._late = {}
        self.version += 1
        self.set_order(order)

    def set_order(self, slots: Iterable[int]) -> None:
        """Show its files in this order (slots)."""
        self.order = array("i", slots)
        self._rank = None

    def sort_key(self, column: str) -> Any:
        """A sort key of its slots by a live column (size, progress, speed, time left,
        state), from what the node keeps."""
        size, confirmed, state, ids = self._size, self._confirmed, self._state, self._ids
        live = self.live
        if column == "size":
            return size.__getitem__
        if column == "progress":
            return lambda s: confirmed[s] / size[s] if size[s] else 1.0
        if column == "speed":
            return lambda s: live.get(ids[s], (0.0, None))[0]
        if column == "eta":
            def eta(s: int) -> tuple[bool, float]:
                value = live.get(ids[s], (0.0, None))[1]
                return value is None, value or 0.0
            return eta
        return state.__getitem__
