"""Turning dropped paths into files to upload, off the GUI thread.

The walk itself is :func:`ossdesk.core.walk.walk_batches`, the one the command line uses:
the same keys, the same key rules (names that are not UTF-8, control characters, ``.`` or
``..`` segments, keys over 1,023 bytes are left out and reported). :class:`WalkJob` runs it
in a worker thread and hands batches to the GUI thread through a queue that a GUI timer
drains, so a 100,000-file folder streams rows in while the window keeps painting.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from ossdesk.core.upload import KeyFault
from ossdesk.core.walk import ProblemKind as ProblemKind  # noqa: PLC0414 - re-exported
from ossdesk.core.walk import WalkBatch, WalkProblem, walk_batches
from ossdesk.ui.engine_types import SourceFile as SourceFile  # noqa: PLC0414 - re-exported

# ``walk_batches`` is looked up here at each walk, so a test can pace it.
__all__ = ["Problem", "ProblemKind", "SourceFile", "WalkJob", "WalkSummary", "walk_batches"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something of a drop that was not added: ``detail`` is the system's reason or the
    refused object key (with its ``fault``); ``other`` the first source of a collision."""

    path: str
    kind: ProblemKind
    detail: str = ""
    fault: KeyFault | None = None
    other: str = ""

    @classmethod
    def of(cls, problem: WalkProblem) -> Problem:
        return cls(str(problem.path), problem.kind, problem.detail, problem.fault)


@dataclass(slots=True)
class WalkSummary:
    files: int = 0
    bytes: int = 0
    problems: int = 0
    cancelled: bool = False
    seconds: float = 0.0


@dataclass(slots=True)
class _Batch:
    files: list[SourceFile]
    problems: list[Problem]


def _handed_over(batch: WalkBatch) -> _Batch:
    """A walked batch as the window takes it. Files the queue has already are not left out
    here: the engine decides from the upload list what to do with them."""
    files = [SourceFile(str(f.path), f.key, f.size, f.mtime_ns) for f in batch.files]
    return _Batch(files, [Problem.of(p) for p in batch.problems])


class WalkJob(QObject):
    """Walks dropped paths in a worker thread; emits batches on the GUI thread."""

    batchReady = Signal(object)  # list[SourceFile], keyed with the prefix
    problemsFound = Signal(object)  # list[Problem]
    finished = Signal(object)  # WalkSummary

    DRAIN_INTERVAL_MS = 100

    def __init__(
        self,
        roots: Iterable[str],
        *,
        prefix: str = "",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._roots = [Path(os.path.abspath(r)) for r in roots]
        self._prefix = prefix
        self._queue: queue.SimpleQueue[_Batch | WalkSummary] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(self.DRAIN_INTERVAL_MS)
        self._timer.timeout.connect(self._drain)
        self.summary: WalkSummary | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ossdesk-walk", daemon=True)
        self._thread.start()
        self._timer.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        """Join the worker thread (tests and shutdown); batches still need a drain."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        summary = WalkSummary()
        started = time.monotonic()
        try:
            for walked in walk_batches(self._roots, self._prefix, cancel=self._cancel.is_set):
                batch = _handed_over(walked)
                summary.files += len(batch.files)
                summary.bytes += sum(f.size for f in batch.files)
                summary.problems += len(batch.problems)
                self._queue.put(batch)
        except Exception as exc:  # noqa: BLE001 - reported to the user, never fatal
            summary.problems += 1
            problem = Problem("", ProblemKind.UNREADABLE, f"{type(exc).__name__}: {exc}")
            self._queue.put(_Batch([], [problem]))
        summary.cancelled = self._cancel.is_set()
        summary.seconds = time.monotonic() - started
        self._queue.put(summary)

    @Slot()
    def _drain(self) -> None:
        files: list[SourceFile] = []
        problems: list[Problem] = []
        done: WalkSummary | None = None
        # Bound the work per tick so the window keeps painting under a flood.
        for _ in range(50):
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, WalkSummary):
                done = item
                break
            files.extend(item.files)
            problems.extend(item.problems)
        if files:
            self.batchReady.emit(files)
        if problems:
            self.problemsFound.emit(problems)
        if done is not None:
            self._timer.stop()
            self.summary = done
            self.finished.emit(done)
