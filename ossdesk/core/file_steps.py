"""One file's steps, as the scheduler's workers run them: prepare (stat, check or start
the multipart upload, adopt the parts already on the server), send a part, complete, start
over, a single PUT, and the abort of a cancelled file.

:class:`FileSteps` is the part of :class:`~ossdesk.core.scheduler.Scheduler` that works on
one file; the queue and the worker pool that decide when each step runs are in
:mod:`ossdesk.core.scheduler`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import shlex
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, NoReturn, TypeVar, cast

from ossdesk.core.checksum import ChecksumStopped, combine_parts, crc64_file
from ossdesk.core.cleanup import CLEANUP_RETRY, abort_upload, failure_reason
from ossdesk.core.events import (
    Cancelled,
    Done,
    Event,
    Failed,
    Notice,
    ProgressMeter,
    Retrying,
    Started,
)
from ossdesk.core.oss import (
    ErrorKind,
    OssClient,
    OssError,
    RemotePart,
)
from ossdesk.core.plan import (
    FileTooLarge,
    PartPlan,
    adaptive_part_size,
    format_size,
    plan_parts,
    use_single_put,
)
from ossdesk.core.store import (
    SKIP,
    Fingerprint,
    State,
    Store,
    StoreError,
    UploadRow,
)
from ossdesk.core.throttle import Throughput, TokenBucket
from ossdesk.core.upload import (
    PartReader,
    RetryPolicy,
    SourceChanged,
    SourceUnreadable,
    UploadError,
    unreadable,
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

    @property
    def row(self) -> UploadRow:
        assert self._row is not None, "the row is read by the file's first task"
        return self._row

    @row.setter
    def row(self, value: UploadRow) -> None:
        self._row = value


class FileSteps:
    """The steps of one file; :class:`~ossdesk.core.scheduler.Scheduler` runs them."""

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

    def _prepare(self, job: _Job) -> None:
        loaded = self.store.get(job.upload)
        if loaded is None or loaded.state is State.DONE:
            with self._cond:  # removed or finished meanwhile: nothing to do
                job.stopping = "done"
                job.phase = "done"
            return
        job.row = row = loaded
        job.client = client = self._client(row)
        try:
            st = row.source.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise UploadError(f"{row.source} is gone: it was moved or deleted before it could "
                              "be uploaded", code="SourceMissing", kind="source") from None
        if not stat.S_ISREG(st.st_mode):
            raise UploadError(f"{row.source} is {_special_kind(st.st_mode)}, not a regular file, "
                              "and is not uploaded", code="NotAFile", kind="source")
        now = Fingerprint.of(st)
        size = now.size
        if size == 0:
            self._refuse_if_not_empty(job)
        changed = not now.same_as(row.fingerprint)
        upload_id = row.upload_id
        if upload_id is None and row.initiating_at is not None:
            self._report_lost_initiates(job, client, row.initiating_at)
        if upload_id is None and row.existing == SKIP and \
                self._skip_if_identical(job, client, now):
            return
        confirmed: dict[int, tuple[int, str, int]] = {}
        unrecorded: list[RemotePart] = []  # on the server, not (rightly) in the store
        resumed = False
        # The row is read again below only if a step here wrote to it (most files: none).
        # (A row queued by an older version learns the change time and identity here.)
        recorded = now != row.fingerprint
        rewritten = upload_id is not None or recorded or row.initiating_at is not None
        if upload_id is not None and changed and \
                now.only_change_time_differs(row.fingerprint) and \
                self._sent_parts_unchanged(job, now):
            changed = recorded = False  # its attributes changed, not the bytes sent
        if upload_id is not None and changed:
            self._emit(Notice(upload=job.upload, message=(
                f"{row.source.name} changed since its upload began, so it starts over "
                "(the parts already sent were discarded)")))
            self._abort_quietly(client, row.key, upload_id)
            self.store.reset(job.upload, size=size, mtime_ns=now.mtime_ns, source=now)
            upload_id = None
        elif upload_id is not None:
            stored = self.store.parts(job.upload)
            old_id = upload_id
            try:
                remote = self._call(job, lambda: client.list_parts(row.key, old_id))
            except OssError as exc:
                if exc.kind is not ErrorKind.NO_SUCH_UPLOAD:
                    raise
                if self._already_complete(job, client, size, stored):
                    return
                self._emit(Notice(upload=job.upload, message=(
                    f"The unfinished upload of {row.source.name} is no longer on the server "
                    "(it expired or was cleaned up), so it starts over")))
                self.store.reset(job.upload, size=size, mtime_ns=now.mtime_ns, source=now)
                upload_id = None
            else:
                on_server = {p.number: p for p in remote}
                lost = []
                for number, part in stored.items():
                    there = on_server.get(number)
                    if there is not None and _same_etag(there.etag, part.etag) \
                            and there.size == part.size:
                        confirmed[number] = (part.size, part.etag, part.crc64)
                    else:
                        lost.append(number)
                if lost:
                    self.store.forget_parts(job.upload, lost)
                unrecorded = [p for n, p in on_server.items() if n not in confirmed]
                resumed = bool(confirmed)
                if recorded:
                    self.store.source_seen(job.upload, size, now.mtime_ns, now)
        elif recorded:
            self.store.source_seen(job.upload, size, now.mtime_ns, now)

        part_size = (row.part_size if upload_id is not None and row.part_size
                     else row.part_size or self.part_size)
        try:
            plan = plan_parts(size, part_size)
        except FileTooLarge as exc:
            raise UploadError(str(exc), code="FileTooLarge") from exc
        if upload_id is None and plan.notice:
            self._emit(Notice(upload=job.upload, message=plan.notice))
        if upload_id is None and part_size is None and not use_single_put(size, plan.part_size):
            # A new multipart upload without a part size of its own: parts sized so that
            # OSS confirms one every few seconds at the throughput measured so far.
            plan = plan_parts(size, self._adaptive_part_size(size, plan.part_size))
        job.plan = plan
        if unrecorded and upload_id is not None:
            confirmed.update(self._adopt_parts(job, plan, unrecorded))
            resumed = bool(confirmed)
        if rewritten:
            job.row = row = self.store.get(job.upload) or row
        confirmed_bytes = sum(v[0] for v in confirmed.values())
        job.meter = ProgressMeter(job.upload, size, confirmed_bytes, self._emit,
                                  clock=self._clock, max_rate=self._progress_rate)
        if job.stop.is_set():
            raise _Stop
        if upload_id is None and use_single_put(size, plan.part_size):
            job.single = True
            self._emit(Started(upload=job.upload, key=row.key, size=size, confirmed_bytes=0,
                               resumed=False, multipart=False))
            if size > TINY_FILE:  # a tiny file is done before anyone could look
                with contextlib.suppress(StoreError):
                    self.store.mark_running(job.upload)
            self._put(job, now)
            return
        job.single = False
        if upload_id is None:
            headers = _headers(row)
            self.store.initiating(job.upload, time.time())
            upload_id = self._call(job, lambda: client.initiate_multipart(row.key, headers))
            _crash_point("initiated")
            # Saved before any part is sent: a crash from here on leaves nothing unknown.
            self.store.begin_multipart(job.upload, upload_id, plan.part_size)
            _crash_point("id-saved")
        else:
            self.store.mark_running(job.upload)
        job.upload_id = upload_id
        job.confirmed = confirmed
        if job.stop.is_set():
            raise _Stop
        self._emit(Started(upload=job.upload, key=row.key, size=size,
                           confirmed_bytes=confirmed_bytes, resumed=resumed, multipart=True))
        with self._cond:
            job.pending = deque(n for n in range(1, plan.part_count + 1) if n not in confirmed)
            job.phase = "parts"
            self._cond.notify_all()

    def _sent_parts_unchanged(self, job: _Job, now: Fingerprint) -> bool:
        """Only the file's change time moved since its upload began: a ``chmod``, a new hard
        link, extended attributes, or content rewritten with its mtime put back. Each
        confirmed part's bytes are read again (on this worker, stopped by a pause) and
        compared with the CRC-64 recorded when it was sent. All equal: the file as it is
        now is recorded, said, and the upload goes on with its parts (the whole file is
        still read again before Complete). Any difference: False, and the file starts over."""
        row = job.row
        if not row.part_size:
            return False
        try:
            plan = plan_parts(now.size, row.part_size)
        except FileTooLarge:
            return False
        stored = self.store.parts(job.upload)
        for number, part in sorted(stored.items()):
            if not 1 <= number <= plan.part_count:
                return False
            offset, length = plan.part(number)
            if part.size != length:
                return False
            try:
                crc = crc64_file(row.source, offset, length, should_stop=job.stop.is_set)
            except ChecksumStopped:
                raise _Stop from None
            except EOFError:
                return False  # it shrank: its content changed
            except PermissionError:
                raise _unreadable_error(unreadable(row.source)) from None
            if crc != part.crc64:
                return False
        if not self._source_unchanged(job, now):
            return False  # it changed again while it was read
        self.store.source_seen(job.upload, now.size, now.mtime_ns, now)
        if stored:
            sent = format_size(sum(p.size for p in stored.values()))
            message = (f"{row.source.name} was touched since its upload began (its change "
                       f"time moved); the {sent} already sent were read again and still match "
                       "the file, so the upload goes on")
        else:
            message = (f"{row.source.name} changed since its upload began, before any part of "
                       "it was sent; the upload goes on with the file as it is now")
        self._emit(Notice(upload=job.upload, message=message))
        return True

    def _adaptive_part_size(self, size: int, ceiling: int) -> int:
        """The part size of a new upload of ``size`` bytes: about
        :data:`~ossdesk.core.plan.PART_SECONDS` per part at the measured throughput (or at
        the bandwidth limit, when that is lower or nothing was measured yet), shared by the
        ``parallel`` parts in flight; at most ``ceiling``."""
        measured = self.throughput.rate()
        limit = self.bucket.rate
        if limit and (measured is None or measured > limit):
            measured = float(limit)
        with self._cond:
            parallel = self._parallel
        return adaptive_part_size(size, measured, parallel, ceiling=ceiling)

    def _adopt_parts(self, job: _Job, plan: PartPlan,
                     remote: Sequence[RemotePart]) -> dict[int, tuple[int, str, int]]:
        """Parts the server holds that the store does not: sent before a crash, or answered
        when the answer was lost. Each whose size and ETag (the MD5 of its data) match the
        file's bytes there is recorded as confirmed instead of being sent again; reading a
        part costs far less than sending it. (The object's CRC is still checked against
        the file's parts on Complete.)"""
        adopted: dict[int, tuple[int, str, int]] = {}
        for part in remote:
            if not 1 <= part.number <= plan.part_count:
                continue
            offset, length = plan.part(part.number)
            if part.size != length:
                continue
            digest = hashlib.md5(usedforsecurity=False)
            try:
                crc = crc64_file(job.row.source, offset, length, should_stop=job.stop.is_set,
                                 also=digest.update)
            except ChecksumStopped:
                raise _Stop from None
            except (OSError, EOFError):
                return adopted  # the file changed or went: its checks come later
            if not _same_etag(part.etag, digest.hexdigest()):
                continue
            self.store.confirm_part(job.upload, part.number, length, part.etag, crc)
            adopted[part.number] = (length, part.etag, crc)
        if adopted:
            _log.info("%s: %d part(s) found on the server and kept", job.row.key, len(adopted))
        return adopted

    def _report_lost_initiates(self, job: _Job, client: OssClient, since: float) -> None:
        """A run ended between an Initiate and saving its upload id. The upload it began may
        be on the server, but OSS cannot tell it from another client's upload of the same
        key (ListMultipartUploads returns no metadata), so none is aborted: the unfinished
        uploads of this key begun since then (allowing for 15 minutes of clock difference)
        that no row of this installation records are named in one notice, and
        ``ossdesk uploads`` lists and aborts them."""
        row = job.row
        uploads = self._call(job, lambda: client.list_multipart_uploads(prefix=row.key))
        found = [u for u in uploads if u.key == row.key and u.initiated is not None
                 and u.initiated >= since - _SKEW]
        known = self.store.known_upload_ids([u.upload_id for u in found])
        unknown = [u for u in found if u.upload_id not in known]
        if unknown:
            times = ", ".join(sorted({_local_time(u.initiated or 0) for u in unknown}))
            many = len(unknown) > 1
            whose = ("one may be the upload this computer began before it stopped, others "
                     "may be another client's. They stay" if many else "it may be the upload "
                     "this computer began before it stopped, or another client's. It stays")
            self._emit(Notice(upload=job.upload, message=(
                f"{len(unknown)} unfinished multipart upload{'s' if many else ''} of "
                f"{row.key} begun at {times} (when ossdesk was interrupted while starting "
                f"this file, around {_local_time(since)}) {'were' if many else 'was'} left "
                f"alone: {whose} on the server, billed, until aborted: `ossdesk uploads "
                f"--endpoint {row.endpoint} --bucket {row.bucket} --prefix "
                f"{shlex.quote(row.key)}` lists {'them' if many else 'it'} and can abort "
                f"{'them' if many else 'it'}")))
        self.store.initiating(job.upload, None)

    def _already_complete(self, job: _Job, client: OssClient, size: int,
                          stored: Mapping[int, object]) -> bool:
        """After NoSuchUpload: was the upload completed just before the store heard of it?"""
        row = job.row
        parts = self.store.parts(job.upload)
        if not row.part_size or not parts:
            return False
        plan = plan_parts(size, row.part_size)
        if sorted(parts) != list(range(1, plan.part_count + 1)):
            return False
        expected = combine_parts((p.crc64, p.size) for p in (parts[n] for n in sorted(parts)))
        info = self._call(job, lambda: client.head_object(row.key))
        if info is None or info.size != size or info.crc64 != expected:
            return False
        self._finish(job, expected, info.etag, note=(
            "it had been completed on the server just before ossdesk stopped; the object was "
            "verified against the parts sent and nothing was sent again; the file was not read "
            "again"), reread=False)
        return True

    def _skip_if_identical(self, job: _Job, client: OssClient, source: Fingerprint) -> bool:
        """Policy ``skip``: before any byte is sent, ask OSS for the key (HEAD). An object of
        the same size whose CRC-64 equals the file's (read here, on a worker, stoppable)
        makes the row done, reason ``skipped``; anything else is uploaded (overwritten)."""
        row, size = job.row, source.size
        info = self._call(job, lambda: client.head_object(row.key))
        if info is None or info.size != size or info.crc64 is None:
            return False
        try:
            local = crc64_file(row.source, should_stop=job.stop.is_set)
        except ChecksumStopped:
            raise _Stop from None
        except EOFError:
            return False  # it shrank while read: the upload notices the change
        if local != info.crc64 or not self._source_unchanged(job, source):
            return False
        if source != row.fingerprint:
            self.store.source_seen(job.upload, size, source.mtime_ns, source)
        self.store.finish(job.upload, crc64=local, etag=info.etag, skipped=True, reread=True)
        with self._cond:
            if job.stopping != "cancel":
                job.stopping = "done"
            job.phase = "done"
        self._emit(Notice(upload=job.upload, message=(
            f"skipped: already in OSS, identical ({row.key}: same size and CRC-64)")))
        self._emit(Done(upload=job.upload, key=row.key, size=size, crc64=local,
                        etag=info.etag, seconds=round(time.monotonic() - job.started, 3),
                        skipped=True, reread=True))
        return True

    def _reader(self, job: _Job, offset: int, length: int, *, md5: bool = False) -> PartReader:
        meter = job.meter
        throughput = self.throughput

        def on_sent(n: int) -> None:
            throughput.add(n)
            if meter is not None:
                meter.add_sent(n)

        return PartReader(job.row.source, offset, length, stop=job.stop, bucket=self.bucket,
                          on_sent=on_sent, md5=md5)

    def _send_part(self, job: _Job, number: int) -> None:
        assert job.plan is not None and job.client is not None and job.upload_id is not None
        assert job.meter is not None
        offset, length = job.plan.part(number)
        client, key, upload_id, meter = job.client, job.row.key, job.upload_id, job.meter
        what = f"part {number} of {key}"
        attempt = 0
        while True:
            if job.stop.is_set():
                raise _Stop
            # A server seen without CRC-64 (for this endpoint, or earlier for this row) gets
            # the part's MD5 first, so that it can refuse a body damaged on the way.
            first = (self._first_pass(job, offset, length)
                     if client.crc_missing or self._uses_md5(job) else None)
            reader = self._reader(job, offset, length)
            try:
                try:
                    result = client.upload_part(key, upload_id, number,
                                                cast(BinaryIO, reader), size=length,
                                                content_md5=first[1] if first else None)
                finally:
                    reader.close()
                check = self._verified(reader, result.crc64, result.etag,
                                       first[1] if first else None, what)
            except Exception as exc:  # noqa: BLE001 - re-raised there unless it is retried
                if _no_crc(exc):
                    meter.drop(reader.sent)  # sent again at once, now with its MD5
                    continue
                self._after_failed_send(job, meter, reader,
                                        self._digest_refused(job, exc, reader, first, what),
                                        attempt)
                attempt += 1
                continue
            break
        if check == "md5" and not job.md5:
            job.md5 = True
            if job.row.checked_by != "md5":
                self.store.checked_by_md5(job.upload)
        try:
            _crash_point("part-sent")
            self.store.confirm_part(job.upload, number, length, result.etag, reader.crc)
            _crash_point("part-saved")
        except StoreError:
            meter.drop(reader.sent)
            raise
        with self._cond:
            job.confirmed[number] = (length, result.etag, reader.crc)
        meter.confirm(reader.sent, length)

    def _uses_md5(self, job: _Job) -> bool:
        return job.md5 or job.row.checked_by == "md5"

    def _first_pass(self, job: _Job, offset: int, length: int) -> tuple[int, bytes]:
        """(CRC-64, MD5) of the bytes about to be sent, read once before sending them: the
        MD5 must be in the request's headers, before its body."""
        digest = hashlib.md5(usedforsecurity=False)
        try:
            crc = crc64_file(job.row.source, offset, length, should_stop=job.stop.is_set,
                             also=digest.update)
        except ChecksumStopped:
            raise _Stop from None
        except EOFError:
            raise self._changed_error(job) from None
        except PermissionError:
            raise _unreadable_error(unreadable(job.row.source)) from None
        return crc, digest.digest()

    @staticmethod
    def _verified(reader: PartReader, crc: int | None, etag: str, md5: bytes | None,
                  what: str) -> str:
        """How the answer to a request with data proves it: ``crc64`` when the server's
        CRC-64 is ours; without one, ``md5`` when the request carried Content-MD5 and the
        ETag is that MD5. Anything else raises (retryable): never success unchecked."""
        if crc is not None:
            if crc != reader.crc:
                raise UploadError(
                    f"the CRC64 OSS reports for {what} ({crc}) does not match the data sent "
                    f"({reader.crc})", code="CrcMismatch", retryable=True, kind="retryable")
            return "crc64"
        if md5 is None:
            raise UploadError(f"OSS gave no CRC-64 for {what}; it is sent again with its MD5",
                              code="NoChecksum", retryable=True, kind="retryable")
        if not _same_etag(etag, md5.hex()):
            raise UploadError(
                f"OSS gave no CRC-64 for {what}, and its ETag ({etag}) is not the MD5 of the "
                f"data sent ({md5.hex()}): the data cannot be verified", code="EtagMismatch",
                retryable=True, kind="retryable")
        return "md5"

    def _digest_refused(self, job: _Job, exc: Exception, reader: PartReader,
                        first: tuple[int, bytes] | None, what: str) -> Exception:
        """OSS refused a body whose MD5 is not the Content-MD5 sent (InvalidDigest /
        BadDigest): if the bytes read while sending are the ones the MD5 was computed from
        (same CRC-64), the body was damaged on the way and is sent again; otherwise the file
        changed."""
        if (first is None or not isinstance(exc, OssError)
                or exc.code not in ("InvalidDigest", "BadDigest")
                or reader.failure is not None):
            return exc
        if reader.sent != reader.length or reader.crc != first[0]:
            return self._changed_error(job)
        return UploadError(
            f"OSS received {what} damaged on the way (its MD5 differed from the Content-MD5 "
            "sent) and refused it", code="BadDigest", retryable=True,
            kind="retryable")

    def _after_failed_send(self, job: _Job, meter: ProgressMeter, reader: PartReader,
                           exc: Exception, attempt: int) -> None:
        """After a part or a PUT failed: raise what ends this file's attempt (a stop, a
        changed source, a permanent error, the last try), else wait before the next try."""
        meter.drop(reader.sent)
        if job.stop.is_set():
            raise _Stop from exc
        if isinstance(reader.failure, SourceChanged):
            raise self._changed_error(job) from exc
        if isinstance(reader.failure, SourceUnreadable):
            raise _unreadable_error(reader.failure) from exc
        error = _error_of(exc)
        if not error.retryable:
            if error is exc:
                raise exc
            raise error from exc
        if attempt + 1 >= self.retry.tries:
            raise self._used_up(error) from exc
        self._backoff(job, attempt, error)

    def _changed_error(self, job: _Job) -> UploadError:
        return UploadError(
            f"{job.row.source} changed while it was being uploaded, so nothing was published; "
            "upload it again once it is no longer being written to",
            code="SourceChanged", kind="source")

    def _source_now(self, job: _Job) -> Fingerprint | None:
        """The source as it is now; None when it cannot be looked at (gone)."""
        try:
            return Fingerprint.of(job.row.source.stat())
        except OSError:
            return None

    def _source_unchanged(self, job: _Job, source: Fingerprint) -> bool:
        """Size, mtime, change time and identity as ``source`` says (unknown ones aside)."""
        try:
            st = job.row.source.stat()
        except OSError:
            return False
        return Fingerprint.of(st).same_as(source)

    def _refuse_if_not_empty(self, job: _Job) -> None:
        """A file whose size is 0 must hold nothing: a ``/proc`` file says 0 and holds text."""
        try:
            with job.row.source.open("rb", buffering=0) as fh:
                extra = fh.read(1)
        except OSError:
            return  # unreadable: the upload says so when it reads it
        if extra:
            self._refuse_if_special(job, 0, 1)

    def _read_again(self, job: _Job, crc: int, size: int) -> bool | None:
        """Read the whole file again: is it still the ``size`` bytes of CRC-64 ``crc`` that
        were sent? None when it was left out (larger than :attr:`reread_limit`). Reads on
        this worker, stopped by a pause between 1 MiB blocks."""
        if self.reread_limit is not None and size > self.reread_limit:
            return None
        source = job.row.source
        length = 0

        def count(block: memoryview) -> None:
            nonlocal length
            length += len(block)

        try:
            local = crc64_file(source, should_stop=job.stop.is_set, also=count)
        except ChecksumStopped:
            raise _Stop from None
        except OSError:
            return False  # gone or unreadable: not the file that was sent
        if length > size:
            self._refuse_if_special(job, size, length)
        return (local, length) == (crc, size)

    def _refuse_if_special(self, job: _Job, stated: int, read: int) -> None:
        """More bytes read than the file's size says, and the size still says so: not a
        regular file's content (``/proc``, ``/sys``); it cannot be uploaded faithfully."""
        try:
            now = job.row.source.stat().st_size
        except OSError:
            return
        if now == stated:
            raise UploadError(
                f"{job.row.source}: its size changed while it was read ({stated} bytes stated, "
                f"{'more' if read > stated else read} read); it is a special file (like those "
                "in /proc), not a regular one, and is not uploaded", code="NotAFile",
                kind="source")

    def _complete(self, job: _Job) -> None:
        assert job.plan is not None and job.client is not None and job.upload_id is not None
        row, client, upload_id = job.row, job.client, job.upload_id
        # Only the change time moved (chmod, a hard link, xattrs): the re-read below decides,
        # if it runs; without it the change time is all there is.
        source = self._source_now(job)
        rereads = self.reread_limit is None or row.size <= self.reread_limit
        attributes = source is not None and rereads and \
            source.only_change_time_differs(row.fingerprint)
        if source is None or not (attributes or source.same_as(row.fingerprint)):
            self._discard_changed(job, client, upload_id)
        assert source is not None
        seen = source if attributes else row.fingerprint
        numbers = sorted(job.confirmed)
        if numbers != list(range(1, job.plan.part_count + 1)):
            raise UploadError(f"internal error: parts {numbers[:5]}... do not cover the file",
                              code="InternalError")
        if not self._parts_on_server(job):
            return  # some parts go again first; Complete comes after them
        expected = combine_parts((job.confirmed[n][2], job.confirmed[n][0]) for n in numbers)
        # The parts prove what was sent; reading the file again proves that what was sent is
        # the file as it is now (not half of it rewritten in place, mtime put back).
        reread = self._read_again(job, expected, row.size)
        if reread is False or not self._source_unchanged(job, seen):
            self._discard_changed(job, client, upload_id)
        if attributes and reread:
            self.store.source_seen(job.upload, seen.size, seen.mtime_ns, seen)
            job.row = self.store.get(job.upload) or row
            self._emit(Notice(upload=job.upload, message=(
                f"{row.source.name} changed while it was being uploaded (its change time "
                "moved); the whole file was read again and is exactly what was sent")))
        part_list = [(n, job.confirmed[n][1]) for n in numbers]
        try:
            result = self._call(job, lambda: client.complete_multipart(
                row.key, upload_id, part_list, headers=row.options.complete_headers()))
        except OssError as exc:
            if exc.kind is not ErrorKind.NO_SUCH_UPLOAD:
                raise
            # The answer to a Complete that went through was lost (timeout, reset) and the
            # retry found the upload id gone: the object itself decides. It is accepted only
            # with the size and the CRC-64 of the recorded parts; otherwise the file starts
            # over (its parts are gone with the upload id).
            info = self._call(job, lambda: client.head_object(row.key))
            if info is not None and info.size == row.size and info.crc64 == expected:
                self._finish(job, expected, info.etag, note=(
                    "the answer to completing the upload was lost, but the object on the "
                    "server has the size and CRC-64 of the parts sent: verified, done"),
                    reread=reread is True)
                return
            self._start_over(job, "the upload was no longer on the server when it was "
                                  "completed")
            return
        if result.crc64 is None and self._uses_md5(job):
            # No CRC-64 for the object (its ETag is no MD5 of the content): it is verified
            # as each part, by MD5, assembled from the recorded list of parts.
            self._finish(job, expected, result.etag, reread=reread is True, check="md5")
            return
        if result.crc64 is None or result.crc64 != expected:
            raise UploadError(
                f"the CRC64 OSS reports for {row.key} ({result.crc64}) does not match the "
                f"file's ({expected}); the object must not be trusted: upload it again",
                code="CrcMismatch", kind="permanent")
        self._finish(job, expected, result.etag, reread=reread is True)

    def _discard_changed(self, job: _Job, client: OssClient, upload_id: str) -> NoReturn:
        """The file is no longer what was sent: abort the upload on the server (nothing is
        published), forget its parts, and fail the file saying so."""
        row = job.row
        self._abort_quietly(client, row.key, upload_id)
        with contextlib.suppress(StoreError):
            self.store.reset(job.upload, size=row.size, mtime_ns=row.mtime_ns,
                             source=row.fingerprint)
        raise self._changed_error(job)

    def _start_over(self, job: _Job, why: str) -> None:
        """Forget the upload id and the parts (one transaction) and prepare the file again,
        from its first byte, within the same task."""
        row = job.row
        job.restarts += 1
        if job.restarts > 3:
            raise UploadError(f"OSS keeps losing the upload of {row.key} ({why}); try again "
                              "later", code="NoSuchUpload", retryable=True, kind="retryable")
        self._emit(Notice(upload=job.upload, message=f"{row.source.name}: {why}, so it starts "
                                                     "over"))
        if job.client is not None and job.upload_id is not None:
            self._abort_quietly(job.client, row.key, job.upload_id)  # in case it lingers
        self.store.reset(job.upload, size=row.size, mtime_ns=row.mtime_ns,
                         source=row.fingerprint)
        fresh = self.store.get(job.upload)
        if fresh is None:
            raise _Stop
        with self._cond:
            job.row = fresh
            job.upload_id = None
            job.confirmed = {}
            job.pending = deque()
            job.plan = None
            job.phase = "prepare"
        self._prepare(job)

    def _parts_on_server(self, job: _Job) -> bool:
        """Before Complete: the parts as OSS lists them must be the ones recorded.

        A part whose ETag in the UploadPart answer was damaged is taken with the ETag OSS
        lists (its data was proven by the CRC-64 already, and the object's CRC-64 is checked
        after Complete); a part OSS no longer has is sent again. Returns False when parts
        were queued again.
        """
        assert job.client is not None and job.upload_id is not None
        client, key, upload_id = job.client, job.row.key, job.upload_id
        remote = {p.number: p for p in self._call(job, lambda: client.list_parts(key,
                                                                                 upload_id))}
        missing: list[int] = []
        for number, (size, etag, crc) in sorted(job.confirmed.items()):
            there = remote.get(number)
            if there is None or there.size != size:
                missing.append(number)
            elif not _same_etag(there.etag, etag) and self._uses_md5(job):
                missing.append(number)  # its ETag was its only proof: send it again
            elif not _same_etag(there.etag, etag):
                _log.warning("part %d of %s: OSS lists another ETag than it answered; the "
                             "listed one is used", number, key)
                self.store.confirm_part(job.upload, number, size, there.etag, crc)
                job.confirmed[number] = (size, there.etag, crc)
        if not missing:
            return True
        job.rechecks += 1
        if job.rechecks > 3:
            raise UploadError(f"OSS keeps losing parts of {key}; try again later",
                              code="PartsLost", retryable=True, kind="retryable")
        self.store.forget_parts(job.upload, missing)
        with self._cond:
            for number in missing:
                del job.confirmed[number]
            if job.meter is not None:
                job.meter.set_confirmed(sum(v[0] for v in job.confirmed.values()))
            job.pending.extend(missing)
            job.phase = "parts"
            self._cond.notify_all()
        return False

    def _put(self, job: _Job, source: Fingerprint) -> None:
        assert job.client is not None and job.meter is not None
        row, client, meter = job.row, job.client, job.meter
        size = source.size
        headers = _put_headers(row)
        restarts = 0
        attempt = 0
        while True:
            if job.stop.is_set():
                raise _Stop
            first = (self._first_pass(job, 0, size)
                     if client.crc_missing or self._uses_md5(job) else None)
            reader = self._reader(job, 0, size, md5=True)
            try:
                try:
                    result = client.put_object(row.key, cast(BinaryIO, reader), size=size,
                                               headers=headers,
                                               content_md5=first[1] if first else None)
                finally:
                    reader.close()
            except Exception as exc:  # noqa: BLE001 - re-raised there unless it is retried
                self._after_failed_send(job, meter, reader,
                                        self._digest_refused(job, exc, reader, first, row.key),
                                        attempt)
                attempt += 1
                continue
            reread: bool | None = None
            changed = not self._source_unchanged(job, source)
            if not changed and result.crc64 is not None and result.crc64 == reader.crc:
                # The answer proves what was sent; reading the file again proves that what
                # was sent is the file as it is now (rewritten in place, mtime put back?).
                reread = self._read_again(job, reader.crc, size)
                changed = reread is False or not self._source_unchanged(job, source)
            if changed:
                # What was sent may mix old and new content: send the file as it is now.
                restarts += 1
                if restarts > _PUT_RESTARTS:
                    raise UploadError(
                        f"{row.source} keeps changing while it is uploaded; the object "
                        f"{row.key} may not match it: upload it again when it is not being "
                        "written to", code="SourceChanged", kind="source")
                try:
                    st = row.source.stat()
                except OSError:
                    raise UploadError(
                        f"{row.source} was deleted or moved while it was being uploaded; the "
                        f"object {row.key} holds the file as it was read before that",
                        code="SourceMissing", kind="source") from None
                source = Fingerprint.of(st)
                size = source.size
                self.store.source_seen(job.upload, size, source.mtime_ns, source)
                self._emit(Notice(upload=job.upload, message=(
                    f"{row.source.name} changed while it was being uploaded, so it is sent "
                    "again as it is now")))
                meter.total = size
                meter.set_confirmed(0)
                continue
            assert reader.md5 is not None
            try:
                check = self._verified(reader, result.crc64, result.etag,
                                       reader.md5.digest() if first else None, row.key)
            except UploadError as error:
                meter.drop(reader.sent)
                if _no_crc(error):
                    continue  # sent again at once, now with its MD5
                if attempt + 1 >= self.retry.tries:
                    raise self._used_up(error) from error
                self._backoff(job, attempt, error)
                attempt += 1
                continue
            etag = (self._checked_etag(job, reader, result.etag, size) if check == "crc64"
                    else result.etag)
            meter.confirm(reader.sent, size)
            self._finish(job, reader.crc, etag, reread=reread is True, check=check)
            return

    def _checked_etag(self, job: _Job, reader: PartReader, etag: str, size: int) -> str:
        """A PutObject's ETag is the MD5 of the data. If the answer says otherwise, the
        object itself (HEAD) is asked; its CRC-64 must still be ours."""
        assert reader.md5 is not None and job.client is not None
        if _same_etag(etag, reader.md5.hexdigest()):
            return etag
        client, key = job.client, job.row.key
        info = self._call(job, lambda: client.head_object(key))
        if info is None or info.size != size or info.crc64 != reader.crc:
            raise UploadError(
                f"OSS answered the upload of {key} with an ETag that does not match the data, "
                "and the object does not match the file either: upload it again",
                code="EtagMismatch", retryable=True, kind="retryable")
        return info.etag

    def _finish(self, job: _Job, crc: int, etag: str | None, note: str | None = None, *,
                reread: bool, check: str = "crc64") -> None:
        """``reread``: the file was read again after sending and matched (False: it was
        not read again, and nothing may say it was). ``check``: ``crc64`` or ``md5``, how
        the bytes sent were verified."""
        _crash_point("completed")
        # The object exists and is verified: that is recorded even if a pause came meanwhile.
        self.store.finish(job.upload, crc64=crc, etag=etag, reread=reread, checked_by=check)
        with self._cond:
            if job.stopping != "cancel":
                job.stopping = "done"
            job.phase = "done"
        if job.meter is not None:
            job.meter.set_confirmed(job.row.size if job.meter.total == job.row.size
                                    else job.meter.total)
            job.meter.flush()
        if note:
            self._emit(Notice(upload=job.upload, message=note))
        if check == "crc64":
            verified_by = "CRC-64"
        elif job.single:
            verified_by = "MD5; the server gave no CRC-64"
        else:
            verified_by = "MD5 of each part; the server gave no CRC-64"
        self._emit(Done(upload=job.upload, key=job.row.key, size=job.meter.total
                        if job.meter is not None else job.row.size, crc64=crc, etag=etag,
                        seconds=round(time.monotonic() - job.started, 3), reread=reread,
                        check=check, verified_by=verified_by))

    # -- cancel ----------------------------------------------------------------------------

    def _abort_quietly(self, client: OssClient, key: str, upload_id: str) -> None:
        try:
            client.abort_multipart(key, upload_id)
        except OssError as exc:
            _log.warning("could not abort the stale upload of %s: %s", key, exc.message)

    def _abort_and_forget(self, upload: int) -> None:
        forget = self._forget_cancelled(upload)
        row = self.store.get(upload)
        if row is None or (row.state is State.DONE and not forget):
            return  # finished before the cancel arrived: it stays done
        if row.upload_id:
            try:
                abort_upload(self._client(row), row.key, row.upload_id,
                             retry=self._cleanup_retry())
            except (OssError, UploadError) as exc:
                # Not cancelled: the upload stays on the server (billed), so the row stays,
                # with its upload id, and says so; cancelling again tries the abort again.
                why = failure_reason(exc) if isinstance(exc, OssError) else exc.message
                message = (f"not cancelled: its unfinished upload could not be aborted on the "
                           f"server ({why}); cancel it again to abort it")
                with contextlib.suppress(StoreError):
                    self.store.set_state(upload, State.FAILED, error=message,
                                         error_code="AbortFailed")
                self._emit(Failed(upload=upload, message=message, code="AbortFailed",
                                  retryable=True, error_kind="retryable"))
                return
        if forget:
            self.store.remove([upload])
        else:
            self.store.cancelled(upload)
        self._emit(Cancelled(upload=upload))

    def _forget_cancelled(self, upload: int) -> bool:
        """Whether the row of a cancelled upload is removed from the list (True) or kept
        as cancelled history (False, the default here; the scheduler knows which)."""
        return False

    def _cleanup_retry(self) -> RetryPolicy:
        """A few tries for an abort (this scheduler's delays), then a clear answer."""
        return RetryPolicy(tries=min(self.retry.tries, CLEANUP_RETRY.tries),
                           base=self.retry.base, cap=self.retry.cap)

