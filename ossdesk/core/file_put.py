"""A file that fits in one part: one PutObject, its answer checked, the source checked
again after it (sent again as it is now if it changed).
"""

from __future__ import annotations

from typing import BinaryIO, cast

from ossdesk.core.events import (
    Notice,
)
from ossdesk.core.file_job import (
    _PUT_RESTARTS,
    _Job,
    _no_crc,
    _put_headers,
    _same_etag,
    _Stop,
)
from ossdesk.core.file_send import Sending
from ossdesk.core.store import (
    Fingerprint,
)
from ossdesk.core.upload import (
    PartReader,
    UploadError,
)


class SinglePut(Sending):
    """The single PUT of a small file."""

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
