"""The window's :class:`~ossdesk.ui.bridge.EngineAdapter` over an engine process.

The uploads run in a child process (``ossdesk _engine``, :mod:`ossdesk.engine_host`), so
the window's interpreter lock belongs to the GUI thread: eight upload threads at full
speed no longer make a paint wait. Requests go down the child's stdin, events and answers
come back on its stdout (see :mod:`ossdesk.engine_host` for the messages).

Threads here: the GUI thread only queues requests; one writer thread starts the child and
pickles the requests to it; one reader thread hands each batch of the child's events to
the listener (the :class:`EventBridge`, which emits it as one queued Qt signal), completes
the futures of blocking calls and passes credential questions to a small pool that asks
the window's resolver (the keyring, the session-only secrets, the sandbox's key pair),
the one place secrets come from. Secrets go down the pipe only: never argv, environment or logs.

If the child ends unexpectedly the listener gets :class:`EngineUnavailable`, and blocking
calls raise :class:`EngineStopped` instead of waiting. A window that is killed closes the
pipe by dying: the child pauses its uploads and exits on its own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, cast, runtime_checkable

from ossdesk.core.threads import StartThread, start_thread
from ossdesk.engine_host import encode_frame, read_frame
from ossdesk.ui.engine_types import (
    TO_WINDOW,
    Answer,
    Ask,
    Call,
    Closed,
    CredentialsAnswer,
    CredentialsQuestion,
    EngineQuery,
    EngineRequest,
    EngineUnavailable,
    Events,
    LogRecord,
    Shutdown,
    Start,
)
from ossdesk.ui.settings import Settings

_T = TypeVar("_T")

_log = logging.getLogger(__name__)

#: ``OSSDESK_ENGINE_IN_PROCESS=1`` runs the engine inside the window (diagnosis only).
IN_PROCESS_ENV = "OSSDESK_ENGINE_IN_PROCESS"

_CLOSE = object()


@runtime_checkable
class BatchListener(Protocol):
    """A listener that takes a whole read of the pipe at once (the window's EventBridge)."""

    def __call__(self, event: Any) -> None: ...

    def post_batch(self, events: list[Any]) -> None: ...


class EngineStopped(RuntimeError):
    """The engine process is not there to answer (it ended, or never started)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EngineRequestFailed(Exception):
    """The engine answered a blocking request with an error; ``message`` is for the user."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def engine_command() -> list[str]:
    """How to start the engine process: the frozen executable, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "_engine"]
    return [sys.executable, "-m", "ossdesk", "_engine"]


def in_process_requested() -> bool:
    return os.environ.get(IN_PROCESS_ENV, "").strip() not in ("", "0")


class ProcessEngineAdapter:
    """Drives the engine in a child process (see the module docstring)."""

    #: Seconds the child keeps trying when the previous engine still holds the upload list
    #: (a window that was just killed: its engine is pausing its uploads).
    BUSY_WAIT = 10.0

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: Callable[[str], Any],
        database: Path | None = None,
        command: Sequence[str] | None = None,
        busy_wait: float | None = None,
        start_thread: StartThread = start_thread,
    ) -> None:
        """``start_thread`` starts the pipe's writer and reader threads: QThreads in the
        window (:func:`ossdesk.ui.qthreads.start_qthread`), plain threads by default."""
        self.settings = settings
        self._start_thread = start_thread
        self._credentials = credentials
        self._database = database
        self._command = list(command) if command is not None else engine_command()
        self._busy_wait = self.BUSY_WAIT if busy_wait is None else busy_wait
        self._listener: Callable[[Any], None] | None = None
        self._outgoing: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, concurrent.futures.Future[tuple[bool, Any]]] = {}
        self._stopped: str | None = None  # why requests cannot be served any more
        self._shutting_down = False
        self._said_closed = False
        self._killed = False  # by wait_closed, after its timeout
        self._exited = threading.Event()
        self._started = False
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._asker = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="ossdesk-credentials"
        )

    # ---- plumbing -----------------------------------------------------------------------

    def _send(self, message: Call | Ask | CredentialsAnswer | Start | Shutdown) -> None:
        if self._stopped is None:
            self._outgoing.put(message)

    def _notify(self, event: object) -> None:
        listener = self._listener
        if listener is not None:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - the window's listener must not stop the pipe
                _log.exception("the engine listener failed")

    def _spawn(self) -> subprocess.Popen[bytes]:
        flags = 0
        if sys.platform == "win32":
            # No console window; a lower priority than the window (see engine_host.NICENESS).
            flags = subprocess.CREATE_NO_WINDOW | subprocess.BELOW_NORMAL_PRIORITY_CLASS
        return subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # inherited: what the engine prints lands where the window's does
            close_fds=True,
            creationflags=flags,
        )

    def _write_loop(self) -> None:
        try:
            process = self._spawn()
        except OSError as exc:
            _log.error("could not start the upload engine: %s", exc)
            self._ended(f"The upload engine could not start: {exc}", notify=True)
            return
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        stdout = process.stdout
        self._start_thread(lambda: self._read_loop(process, stdout), "ossdesk-engine-in")
        stdin: IO[bytes] = process.stdin
        while True:
            message = self._outgoing.get()
            if message is _CLOSE:
                break
            try:
                frame = encode_frame(message)
            except Exception:  # noqa: BLE001 - a request that cannot be sent is dropped
                _log.exception("cannot send the %r request to the upload engine",
                               getattr(message, "method", type(message).__name__))
                continue
            try:
                stdin.write(frame)
                stdin.flush()
            except (OSError, ValueError):
                break  # the child is gone: the reader reports it
        with contextlib.suppress(OSError):
            stdin.close()

    def _read_loop(self, process: subprocess.Popen[bytes], stdout: IO[bytes]) -> None:
        problem = ""
        while True:
            try:
                message = read_frame(stdout, TO_WINDOW)
            except Exception as exc:  # noqa: BLE001 - a broken pipe ends the engine
                problem = str(exc)
                break
            if message is None:
                break
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - keep reading
                _log.exception("could not handle the engine's %s message",
                               type(message).__name__)
        with contextlib.suppress(OSError):
            stdout.close()
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        self.returncode = code
        if self._said_closed or (self._shutting_down and (code == 0 or self._killed)):
            self._ended("the upload engine has stopped", notify=False)
            return
        detail = f" ({problem})" if problem else ""
        _log.error("the upload engine stopped unexpectedly, exit code %s%s", code, detail)
        self._ended(
            "The upload engine stopped unexpectedly (exit code "
            f"{code}){detail}. Uploads are paused where they were; open ossdesk again to "
            "continue them.",
            notify=not self._shutting_down,
        )

    def _ended(self, why: str, *, notify: bool) -> None:
        with self._lock:
            self._stopped = why
            pending = list(self._pending.values())
            self._pending.clear()
        self._outgoing.put(_CLOSE)
        for future in pending:
            if not future.done():
                future.set_exception(EngineStopped(why))
        if notify:
            self._notify(EngineUnavailable(why))
        self._asker.shutdown(wait=False, cancel_futures=True)
        self._exited.set()

    def _dispatch(self, message: object) -> None:
        if isinstance(message, Events):
            listener = self._listener
            if isinstance(listener, BatchListener):
                listener.post_batch(message.events)  # the window's bridge: one Qt signal
            elif listener is not None:
                for event in message.events:
                    listener(event)
        elif isinstance(message, Answer):
            with self._lock:
                future = self._pending.pop(message.request, None)
            if future is not None and not future.done():
                future.set_result((message.ok, message.value))
        elif isinstance(message, CredentialsQuestion):
            with contextlib.suppress(RuntimeError):  # stopping
                self._asker.submit(self._answer_credentials, message.request, message.profile)
        elif isinstance(message, LogRecord):
            record = logging.makeLogRecord(message.record)
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        elif isinstance(message, Closed):
            self._said_closed = True

    def _answer_credentials(self, request: int, profile: str) -> None:
        from ossdesk.core.upload import UploadError

        try:
            creds = self._credentials(profile)
        except UploadError as exc:
            self._send(CredentialsAnswer(request, False,
                                         (exc.message, exc.code, exc.kind, exc.retryable)))
        except Exception as exc:  # noqa: BLE001 - keyrings raise anything; said to the user
            message = str(exc) or f"cannot get the secret of profile {profile!r}"
            self._send(CredentialsAnswer(request, False,
                                         (message, "NoCredentials", "credentials", False)))
        else:
            self._send(CredentialsAnswer(request, True, creds))

    # ---- EngineAdapter ------------------------------------------------------------------

    def send(self, request: EngineRequest) -> None:
        """Send a request the window does not wait for."""
        if not isinstance(request, EngineRequest):
            raise TypeError(f"a {type(request).__name__} is not an engine request")
        self._send(Call(request))

    def ask(self, query: EngineQuery[_T]) -> _T:
        """BLOCKING: the engine's answer within ``query.wait()`` seconds."""
        if not isinstance(query, EngineQuery):
            raise TypeError(f"a {type(query).__name__} is not an engine query")
        future: concurrent.futures.Future[tuple[bool, Any]] = concurrent.futures.Future()
        with self._lock:
            if self._stopped is not None:
                raise EngineStopped(self._stopped)
            if not self._started:
                raise EngineStopped("the upload engine has not been started")
            request = next(self._ids)
            self._pending[request] = future
        self._send(Ask(request, query))
        try:
            ok, value = future.result(query.wait())
        except concurrent.futures.TimeoutError:
            raise EngineStopped("the upload engine did not answer in time") from None
        finally:
            with self._lock:
                self._pending.pop(request, None)
        if ok:
            return cast(_T, value)
        kind, message = value
        raise EngineRequestFailed(kind, message)

    def start(self, listener: Callable[[Any], None]) -> None:
        """Start the engine process (off the calling thread) and restore the queue."""
        self._listener = listener
        with self._lock:
            if self._started:
                return
            self._started = True
        level = logging.getLogger().getEffectiveLevel()
        database = str(self._database) if self._database is not None else None
        self._send(Start(self.settings, database, level, self._busy_wait))
        self._start_thread(self._write_loop, "ossdesk-engine-out")

    def shutdown(self, *, pause: bool) -> None:
        """Ask the engine to stop (pausing what moves); returns at once."""
        with self._lock:
            if self._shutting_down:
                return
            self._shutting_down = True
            started = self._started
        if not started:
            self._ended("the upload engine has stopped", notify=False)
            return
        self._send(Shutdown(pause))
        self._outgoing.put(_CLOSE)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait for the engine process to end; one still running after ``timeout`` is
        killed (its store is crash-safe) so no engine outlives its window."""
        if self._exited.wait(timeout):
            return True
        process = self.process
        if process is not None and process.poll() is None:
            _log.warning("the upload engine did not stop in time: ending it")
            self._killed = True
            process.kill()
        self._exited.wait(5)
        return False

    def abandon(self) -> None:
        """Close the pipe without a word, as a killed window does (tests)."""
        with self._lock:
            self._shutting_down = True
        self._outgoing.put(_CLOSE)
