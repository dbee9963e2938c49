"""A request body for :class:`~ossdesk.core.oss.OssClient`: exactly ``size`` bytes of the
caller's bytes, file-like object or iterable of chunks, read as the transport sends them,
with a known length (the ``Content-Length``); a body that ends early is
:class:`BodyTooShort`, and an exception from the source is kept for the client to raise.

Re-exported by :mod:`ossdesk.core.oss`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from ossdesk.core import transport
from ossdesk.core.errors import ErrorKind, OssError

__all__ = ["Body", "BodyTooShort", "Readable"]

_BLOCKSIZE = transport.BLOCKSIZE
"""Bytes read from a request body per socket write."""


class BodyTooShort(OssError):
    """The request body ended before ``size`` bytes: the source changed while it was read."""



class Readable(Protocol):
    """Anything with a file-like ``read(n)``: an open file, or the engine's part reader."""

    def read(self, size: int = -1, /) -> bytes: ...


Body = bytes | bytearray | memoryview | Readable | Iterable[bytes]
"""What a request body may be: bytes, a file-like object, or an iterable of byte chunks."""


class _Body:
    """Exactly ``size`` bytes of the caller's body, read on demand, with a known length.

    The transport sends ``__len__`` as the ``Content-Length`` and calls ``read`` in blocks.
    An exception from the source is remembered so the client can re-raise it.
    """

    def __init__(self, source: Body,
                 size: int) -> None:
        if size < 0:
            raise ValueError(f"size must not be negative ({size})")
        self._size = size
        self._remaining = size
        self._pending = b""
        self.error: BaseException | None = None
        self._read: Callable[[int], bytes] | None
        self._iter: Iterator[bytes] | None
        if isinstance(source, bytes | bytearray | memoryview):
            view = memoryview(source).cast("B")
            if len(view) != size:
                raise ValueError(f"the body has {len(view)} bytes, not size={size}")
            self._view: memoryview | None = view
            self._offset = 0
            self._read, self._iter = self._read_view, None
        elif hasattr(source, "read"):
            self._view = None
            self._read, self._iter = source.read, None
        else:
            self._view = None
            self._read, self._iter = None, iter(source)

    def _read_view(self, n: int) -> bytes:
        assert self._view is not None
        chunk = bytes(self._view[self._offset : self._offset + n])
        self._offset += len(chunk)
        return chunk

    def rewind(self) -> bool:
        """Start again from the first byte, if the source allows it (bytes do; a file or
        part reader does not): the transport may then send the request once more."""
        if self._view is None:
            return False
        self._offset, self._remaining, self._pending, self.error = 0, self._size, b"", None
        return True

    def __len__(self) -> int:
        return self._size

    def _next(self, n: int) -> bytes:
        if self._pending:
            chunk, self._pending = self._pending[:n], self._pending[n:]
            return chunk
        if self._read is not None:
            data = self._read(n)
        else:
            assert self._iter is not None
            data = b""
            for item in self._iter:  # the next non-empty chunk, or b"" at the end
                if item:
                    data = item
                    break
        data = bytes(data)
        if len(data) > n:
            data, self._pending = data[:n], data[n:]
        return data

    def read(self, n: int | None = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if n is None or n < 0 else min(n, self._remaining)
        try:
            chunk = self._next(want)
        except BaseException as exc:
            self.error = exc
            raise
        if not chunk:
            sent = self._size - self._remaining
            error = BodyTooShort(
                ErrorKind.PERMANENT,
                "SourceChanged",
                f"The data to upload ended after {sent:,} of {self._size:,} bytes: the file "
                "changed while it was read. Upload it again.",
            )
            self.error = error
            raise error
        self._remaining -= len(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(_BLOCKSIZE):
            yield chunk

