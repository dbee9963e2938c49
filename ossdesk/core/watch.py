"""Watching a folder: which files to upload, and when (no network, no Qt).

The operating system's change notifications (through ``watchdog``, see :func:`observe`) and
a periodic rescan (the safety net: notifications are lost on network shares and when the
kernel's queue overflows) both only *nominate* a path. A nominated file is handed out once
it has stopped changing: its size and mtime unchanged for ``settle`` seconds by the injected
clock and, where the OS says when a writer closes a file (inotify on Linux), not written
since its last close. A file held open without being written for ``open_limit`` seconds
(a lost close notification) is handed out all the same.

A file is handed out only when it differs (size or mtime) from the ``baseline``: what the
first sync pass saw, then what was last handed out, so a notification for a file nobody
changed (a read, ``touch -a``) uploads nothing.

The folder itself: when it disappears (an unplugged disk, an unmounted share, a folder
moved away) or another file system appears in its place (the empty mount point), the watch
says so (:attr:`Step.missing`), hands out nothing and reports nothing as removed; when it
comes back (:attr:`Step.back`), it is rescanned at once. Files that are gone while the
folder is there, and still gone ``settle`` seconds later, are reported in
:attr:`Step.gone` (``ossdesk watch --delete`` deletes their objects).
"""

from __future__ import annotations

import enum
import os
import queue
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ossdesk.core.names import is_utf8
from ossdesk.core.sync import KeyFilter, relative_key
from ossdesk.core.upload import check_key
from ossdesk.core.walk import FoundFile, WalkProblem, join_key, normalize_prefix, walk_folder

__all__ = [
    "DEFAULT_RESCAN",
    "DEFAULT_SETTLE",
    "Change",
    "FolderWatch",
    "SettleTracker",
    "Step",
    "observe",
]

#: Seconds a file's size and mtime must stay the same before it is uploaded.
DEFAULT_SETTLE = 5.0
#: Seconds between two full rescans of the folder.
DEFAULT_RESCAN = 300.0

Clock = Callable[[], float]
Signature = tuple[int, int]  # (size, mtime_ns)


class Change(enum.Enum):
    """What a notification says about a path."""

    CHANGED = "changed"  # written
    ARRIVED = "arrived"  # created or moved here (no write seen yet)
    CLOSED = "closed"  # a writer closed it (inotify's IN_CLOSE_WRITE)
    REMOVED = "removed"  # deleted or moved away


@dataclass
class _Pending:
    signature: Signature | None
    since: float
    writing: bool = False


class SettleTracker:
    """Paths seen changing, handed out once they have been steady for ``settle`` seconds."""

    def __init__(self, settle: float, clock: Clock, *, open_limit: float | None = None,
                 stat_path: Callable[[Path], os.stat_result] = os.stat) -> None:
        self.settle = settle
        self.open_limit = max(settle, open_limit if open_limit is not None else settle * 12)
        self.clock = clock
        self._stat = stat_path
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: Path) -> bool:
        return path in self._pending

    def seen(self, path: Path, *, writing: bool = False) -> None:
        """``path`` changed (or may have): its quiet time starts again now."""
        entry = self._pending.get(path)
        now = self.clock()
        if entry is None:
            self._pending[path] = _Pending(self._signature(path), now, writing)
        else:
            entry.since = now
            entry.signature = self._signature(path)
            entry.writing = entry.writing or writing

    def closed(self, path: Path) -> None:
        """The last writer closed ``path``: the quiet time still has to pass."""
        entry = self._pending.get(path)
        if entry is None:
            self.seen(path)
        else:
            entry.writing = False

    def forget(self, path: Path) -> None:
        self._pending.pop(path, None)

    def due(self) -> list[tuple[Path, os.stat_result]]:
        """The paths that have stopped changing, with what they are now (each handed out
        once; a path that is gone or no longer a regular file is dropped)."""
        now = self.clock()
        ready: list[tuple[Path, os.stat_result]] = []
        for path, entry in list(self._pending.items()):
            try:
                st = self._stat(path)
            except OSError:
                del self._pending[path]
                continue
            if not stat.S_ISREG(st.st_mode):
                del self._pending[path]
                continue
            signature = (st.st_size, st.st_mtime_ns)
            if signature != entry.signature:
                entry.signature = signature
                entry.since = now
                continue
            quiet = now - entry.since
            if quiet >= self.settle and (not entry.writing or quiet >= self.open_limit):
                del self._pending[path]
                ready.append((path, st))
        return ready

    def _signature(self, path: Path) -> Signature | None:
        try:
            st = self._stat(path)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)


