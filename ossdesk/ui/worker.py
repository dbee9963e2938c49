"""Run one blocking call (network, keyring, disk) off the GUI thread.

The result comes back as a Qt signal of an object that lives on the GUI thread, so the
connection is queued and the slot runs on the GUI thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

_running: set[BackgroundCall] = set()


class BackgroundCall(QObject):
    """``BackgroundCall(fn).start()``; connect ``succeeded`` / ``failed`` to bound slots.

    The call object has no Qt parent: a dialog closed while the call runs must not take
    the signal source with it. Slots of a deleted receiver are simply not called.
    """

    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    finished = Signal()

    def __init__(self, fn: Callable[[], Any], receiver: QObject | None = None) -> None:
        super().__init__(None)
        del receiver  # kept for call sites' readability: results go to its slots
        self._fn = fn
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def start(self) -> BackgroundCall:
        _running.add(self)  # keep the Python wrapper alive until the result is delivered
        self.finished.connect(self._release)
        self._thread = threading.Thread(target=self._run, name="ossdesk-call", daemon=True)
        self._thread.start()
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
        _running.discard(self)
