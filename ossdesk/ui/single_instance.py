"""One window per data folder.

The first ``ossdesk`` window for a data folder (``OSSDESK_HOME``, or the platformdirs
folder) holds a lock file in it and listens on a local server whose name is derived from
the folder and the user. A later ``ossdesk [--sandbox] [PATH...]`` (Open with, Send To, the
Explorer verb, a terminal) finds the lock held, connects, hands its paths over and exits;
the window adds them to its queue and comes forward.

The handshake is one message each way: 4 bytes of length (big-endian) and a JSON object.
The request is ``{"version": 1, "paths": [...], "sandbox": bool}``; the answer is
``{"answer": "queued", "note": str}`` or ``{"answer": "refused", "reason": str}``. Every
wait is bounded: a window that does not answer in time is reported, never waited for
forever.

A crashed window leaves its lock file and (on Unix) its socket file behind. The lock
records the process id, so the next start sees it is stale and takes it over; the socket
file is then removed before listening (``QLocalServer.removeServer``).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import QDeadlineTimer, QEvent, QLockFile, QObject, QTimer, Signal, Slot
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtNetwork import QLocalServer, QLocalSocket

PROTOCOL_VERSION = 1
#: How long a second start waits for the window to take its files (connecting included).
HANDOFF_TIMEOUT_MS = 5000
#: How long the window waits for a client that connected to send its request.
_REQUEST_TIMEOUT_MS = 10_000
_HEADER = struct.Struct(">I")
_MAX_MESSAGE = 64 * 1024 * 1024  # a few hundred thousand paths
LOCK_FILE_NAME = "window.lock"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry
        getuid = getattr(os, "getuid", None)
        return str(getuid()) if getuid is not None else ""


def server_name(data_dir: Path) -> str:
    """The local server name of the window for ``data_dir``: one per user and data folder,
    short enough for a Unix socket path."""
    folder = os.path.normcase(str(Path(data_dir).expanduser().resolve()))
    digest = hashlib.sha256(f"{_user()}\0{folder}".encode()).hexdigest()[:24]
    return f"ossdesk-{digest}"


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(body)) + body


class MessageError(ValueError):
    """A message that is not a length-prefixed JSON object."""


class MessageReader:
    """Collects bytes until one whole message has arrived."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> dict[str, Any] | None:
        """The message once complete, else None; MessageError when it cannot be one."""
        self._buffer += data
        if len(self._buffer) < _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(self._buffer)
        if length > _MAX_MESSAGE:
            raise MessageError(f"a message of {length} bytes is too long")
        if len(self._buffer) < _HEADER.size + length:
            return None
        body = bytes(self._buffer[_HEADER.size : _HEADER.size + length])
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MessageError(f"not a JSON message: {exc}") from exc
        if not isinstance(message, dict):
            raise MessageError("the message is not a JSON object")
        return message


# ---- the second start ------------------------------------------------------------------


@dataclass(frozen=True)
class Handoff:
    """What became of a second start's request."""

    outcome: Literal["queued", "refused", "no-answer"]
    text: str = ""  # the window's note or reason, or what went wrong


def _allow_window_forward() -> None:
    """Let the window (another process) come to the foreground: Windows refuses that to a
    process the user did not just start, unless the one they started allows it."""
    if sys.platform == "win32":
        import contextlib
        import ctypes

        with contextlib.suppress(AttributeError, OSError):
            ctypes.windll.user32.AllowSetForegroundWindow(-1)  # ASFW_ANY


def hand_over(
    name: str, paths: list[str], *, sandbox: bool = False,
    timeout_ms: int = HANDOFF_TIMEOUT_MS,
) -> Handoff:
    """BLOCKING for at most ``timeout_ms``: send ``paths`` to the window listening on
    ``name`` and return its answer."""
    deadline = QDeadlineTimer(timeout_ms)
    socket = QLocalSocket()
    try:
        # The window may still be starting (it holds the lock before it listens): retry.
        while True:
            socket.connectToServer(name)
            if socket.waitForConnected(max(1, min(500, deadline.remainingTime()))):
                break
            socket.abort()
            if deadline.hasExpired():
                return Handoff("no-answer", "it does not accept connections")
            time.sleep(min(0.1, max(0, deadline.remainingTime()) / 1000))
        _allow_window_forward()
        request = {"version": PROTOCOL_VERSION, "paths": paths, "sandbox": sandbox}
        socket.write(encode(request))
        socket.waitForBytesWritten(max(1, deadline.remainingTime()))
        reader = MessageReader()
        answer: dict[str, Any] | None = None
        while answer is None:
            if socket.bytesAvailable() == 0 and not socket.waitForReadyRead(
                max(1, deadline.remainingTime())
            ):
                if socket.state() != QLocalSocket.LocalSocketState.ConnectedState:
                    return Handoff("no-answer", "it closed the connection without answering")
                if deadline.hasExpired():
                    return Handoff("no-answer", "it did not answer in time")
                continue
            try:
                answer = reader.feed(bytes(socket.readAll().data()))
            except MessageError as exc:
                return Handoff("no-answer", str(exc))
        if answer.get("answer") == "queued":
            return Handoff("queued", str(answer.get("note") or ""))
        return Handoff("refused", str(answer.get("reason") or "no reason given"))
    finally:
        socket.abort()