@dataclass
class Step:
    """What one :meth:`FolderWatch.step` found."""

    ready: list[FoundFile] = field(default_factory=list)
    #: Keys whose files are gone (the folder still there), gone for ``settle`` seconds.
    gone: list[str] = field(default_factory=list)
    #: The folder has just disappeared (or another file system is mounted in its place).
    missing: bool = False
    #: The folder has just come back (the notifications should be started again).
    back: bool = False
    rescanned: bool = False
    problems: list[WalkProblem] = field(default_factory=list)


class FolderWatch:
    """The state of one watched folder, driven by :meth:`step` in one thread;
    :meth:`notify` may be called from any thread (the observer's)."""

    def __init__(self, folder: Path, prefix: str, keys: KeyFilter, *, settle: float,
                 rescan: float, clock: Clock, open_limit: float | None = None) -> None:
        self.folder = folder
        self.prefix = normalize_prefix(prefix)
        self.keys = keys
        self.settle = settle
        self.rescan_every = rescan
        self.clock = clock
        self.tracker = SettleTracker(settle, clock, open_limit=open_limit)
        self._events: queue.SimpleQueue[tuple[Path, Change]] = queue.SimpleQueue()
        self._baseline: dict[str, Signature] = {}  # key -> what was synced or handed out
        self._sources: dict[str, Path] = {}  # key -> its file
        self._gone: dict[str, float] = {}  # key -> since when its file is missing
        self._device = self._folder_device()
        self.missing = self._device is None
        self._next_rescan = clock() + rescan
        #: The notifications say when a writer closes a file (inotify): a written file then
        #: waits for its close as well as for its quiet time.
        self.reports_close = False

    # -- feeding it ------------------------------------------------------------------------

    def set_baseline(self, files: Iterable[FoundFile]) -> None:
        """What the folder held when it was last synced (those files are not uploaded again
        unless they change)."""
        for found in files:
            self._baseline[found.key] = (found.size, found.mtime_ns)
            self._sources[found.key] = found.path

    def notify(self, path: Path, change: Change) -> None:
        """A notification (any thread)."""
        self._events.put((path, change))

    def rescan_now(self) -> None:
        self._next_rescan = self.clock()

    @property
    def settling(self) -> int:
        """Files seen changing and not handed out yet."""
        return len(self.tracker)

    # -- the loop --------------------------------------------------------------------------

    def step(self) -> Step:
        out = Step()
        present = self._present()
        if not present:
            if not self.missing:
                self.missing = out.missing = True
            self._drain(ignore=True)
            self._gone.clear()
            return out
        if self.missing:
            self.missing = False
            out.back = True
            self._device = self._folder_device()
            self.rescan_now()
        self._drain()
        now = self.clock()
        if now >= self._next_rescan:
            self._rescan(out)
            self._next_rescan = now + self.rescan_every
        for path, st in self.tracker.due():
            found = self._found(path, st, out.problems)
            if found is None:
                continue
            signature = (found.size, found.mtime_ns)
            self._gone.pop(found.key, None)
            if self._baseline.get(found.key) == signature:
                continue  # nothing changed since it was synced or handed out
            self._baseline[found.key] = signature
            self._sources[found.key] = found.path
            out.ready.append(found)
        for key, since in list(self._gone.items()):
            source = self._sources.get(key)
            if source is not None and os.path.lexists(source):
                del self._gone[key]
            elif now - since >= self.settle:
                # Checked once more just before the folder is trusted: a folder that went
                # away meanwhile removes nothing.
                if not self._present():
                    return out
                del self._gone[key]
                self._baseline.pop(key, None)
                self._sources.pop(key, None)
                out.gone.append(key)
        return out

    def _drain(self, *, ignore: bool = False) -> None:
        while True:
            try:
                path, change = self._events.get_nowait()
            except queue.Empty:
                return
            if ignore:
                continue
            if change is Change.REMOVED:
                self._removed(path)
            elif change is Change.CLOSED:
                if self._wanted(path):
                    self.tracker.closed(path)
            elif path.is_dir() and not path.is_symlink():
                # A folder created or moved in: its files may bring no notifications.
                for found in walk_folder(path, None, lambda _p: None):
                    if self._wanted(found.path):
                        self.tracker.seen(found.path)
            elif self._wanted(path):
                self.tracker.seen(path, writing=self.reports_close
                                  and change is Change.CHANGED)

    def _removed(self, path: Path) -> None:
        self.tracker.forget(path)
        key = self._key(path)
        if key is None:
            return
        now = self.clock()
        # The path may be a folder: every known file below it is a candidate.
        folder_prefix = key + "/"
        for known in list(self._sources):
            if known == key or known.startswith(folder_prefix):
                self._gone.setdefault(known, now)

    def _rescan(self, out: Step) -> None:
        out.rescanned = True
        found_keys: set[str] = set()
        unreadable: list[str] = []

        def problem(p: WalkProblem) -> None:
            out.problems.append(p)
            key = self._key(p.path)
            if key is not None:
                unreadable.append(key)

        for found in walk_folder(self.folder, self.prefix, problem):
            if not self.keys.wanted(relative_key(found.key, self.prefix)):
                continue
            found_keys.add(found.key)
            if self._baseline.get(found.key) != (found.size, found.mtime_ns) \
                    and found.path not in self.tracker:
                self.tracker.seen(found.path)
        now = self.clock()
        for key in self._sources:
            if key in found_keys or any(key == u or key.startswith(u + "/")
                                        for u in unreadable):
                continue
            self._gone.setdefault(key, now)

    # -- paths and keys --------------------------------------------------------------------

    def _present(self) -> bool:
        device = self._folder_device()
        if device is None:
            return False
        if self._device is None:
            self._device = device
        return device == self._device

    def _folder_device(self) -> int | None:
        try:
            st = self.folder.stat()
        except OSError:
            return None
        return st.st_dev if stat.S_ISDIR(st.st_mode) else None

    def _key(self, path: Path) -> str | None:
        try:
            parts = path.relative_to(self.folder).parts
        except ValueError:
            return None
        if not parts or not all(is_utf8(p) for p in parts):
            return None
        return join_key(self.prefix, *parts)

    def _wanted(self, path: Path) -> bool:
        key = self._key(path)
        return key is not None and self.keys.wanted(relative_key(key, self.prefix))

    def _found(self, path: Path, st: os.stat_result,
               problems: list[WalkProblem]) -> FoundFile | None:
        key = self._key(path)
        if key is None or not self.keys.wanted(relative_key(key, self.prefix)):
            return None
        problem = check_key(key)
        if problem is not None:
            problems.append(WalkProblem(path, f"{path}: {problem}"))
            return None
        return FoundFile(path=path.absolute(), key=key, size=st.st_size,
                         mtime_ns=st.st_mtime_ns)


