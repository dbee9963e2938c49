"""One request's body and one file's rules: the part reader, retries, engine errors, keys.

:class:`PartReader` is what the OSS client streams as a request body. Each reader has its
own file handle (``seek`` + ``readinto``, so it works the same on every OS), and on every
``read`` it

* checks the file's stop token (a pause takes effect within one read, well under a second),
* takes the bytes from the shared bandwidth :class:`~ossdesk.core.throttle.TokenBucket`,
* counts them as sent (for the progress bar) and
* continues the CRC64 of what it handed out, which is compared with the server's
  ``x-oss-hash-crc64ecma`` once the response is in.

The scheduler (:mod:`ossdesk.core.scheduler`) decides what to send; this module holds the
pieces it is built from.
"""

from __future__ import annotations

import enum
import hashlib
import io
import os
import random
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from ossdesk.core.checksum import crc64_block
from ossdesk.core.names import is_utf8, printable
from ossdesk.core.throttle import TokenBucket

__all__ = [
    "MAX_KEY_BYTES",
    "KeyFault",
    "PartReader",
    "RetryPolicy",
    "SourceChanged",
    "SourceUnreadable",
    "Stopped",
    "UploadError",
    "check_key",
    "key_fault",
    "parse_settings",
]

MAX_KEY_BYTES = 1023
_CHUNK = 256 * 1024


class Stopped(Exception):
    """The upload was paused or cancelled while a request was running."""


class SourceChanged(Exception):
    """The source file changed (shrank, grew, was replaced) while it was being read."""


class SourceUnreadable(Exception):
    """The source may no longer be read (its permission was taken away, or another program
    locked it). Nothing about its content is known: once it is readable again, the upload
    goes on where it stopped."""


class UploadError(Exception):
    """A file cannot go on. ``str(exc)`` is the message for the user."""

    def __init__(self, message: str, *, code: str, retryable: bool = False,
                 kind: str = "permanent", reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.kind = kind
        #: What failed, in a few words (the retry line); the message when not given.
        self.reason = reason or message


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``tries`` attempts, delays ``base * 2**n`` up to ``cap``.

    The default mirrors ossutil (10 tries); with a 30 s cap the last try is about 2.5 minutes
    after the first, which rides out a router restart or a short outage.
    """

    tries: int = 10
    base: float = 1.0
    cap: float = 30.0
    jitter: Callable[[], float] = field(default=random.random, compare=False, repr=False)
    """A number in [0, 1) for each delay (tests give a fixed one)."""

    def delay(self, attempt: int, rand: Callable[[], float] | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        draw = (rand or self.jitter)()
        return float(min(self.cap, self.base * (2 ** min(attempt, 30)))) * (0.5 + draw / 2)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """The default policy, or the one ``OSSDESK_RETRIES`` sets: comma-separated
        ``tries=N``, ``base=SECONDS``, ``cap=SECONDS`` (e.g. ``tries=3,base=0.2,cap=1``),
        for tests and for whoever wants an upload to give up sooner or later."""
        text = (os.environ if environ is None else environ).get("OSSDESK_RETRIES", "")
        values = parse_settings(text, "OSSDESK_RETRIES", ("tries", "base", "cap"))
        policy = cls()
        tries = int(values.get("tries", policy.tries))
        if tries < 1:
            raise ValueError("OSSDESK_RETRIES: tries must be at least 1")
        return cls(tries=tries, base=values.get("base", policy.base),
                   cap=values.get("cap", policy.cap))


def parse_settings(text: str, variable: str, names: tuple[str, ...]) -> dict[str, float]:
    """``name=number`` pairs separated by commas (``variable`` names them in errors)."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise ValueError(f"{variable}: {item!r} is not one of "
                             f"{', '.join(n + '=N' for n in names)}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{variable}: {value!r} is not a number") from None
        if not number >= 0 or number == float("inf"):
            raise ValueError(f"{variable}: {name} must be a positive number")
        out[name] = number
    return out


def unreadable(path: Path) -> SourceUnreadable:
    return SourceUnreadable(f"{path} can no longer be read: permission denied")


