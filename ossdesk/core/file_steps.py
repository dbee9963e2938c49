"""One file's steps, as the scheduler's workers run them: prepare (stat, check or start
the multipart upload, adopt the parts already on the server), send a part, complete, start
over, a single PUT, and the abort of a cancelled file.

:class:`FileSteps` is the part of :class:`~ossdesk.core.scheduler.Scheduler` that works on
one file; the queue that decides when each step runs is in :mod:`ossdesk.core.scheduler`,
the worker pool that runs it in :mod:`ossdesk.core.scheduler_pool`. Prepare and the abort
of a cancelled file are here; the rest, by concern, in the modules below it (each a layer
of :class:`FileSteps`):

- :mod:`ossdesk.core.file_job`: the job of a file, the crash points, the request headers,
  the error a failure becomes, a request run with the retry policy (``JobSteps``);
- :mod:`ossdesk.core.file_source`: the source checks and the object already there
  (``SourceChecks``);
- :mod:`ossdesk.core.file_send`: a request with the file's bytes and its proof, and the
  file recorded as done (``Sending``);
- :mod:`ossdesk.core.file_put`: the single PUT (``SinglePut``);
- :mod:`ossdesk.core.file_multipart`: the multipart steps: adopt parts, send a part,
  complete, start over, abort (``MultipartSteps``).
"""

from __future__ import annotations

import contextlib
import stat
import time
from collections import deque
from dataclasses import replace

from ossdesk.core.cleanup import CLEANUP_RETRY, abort_upload, failure_reason
from ossdesk.core.events import (
    Cancelled,
    Failed,
    Notice,
    ProgressMeter,
    Started,
)

# Shared by the steps and the scheduler; re-exported here.
from ossdesk.core.file_job import CRASH_ENV as CRASH_ENV  # noqa: PLC0414
from ossdesk.core.file_job import TINY_FILE as TINY_FILE  # noqa: PLC0414
from ossdesk.core.file_job import (
    _crash_point,
    _headers,
    _recorded_plan,
    _same_etag,
    _special_kind,
)
from ossdesk.core.file_job import _error_of as _error_of  # noqa: PLC0414
from ossdesk.core.file_job import _Job as _Job  # noqa: PLC0414
from ossdesk.core.file_job import _missing as _missing  # noqa: PLC0414
from ossdesk.core.file_job import _sentence as _sentence  # noqa: PLC0414
from ossdesk.core.file_job import _Stop as _Stop  # noqa: PLC0414
from ossdesk.core.file_multipart import MultipartSteps
from ossdesk.core.file_put import SinglePut
from ossdesk.core.oss import (
    ErrorKind,
    OssError,
    RemotePart,
)
from ossdesk.core.plan import (
    FileTooLarge,
    plan_parts,
    use_single_put,
)
from ossdesk.core.store import (
    SKIP,
    Fingerprint,
    State,
    StoreError,
)
from ossdesk.core.upload import (
    RetryPolicy,
    UploadError,
)


class FileSteps(MultipartSteps, SinglePut):
    """The steps of one file; :class:`~ossdesk.core.scheduler.Scheduler` runs them:
    prepare (here), then a single PUT (:class:`~ossdesk.core.file_put.SinglePut`) or
    the parts and Complete (:class:`~ossdesk.core.file_multipart.MultipartSteps`); the
    abort of a cancelled file (here)."""

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
            # Said after the abort: the parts sent are discarded only if it went through
            # (else the next notice says where they stay).
            left = self._abort_earlier(job, client, upload_id)
            if left is None:
                self._emit(Notice(upload=job.upload, message=(
                    f"{row.source.name} changed since its upload began, so it starts over "
                    "(the parts already sent were discarded)")))
            else:
                self._emit(Notice(upload=job.upload, message=(
                    f"{row.source.name} changed since its upload began, so it starts over")))
                self._emit(left)
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

        part_size = row.part_size or self.part_size
        try:
            plan = plan_parts(size, part_size)
            if upload_id is not None and row.part_size:
                # A resumed upload keeps the plan it recorded (grown or not).
                plan = _recorded_plan(row, size) or plan
        except FileTooLarge as exc:
            raise UploadError(str(exc), code="FileTooLarge") from exc
        except ValueError as exc:
            raise UploadError(f"internal error: the recorded parts of {row.key} do not fit "
                              f"the file: {exc}", code="InternalError") from exc
        if upload_id is None and plan.notice:
            self._emit(Notice(upload=job.upload, message=plan.notice))
        if upload_id is None and part_size is None and not use_single_put(size, plan.part_size):
            # A new multipart upload without a part size of its own: parts sized so that
            # OSS confirms one every few seconds at the throughput measured so far; when
            # nothing is known yet, small ones first, and the rest grows once it is.
            adaptive, known = self._adaptive_part_size(size, plan.part_size)
            plan = replace(plan_parts(size, adaptive), grows=not known)
        if plan.grows:  # timed anew in this run (after a start over too)
            job.grow_ceiling = plan_parts(size, self.part_size).part_size
            job.timed_parts = job.timed_bytes = 0
            job.timed_seconds = 0.0
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
            self.store.begin_multipart(job.upload, upload_id, plan.part_size,
                                       grows=plan.grows)
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

    # -- cancel ----------------------------------------------------------------------------

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