# -- the operating system's notifications ----------------------------------------------------


def observe(watch: FolderWatch) -> Any:
    """Start ``watchdog``'s observer on the watched folder (recursively), feeding
    :meth:`FolderWatch.notify`; returns the started observer (``stop()`` and ``join()`` it).
    Raises ``OSError`` when the OS refuses (e.g. Linux's inotify watch limit)."""
    from watchdog.events import (
        DirMovedEvent,
        FileClosedEvent,
        FileSystemEvent,
        FileSystemEventHandler,
        FileSystemMovedEvent,
    )
    from watchdog.observers import Observer

    def as_path(raw: str | bytes) -> Path:
        return Path(os.fsdecode(raw))

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            kind = event.event_type
            if isinstance(event, FileSystemMovedEvent):
                watch.notify(as_path(event.src_path), Change.REMOVED)
                watch.notify(as_path(event.dest_path), Change.ARRIVED)
                if isinstance(event, DirMovedEvent):
                    watch.rescan_now()  # names below it changed without notifications
            elif isinstance(event, FileClosedEvent):
                watch.notify(as_path(event.src_path), Change.CLOSED)
            elif kind == "deleted":
                watch.notify(as_path(event.src_path), Change.REMOVED)
            elif kind == "modified" and not event.is_directory:
                watch.notify(as_path(event.src_path), Change.CHANGED)  # written
            elif kind == "created":
                # A file moved in from outside the folder arrives as "created", with no
                # write and no close to wait for; a file being written also sends writes.
                watch.notify(as_path(event.src_path), Change.ARRIVED)

    observer = Observer()
    observer.schedule(Handler(), os.fspath(watch.folder), recursive=True)
    observer.start()
    watch.reports_close = type(observer).__name__.startswith("Inotify")
    return observer
