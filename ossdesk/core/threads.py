"""How the engine starts its threads: an injectable ``start_thread(target, name)``.

The scheduler starts its workers and its timers through one such callable (as s3transfer
takes an ``executor_cls``). The command line gives :func:`start_thread`, plain daemon
threads; the window gives QThreads (:mod:`ossdesk.ui.qthreads`), so that the engine lives in
the window's Qt threads. Nothing here knows Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["StartThread", "ThreadHandle", "start_thread"]


class ThreadHandle(Protocol):
    """A started thread, as the scheduler sees it."""

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


#: ``start_thread(target, name)`` runs ``target()`` on a new thread, started, and returns it.
StartThread = Callable[[Callable[[], None], str], ThreadHandle]


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon :class:`threading.Thread` (the command line's): it never keeps a process
    that is ending alive."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
