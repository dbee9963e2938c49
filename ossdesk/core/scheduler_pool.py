"""The scheduler's worker pool: starting its workers (and its timers) through the
injected ``start_thread``, the loop a worker runs (take the next task in a free slot, run
it, take the next), a task's wrapper (its failure becomes the file's state), a file
leaving the active set, idle, and closing.

:class:`WorkerPool` is a layer of :class:`~ossdesk.core.scheduler.Scheduler`, which decides
which task comes next (``_pick``) and holds the queue this works through.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping

from ossdesk.core.events import Idle, PauseReason
from ossdesk.core.file_steps import FileSteps, _Job, _Stop
from ossdesk.core.oss import OssClient
from ossdesk.core.threads import StartThread, ThreadHandle
from ossdesk.core.upload import Stopped

_log = logging.getLogger("ossdesk.core.scheduler")


class WorkerPool(FileSteps):
    """The workers and timers of a :class:`~ossdesk.core.scheduler.Scheduler`."""

    # Set by the scheduler.
    _alive: int
    _closing: bool
    _started: bool
    _threads: list[ThreadHandle]
    _start_thread: StartThread
    _timers: set[threading.Event]
    _timer_count: Iterator[int]
    _idle: threading.Event
    _running_big: int
    _running_tiny: int
    _waiting: Mapping[int, object]
    _active: dict[int, _Job]
    _side: deque[Callable[[], None]]
    _side_running: int
    _clients: dict[tuple[str, ...], OssClient]

    # Given by the scheduler.
    @property
    def small_parallel(self) -> int:
        raise NotImplementedError

    def _pick(self) -> tuple[Callable[[], None] | None, bool]:
        raise NotImplementedError

    def _handle_error(self, job: _Job, exc: BaseException) -> None:
        raise NotImplementedError

    def pause(self, uploads: Iterable[int] | None = None, *,
              reason: str = PauseReason.USER) -> None:
        raise NotImplementedError

    def start(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._started = True
            self._spawn()

    def _spawn(self) -> None:
        while self._alive < self.small_parallel:
            self._alive += 1
            self._threads.append(
                self._start_thread(self._worker, f"ossdesk-worker-{self._alive}"))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or moving; False on timeout."""
        return self._idle.wait(timeout)

    def busy(self) -> bool:
        return not self._idle.is_set()

    def close(self, *, pause: bool = True, timeout: float = 10.0) -> None:
        """Stop: pause whatever moves (state kept, reason ``shutdown``), end the workers."""
        if pause:
            self.pause(reason=PauseReason.SHUTDOWN)
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._active or self._side_running) and time.monotonic() < deadline:
                self._cond.wait(0.1)
            self._closing = True
            self._cond.notify_all()
            threads = list(self._threads)
            timers = list(self._timers)
            self._timers.clear()
        for timer in timers:
            timer.set()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            closer = getattr(client, "close", None)
            if callable(closer):
                with contextlib.suppress(Exception):
                    closer()

    def _check_idle(self) -> None:
        if not self._waiting and not self._active and not self._side and not self._side_running:
            if not self._idle.is_set():
                self._idle.set()
                self._emit(Idle(upload=None))
        else:
            self._idle.clear()

    def _worker(self) -> None:
        tiny: bool | None = None  # the kind of slot this worker's last task took
        while True:
            with self._cond:
                if tiny is not None:
                    if tiny:
                        self._running_tiny -= 1
                    else:
                        self._running_big -= 1
                task = None
                while task is None:
                    if self._closing or self._alive > self.small_parallel:
                        self._alive -= 1
                        self._cond.notify_all()
                        return
                    task, tiny = self._pick()
                    if task is None:
                        self._check_idle()
                        self._cond.wait()
                if tiny:
                    self._running_tiny += 1
                else:
                    self._running_big += 1
                # There may be more work: wake one more worker to look (a chain, instead of
                # waking every worker whenever anything changes).
                self._cond.notify()
            try:
                task()
            except Exception:  # noqa: BLE001 - a task's failure must not end its worker
                _log.exception("an engine task failed")

    def _bind(self, job: _Job, step: Callable[[_Job], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                step(job)
            except (_Stop, Stopped):
                pass
            except Exception as exc:  # noqa: BLE001 - every error becomes the file's state
                if job.stop.is_set() and job.stopping != "fail":
                    pass  # what was raised is the stop itself, however the client wrapped it
                else:
                    self._handle_error(job, exc)
            finally:
                self._task_done(job)

        return run

    def _release_if_idle(self, job: _Job) -> Callable[[], None] | None:
        """With the lock held: a stopped job with nothing in flight leaves the active set
        (a cancelled one gets its abort queued). Returns the final progress flush to run
        without the lock, if any."""
        if job.inflight != 0 or (job.stopping is None and job.phase != "done"):
            return None
        if self._active.get(job.upload) is not job:
            return None
        del self._active[job.upload]
        if job.stopping == "cancel":
            self._side.append(lambda: self._abort_and_forget(job.upload))
            self._idle.clear()
            return None
        if job.meter is not None and job.stopping != "done":
            return job.meter.flush
        return None

    def _task_done(self, job: _Job) -> None:
        with self._cond:
            job.inflight -= 1
            after = self._release_if_idle(job)
            if after is not None:
                after()  # the file's last progress event comes before "idle"
            self._check_idle()
            # This worker looks for its next task itself; one more is woken in case the
            # task that ended made more than one available (see _worker).
            self._cond.notify()

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds on a started thread, unless closed first."""
        cancelled = threading.Event()

        def run() -> None:
            if cancelled.wait(delay):
                return
            with self._cond:
                self._timers.discard(cancelled)
                if self._closing:
                    return
            fn()

        with self._cond:
            if self._closing:
                return
            self._timers.add(cancelled)
            name = f"ossdesk-timer-{next(self._timer_count)}"
        self._start_thread(run, name)
