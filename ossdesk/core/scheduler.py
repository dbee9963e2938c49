"""The queue across files: one shared pool of workers, global limits, pause / resume / cancel.

How it works:

* Files wait in the store's FIFO queue. A fixed pool of ``parallel`` worker threads takes
  *tasks*: "prepare a file" (stat, check or start the multipart upload), "send part n",
  "complete", "abort". So ``parallel`` bounds the requests in flight across all files.
* ``jobs`` bounds the files started at once. Files that go as one PutObject (not bigger
  than a part) may start beyond ``jobs`` while workers are free: for many small files the
  round trip, not the bytes, is the limit, so they run side by side.
* Tiny files (at most :data:`TINY_FILE`, 1 MiB) are latency-bound: on a far link one takes a
  round trip or two whatever its size. So beyond the ``parallel`` requests, up to
  ``small_parallel`` requests in flight (default: 8 x ``parallel``, at most 64) may carry
  tiny files. It bounds memory as well: a tiny file's request holds at most its own size.
* Active files are served round robin, so ``jobs`` files really move together.
* Control methods (:meth:`Scheduler.pause`, :meth:`~Scheduler.resume`,
  :meth:`~Scheduler.cancel`, :meth:`~Scheduler.set_limits`, ...) only flip flags, write a
  row and wake the workers; they never wait for the network, so a window may call them from
  its GUI thread. Network work (aborting an upload on cancel, say) happens on the workers.

Failure rules:

* retryable errors (connection reset or refused, timeouts, 5xx, throttling, a CRC that does
  not match) are retried per request with exponential backoff and jitter
  (:class:`~ossdesk.core.upload.RetryPolicy`); when the tries are used up the file *fails
  retryable*: its upload id and confirmed parts are kept and ``resume`` continues it;
* permanent errors (wrong key or secret, no such bucket, access denied, bad key) fail the
  file at once with the server's message, without retrying;
* an expired STS token pauses every file using those credentials ("credentials expired")
  until :meth:`Scheduler.update_credentials` gives new ones;
* NoSuchUpload when resuming: the file starts over, and a :class:`Notice` says so.

Where: this module is the queue (adding, order, limits, pause / resume / cancel, which task
comes next, one client per destination); :class:`Scheduler` stands on layers, each in its
own module: :mod:`ossdesk.core.scheduler_failures` (what a failed task does to its file),
:mod:`ossdesk.core.scheduler_pool` (the workers and timers that run the tasks) and
:mod:`ossdesk.core.file_steps` (one file's steps).
"""


from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ossdesk.core.events import (
    Cancelled,
    Event,
    EventHub,
    Paused,
    PauseReason,
    Queued,
)
from ossdesk.core.file_steps import (
    CRASH_ENV,
    TINY_FILE,
    _Job,
)
from ossdesk.core.oss import Credentials, Endpoint, OssClient, Timeouts
from ossdesk.core.plan import DEFAULT_PART_SIZE, use_single_put
from ossdesk.core.scheduler_failures import _EXPIRED, FailureRules
from ossdesk.core.store import NewUpload, Request, State, Store, StoreError, UploadRow
from ossdesk.core.threads import StartThread, ThreadHandle, start_thread
from ossdesk.core.throttle import Throughput, TokenBucket
from ossdesk.core.upload import RetryPolicy

__all__ = [
    "CRASH_ENV",
    "TINY_FILE",
    "ClientFactory",
    "CredentialResolver",
    "Scheduler",
]

CredentialResolver = Callable[[str], Credentials]
ClientFactory = Callable[[UploadRow, Callable[[], Credentials]], OssClient]

#: The most requests in flight the automatic ``small_parallel`` allows.
SMALL_PARALLEL_MAX = 64
#: How far a worker with room for a tiny file only looks down the line of small files.
_TINY_LOOKAHEAD = 64


def auto_small_parallel(parallel: int) -> int:
    """Requests in flight allowed for tiny files when nothing else is set."""
    return max(parallel, min(SMALL_PARALLEL_MAX, 8 * parallel))


def _default_client(row: UploadRow, creds: Callable[[], Credentials]) -> OssClient:
    endpoint = Endpoint(url=row.endpoint, bucket=row.bucket, region=row.region,
                        signature="v1" if row.signature == "v1" else "v4")
    # Connections are opened as needed; the pool keeps as many as may be in flight.
    return OssClient(endpoint, creds, pool_size=SMALL_PARALLEL_MAX, timeouts=Timeouts.from_env(),
                     source=row.credentials)


