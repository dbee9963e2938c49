"""A file's source checks: is it still the file that was sent (its fingerprint, its
bytes read again), is it a regular file, did only its change time move, and is the
object already in OSS identical to it (policy ``skip``).
"""

from __future__ import annotations

import time

from ossdesk.core.checksum import ChecksumStopped, crc64_file
from ossdesk.core.events import (
    Done,
    Notice,
)
from ossdesk.core.file_job import (
    JobSteps,
    _Job,
    _recorded_plan,
    _Stop,
    _unreadable_error,
)
from ossdesk.core.oss import (
    OssClient,
)
from ossdesk.core.plan import (
    format_size,
)
from ossdesk.core.store import (
    Fingerprint,
)
from ossdesk.core.upload import (
    UploadError,
    unreadable,
)


class SourceChecks(JobSteps):
    """The checks of a file's source against what was sent or is in OSS."""

    def _sent_parts_unchanged(self, job: _Job, now: Fingerprint) -> bool:
        """Only the file's change time moved since its upload began: a ``chmod``, a new hard
        link, extended attributes, or content rewritten with its mtime put back. Each
        confirmed part's bytes are read again (on this worker, stopped by a pause) and
        compared with the CRC-64 recorded when it was sent. All equal: the file as it is
        now is recorded, said, and the upload goes on with its parts (the whole file is
        still read again before Complete). Any difference: False, and the file starts over."""
        row = job.row
        try:
            plan = _recorded_plan(row, now.size)
        except ValueError:  # FileTooLarge too
            return False
        if plan is None:
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
