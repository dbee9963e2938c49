"""A request's body as it arrives: ``Content-Length`` or chunked framing (chunk sizes checked
strictly), counted, with the reset and body faults applied; ``Abort`` when the connection is to
be dropped without an answer."""

from __future__ import annotations

import io
import re
import socket
from typing import TYPE_CHECKING

from ossdesk.sandbox.errors import OssError

if TYPE_CHECKING:
    from ossdesk.sandbox.httpd import Handler

SMALL_CHUNK = 64 * 1024  # draining unwanted bodies, reading XML bodies
_CHUNK_SIZE_RE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*")


class Abort(Exception):
    """Stop handling the request and drop the connection (no response)."""

    def __init__(self, reset: bool) -> None:
        super().__init__("connection dropped")
        self.reset = reset


class BodyReader:
    """Reads a request body (Content-Length or chunked), counting bytes and applying the
    reset fault."""

    def __init__(self, handler: Handler, reset_after: int | None) -> None:
        self.h = handler
        self.rfile: io.BufferedIOBase = handler.rfile
        self.received = 0
        self.reset_after = reset_after
        self.damage = False  # fault "body": flip the first byte received
        te = handler.headers.get("Transfer-Encoding", "").lower()
        self.chunked = "chunked" in te
        self.chunk_left = 0
        self.done = False
        if self.chunked:
            self.remaining: int | None = None
        else:
            cl = handler.headers.get("Content-Length")
            try:
                self.remaining = int(cl) if cl is not None else 0
            except ValueError:
                raise OssError(400, "InvalidArgument", "Content-Length is not valid.") from None
            if self.remaining < 0:
                raise OssError(400, "InvalidArgument", "Content-Length is not valid.")
        self.declared = self.remaining
        # Once the bytes the request's reader buffered past the headers are used up, a
        # Content-Length body is read straight from the socket into the caller's buffer.
        self.direct = False
        self.sock: socket.socket = handler.connection

    def _fill(self, mv: memoryview) -> int:
        """Read exactly ``len(mv)`` bytes (fewer only if the client closes)."""
        want = len(mv)
        got = 0
        if not self.direct:
            buffered = len(self.rfile.peek(1))  # type: ignore[attr-defined]
            if buffered == 0:
                return 0
            got = self.rfile.readinto(mv[:min(buffered, want)]) or 0
            if buffered <= want:
                self.direct = True  # the buffer is empty now
        recv_into = self.sock.recv_into
        while got < want:
            n = recv_into(mv[got:], want - got)
            if n == 0:
                break
            got += n
        return got

    def _limit(self, want: int) -> int:
        if self.reset_after is not None:
            left = self.reset_after - self.received
            if left <= 0:
                self.h.reset_connection()
            want = min(want, left)
        return want

    def readinto(self, mv: memoryview) -> int:
        """Fill ``mv`` as far as the body goes; 0 at the end of the body."""
        if self.done:
            return 0
        if not self.chunked:
            assert self.remaining is not None
            want = self._limit(min(len(mv), self.remaining))
            if want == 0:
                self.done = True
                return 0
            n = self._fill(mv[:want])
            if n < want:
                raise Abort(reset=False)  # the client went away mid-body
            if self.damage:
                mv[0] ^= 0xFF
                self.damage = False
            self.remaining -= n
            self.received += n
            if self.reset_after is not None and self.received >= self.reset_after:
                self.h.reset_connection()
            return n
        total = 0
        while total < len(mv):
            if self.chunk_left == 0:
                line = self.rfile.readline(65537)
                if not line:
                    raise Abort(reset=False)
                m = _CHUNK_SIZE_RE.fullmatch(line.split(b";", 1)[0].rstrip(b"\r\n"))
                if m is None or not line.endswith(b"\n"):
                    # No sign, underscore, "0x" or more than 16 digits; the connection's
                    # framing is lost: answer and close.
                    self.done = True
                    self.h.close_connection = True
                    raise OssError(400, "InvalidArgument", "Bad chunked encoding: the chunk "
                                   "size is not 1 to 16 hexadecimal digits.")
                size = int(m.group(1), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    break
                self.chunk_left = size
            want = self._limit(min(len(mv) - total, self.chunk_left))
            n = self.rfile.readinto(mv[total:total + want]) or 0
            if n < want:
                raise Abort(reset=False)
            total += n
            self.chunk_left -= n
            self.received += n
            if self.chunk_left == 0:
                self.rfile.readline(3)
            if self.reset_after is not None and self.received >= self.reset_after:
                self.h.reset_connection()
        return total

    def drain(self) -> None:
        buf = memoryview(bytearray(SMALL_CHUNK))
        while self.readinto(buf):
            pass