@dataclass(slots=True)
class _Waiting:
    upload: int
    single: bool
    credentials: str
    generation: int
    tiny: bool = False


class Scheduler(FailureRules):
    """Runs the queue of a :class:`~ossdesk.core.store.Store`.

    ``jobs``: files at once; ``parallel``: requests (parts) in flight across all files;
    ``small_parallel``: requests in flight when the extra ones carry tiny files (None: see
    :func:`auto_small_parallel`); ``rate``: bytes per second for everything (0 = unlimited);
    ``part_size``: default part
    size (None = 8 MiB, grown as OSS limits require). ``credentials`` resolves a row's
    credentials source; ``client_factory`` builds one client per destination.

    ``reread_limit``: see :attr:`reread_limit`.

    ``network_retry``: when set (seconds), a file whose retries ran out on a retryable error
    (network gone, server down) is *paused* with reason ``network`` and queued again after
    that long, for as long as it takes — what a window wants. When None (the command line),
    such a file fails (retryable) and ``ossdesk resume`` continues it.

    ``start_thread``: starts each worker and each timer (see :mod:`ossdesk.core.threads`);
    plain daemon threads by default, QThreads in the window.
    """

    def __init__(
        self,
        store: Store,
        *,
        jobs: int = 3,
        parallel: int = 8,
        small_parallel: int | None = None,
        rate: int = 0,
        part_size: int | None = None,
        credentials: CredentialResolver,
        client_factory: ClientFactory = _default_client,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress_rate: float = 10.0,
        network_retry: float | None = None,
        reread_limit: int | None = None,
        start_thread: StartThread = start_thread,
    ) -> None:
        if jobs < 1 or parallel < 1:
            raise ValueError("jobs and parallel must be at least 1")
        self.store = store
        self.events = EventHub()
        self._jobs = jobs
        self._parallel = parallel
        self._small_parallel = small_parallel
        self._running_big = 0  # tasks taking one of the ``parallel`` slots
        self._running_tiny = 0  # tiny files carried by the extra ``small_parallel`` slots
        self.bucket = TokenBucket(rate)
        #: Bytes per second sent by every file together, for the part size of new uploads.
        self.throughput = Throughput(clock=clock)
        self.part_size = part_size
        self._resolve = credentials
        self._client_factory = client_factory
        self.retry = retry or RetryPolicy.from_env()
        self._clock = clock
        self._progress_rate = progress_rate
        self._cond = threading.Condition(threading.RLock())
        self._waiting: dict[int, _Waiting] = {}
        self._order: deque[tuple[int, int]] = deque()  # (upload, generation), FIFO
        self._order_small: deque[tuple[int, int]] = deque()
        self._generation = itertools.count(1)
        self._active: dict[int, _Job] = {}
        self._rr = 0
        self._side: deque[Callable[[], None]] = deque()
        #: Uploads being removed from the list (not only cancelled): once aborted, their
        #: rows are deleted instead of kept as cancelled.
        self._forgetting: set[int] = set()
        self._side_running = 0
        self._clients: dict[tuple[str, ...], OssClient] = {}
        #: A lock per destination whose client is being made (see :meth:`_client`).
        self._making: dict[tuple[str, ...], threading.Lock] = {}
        self._creds: dict[str, Credentials] = {}
        self._expired: set[str] = set()
        self._start_thread = start_thread
        self._threads: list[ThreadHandle] = []
        self._alive = 0
        self._closing = False
        self._started = False
        self._idle = threading.Event()
        self._idle.set()
        self.network_retry = network_retry
        #: Files larger than this many bytes are not read again before "done" (None: every
        #: file is). Left out, a change that keeps size, mtime, change time and identity
        #: (rare) is not noticed; the Done event and the row say the file was not read again.
        self.reread_limit = reread_limit
        #: Timers waiting (each on its own started thread); setting one's event cancels it.
        self._timers: set[threading.Event] = set()
        self._timer_count = itertools.count(1)

    # -- listeners -------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self.events.add(listener)

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        self.events.remove(listener)

    def _emit(self, event: Event) -> None:
        self.events.emit(event)

    # -- limits ----------------------------------------------------------------------------

    @property
    def jobs(self) -> int:
        return self._jobs

    @property
    def parallel(self) -> int:
        return self._parallel

    @property
    def small_parallel(self) -> int:
        if self._small_parallel is None:
            return auto_small_parallel(self._parallel)
        return max(self._parallel, self._small_parallel)

    @property
    def rate(self) -> int:
        return self.bucket.rate

    def set_limits(self, *, jobs: int | None = None, parallel: int | None = None,
                   rate: int | None = None, small_parallel: int | None = None) -> None:
        """Change files at once, requests in flight, bytes per second; effective at once."""
        with self._cond:
            if jobs is not None:
                self._jobs = max(1, jobs)
            if parallel is not None:
                self._parallel = max(1, parallel)
            if small_parallel is not None:
                self._small_parallel = max(1, small_parallel)
            if (parallel is not None or small_parallel is not None) and self._started:
                self._spawn()
            self._cond.notify_all()
        if rate is not None:
            self.bucket.set_rate(max(0, rate))

    # -- the queue -------------------------------------------------------------------------

    def add(self, items: Iterable[NewUpload], *, request: Request | None = None) -> list[int]:
        """Queue files (one store transaction) and start them as limits allow; with
        ``request``, files it already queued are left out (see :meth:`Store.add`)."""
        ids = self.store.add(items, request=request)
        self._enqueue(self.store.rows_for(ids))
        return ids

    def restore(self) -> list[int]:
        """Queue what a previous run left moving: ``queued`` and ``running`` rows, and rows
        paused by a shutdown (:meth:`close`, Ctrl-C), the network or expired credentials;
        rows the user paused stay paused."""
        automatic = (PauseReason.SHUTDOWN, PauseReason.NETWORK, PauseReason.CREDENTIALS)
        rows = self.store.rows([State.QUEUED, State.RUNNING, State.PAUSED])
        rows = [r for r in rows if r.state is not State.PAUSED or r.reason in automatic]
        interrupted = [r.id for r in rows if r.state is State.PAUSED]
        if interrupted:
            self.store.set_states(interrupted, State.QUEUED)
        self._enqueue(rows)
        return [r.id for r in rows]

    def _is_single(self, row: UploadRow) -> bool:
        if row.upload_id:
            return False
        size = row.part_size or self.part_size or DEFAULT_PART_SIZE
        return use_single_put(row.size, size)

    def _enqueue(self, rows: Sequence[UploadRow]) -> None:
        if not rows:
            return
        with self._cond:
            for row in rows:
                if row.id in self._waiting:
                    continue
                single = self._is_single(row)
                entry = _Waiting(row.id, single, row.credentials, next(self._generation),
                                 tiny=single and row.size <= TINY_FILE)
                self._waiting[row.id] = entry
                self._order.append((row.id, entry.generation))
                if entry.single:
                    self._order_small.append((row.id, entry.generation))
            self._idle.clear()
            self._cond.notify_all()
        for row in rows:
            self._emit(Queued(upload=row.id, source=str(row.source), key=row.key,
                              size=row.size, bucket=row.bucket, account=row.credentials,
                              folder=row.folder))
        self.start()

    def move_to_top(self, upload: int) -> None:
        self.store.move_to_top(upload)
        self._reorder(upload, top=True)

    def move_to_bottom(self, upload: int) -> None:
        self.store.move_to_bottom(upload)
        self._reorder(upload, top=False)

    def _reorder(self, upload: int, *, top: bool) -> None:
        with self._cond:
            entry = self._waiting.get(upload)
            if entry is None:
                return
            entry.generation = next(self._generation)
            item = (upload, entry.generation)
            for order in ((self._order, self._order_small) if entry.single else (self._order,)):
                if top:
                    order.appendleft(item)
                else:
                    order.append(item)

    # -- control ---------------------------------------------------------------------------

    def _targets(self, uploads: Iterable[int] | None) -> list[int]:
        if uploads is not None:
            return list(uploads)
        with self._cond:
            return list(self._waiting) + list(self._active)

    def pause(self, uploads: Iterable[int] | None = None, *,
              reason: str = PauseReason.USER) -> None:
        """Pause files (all waiting and active ones when ``uploads`` is None)."""
        self._pause(self._targets(uploads), reason, "paused")

    def _pause(self, uploads: list[int], reason: str, message: str) -> None:
        paused: list[int] = []
        with self._cond:
            for upload in uploads:
                if self._waiting.pop(upload, None) is not None:
                    paused.append(upload)
                job = self._active.get(upload)
                if job is not None and job.stopping is None:
                    job.stopping = "pause"
                    job.stop.set()
                    paused.append(upload)
                    self._release_if_idle(job)
            self._check_idle()
            self._cond.notify_all()
        self._record_paused(paused, reason, message)

    def _record_paused(self, paused: list[int], reason: str, message: str) -> None:
        if paused:
            with contextlib.suppress(StoreError):
                self.store.set_states(paused, State.PAUSED, reason=reason,
                                      only=[State.QUEUED, State.RUNNING])
        for upload in paused:
            self._emit(Paused(upload=upload, reason=reason, message=message))

    def resume(self, uploads: Iterable[int] | None = None) -> list[int]:
        """Queue paused or failed files again (all unfinished ones when None)."""
        if uploads is None:
            rows = self.store.unfinished()
        else:
            rows = [r for r in (self.store.get(u) for u in uploads) if r is not None
                    and r.state is not State.DONE]
        with self._cond:
            rows = [r for r in rows if r.id not in self._active or
                    self._active[r.id].stopping is not None]
        if rows:
            self.store.set_states([r.id for r in rows], State.QUEUED)
            self._enqueue(self.store.rows_for([r.id for r in rows]))
        return [r.id for r in rows]

    retry_failed = resume

    def cancel(self, uploads: Iterable[int]) -> None:
        """Stop files and abort their multipart uploads on the server; the rows stay in the
        list as cancelled (history, until :meth:`clear_finished`)."""
        self._stop_and_abort(list(uploads), forget=False)

    def _stop_and_abort(self, targets: list[int], *, forget: bool) -> None:
        to_abort: list[int] = []
        with self._cond:
            if forget:
                self._forgetting.update(targets)
            else:
                self._forgetting.difference_update(targets)
            for upload in targets:
                self._waiting.pop(upload, None)
                job = self._active.get(upload)
                if job is not None:
                    job.stopping = "cancel"
                    job.stop.set()
                    self._release_if_idle(job)
                else:
                    to_abort.append(upload)
            for upload in to_abort:
                self._side.append(lambda u=upload: self._abort_and_forget(u))  # type: ignore[misc]
            self._idle.clear()
            self._cond.notify_all()
        self.start()

    def remove(self, uploads: Iterable[int]) -> None:
        """Remove rows from the list (an unfinished one's upload is aborted first)."""
        self._stop_and_abort(list(uploads), forget=True)

    def _forget_cancelled(self, upload: int) -> bool:
        with self._cond:
            if upload in self._forgetting:
                self._forgetting.discard(upload)
                return True
            return False

    def clear_finished(self) -> list[int]:
        ids = self.store.clear_finished()
        for upload in ids:
            self._emit(Cancelled(upload=upload))
        return ids

    def update_credentials(self, source: str, credentials: Credentials) -> None:
        """New credentials (e.g. a fresh STS token) for a profile name or ``environment``.

        Files paused because the old ones expired resume.
        """
        with self._cond:
            self._creds[source] = credentials
            self._expired.discard(source)
            clients = [c for k, c in self._clients.items() if k[0] == source]
        for client in clients:
            client.set_credentials(credentials)
        waiting = [r.id for r in self.store.rows([State.PAUSED])
                   if r.credentials == source and r.reason == PauseReason.CREDENTIALS]
        if waiting:
            self.resume(waiting)

    # -- running (the workers and timers: scheduler_pool) -----------------------------------

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the next task ---------------------------------------------------------------------

    def _pick(self) -> tuple[Callable[[], None] | None, bool]:
        """The next task and whether it takes a tiny file's slot, or (None, False);
        called with the lock held."""
        if self._running_big >= self._parallel:
            # Every ``parallel`` slot is busy: only a tiny file may go, on an extra slot.
            if self._running_big + self._running_tiny >= self.small_parallel:
                return None, False
            task = self._start_next(self._order_small, tiny_only=True)
            return task, task is not None
        return self._pick_big(), False

    def _pick_big(self) -> Callable[[], None] | None:
        if self._side:
            side = self._side.popleft()
            self._side_running += 1

            def run_side() -> None:
                try:
                    side()
                finally:
                    with self._cond:
                        self._side_running -= 1
                        self._check_idle()
                        self._cond.notify_all()

            return run_side
        if len(self._active) < self._jobs:
            task = self._start_next(self._order) or self._start_next(self._order_small)
            if task is not None:
                return task
        # Only files sending parts have a task to give (see _next_of); with many small
        # files active at once, the others are most of them.
        jobs = [j for j in self._active.values() if j.phase == "parts" and j.stopping is None]
        for i in range(len(jobs)):
            job = jobs[(self._rr + i) % len(jobs)]
            task = self._next_of(job)
            if task is not None:
                self._rr = (self._rr + i + 1) % max(1, len(jobs))
                return task
        # Small files beyond ``jobs``: a free worker may as well carry one.
        return self._start_next(self._order_small)

    def _start_next(self, order: deque[tuple[int, int]], *,
                    tiny_only: bool = False) -> Callable[[], None] | None:
        skipped: list[tuple[int, int]] = []
        task: Callable[[], None] | None = None
        while order:
            upload, generation = order.popleft()
            entry = self._waiting.get(upload)
            if entry is None or entry.generation != generation:
                continue  # stale: paused, cancelled, moved or already started
            if tiny_only and not entry.tiny:
                skipped.append((upload, generation))
                if len(skipped) >= _TINY_LOOKAHEAD:
                    break  # a ``parallel`` slot takes these in order
                continue
            if upload in self._active:
                skipped.append((upload, generation))  # still draining its last run
                continue
            if entry.credentials in self._expired:
                skipped.append((upload, generation))
                continue
            if not entry.single and \
                    sum(1 for j in self._active.values() if not j.single) >= self._jobs:
                # Every multipart file behind this one waits too; small files have their
                # own line (``_order_small``), so stop looking here.
                skipped.append((upload, generation))
                break
            del self._waiting[upload]
            # The row is read by the task, not here: with many workers a query made while
            # holding the lock keeps all of them waiting for this thread's GIL turn.
            job = _Job(upload=upload, single=entry.single)
            job.inflight = 1
            self._active[upload] = job
            task = self._bind(job, self._prepare)
            break
        order.extendleft(reversed(skipped))
        if task is None and self._expired:
            self._pause_expired_waiting()
        return task

    def _pause_expired_waiting(self) -> None:
        """With the lock held: files waiting on expired credentials pause too."""
        stuck = [u for u, e in self._waiting.items() if e.credentials in self._expired]
        for upload in stuck:
            del self._waiting[upload]
        self._record_paused(stuck, PauseReason.CREDENTIALS, _EXPIRED)

    def _next_of(self, job: _Job) -> Callable[[], None] | None:
        if job.stopping is not None or job.phase != "parts" or job.growing:
            return None
        if job.pending:
            number = job.pending.popleft()
            job.inflight += 1
            return self._bind(job, lambda j: self._send_part(j, number))
        if job.inflight == 0:
            job.phase = "complete"
            job.inflight += 1
            return self._bind(job, self._complete)
        return None

    # -- clients ---------------------------------------------------------------------------

    def _client(self, row: UploadRow) -> OssClient:
        key = (row.credentials, row.endpoint, row.bucket, row.region or "", row.signature)
        with self._cond:
            client = self._clients.get(key)
            if client is not None:
                return client
            making = self._making.setdefault(key, threading.Lock())
        # One worker makes the destination's client; the others starting at the same
        # moment wait for it instead of each making (and dropping) their own.
        with making:
            with self._cond:
                client = self._clients.get(key)
            if client is not None:
                return client
            client = self._new_client(row)
            with self._cond:
                self._making.pop(key, None)
                return self._clients.setdefault(key, client)

    def _new_client(self, row: UploadRow) -> OssClient:
        source = row.credentials

        def creds() -> Credentials:
            with self._cond:
                given = self._creds.get(source)
            if given is not None:
                return given
            resolved = self._resolve(source)
            with self._cond:
                self._creds[source] = resolved
            return resolved

        creds()  # resolve once now: a missing secret fails the file with a clear message
        return self._client_factory(row, creds)
