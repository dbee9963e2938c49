"""What the engine tells its listeners: plain, frozen, JSON-ready dataclasses.

A listener is any callable taking one :class:`Event`. Listeners are called from the engine's
worker threads: a window must hand events over to its own thread (a queue drained by a
timer, or a queued Qt signal). A listener that raises is logged and otherwise ignored; it
never stops an upload.

Progress is aggregated at the source by :class:`ProgressMeter`: at most ``max_rate`` events
per second per file (10 by default), and always one last event when a file stops moving.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

__all__ = [
    "Cancelled",
    "Done",
    "Event",
    "EventHub",
    "Failed",
    "Idle",
    "Listener",
    "Notice",
    "PauseReason",
    "Paused",
    "Progress",
    "ProgressMeter",
    "Queued",
    "Retrying",
    "Started",
]

_log = logging.getLogger(__name__)


class PauseReason:
    """Why an upload is paused (the ``reason`` of :class:`Paused`)."""

    USER = "user"
    CREDENTIALS = "credentials expired"
    NETWORK = "network"
    SHUTDOWN = "shutdown"


_FIELDS: dict[type, tuple[str, ...]] = {}  # each event class's field names


@dataclass(frozen=True)
class Event:
    """Base of every event. ``upload`` is the queue row id (None for queue-wide events)."""

    kind: ClassVar[str] = "event"
    upload: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: ``{"event": kind, ...fields}``."""
        data: dict[str, Any] = {"event": self.kind}
        names = _FIELDS.get(type(self))
        if names is None:
            names = _FIELDS[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        for name in names:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            data[name] = value
        data["time"] = round(time.time(), 3)
        return data


@dataclass(frozen=True)
class Queued(Event):
    kind: ClassVar[str] = "queued"
    source: str
    key: str
    size: int
    bucket: str
    #: Whose credentials upload it: an account (profile) name, or "environment".
    account: str = ""
    #: The dropped folder it was found in (the store's folder id), if any.
    folder: int | None = None


@dataclass(frozen=True)
class Started(Event):
    """The file is moving. ``resumed`` when confirmed parts were kept from before."""

    kind: ClassVar[str] = "started"
    key: str
    size: int
    confirmed_bytes: int
    resumed: bool
    multipart: bool


@dataclass(frozen=True)
class Progress(Event):
    """``confirmed_bytes``: confirmed by OSS; ``sent_bytes``: sent, not yet confirmed."""

    kind: ClassVar[str] = "progress"
    confirmed_bytes: int
    sent_bytes: int
    total: int
    speed: float
    eta: float | None


@dataclass(frozen=True)
class Paused(Event):
    """Stopped with its place kept; ``reason`` is one of :class:`PauseReason`."""

    kind: ClassVar[str] = "paused"
    reason: str
    message: str


@dataclass(frozen=True)
class Done(Event):
    """Uploaded and verified. ``check`` says how: ``crc64`` (the object's CRC64 equals the
    file's) or ``md5`` (the server gave no CRC-64: every request carried Content-MD5 and
    every ETag is the MD5 of the bytes sent); ``verified_by`` says it in words.
    ``skipped``: nothing was sent, because an object with the same size and CRC64 was
    already there. ``reread``: the file was read again after sending and is still what was
    sent; False when it was not read again (then the object is verified against the bytes
    sent only)."""

    kind: ClassVar[str] = "done"
    key: str
    size: int
    crc64: int | None
    etag: str | None
    seconds: float
    skipped: bool = False
    reread: bool = True
    check: str = "crc64"
    verified_by: str = "CRC-64"


@dataclass(frozen=True)
class Failed(Event):
    """Stopped by an error. ``retryable`` failures may succeed if retried later."""

    kind: ClassVar[str] = "failed"
    message: str
    code: str
    retryable: bool
    error_kind: str


@dataclass(frozen=True)
class Retrying(Event):
    """A request failed with a retryable error and will be sent again.

    ``reason``: what failed, in a few true words; ``attempt``: the number of the next try
    (2 for the first retry) out of ``tries``; ``delay``: seconds until it; ``at``: the wall
    time (``time.time()``) of it.
    """

    kind: ClassVar[str] = "retrying"
    reason: str
    code: str
    attempt: int
    tries: int
    delay: float
    at: float


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that is not an error (part size grown, started over)."""

    kind: ClassVar[str] = "notice"
    message: str


@dataclass(frozen=True)
class Cancelled(Event):
    """Cancelled (its multipart upload aborted on the server: the row stays as cancelled),
    or removed from the list."""

    kind: ClassVar[str] = "cancelled"


@dataclass(frozen=True)
class Idle(Event):
    """Nothing is queued or moving any more (``upload`` is None)."""

    kind: ClassVar[str] = "idle"


class Listener(Protocol):
    def __call__(self, event: Event, /) -> None: ...


class EventHub:
    """Delivers events to listeners; a listener's exception is logged, never propagated."""

    def __init__(self) -> None:
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self._lock = threading.Lock()

    def add(self, listener: Callable[[Event], None]) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove(self, listener: Callable[[Event], None]) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def emit(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener must never stop an upload
                _log.exception("an event listener failed on %s", event.kind)


class ProgressMeter:
    """One file's progress: counts, a sliding-window speed, and rate-limited events.

    ``sent`` is the bytes of in-flight requests (sent, not yet confirmed); ``confirmed`` the
    bytes of confirmed parts. Call :meth:`flush` when the file stops moving.
    """

    WINDOW = 5.0

    def __init__(self, upload: int, total: int, confirmed: int, emit: Callable[[Event], None],
                 *, clock: Callable[[], float] = time.monotonic, max_rate: float = 10.0) -> None:
        self.upload = upload
        self.total = total
        self._confirmed = confirmed
        self._sent = 0
        self._emit = emit
        self._clock = clock
        self._interval = 1.0 / max_rate
        self._lock = threading.Lock()
        now = clock()
        # The file's Started event told where it starts, so the first progress event waits
        # one interval: a file that is done sooner (most small files) sends none but its
        # last (see flush).
        self._last_emit = now
        self._moved = 0  # all bytes handed to the network, for the speed
        self._samples: deque[tuple[float, int]] = deque()
        self._samples.append((now, 0))

    @property
    def confirmed(self) -> int:
        return self._confirmed

    @property
    def sent(self) -> int:
        return self._sent

    def add_sent(self, n: int) -> None:
        with self._lock:
            self._sent += n
            self._moved += n
            event = self._maybe_event(force=False)
        if event is not None:
            self._emit(event)

    def confirm(self, sent: int, size: int) -> None:
        """A request that had sent ``sent`` bytes was confirmed for ``size`` bytes."""
        with self._lock:
            self._sent -= sent
            self._confirmed += size
            event = self._maybe_event(force=False)
        if event is not None:
            self._emit(event)

    def drop(self, sent: int) -> None:
        """A request that had sent ``sent`` bytes failed or stopped: they are not counted."""
        with self._lock:
            self._sent -= sent

    def set_confirmed(self, confirmed: int) -> None:
        with self._lock:
            self._confirmed = confirmed
            self._sent = 0

    def speed(self) -> float:
        with self._lock:
            return self._speed(self._clock())

    def _speed(self, now: float) -> float:
        samples = self._samples
        samples.append((now, self._moved))
        while len(samples) > 2 and now - samples[1][0] >= self.WINDOW:
            samples.popleft()
        t0, b0 = samples[0]
        span = now - t0
        return (self._moved - b0) / span if span > 0.2 else 0.0

    def _maybe_event(self, *, force: bool) -> Progress | None:
        now = self._clock()
        if not force and now - self._last_emit < self._interval:
            return None
        self._last_emit = now
        speed = self._speed(now)
        left = self.total - self._confirmed - self._sent
        eta = left / speed if speed > 0 else None
        return Progress(upload=self.upload, confirmed_bytes=self._confirmed,
                        sent_bytes=max(0, self._sent), total=self.total, speed=round(speed, 1),
                        eta=None if eta is None else round(eta, 1))

    def flush(self) -> None:
        """Emit the current progress now (the final event of a run)."""
        with self._lock:
            event = self._maybe_event(force=True)
        if event is not None:
            self._emit(event)
