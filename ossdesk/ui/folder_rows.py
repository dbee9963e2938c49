"""A dropped folder in the queue: one row whose children are the files found in it.

A :class:`FolderNode` keeps the sums of its files (sizes, sent and confirmed bytes, speed,
how many are in each state) up to date as each file changes: the model adds a file's share
before a change and takes it away after (:meth:`FolderNode.count`), so a progress tick of a
folder of 100,000 files costs the same as one of a single file, and the folder's state,
progress and time left are read from these sums, never from a walk of its files.

A node answers the attributes a :class:`TransferRow` has that the queue's columns, sorting
and progress bar read (``name``, ``size``, ``confirmed_bytes``, ``sent_bytes``, ``speed``,
``eta``, ``state``, ``destination``, ``profile``, ...), so it is painted like a file row.
"""

from __future__ import annotations

import math
import os

from PySide6.QtCore import QCoreApplication

from ossdesk.ui.engine_types import FolderInfo, RowKey, TransferRow, TransferState

_MOVING = (TransferState.UPLOADING, TransferState.VERIFYING, TransferState.CHECKING)


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
    root = info.source_path.rstrip("/\\")
    source = row.source_path
    cut = len(root)
    if root and source.startswith(root) and len(source) > cut + 1 and source[cut] in "/\\":
        inside = source[cut + 1 :]
        return inside.replace(os.sep, "/") if os.sep != "/" else inside
    prefix = key_prefix(info)
    if prefix and row.key.startswith(prefix) and len(row.key) > len(prefix):
        return row.key[len(prefix) :]
    return row.name


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

    __slots__ = (
        "active",
        "children",
        "confirmed_bytes",
        "crc64",
        "info",
        "key_prefix",
        "md5",
        "pos",
        "remaining",
        "sent_bytes",
        "size",
        "speed_sum",
        "states",
        "total_size",
    )

    def __init__(self, info: FolderInfo) -> None:
        self.info = info
        #: Its files' keys begin with this (``prefix/name/``): a file keeps only the rest.
        self.key_prefix = key_prefix(info)
        self.children: list[TransferRow] = []
        self.pos: dict[RowKey, int] = {}
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
        return len(self.children)

    @property
    def finished(self) -> int:
        """Files done or already there."""
        return self.states[TransferState.DONE] + self.states[TransferState.SKIPPED]

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
        files = len(self.children)
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

    def failed_rows(self, limit: int) -> list[TransferRow]:
        """The first ``limit`` failed files (for the folder's details: walks its files)."""
        found: list[TransferRow] = []
        if not self.states[TransferState.FAILED]:
            return found
        for row in self.children:
            if row.state is TransferState.FAILED:
                found.append(row)
                if len(found) >= limit:
                    break
        return found
