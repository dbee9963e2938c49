"""Every message between the window and the engine process: one dataclass each, one list
per direction, checked on both sides (no Qt here; the engine process imports it).

A frame on the pipe is a 4-byte big-endian length and one pickled message
(:func:`ossdesk.engine_host.read_frame` refuses anything not in the list it is given).
Which engine requests exist, and whether the window waits for each, is
:data:`ossdesk.ui.engine_types.ENGINE_REQUESTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TO_ENGINE",
    "TO_WINDOW",
    "Answer",
    "Ask",
    "Call",
    "Closed",
    "CredentialsAnswer",
    "CredentialsQuestion",
    "Events",
    "LogRecord",
    "Shutdown",
    "Start",
]

# ---- window -> engine -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Open the upload list and start the engine (the first message)."""

    settings: Any  # ossdesk.ui.settings.Settings
    database: str | None
    log_level: int
    busy_wait: float


@dataclass(frozen=True, slots=True)
class Call:
    """A request the window does not wait for (enqueue, pause, move, ...)."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ask:
    """A request the window waits for; answered by an :class:`Answer` of that ``request``."""

    request: int
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CredentialsAnswer:
    """The window's answer to a :class:`CredentialsQuestion`: ``Credentials`` when ``ok``,
    else ``(message, code, kind, retryable)`` of the error."""

    request: int
    ok: bool
    value: Any


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop (pausing what moves when ``pause``); answered by :class:`Closed`."""

    pause: bool


# ---- engine -> window -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Events:
    """Engine events gathered for a few milliseconds (progress of one upload coalesced)."""

    events: list[Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to an :class:`Ask`: its value when ``ok``, else ``(error name, message)``."""

    request: int
    ok: bool
    value: Any


@dataclass(frozen=True, slots=True)
class CredentialsQuestion:
    """The engine needs a profile's credentials: the window owns every secret."""

    request: int
    profile: str


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A log record of the engine (``logging.LogRecord.__dict__``, made plain)."""

    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Closed:
    """After a :class:`Shutdown`: the engine has stopped."""


#: What the window may send, and what the engine may send: nothing else is read.
TO_ENGINE: tuple[type, ...] = (Start, Call, Ask, CredentialsAnswer, Shutdown)
TO_WINDOW: tuple[type, ...] = (Events, Answer, CredentialsQuestion, LogRecord, Closed)
