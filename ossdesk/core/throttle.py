"""The bandwidth limit: one token bucket shared by every transfer.

Every body reader asks the bucket for the bytes it is about to hand to the network
(``acquire(n)``). Waiters are served first come, first served, so parallel parts share the
limit evenly; a request larger than the burst is not refused but waits in proportion to its
size. Waiting threads wake at least every 100 ms, so a pause or stop (``stop`` event) and a
new limit (:meth:`TokenBucket.set_rate`) take effect promptly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["MAX_WAIT", "Throughput", "TokenBucket"]

MAX_WAIT = 0.1
"""The longest a waiter sleeps before it looks at its stop event and the rate again."""

_MIN_BURST = 64 * 1024


class _Waiter:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


class TokenBucket:
    """A thread-safe token bucket of ``rate`` bytes per second (0 = unlimited).

    ``burst`` is how many bytes may go at once after an idle spell; by default a fifth of a
    second's worth (at least 64 KiB), following the rate when it changes.

    ``clock`` and ``sleep`` are for tests: ``clock`` returns seconds, like
    :func:`time.monotonic`; ``sleep(seconds)``, if given, is how a waiter waits (with the
    bucket's lock released) instead of on the bucket's condition, which :meth:`set_rate`
    and a leaving waiter notify at once.
    """

    def __init__(
        self,
        rate: int = 0,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if burst is not None and burst <= 0:
            raise ValueError(f"burst must be positive, got {burst}")
        self._check_rate(rate)
        self._cond = threading.Condition(threading.Lock())
        self._clock = clock
        self._sleep = sleep
        self._rate = rate
        self._explicit_burst = burst
        self._burst = self._burst_for(rate)
        self._tokens = float(self._burst)
        self._last = clock()
        self._queue: deque[_Waiter] = deque()

    @staticmethod
    def _check_rate(rate: int) -> None:
        if rate < 0:
            raise ValueError(f"a rate cannot be negative ({rate}); use 0 for unlimited")

    def _burst_for(self, rate: int) -> int:
        if self._explicit_burst is not None:
            return self._explicit_burst
        return max(_MIN_BURST, rate // 5)

    @property
    def rate(self) -> int:
        """Bytes per second; 0 means unlimited."""
        with self._cond:
            return self._rate

    @property
    def burst(self) -> int:
        with self._cond:
            return self._burst

    def set_rate(self, rate: int) -> None:
        """Change the limit; threads already waiting follow the new rate at once."""
        self._check_rate(rate)
        with self._cond:
            self._refill(self._clock())  # time until now is credited at the old rate
            self._rate = rate
            self._burst = self._burst_for(rate)
            if rate == 0:
                self._tokens = float(self._burst)
            self._cond.notify_all()

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        if self._rate == 0:
            return
        cap = max(self._burst, self._queue[0].n) if self._queue else self._burst
        self._tokens = min(float(cap), self._tokens + elapsed * self._rate)

    def _wait(self, timeout: float) -> None:
        """With the lock held: wait up to ``timeout`` seconds (the lock released meanwhile)."""
        if self._sleep is None:
            self._cond.wait(timeout)
            return
        self._cond.release()
        try:
            self._sleep(timeout)
        finally:
            self._cond.acquire()

    def acquire(self, n: int, stop: threading.Event | None = None) -> bool:
        """Block until ``n`` bytes may be sent; False (and nothing taken) if ``stop`` is set."""
        if n < 0:
            raise ValueError(f"cannot acquire a negative byte count ({n})")
        if stop is not None and stop.is_set():
            return False
        if n == 0 or self._rate == 0:
            # Unlimited: nothing to wait for, and no lock taken (a limit set meanwhile
            # applies from the next call on).
            return True
        with self._cond:
            if self._rate == 0:
                return True
            waiter = _Waiter(n)
            self._queue.append(waiter)
            try:
                while True:
                    if stop is not None and stop.is_set():
                        return False
                    if self._rate == 0:
                        return True
                    self._refill(self._clock())
                    if self._queue[0] is waiter:
                        missing = n - self._tokens
                        if missing <= 1e-6:
                            self._tokens -= n
                            return True
                        timeout = min(MAX_WAIT, missing / self._rate)
                    else:
                        timeout = MAX_WAIT
                    self._wait(timeout)
            finally:
                self._queue.remove(waiter)
                self._cond.notify_all()


class Throughput:
    """Bytes per second handed to the network by every transfer, over the last ``window``
    seconds of sending (a pause longer than ``gap`` seconds starts the count anew, so an
    idle spell does not read as a slow link). ``clock`` is for tests."""

    def __init__(self, *, window: float = 10.0, gap: float = 2.0, least: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._gap = gap
        self._least = least
        self._clock = clock
        self._lock = threading.Lock()
        self._total = 0
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, n: int) -> None:
        """``n`` more bytes were sent."""
        now = self._clock()
        with self._lock:
            samples = self._samples
            if samples and now - samples[-1][0] > self._gap:
                samples.clear()
            if not samples:
                samples.append((now, self._total))
            self._total += n
            if now - samples[-1][0] >= 0.1:
                samples.append((now, self._total))
            while len(samples) > 2 and now - samples[1][0] >= self._window:
                samples.popleft()

    def rate(self) -> float | None:
        """The measured bytes per second, or None until ``least`` seconds of sending were
        seen (or after a pause of more than ``gap`` seconds)."""
        now = self._clock()
        with self._lock:
            samples = self._samples
            if not samples or now - samples[-1][0] > self._gap:
                return None
            t0, b0 = samples[0]
            span = now - t0
            if span < self._least:
                return None
            return (self._total - b0) / span
