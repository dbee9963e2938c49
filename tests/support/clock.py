"""A clock the test moves by hand, for code that takes ``clock`` (and ``sleep``) arguments.

``now()`` (or calling the clock) reads it, ``advance(seconds)`` moves it, and ``sleep`` is a
sleep that returns at once having moved the clock by the time asked for, so code that waits
runs at full speed while its idea of time is exact. ``at(when, action)`` runs ``action``
once, in the thread that moves the clock, as soon as the clock reaches ``when``: to change
something "while" the code under test waits, without a second thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable


class FakeClock:
    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._actions: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []
        """Every ``sleep`` asked for, in order."""

    def now(self) -> float:
        with self._lock:
            return self._now

    __call__ = now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds})")
        with self._lock:
            self._now += seconds
            due = sorted((a for a in self._actions if a[0] <= self._now),
                         key=lambda a: (a[0], a[1]))
            self._actions = [a for a in self._actions if a[0] > self._now]
        for _when, _order, action in due:
            action()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    def at(self, when: float, action: Callable[[], object]) -> None:
        with self._lock:
            self._actions.append((when, next(self._order), action))
