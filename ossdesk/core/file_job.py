"""What a file's steps share: the job the scheduler keeps for a file (:class:`_Job`), the
stop that unwinds its task, the crash points of the crash tests, the headers of a file's
requests, the error a failure becomes, and :class:`JobSteps`: what the scheduler gives
the steps (the store, the bandwidth bucket, the retry policy...) and a request run
with the retry policy.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ossdesk.core.events import (
    Event,
    ProgressMeter,
    Retrying,
)
from ossdesk.core.oss import (
    OssClient,
    OssError,
)
from ossdesk.core.plan import (
    PartPlan,
    recorded_plan,
)
from ossdesk.core.store import (
    Store,
    StoreError,
    UploadRow,
)
from ossdesk.core.throttle import Throughput, TokenBucket
from ossdesk.core.upload import (
    RetryPolicy,
    SourceChanged,
    SourceUnreadable,
    UploadError,
)

_log = logging.getLogger("ossdesk.core.scheduler")
T = TypeVar("T")

_SKEW = 15 * 60
#: Restarts of a single PUT whose source changed while it was sent, before giving up.
_PUT_RESTARTS = 3

#: Files this small are latency-bound: they may use the ``small_parallel`` extra requests.
TINY_FILE = 1024 * 1024


def _crash_points() -> dict[str, int]:
    spec = os.environ.get(CRASH_ENV, "")
    points: dict[str, int] = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        name, _, count = item.partition(":")
        points[name] = int(count) if count.isdigit() else 1
    return points


#: Crash tests only: ``OSSDESK_CRASH_AT="part-sent:3"`` ends the process abruptly (like a
#: power cut) the 3rd time that point is reached. Points: ``initiated`` (upload id known,
#: not saved), ``id-saved``, ``part-sent`` (confirmed by OSS, not saved), ``part-saved``,
#: ``completed`` (object complete on OSS, not recorded). Unset in normal use.
CRASH_ENV = "OSSDESK_CRASH_AT"
_CRASH_AT = _crash_points()
_crash_lock = threading.Lock()


def _crash_point(name: str) -> None:
    if not _CRASH_AT or name not in _CRASH_AT:
        return
    with _crash_lock:
        _CRASH_AT[name] -= 1
        if _CRASH_AT[name] <= 0:
            os._exit(137)

def _missing(path: os.PathLike[str]) -> bool:
    """The file is not there any more (deleted, or a folder on its path was moved)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _local_time(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def _special_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _unreadable_error(exc: SourceUnreadable) -> UploadError:
    """The file fails, retryable: its upload id and confirmed parts are kept, and
    ``ossdesk resume`` goes on once it can be read again."""
    return UploadError(str(exc), code="SourceUnreadable", retryable=True, kind="source")


def _no_crc(exc: BaseException) -> bool:
    """The answer had no CRC-64 and the request no Content-MD5: send it again with one."""
    return isinstance(exc, UploadError) and exc.code == "NoChecksum"


def _same_etag(a: str, b: str) -> bool:
    return a.strip('"').lower() == b.strip('"').lower()


def _headers(row: UploadRow) -> dict[str, str]:
    headers: dict[str, str] = {}
    content_type = row.content_type or mimetypes.guess_type(row.source.name)[0]
    headers["Content-Type"] = content_type or "application/octet-stream"
    for name, value in row.metadata.items():
        headers[f"x-oss-meta-{name}"] = value
    if row.storage_class:
        headers["x-oss-storage-class"] = row.storage_class
    headers.update(row.options.headers())
    return headers


def _put_headers(row: UploadRow) -> dict[str, str]:
    """A single PutObject creates the object: it carries the ACL too."""
    return {**_headers(row), **row.options.complete_headers()}


def _error_of(exc: BaseException) -> UploadError:
    if isinstance(exc, UploadError):
        return exc
    if isinstance(exc, OssError):
        return UploadError(exc.message, code=exc.code, retryable=exc.retryable,
                           kind=exc.kind.name.lower(), reason=exc.reason)
    if isinstance(exc, StoreError):
        return UploadError(str(exc), code="StoreError", retryable=True, kind="store")
    if isinstance(exc, SourceChanged):
        return UploadError(str(exc), code="SourceChanged", kind="source")
    if isinstance(exc, OSError):
        return UploadError(f"cannot read the file: {exc.strerror or exc}", code="LocalError",
                           kind="source")
    return UploadError(f"unexpected error: {type(exc).__name__}: {exc}", code="InternalError")


def _recorded_plan(row: UploadRow, size: int) -> PartPlan | None:
    """The plan of the row's multipart upload, as recorded (None: no part size recorded).
    Raises ValueError or FileTooLarge when the record does not fit a file of ``size``."""
    if not row.part_size:
        return None
    return recorded_plan(size, row.part_size, head_size=row.head_size,
                         head_parts=row.head_parts)


def _sentence(text: str) -> str:
    """``text`` ending with a full stop, so that another sentence may follow."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


class _Stop(Exception):
    """A job was told to stop; unwinds its current task."""


@dataclass
class _Job:
    upload: int
    _row: UploadRow | None = None  # read from the store by the file's first task
    stop: threading.Event = field(default_factory=threading.Event)
    phase: str = "prepare"  # prepare -> parts -> complete; or prepare -> put
    plan: PartPlan | None = None
    upload_id: str | None = None
    single: bool = False
    pending: deque[int] = field(default_factory=deque)
    confirmed: dict[int, tuple[int, str, int]] = field(default_factory=dict)  # n -> size,etag,crc
    inflight: int = 0
    stopping: str | None = None  # "pause" | "cancel" | "fail" | "done"
    meter: ProgressMeter | None = None
    client: OssClient | None = None
    started: float = field(default_factory=time.monotonic)
    rechecks: int = 0
    restarts: int = 0
    md5: bool = False  # a part was verified by MD5: the server gives no CRC-64
    #: The plan may still grow (``plan.grows``) up to this part size; the bytes and the
    #: seconds of the parts confirmed so far in this run, to learn the link's speed.
    grow_ceiling: int = 0
    timed_parts: int = 0
    timed_bytes: int = 0
    timed_seconds: float = 0.0
    growing: bool = False  # the rest is being cut anew: no part is handed out meanwhile

    @property
    def row(self) -> UploadRow:
        assert self._row is not None, "the row is read by the file's first task"
        return self._row

    @row.setter
    def row(self, value: UploadRow) -> None:
        self._row = value



class JobSteps:
    """What every step of a file stands on: the scheduler's parts, its events and
    clients, and one request run with the retry policy."""

    # Set by the scheduler.
    store: Store
    bucket: TokenBucket
    throughput: Throughput
    part_size: int | None
    retry: RetryPolicy
    reread_limit: int | None
    _cond: threading.Condition
    _clock: Callable[[], float]
    _parallel: int
    _progress_rate: float

    def _emit(self, event: Event) -> None:
        raise NotImplementedError

    def _client(self, row: UploadRow) -> OssClient:
        raise NotImplementedError

    def _call(self, job: _Job, fn: Callable[[], T]) -> T:
        """Run one request with the retry policy; stops when the job is told to."""
        attempt = 0
        while True:
            if job.stop.is_set():
                raise _Stop
            try:
                return fn()
            except OssError as exc:
                if job.stop.is_set():
                    raise _Stop from exc
                if not exc.retryable:
                    raise
                if attempt + 1 >= self.retry.tries:
                    raise self._used_up(_error_of(exc)) from exc
                self._backoff(job, attempt, _error_of(exc))
                attempt += 1

    def _used_up(self, error: UploadError) -> UploadError:
        """The error of a request whose last try failed."""
        tries = self.retry.tries
        return UploadError(
            f"{_sentence(error.message)} Tried {tries} time{'s' if tries != 1 else ''}.",
            code=error.code, retryable=error.retryable, kind=error.kind, reason=error.reason)

    def _backoff(self, job: _Job, attempt: int, error: UploadError) -> None:
        """Wait before try ``attempt + 2`` (``attempt`` is the 0-based failed one), after
        saying so."""
        delay = self.retry.delay(attempt)
        _log.info("retrying %s in %.1f s: %s", job.row.key, delay, error.message)
        self._emit(Retrying(upload=job.upload, reason=error.reason, code=error.code,
                            attempt=attempt + 2, tries=self.retry.tries,
                            delay=round(delay, 3), at=round(time.time() + delay, 3)))
        if job.stop.wait(delay):
            raise _Stop
