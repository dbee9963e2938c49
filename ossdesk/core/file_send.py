"""Sending a file's bytes and proving them: the request body (:class:`PartReader`) on the
bandwidth bucket, the MD5 read first for a server without CRC-64, how an answer proves
the data (CRC-64 or MD5), what a failed send becomes, and recording a verified file
as done.
"""

from __future__ import annotations

import hashlib
import time

from ossdesk.core.checksum import ChecksumStopped, crc64_file
from ossdesk.core.events import (
    Done,
    Notice,
    ProgressMeter,
)
from ossdesk.core.file_job import (
    _crash_point,
    _error_of,
    _Job,
    _same_etag,
    _Stop,
    _unreadable_error,
)
from ossdesk.core.file_source import SourceChecks
from ossdesk.core.oss import (
    OssError,
)
from ossdesk.core.upload import (
    PartReader,
    SourceChanged,
    SourceUnreadable,
    UploadError,
    unreadable,
)


class Sending(SourceChecks):
    """A request with a file's bytes, its proof, and the file's end once proven."""

    def _reader(self, job: _Job, offset: int, length: int, *, md5: bool = False) -> PartReader:
        meter = job.meter
        throughput = self.throughput

        def on_sent(n: int) -> None:
            throughput.add(n)
            if meter is not None:
                meter.add_sent(n)

        return PartReader(job.row.source, offset, length, stop=job.stop, bucket=self.bucket,
                          on_sent=on_sent, md5=md5)

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
