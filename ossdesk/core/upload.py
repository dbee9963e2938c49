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

import hashlib
import io
import random
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ossdesk.core.checksum import crc64
from ossdesk.core.names import is_utf8, printable
from ossdesk.core.throttle import TokenBucket

__all__ = [
    "MAX_KEY_BYTES",
    "PartReader",
    "RetryPolicy",
    "SourceChanged",
    "Stopped",
    "UploadError",
    "check_key",
]

MAX_KEY_BYTES = 1023
_CHUNK = 256 * 1024


class Stopped(Exception):
    """The upload was paused or cancelled while a request was running."""


class SourceChanged(Exception):
    """The source file changed (shrank, grew, was replaced) while it was being read."""


class UploadError(Exception):
    """A file cannot go on. ``str(exc)`` is the message for the user."""

    def __init__(self, message: str, *, code: str, retryable: bool = False,
                 kind: str = "permanent") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.kind = kind


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``tries`` attempts, delays ``base * 2**n`` up to ``cap``.

    The default mirrors ossutil (10 tries); with a 30 s cap the last try is about 2.5 minutes
    after the first, which rides out a router restart or a short outage.
    """

    tries: int = 10
    base: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return float(min(self.cap, self.base * (2 ** min(attempt, 30)))) * (0.5 + rand() / 2)


class PartReader:
    """A file-like request body: ``length`` bytes of ``path`` from ``offset``.

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
        self._buffer = bytearray(max(1, min(chunk, length)))
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        self._read_total = 0

    def __len__(self) -> int:
        return self.length

    def _fail(self, exc: Exception) -> Exception:
        self.failure = exc
        return exc

    def _refill(self) -> None:
        if self._fh is None:
            try:
                self._fh = cast(io.RawIOBase, self.path.open("rb", buffering=0))
            except OSError as exc:
                raise self._fail(SourceChanged(f"cannot read {self.path}: "
                                               f"{exc.strerror or exc}")) from exc
            self._fh.seek(self.offset)
        want = min(len(self._buffer), self.length - self._read_total)
        got = self._fh.readinto(self._view[:want]) or 0
        if got <= 0:
            raise self._fail(SourceChanged(f"{self.path} became shorter while it was read"))
        self.crc = crc64(self._view[:got], self.crc)
        if self.md5 is not None:
            self.md5.update(self._view[:got])
        self._read_total += got
        self._start, self._end = 0, got

    def read(self, n: int = -1) -> bytes:
        if self._stop.is_set():
            raise self._fail(Stopped())
        if self.sent >= self.length:
            return b""
        if self._start >= self._end:
            self._refill()
        available = self._end - self._start
        take = available if n is None or n < 0 else min(n, available)
        if self._bucket is not None and not self._bucket.acquire(take, self._stop):
            raise self._fail(Stopped())
        data = bytes(self._view[self._start:self._start + take])
        self._start += take
        self.sent += take
        if self._on_sent is not None:
            self._on_sent(take)
        return data

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._view.release()

    def __enter__(self) -> PartReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_key(key: str) -> str | None:
    """Why ``key`` cannot be an OSS object key, or None when it can."""
    if not key:
        return "an object key cannot be empty"
    if not is_utf8(key):
        return f"the object key '{printable(key)}' is not valid UTF-8"
    if key != unicodedata.normalize("NFC", key):
        return f"the object key {key!r} is not in NFC form"
    if key[0] in "/\\":
        return f"the object key {key!r} starts with {key[0]!r}, which OSS does not allow"
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        return (f"the object key for {key[:40]!r}... is {size} bytes long; OSS allows at most "
                f"{MAX_KEY_BYTES} (UTF-8): use a shorter prefix or file name")
    if any(part in (".", "..") for part in key.split("/")):
        return f"the object key {key!r} contains a '.' or '..' segment"
    if any(ord(c) < 32 for c in key):
        return f"the object key {key!r} contains control characters"
    return None