# ---- the window's side -----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    paths: list[str]
    sandbox: bool


@dataclass(frozen=True)
class Answer:
    queued: bool
    text: str = ""  # a note when queued, the reason when refused

    def message(self) -> dict[str, Any]:
        if self.queued:
            return {"answer": "queued", "note": self.text}
        return {"answer": "refused", "reason": self.text}


def parse_request(message: dict[str, Any]) -> Request:
    paths = message.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise MessageError("the request has no list of paths")
    return Request(paths=list(paths), sandbox=bool(message.get("sandbox", False)))


class InstanceServer(QObject):
    """The window's end: answers each second start with ``handler(request)``."""

    requestAnswered = Signal(object, object)  # Request, Answer (tests wait on it)

    def __init__(self, name: str, handler: Callable[[Request], Answer],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.handler = handler
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._on_new_connection)
        self._readers: dict[QLocalSocket, MessageReader] = {}

    def listen(self) -> bool:
        """Listen on the name; a server name left by a crashed window is removed first
        (call only while holding the data folder's lock)."""
        QLocalServer.removeServer(self.name)
        return self.server.listen(self.name)

    def close(self) -> None:
        self.server.close()
        for socket in list(self._readers):
            socket.abort()
        self._readers.clear()

    @Slot()
    def _on_new_connection(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            self._readers[socket] = MessageReader()
            socket.readyRead.connect(lambda s=socket: self._on_ready_read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))
            # A client that connects and never sends is dropped, not kept forever.
            QTimer.singleShot(_REQUEST_TIMEOUT_MS, socket, socket.abort)
            if socket.bytesAvailable():
                self._on_ready_read(socket)

    def _forget(self, socket: QLocalSocket) -> None:
        if self._readers.pop(socket, None) is not None:
            socket.deleteLater()

    def _on_ready_read(self, socket: QLocalSocket) -> None:
        reader = self._readers.get(socket)
        if reader is None:
            return
        try:
            message = reader.feed(bytes(socket.readAll().data()))
            if message is None:
                return
            request = parse_request(message)
        except MessageError:
            self._readers.pop(socket, None)
            socket.abort()
            socket.deleteLater()
            return
        self._readers[socket] = MessageReader()  # one request per connection
        try:
            answer = self.handler(request)
        except Exception as exc:  # noqa: BLE001 - the second start is told, not left waiting
            answer = Answer(False, f"the window could not take them: {exc}")
        socket.write(encode(answer.message()))
        socket.flush()
        self.requestAnswered.emit(request, answer)


class InstanceLock:
    """The data folder's window lock (a lock file that names its process)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE_NAME
        self._lock = QLockFile(str(self.path))
        # Held as long as the window runs: only a dead process makes it stale.
        self._lock.setStaleLockTime(0)

    def acquire(self) -> bool:
        """True when this process is now the data folder's window (a lock left by a
        process that no longer runs is taken over)."""
        return self._lock.tryLock(0)

    def release(self) -> None:
        self._lock.unlock()


class FileOpenFilter(QObject):
    """macOS's "open these files with ossdesk" (Finder, the Dock) arrives as
    ``QFileOpenEvent``s on the application; the files of one open become one drop."""

    def __init__(self, handler: Callable[[list[str]], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.handler = handler
        self._paths: list[str] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file() or event.url().toLocalFile()
            if path:
                if not self._paths:
                    QTimer.singleShot(0, self._flush)
                self._paths.append(path)
                return True
        return super().eventFilter(watched, event)

    @Slot()
    def _flush(self) -> None:
        paths, self._paths = self._paths, []
        if paths:
            self.handler(paths)
