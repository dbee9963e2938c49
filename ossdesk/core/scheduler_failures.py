"""What the scheduler does with a file whose task failed: expired credentials pause every
file using them; a network failure pauses the file and queues it again later (the window)
or fails it retryable (the command line); a source that is gone gets its multipart upload
aborted; anything else fails the file, recorded with its message.

:class:`FailureRules` is a layer of :class:`~ossdesk.core.scheduler.Scheduler`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from ossdesk.core.cleanup import abort_upload, failure_reason
from ossdesk.core.events import Failed, PauseReason
from ossdesk.core.file_steps import _error_of, _Job, _missing, _sentence
from ossdesk.core.oss import OssError
from ossdesk.core.scheduler_pool import WorkerPool
from ossdesk.core.store import State, StoreError
from ossdesk.core.upload import UploadError

_log = logging.getLogger("ossdesk.core.scheduler")

_EXPIRED = "the credentials expired: give new ones and the upload goes on from where it stopped"


class FailureRules(WorkerPool):
    """How a failed task ends for its file (see the failure rules in
    :mod:`ossdesk.core.scheduler`)."""

    # Set by the scheduler.
    _expired: set[str]
    network_retry: float | None

    # Given by the scheduler.
    def _pause(self, uploads: list[int], reason: str, message: str) -> None:
        raise NotImplementedError

    def resume(self, uploads: Iterable[int] | None = None) -> list[int]:
        raise NotImplementedError

    def _handle_error(self, job: _Job, exc: BaseException) -> None:
        error = _error_of(exc)
        if error.code == "InternalError":
            _log.error("internal error while uploading %s",
                       job.row.source if job._row is not None else f"upload {job.upload}",
                       exc_info=exc)
        if error.kind == "credentials_expired":
            with self._cond:
                self._expired.add(job.row.credentials)
            self._pause([job.upload], PauseReason.CREDENTIALS, _EXPIRED)
            return
        if error.retryable and error.kind == "retryable" and self.network_retry is not None:
            delay = self.network_retry
            self._pause([job.upload], PauseReason.NETWORK,
                        f"{error.message} (trying again in {delay:g} s)")
            self._later(delay, lambda: self._retry_network(job.upload))
            return
        if error.kind == "source" and job._row is not None and _missing(job.row.source):
            if self._stop_failing(job):
                self._record_failed(job, self._source_gone(job, error))
            return
        self._fail(job, error)

    def _retry_network(self, upload: int) -> None:
        row = self.store.get(upload)
        if row is not None and row.state is State.PAUSED and row.reason == PauseReason.NETWORK:
            self.resume([upload])

    def _fail(self, job: _Job, error: UploadError) -> None:
        if self._stop_failing(job):
            self._record_failed(job, error)

    def _stop_failing(self, job: _Job) -> bool:
        """Stop the job as failing; False if it was stopping already (pause, cancel...)."""
        with self._cond:
            if job.stopping is not None:
                return False
            job.stopping = "fail"
            job.stop.set()
            self._cond.notify_all()
        return True

    def _source_gone(self, job: _Job, error: UploadError) -> UploadError:
        """The source was deleted or moved: abort the row's multipart upload (ours: the row
        records its id), so its parts stop being stored and billed, and forget it. If the
        abort fails the id is kept, and the next resume tries again. Without a multipart
        upload, ``error`` (what happened) is the file's error."""
        row = job.row
        fresh = self.store.get(job.upload)
        upload_id = job.upload_id or (fresh.upload_id if fresh is not None else None)
        if upload_id is None:
            if error.code == "SourceMissing":
                return error
            return UploadError(f"{row.source} is gone: it was moved or deleted before it could "
                               "be uploaded", code="SourceMissing", kind="source")
        try:
            client = job.client or self._client(row)
            abort_upload(client, row.key, upload_id, retry=self._cleanup_retry())
        except (OssError, UploadError) as exc:
            why = failure_reason(exc) if isinstance(exc, OssError) else exc.message
            return UploadError(
                f"{row.source} is gone; its unfinished upload could not be aborted on the "
                f"server ({why}): `ossdesk resume` tries again, `ossdesk cancel {job.upload}` "
                "aborts it and keeps it in the list as cancelled", code="SourceMissing",
                kind="source")
        with contextlib.suppress(StoreError):
            self.store.reset(job.upload, size=row.size, mtime_ns=row.mtime_ns)
        return UploadError(f"{row.source} is gone; its unfinished upload was aborted on the "
                           "server", code="SourceMissing", kind="source")

    def _record_failed(self, job: _Job, error: UploadError) -> None:
        if error.retryable and error.kind == "retryable":
            # Nothing here tries again by itself (the window pauses such files instead).
            error = UploadError(f"{_sentence(error.message)} `ossdesk resume` tries it again.",
                                code=error.code, retryable=True, kind=error.kind,
                                reason=error.reason)
        with contextlib.suppress(StoreError):
            self.store.set_state(job.upload, State.FAILED, error=error.message,
                                 error_code=error.code)
        self._emit(Failed(upload=job.upload, message=error.message, code=error.code,
                          retryable=error.retryable, error_kind=error.kind))
