"""The window's :class:`~ossdesk.ui.bridge.EngineAdapter` over an engine process.

The uploads run in a child process (``ossdesk _engine``, :mod:`ossdesk.engine_host`), so
the window's interpreter lock belongs to the GUI thread: eight upload threads at full
speed no longer make a paint wait. Requests go down the child's stdin, events and answers
come back on its stdout (see :mod:`ossdesk.engine_host` for the messages).

Threads here: the GUI thread only queues requests; one writer thread starts the child and
pickles the requests to it; one reader thread hands the child's event batches to the
listener (the :class:`EventBridge`, which only enqueues them), completes the futures of
blocking calls and passes credential questions to a small pool that asks the window's
resolver (the keyring, the session-only secrets, the sandbox's key pair), the one place
secrets come from. Secrets go down the pipe only: never argv, environment or logs.

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
from typing import IO, Any

from ossdesk.engine_host import encode_frame, read_frame
from ossdesk.ui.engine_types import (
    Destination,
    EngineUnavailable,
    RowKey,
    SourceFile,
    TransferRow,
    UploadDetails,
)
from ossdesk.ui.settings import Settings

_log = logging.getLogger(__name__)

#: ``OSSDESK_ENGINE_IN_PROCESS=1`` runs the engine inside the window (diagnosis only).
IN_PROCESS_ENV = "OSSDESK_ENGINE_IN_PROCESS"

_CLOSE = object()


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
    #: Seconds a blocking request may take before the window gives up on it.
    FIND_TIMEOUT = 600.0
    PRESIGN_TIMEOUT = 600.0
    URL_TIMEOUT = 5.0

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: Callable[[str], Any],
        database: Path | None = None,
        command: Sequence[str] | None = None,
        busy_wait: float | None = None,
    ) -> None:
        self.settings = settings
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

    def _send(self, message: tuple[Any, ...]) -> None:
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
        reader = threading.Thread(target=self._read_loop, args=(process, process.stdout),
                                  name="ossdesk-engine-in", daemon=True)
        reader.start()
        stdin: IO[bytes] = process.stdin
        while True:
            message = self._outgoing.get()
            if message is _CLOSE:
                break
            try:
                frame = encode_frame(message)
            except Exception:  # noqa: BLE001 - a request that cannot be sent is dropped
                _log.exception("cannot send the %r request to the upload engine",
                               message[1] if isinstance(message, tuple) else message)
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
                message = read_frame(stdout)
            except Exception as exc:  # noqa: BLE001 - a broken pipe ends the engine
                problem = str(exc)
                break
            if message is None:
                break
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - keep reading
                _log.exception("could not handle the engine's message %r", message[:1])
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

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "events":
            listener = self._listener
            if listener is not None:
                for event in message[1]:
                    listener(event)
        elif kind == "answer":
            with self._lock:
                future = self._pending.pop(message[1], None)
            if future is not None and not future.done():
                future.set_result((message[2], message[3]))
        elif kind == "credentials?":
            with contextlib.suppress(RuntimeError):  # stopping
                self._asker.submit(self._answer_credentials, message[1], message[2])
        elif kind == "log":
            record = logging.makeLogRecord(message[1])
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        elif kind == "closed":
            self._said_closed = True

    def _answer_credentials(self, request: int, profile: str) -> None:
        from ossdesk.core.upload import UploadError

        try:
            creds = self._credentials(profile)
        except UploadError as exc:
            self._send(("credentials", request, False,
                        (exc.message, exc.code, exc.kind, exc.retryable)))
        except Exception as exc:  # noqa: BLE001 - keyrings raise anything; said to the user
            message = str(exc) or f"cannot get the secret of profile {profile!r}"
            self._send(("credentials", request, False,
                        (message, "NoCredentials", "credentials", False)))
        else:
            self._send(("credentials", request, True, creds))

    def _ask(self, timeout: float | None, method: str, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[tuple[bool, Any]] = concurrent.futures.Future()
        with self._lock:
            if self._stopped is not None:
                raise EngineStopped(self._stopped)
            if not self._started:
                raise EngineStopped("the upload engine has not been started")
            request = next(self._ids)
            self._pending[request] = future
        self._send(("ask", request, method, args, kwargs))
        try:
            ok, value = future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise EngineStopped("the upload engine did not answer in time") from None
        finally:
            with self._lock:
                self._pending.pop(request, None)
        if ok:
            return value
        kind, message = value
        raise EngineRequestFailed(kind, message)

    # ---- EngineAdapter ------------------------------------------------------------------

    def start(self, listener: Callable[[Any], None]) -> None:
        """Start the engine process (off the calling thread) and restore the queue."""
        self._listener = listener
        with self._lock:
            if self._started:
                return
            self._started = True
        level = logging.getLogger().getEffectiveLevel()
        database = str(self._database) if self._database is not None else None
        self._send(("start", self.settings, database, level, self._busy_wait))
        threading.Thread(target=self._write_loop, name="ossdesk-engine-out",
                         daemon=True).start()

    def find_existing(self, files: Sequence[SourceFile], destination: Destination) -> list[str]:
        """BLOCKING (network, in the engine process)."""
        result: list[str] = self._ask(self.FIND_TIMEOUT, "find_existing", list(files),
                                      destination)
        return result

    def enqueue(self, files: Sequence[SourceFile], destination: Destination, *,
                existing: str = "overwrite", drop: int | None = None) -> None:
        self._send(("call", "enqueue", (list(files), destination),
                    {"existing": existing, "drop": drop}))

    def begin_drop(self, drop: int, roots: Sequence[str], destination: Destination) -> None:
        self._send(("call", "begin_drop", (drop, list(roots), destination), {}))

    def end_drop(self, drop: int) -> None:
        self._send(("call", "end_drop", (drop,), {}))

    def _ids_call(self, method: str, ids: Sequence[RowKey], **kwargs: Any) -> None:
        self._send(("call", method, ([int(i) for i in ids],), kwargs))

    def pause(self, ids: Sequence[RowKey]) -> None:
        self._ids_call("pause", ids)

    def resume(self, ids: Sequence[RowKey]) -> None:
        self._ids_call("resume", ids)

    def cancel(self, ids: Sequence[RowKey]) -> None:
        self._ids_call("cancel", ids)

    def retry(self, ids: Sequence[RowKey]) -> None:
        self._ids_call("retry", ids)

    def remove(self, ids: Sequence[RowKey]) -> None:
        self._ids_call("remove", ids)

    def move(self, ids: Sequence[RowKey], *, top: bool) -> None:
        self._ids_call("move", ids, top=top)

    def clear_finished(self) -> None:
        self._send(("call", "clear_finished", (), {}))

    def credentials_changed(self, profile: str) -> None:
        """A profile's secret was saved: the engine asks this window for it again."""
        self._send(("call", "credentials_changed", (profile,), {}))

    def apply_settings(self, settings: Any) -> None:
        if not isinstance(settings, Settings):
            return
        self.settings = settings
        self._send(("call", "apply_settings", (settings,), {}))

    def object_url(self, row: TransferRow) -> str:
        """The object's plain URL (the engine knows each row's endpoint: a quick answer)."""
        result: str = self._ask(self.URL_TIMEOUT, "object_url", row)
        return result

    def details(self, row: TransferRow) -> UploadDetails | None:
        """What the upload list knows of the row (a quick read of the engine's store)."""
        result: UploadDetails | None = self._ask(self.URL_TIMEOUT, "details", row)
        return result

    def presigned_url(self, row: TransferRow, expires_seconds: int) -> str:
        """BLOCKING (credentials are asked of this process's resolver)."""
        result: str = self._ask(self.PRESIGN_TIMEOUT, "presigned_url", row, expires_seconds)
        return result

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until the engine has handled every request sent so far (tests, benchmarks)."""
        self._ask(None if timeout is None else timeout + 5, "wait_idle", timeout)

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
        self._send(("shutdown", pause))
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
