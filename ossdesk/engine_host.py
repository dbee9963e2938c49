"""The engine process: the window's uploads run here, not in the window's process.

The window (:class:`ossdesk.ui.engine_process.ProcessEngineAdapter`) starts this as
``ossdesk _engine`` (a hidden subcommand) with two pipes: requests come in on stdin, events
and answers go out on stdout. The engine is the same :class:`SchedulerAdapter` the window
can also run in-process; here it gets the process (and its interpreter lock) to itself, so
the window's GUI thread never waits for the upload threads. No Qt is imported here.

Wire format: a frame is a 4-byte big-endian length and one pickled message, a dataclass
of :mod:`ossdesk.ui.engine_types` (``TO_ENGINE`` one way, ``TO_WINDOW`` the other;
:func:`read_frame` refuses anything else). Only our own window talks to this process, over
pipes nobody else holds.

Window -> engine: ``Start`` (first), ``Call`` (an ``EngineRequest``: fire and forget),
``Ask`` (an ``EngineQuery``, answered by an ``Answer``), ``CredentialsAnswer``,
``Shutdown``. A request of an unknown type, of the other kind or with a field of the wrong
type is refused (``refusal``); the rest go to the adapter's one handler table.
Engine -> window: ``Events`` (gathered for up to BATCH_SECONDS; progress coalesced),
``Answer``, ``CredentialsQuestion`` (the window owns every secret and answers),
``LogRecord`` (handled by the window's logging), ``Closed`` (after ``Shutdown``).

Lifecycle: stdin at its end (the window closed it, crashed or was killed) means "pause
everything and leave", like ``shutdown(pause=True)``: rows keep their state for the next
start. Secrets travel only over the pipes: never in argv, the environment, or a log.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import os
import pickle
import queue
import signal
import struct
import sys
import threading
import time
import traceback
from typing import IO, Any

from ossdesk.ui.engine_types import (
    TO_ENGINE,
    Answer,
    Ask,
    Call,
    Closed,
    CredentialsAnswer,
    CredentialsQuestion,
    Events,
    LogRecord,
    Shutdown,
    Start,
)

_log = logging.getLogger(__name__)

#: Events are gathered this long before they are sent as one frame.
BATCH_SECONDS = 0.03
#: At most this many events (or restored rows) per frame: the window unpickles a frame in
#: one go, holding its interpreter lock, so frames stay small.
MAX_EVENTS_PER_FRAME = 500
#: How long an upload waits for the window to hand over a profile's credentials (a
#: keyring may ask the user first).
CREDENTIALS_TIMEOUT = 600.0
#: How long a stopping engine waits for its uploads to pause.
CLOSE_TIMEOUT = 60.0
#: The engine's CPU priority below the window's (Unix niceness; on Windows the window
#: starts it with BELOW_NORMAL_PRIORITY_CLASS): when the CPUs are all busy, the window's
#: GUI thread gets one first; on an idle machine uploads are as fast as ever.
NICENESS = 10

_HEADER = struct.Struct(">I")
_MAX_FRAME = 1 << 30


class ProtocolError(Exception):
    """The pipe carried something that is not a frame."""


def encode_frame(message: object) -> bytes:
    """One frame (raises what pickle raises for an object it cannot send)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def write_frame(stream: IO[bytes], message: object) -> None:
    stream.write(encode_frame(message))
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes], expected: tuple[type, ...]) -> Any:
    """The next message, one of the ``expected`` types, or None at the end of the stream
    (:class:`ProtocolError` for anything else)."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > _MAX_FRAME:
        raise ProtocolError(f"a frame of {size} bytes")
    data = _read_exactly(stream, size)
    if data is None:
        return None
    message = pickle.loads(data)  # noqa: S301 - our own window, over our own pipe
    if not isinstance(message, expected):
        raise ProtocolError(f"a {type(message).__name__} is not a message of this pipe")
    return message


class _Control:
    """A message that is sent at once (after the events gathered before it)."""

    __slots__ = ("message",)

    def __init__(self, message: object) -> None:
        self.message = message


_STOP = object()


class Outbox:
    """Everything the engine sends, in order, from one writer thread.

    Events are gathered for up to :data:`BATCH_SECONDS` and sent as one frame (progress of
    one upload coalesced: the last one wins, in the place of the first); control messages
    (answers, credential questions, log records) go out at once, after the events gathered
    before them.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._broken = False
        self._thread = threading.Thread(target=self._run, name="ossdesk-engine-out",
                                        daemon=True)
        self._thread.start()

    def event(self, event: object) -> None:
        """The engine's listener: safe from any thread."""
        self._queue.put(event)

    def control(self, message: object) -> None:
        self._queue.put(_Control(message))

    def close(self, timeout: float = 5.0) -> None:
        """Send what is waiting, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _write(self, message: object) -> None:
        if self._broken:
            return
        try:
            frame = encode_frame(message)
        except Exception as exc:  # noqa: BLE001 - drop what cannot be sent, keep the rest
            # (not through logging: its handler sends through this very thread)
            kind = type(message).__name__
            print(f"ossdesk engine: cannot send a {kind!r} message: {exc!r}", file=sys.stderr)
            return
        try:
            self._stream.write(frame)
            self._stream.flush()
        except (OSError, ValueError):  # the window is gone: nothing more to tell it
            self._broken = True

    def _run(self) -> None:
        from ossdesk.core import events as ev
        from ossdesk.ui.engine_types import RowsRestored

        pending: list[object] = []
        last_progress: dict[int, int] = {}  # upload -> index of its progress in pending
        deadline = 0.0

        def flush() -> None:
            for start in range(0, len(pending), MAX_EVENTS_PER_FRAME):
                self._write(Events(pending[start : start + MAX_EVENTS_PER_FRAME]))
            pending.clear()
            last_progress.clear()

        while True:
            try:
                if pending:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    item = self._queue.get()
            except queue.Empty:
                flush()
                continue
            if item is _STOP:
                flush()
                return
            if isinstance(item, _Control):
                flush()
                self._write(item.message)
                continue
            if not pending:
                deadline = time.monotonic() + BATCH_SECONDS
            if isinstance(item, ev.Progress) and item.upload is not None:
                at = last_progress.get(item.upload)
                if at is not None:
                    pending[at] = item
                    continue
                last_progress[item.upload] = len(pending)
            elif isinstance(item, ev.Event) and item.upload is not None:
                last_progress.pop(item.upload, None)
            if isinstance(item, RowsRestored) and len(item.rows) > MAX_EVENTS_PER_FRAME:
                rows = item.rows
                pending.extend(
                    RowsRestored(rows[i : i + MAX_EVENTS_PER_FRAME])
                    for i in range(0, len(rows), MAX_EVENTS_PER_FRAME)
                )
            else:
                pending.append(item)
            if len(pending) >= MAX_EVENTS_PER_FRAME:
                flush()


class PipeLogHandler(logging.Handler):
    """Sends log records to the window, which logs them where its own records go."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = dict(record.__dict__)
            data["msg"] = record.getMessage()
            data["args"] = None
            if record.exc_info:
                data["exc_text"] = "".join(traceback.format_exception(*record.exc_info))
            data["exc_info"] = None
            data["processName"] = "ossdesk-engine"
            self._outbox.control(LogRecord(data))
        except Exception:  # noqa: BLE001 - logging must never stop an upload
            self.handleError(record)


