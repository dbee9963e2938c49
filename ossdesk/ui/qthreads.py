"""The window's threads: QThreads, for the engine (started through the scheduler's
``start_thread``, see :mod:`ossdesk.core.threads`, and the engine pipe's reader and
writer) and for one blocking call off the GUI thread (:class:`BackgroundCall`).

Each worker and timer of the scheduler runs in a :class:`EngineThread` (a ``QThread``), so
Qt knows these threads: signals emitted from them to objects of the GUI thread are queued
connections, and Qt tools (and debuggers) see them by name.

A QThread object must outlive its thread: Qt ends the process ("QThread: Destroyed while
thread is still running") when one is deleted while it runs. So every started thread is
kept here until it has finished, and when the interpreter exits, threads still running
(a request waiting on a dead link, say) get a few seconds to end; then the process ends
without deleting them, with exit status 1 and a warning in the log.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, Signal, Slot

__all__ = ["BackgroundCall", "EngineThread", "live_threads", "start_qthread"]

_log = logging.getLogger(__name__)

#: Seconds the interpreter's exit waits for window threads still running.
EXIT_WAIT = 5.0

_lock = threading.Lock()
_live: set[EngineThread] = set()
_ended: list[EngineThread] = []  # finished runs, dropped once their QThread has finished


class EngineThread(QThread):
    """A QThread that runs one callable (a scheduler worker or timer)."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self._target = target

    def run(self) -> None:
        try:
            self._target()
        except Exception:  # noqa: BLE001 - as threading.Thread does: logged, not raised
            _log.exception("engine thread %s failed", self.objectName())
        finally:
            with _lock:
                _live.discard(self)
                _ended.append(self)  # still referenced until the QThread has finished

    # ThreadHandle (ossdesk.core.threads)

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            self.wait()
        else:
            self.wait(QDeadlineTimer(max(0, int(timeout * 1000))))

    def is_alive(self) -> bool:
        return self.isRunning()


def start_qthread(target: Callable[[], None], name: str) -> EngineThread:
    """The window's ``start_thread``: ``target`` runs in a new, started :class:`EngineThread`."""
    thread = EngineThread(target, name)
    with _lock:
        _ended[:] = [t for t in _ended if not t.isFinished()]
        _live.add(thread)
    thread.start()
    return thread


def live_threads() -> list[EngineThread]:
    """The window's QThreads still running (tests, shutdown)."""
    with _lock:
        return [t for t in (*_live, *_ended) if not t.isFinished()]


class BackgroundCall(QObject):
    """One blocking call (network, keyring, disk) in its own QThread:
    ``BackgroundCall(fn).start()``, then ``succeeded`` / ``failed`` (the exception) /
    ``finished`` are emitted from that thread, queued to bound slots on the GUI thread.
    No Qt parent: a dialog closed while the call runs must not take the signal source with
    it (slots of a deleted receiver are simply not called)."""

    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()
    _running: ClassVar[set[BackgroundCall]] = set()  # wrappers kept until delivered

    def __init__(self, fn: Callable[[], Any], receiver: QObject | None = None) -> None:
        super().__init__(None)
        del receiver  # kept for call sites' readability: results go to its slots
        self._fn = fn
        self._done = threading.Event()

    def start(self) -> BackgroundCall:
        BackgroundCall._running.add(self)
        self.finished.connect(self._release)
        start_qthread(self._run, "ossdesk-call")
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the call itself (not for the signal delivery); tests and shutdown."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI as a value
            self._done.set()
            self._emit(self.failed, exc)
        else:
            self._done.set()
            self._emit(self.succeeded, result)
        self._emit(self.finished)

    @staticmethod
    def _emit(signal: Any, *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the application is shutting down
            signal.emit(*args)

    @Slot()
    def _release(self) -> None:
        BackgroundCall._running.discard(self)


def _at_exit() -> None:
    deadline = time.monotonic() + EXIT_WAIT
    for thread in live_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.objectName() for t in live_threads()]
    if stuck:
        # Deleting a running QThread aborts the process; ending it here does not.
        _log.warning("ending with threads still running: %s", ", ".join(stuck))
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(1)  # not a clean end: the exit status says so


atexit.register(_at_exit)
