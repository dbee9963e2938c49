"""Turning dropped paths into files to upload, off the GUI thread.

:func:`walk` is plain Python (a generator of batches) and runs in a worker thread;
:class:`WalkJob` owns that thread and hands batches to the GUI thread through a queue
that a GUI timer drains, so a 100,000-file folder streams rows in while the window keeps
painting. Symlink loops, unreadable entries and duplicates are reported, never fatal.
"""

from __future__ import annotations

import enum
import errno
import os
import queue
import stat
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from ossdesk.core.names import is_utf8
from ossdesk.ui.engine_types import SourceFile as SourceFile  # noqa: PLC0414 - re-exported


class ProblemKind(enum.StrEnum):
    LOOP = "loop"
    UNREADABLE = "unreadable"
    DUPLICATE = "duplicate"
    MISSING = "missing"
    SPECIAL = "special"
    COLLISION = "collision"  # another source goes to the same object key
    BAD_NAME = "bad-name"  # not valid UTF-8: no object key, no row in the upload list


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    kind: ProblemKind
    detail: str = ""


@dataclass(slots=True)
class WalkSummary:
    files: int = 0
    bytes: int = 0
    problems: int = 0
    cancelled: bool = False
    seconds: float = 0.0


@dataclass(slots=True)
class Batch:
    files: list[SourceFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.problems)


def nfc(text: str) -> str:
    """Object keys are what the user sees: composed Unicode (macOS hands out NFD names)."""
    return unicodedata.normalize("NFC", text)


def _identity(st: os.stat_result, path: str) -> tuple[int, int] | str:
    if st.st_ino:
        return (st.st_dev, st.st_ino)
    return os.path.normcase(os.path.realpath(path))


def walk(
    roots: Iterable[str | os.PathLike[str]],
    *,
    skip_paths: frozenset[str] = frozenset(),
    cancel: threading.Event | None = None,
    batch_size: int = 500,
    batch_seconds: float = 0.1,
) -> Iterator[Batch]:
    """Yield batches of files (and problems) under ``roots``; folders keep their name as
    the first key segment (dropping ``photos/`` uploads ``photos/a.jpg``)."""
    seen_files: dict[tuple[int, int] | str, str] = {}
    batch = Batch()
    last = time.monotonic()

    def flush_due() -> bool:
        return len(batch.files) >= batch_size or (
            bool(batch) and time.monotonic() - last >= batch_seconds
        )

    def add_file(path: str, key: str, st: os.stat_result) -> None:
        ident = _identity(st, path)
        if path in skip_paths:
            batch.problems.append(Problem(path, ProblemKind.DUPLICATE, "in the queue already"))
            return
        first = seen_files.get(ident)
        if first is not None:
            batch.problems.append(Problem(path, ProblemKind.DUPLICATE, first))
            return
        seen_files[ident] = path
        batch.files.append(SourceFile(path, key, st.st_size, st.st_mtime_ns))

    for root_like in roots:
        if cancel is not None and cancel.is_set():
            return
        root = os.path.abspath(os.fspath(root_like))
        if not is_utf8(root):
            batch.problems.append(Problem(root, ProblemKind.BAD_NAME))
            continue
        try:
            st = os.stat(root)
        except FileNotFoundError:
            batch.problems.append(Problem(root, ProblemKind.MISSING))
            continue
        except OSError as exc:
            batch.problems.append(Problem(root, ProblemKind.UNREADABLE, exc.strerror or str(exc)))
            continue
        name = nfc(Path(root).name) or nfc(root.strip("/\\")) or "root"
        if stat.S_ISREG(st.st_mode):
            add_file(root, name, st)
            continue
        if not stat.S_ISDIR(st.st_mode):
            batch.problems.append(Problem(root, ProblemKind.SPECIAL))
            continue
        # Depth-first with an explicit stack; ancestors are tracked per branch so a
        # symlink back up the tree is a loop, while a second link to the same folder
        # elsewhere is a duplicate.
        stack: list[tuple[str, str, frozenset[tuple[int, int] | str]]] = [
            (root, name, frozenset({_identity(st, root)}))
        ]
        walked_dirs: set[tuple[int, int] | str] = {_identity(st, root)}
        while stack:
            if cancel is not None and cancel.is_set():
                return
            folder, prefix, ancestors = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                batch.problems.append(
                    Problem(folder, ProblemKind.UNREADABLE, exc.strerror or str(exc))
                )
                continue
            subfolders: list[tuple[str, str, frozenset[tuple[int, int] | str]]] = []
            for entry in entries:
                path = entry.path
                if not is_utf8(entry.name):
                    batch.problems.append(Problem(path, ProblemKind.BAD_NAME))
                    continue
                key = f"{prefix}/{nfc(entry.name)}"
                try:
                    est = entry.stat(follow_symlinks=True)
                except FileNotFoundError:
                    kind = ProblemKind.MISSING
                    if entry.is_symlink():
                        kind = ProblemKind.UNREADABLE
                    batch.problems.append(Problem(path, kind, "broken link"))
                    continue
                except OSError as exc:
                    if exc.errno == errno.ELOOP:  # a link that points at itself
                        batch.problems.append(Problem(path, ProblemKind.LOOP))
                    else:
                        batch.problems.append(
                            Problem(path, ProblemKind.UNREADABLE, exc.strerror or str(exc))
                        )
                    continue
                if stat.S_ISDIR(est.st_mode):
                    ident = _identity(est, path)
                    if ident in ancestors:
                        batch.problems.append(Problem(path, ProblemKind.LOOP))
                    elif ident in walked_dirs:
                        batch.problems.append(Problem(path, ProblemKind.DUPLICATE))
                    else:
                        walked_dirs.add(ident)
                        subfolders.append((path, key, ancestors | {ident}))
                elif stat.S_ISREG(est.st_mode):
                    if not os.access(path, os.R_OK):
                        batch.problems.append(
                            Problem(path, ProblemKind.UNREADABLE, "permission denied")
                        )
                        continue
                    add_file(path, key, est)
                else:
                    batch.problems.append(Problem(path, ProblemKind.SPECIAL))
                if flush_due():
                    yield batch
                    batch = Batch()
                    last = time.monotonic()
            stack.extend(reversed(subfolders))
    if batch:
        yield batch


class WalkJob(QObject):
    """Walks dropped paths in a worker thread; emits batches on the GUI thread."""

    batchReady = Signal(object)  # list[SourceFile]
    problemsFound = Signal(object)  # list[Problem]
    finished = Signal(object)  # WalkSummary

    DRAIN_INTERVAL_MS = 100

    def __init__(
        self,
        roots: Iterable[str],
        *,
        skip_paths: frozenset[str] = frozenset(),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._roots = list(roots)
        self._skip = skip_paths
        self._queue: queue.SimpleQueue[Batch | WalkSummary] = queue.SimpleQueue()
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
            for batch in walk(self._roots, skip_paths=self._skip, cancel=self._cancel):
                summary.files += len(batch.files)
                summary.bytes += sum(f.size for f in batch.files)
                summary.problems += len(batch.problems)
                self._queue.put(batch)
        except Exception as exc:  # noqa: BLE001 - reported to the user, never fatal
            summary.problems += 1
            problem = Problem("", ProblemKind.UNREADABLE, f"{type(exc).__name__}: {exc}")
            self._queue.put(Batch(problems=[problem]))
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