class EngineHost:
    """Runs one :class:`SchedulerAdapter` for the window on the other end of the pipes."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.adapter: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self._gone = False  # the window stopped listening
        self._blocking = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="ossdesk-engine-ask"
        )

    # ---- credentials: asked of the window --------------------------------------------

    def credentials(self, profile: str) -> Any:
        """The engine's credential resolver: the window answers (it owns every secret)."""
        from ossdesk.core.upload import UploadError

        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._gone:
                raise UploadError("the window closed before it gave the credentials",
                                  code="NoCredentials", kind="credentials")
            request = next(self._ids)
            self._waiting[request] = future
        self.outbox.control(CredentialsQuestion(request, profile))
        try:
            ok, value = future.result(CREDENTIALS_TIMEOUT)
        except concurrent.futures.TimeoutError:
            raise UploadError(f"the window gave no credentials for {profile!r} in time",
                              code="NoCredentials", kind="credentials") from None
        finally:
            with self._lock:
                self._waiting.pop(request, None)
        if ok:
            return value
        message, code, kind, retryable = value
        raise UploadError(message, code=code, kind=kind, retryable=retryable)

    def _answer_credentials(self, request: int, ok: bool, value: Any) -> None:
        with self._lock:
            future = self._waiting.get(request)
        if future is not None and not future.done():
            future.set_result((ok, value))

    def _window_gone(self) -> None:
        with self._lock:
            self._gone = True
            waiting = list(self._waiting.values())
        for future in waiting:
            if not future.done():
                future.set_result(
                    (False, ("the window closed", "NoCredentials", "credentials", True))
                )

    # ---- requests ---------------------------------------------------------------------

    def _start(self, settings: Any, database: str | None, log_level: int,
               busy_wait: float) -> None:
        from pathlib import Path

        from ossdesk.ui.engine_adapter import SchedulerAdapter

        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(PipeLogHandler(self.outbox))
        root.setLevel(log_level)
        self.adapter = SchedulerAdapter(
            settings,
            database=Path(database) if database else None,
            credentials=self.credentials,
            busy_wait=busy_wait,
        )
        self.adapter.start(self.outbox.event)

    def _adapter(self) -> Any:
        if self.adapter is None:
            raise RuntimeError("the upload engine has not started")
        return self.adapter

    def _call(self, request: object) -> None:
        from ossdesk.ui.engine_types import refusal

        why = refusal(request, answered=False)
        if why is not None:
            _log.error("the window sent a request the engine refuses: %s", why)
            return
        if self.adapter is None:
            return
        try:
            self.adapter.handle(request)
        except Exception:  # noqa: BLE001 - one bad request must not end the engine
            _log.exception("engine request %s failed", type(request).__name__)

    def _ask(self, request: int, query: object) -> None:
        from ossdesk.ui.engine_types import refusal

        why = refusal(query, answered=True)
        if why is not None:
            self.outbox.control(Answer(request, False, ("UnknownRequest", why)))
            return

        def run() -> None:
            try:
                value = self._adapter().handle(query)
            except Exception as exc:  # noqa: BLE001 - the window raises it for the caller
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                self.outbox.control(Answer(request, False, (type(exc).__name__, message)))
            else:
                self.outbox.control(Answer(request, True, value))

        try:
            self._blocking.submit(run)
        except RuntimeError:  # stopping
            self.outbox.control(
                Answer(request, False, ("RuntimeError", "the upload engine is stopping"))
            )

    def _stop(self, *, pause: bool) -> None:
        if self.adapter is not None:
            self.adapter.shutdown(pause=pause)
            if not self.adapter.wait_closed(CLOSE_TIMEOUT):
                _log.warning("the uploads did not stop in time")
        self._blocking.shutdown(wait=False, cancel_futures=True)

    def serve(self, stream: IO[bytes]) -> int:
        """Handle the window's requests until it says stop or its pipe ends."""
        while True:
            try:
                message = read_frame(stream, TO_ENGINE)
            except (OSError, ProtocolError, pickle.UnpicklingError, EOFError) as exc:
                _log.warning("the window's pipe failed: %s", exc)
                message = None
            if message is None:  # the window is gone: keep every row for next time
                self._window_gone()
                self._stop(pause=True)
                return 0
            if isinstance(message, Call):
                self._call(message.request)
            elif isinstance(message, Ask):
                self._ask(message.request, message.query)
            elif isinstance(message, CredentialsAnswer):
                self._answer_credentials(message.request, message.ok, message.value)
            elif isinstance(message, Start):
                self._start(message.settings, message.database, message.log_level,
                            message.busy_wait)
            elif isinstance(message, Shutdown):
                self._stop(pause=message.pause)
                self.outbox.control(Closed())
                return 0


def _binary(fd: int, mode: str) -> IO[bytes]:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.setmode(fd, os.O_BINARY)
    stream: IO[bytes] = os.fdopen(fd, mode)
    return stream


def main() -> int:
    """``ossdesk _engine``: serve the window on stdin/stdout until stdin ends."""
    # Ctrl-C in the window's terminal reaches this process too: the window decides when
    # the engine stops (a closed pipe at the latest), so the uploads pause cleanly.
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(NICENESS)
    # The pipe to the window is a private copy of stdout; stdout itself then points at
    # stderr, so a stray print from a library cannot break a frame.
    out_fd = os.dup(1)
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr (a windowed build started without one)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    sys.stdout = sys.stderr
    out = _binary(out_fd, "wb")
    inp = _binary(os.dup(0), "rb")
    outbox = Outbox(out)
    host = EngineHost(outbox)
    code = 1
    try:
        code = host.serve(inp)
    finally:
        outbox.close()
        for stream in (out, inp):
            with contextlib.suppress(OSError):
                stream.close()
    return code