class PartReader:
    """A file-like request body: ``length`` bytes of ``path`` from ``offset``.

    The file is read in blocks of ``chunk`` bytes (256 KiB: a block stays in the CPU's
    cache from its read through its CRC-64 to the socket), each a new ``bytes`` object
    handed to the caller as it is (no copy) when the caller asks for at least a block, as
    the transport does.

    Raises :class:`Stopped` from :meth:`read` once ``stop`` is set and
    :class:`SourceChanged` if the file ends early; in both cases :attr:`failure` keeps the
    exception, because an HTTP client may wrap what a body raises.
    """

    def __init__(self, path: Path, offset: int, length: int, *, stop: threading.Event,
                 bucket: TokenBucket | None = None,
                 on_sent: Callable[[int], None] | None = None, chunk: int = _CHUNK,
                 md5: bool = False) -> None:
        self.path = path
        self.offset = offset
        self.length = length
        self.crc = 0
        self.sent = 0
        self.failure: Exception | None = None
        #: The MD5 of what was read, when asked for (a simple object's ETag is its MD5).
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._stop = stop
        self._bucket = bucket
        self._on_sent = on_sent
        self._fh: io.RawIOBase | None = None
        self._chunk = max(1, chunk)
        self._block = b""
        self._start = 0
        self._read_total = 0

    def __len__(self) -> int:
        return self.length

    def _fail(self, exc: Exception) -> Exception:
        self.failure = exc
        return exc

    def _refill(self) -> None:
        if self._fh is None:
            try:
                self._fh = cast(io.RawIOBase, open(self.path, "rb", buffering=0))  # noqa: SIM115
            except PermissionError as exc:
                raise self._fail(unreadable(self.path)) from exc
            except OSError as exc:
                raise self._fail(SourceChanged(f"cannot read {self.path}: "
                                               f"{exc.strerror or exc}")) from exc
            self._fh.seek(self.offset)
        want = min(self._chunk, self.length - self._read_total)
        try:
            block = self._fh.read(want) or b""
        except PermissionError as exc:  # Windows: another program locked that range
            raise self._fail(unreadable(self.path)) from exc
        if not block:
            raise self._fail(SourceChanged(f"{self.path} became shorter while it was read"))
        self.crc = crc64_block(block, self.crc)
        if self.md5 is not None:
            self.md5.update(block)
        self._read_total += len(block)
        self._block, self._start = block, 0

    def read(self, n: int = -1) -> bytes:
        if self._stop.is_set():
            raise self._fail(Stopped())
        if self.sent >= self.length:
            return b""
        if self._start >= len(self._block):
            self._refill()
        block, start = self._block, self._start
        take = len(block) - start
        if n is not None and 0 <= n < take:
            take = n
        if self._bucket is not None and not self._bucket.acquire(take, self._stop):
            raise self._fail(Stopped())
        data = block if take == len(block) else block[start:start + take]
        self._start = start + take
        self.sent += take
        if self._on_sent is not None:
            self._on_sent(take)
        return data

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._block = b""

    def __enter__(self) -> PartReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeyFault(enum.StrEnum):
    """Why a name cannot be an OSS object key (one rule for the window and the CLI)."""

    EMPTY = "empty"
    NOT_UTF8 = "not-utf8"
    NOT_NFC = "not-nfc"
    LEADING_SLASH = "leading-slash"
    TOO_LONG = "too-long"
    DOT_SEGMENT = "dot-segment"
    CONTROL = "control"


def key_fault(key: str) -> KeyFault | None:
    """What is wrong with ``key`` as an OSS object key, or None when nothing is."""
    if not key:
        return KeyFault.EMPTY
    if not is_utf8(key):
        return KeyFault.NOT_UTF8
    if key != unicodedata.normalize("NFC", key):
        return KeyFault.NOT_NFC
    if key[0] in "/\\":
        return KeyFault.LEADING_SLASH
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return KeyFault.TOO_LONG
    if any(part in (".", "..") for part in key.split("/")):
        return KeyFault.DOT_SEGMENT
    if any(ord(c) < 32 for c in key):
        return KeyFault.CONTROL
    return None


def check_key(key: str) -> str | None:
    """Why ``key`` cannot be an OSS object key, or None when it can."""
    fault = key_fault(key)
    if fault is None:
        return None
    if fault is KeyFault.EMPTY:
        return "an object key cannot be empty"
    if fault is KeyFault.NOT_UTF8:
        return f"the object key '{printable(key)}' is not valid UTF-8"
    if fault is KeyFault.NOT_NFC:
        return f"the object key {key!r} is not in NFC form"
    if fault is KeyFault.LEADING_SLASH:
        return f"the object key {key!r} starts with {key[0]!r}, which OSS does not allow"
    if fault is KeyFault.TOO_LONG:
        size = len(key.encode("utf-8"))
        return (f"the object key for {key[:40]!r}... is {size} bytes long; OSS allows at most "
                f"{MAX_KEY_BYTES} (UTF-8): use a shorter prefix or file name")
    if fault is KeyFault.DOT_SEGMENT:
        return f"the object key {key!r} contains a '.' or '..' segment"
    return f"the object key {key!r} contains control characters"
