"""A multipart upload's steps: the part size of a new upload, the parts already on the
server (adopted, or listed before Complete), uploads begun before a crash, send a
part, complete, start over, and abort.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import BinaryIO, NoReturn, cast

from ossdesk.core.checksum import ChecksumStopped, combine_parts, crc64_file
from ossdesk.core.cleanup import failure_reason
from ossdesk.core.events import (
    Notice,
)
from ossdesk.core.file_job import (
    _SKEW,
    _crash_point,
    _Job,
    _local_time,
    _log,
    _no_crc,
    _recorded_plan,
    _same_etag,
    _Stop,
)
from ossdesk.core.file_send import Sending
from ossdesk.core.oss import (
    ErrorKind,
    OssClient,
    OssError,
    RemotePart,
)
from ossdesk.core.plan import (
    PartPlan,
    adaptive_part_size,
    format_size,
    grown_part_size,
)
from ossdesk.core.store import (
    StoreError,
)
from ossdesk.core.upload import (
    UploadError,
)

#: A plan begun before the link's speed was known grows after this many parts are confirmed
#: (or ``parallel``, when fewer go at once): the first round of parts.
GROW_AFTER = 8


class MultipartSteps(Sending):
    """The steps of a file sent in parts, after :meth:`FileSteps._prepare` began it."""

    def _prepare(self, job: _Job) -> None:
        raise NotImplementedError  # FileSteps._prepare: a start over prepares again

    def _adaptive_part_size(self, size: int, ceiling: int) -> tuple[int, bool]:
        """The part size of a new upload of ``size`` bytes: about
        :data:`~ossdesk.core.plan.PART_SECONDS` per part at the measured throughput (or at
        the bandwidth limit, when that is lower or nothing was measured yet), shared by the
        ``parallel`` parts in flight; at most ``ceiling``. And whether the speed was known
        (else the size is :data:`~ossdesk.core.plan.START_PART_SIZE`, and the rest of the
        file grows once it is: :meth:`_grow_plan`)."""
        measured = self.throughput.rate()
        limit = self.bucket.rate
        if limit and (measured is None or measured > limit):
            measured = float(limit)
        with self._cond:
            parallel = self._parallel
        return adaptive_part_size(size, measured, parallel, ceiling=ceiling), bool(measured)

    def _grow_plan(self, job: _Job, length: int, seconds: float) -> None:
        """A part of a plan that may still grow was confirmed after ``seconds``. Once the
        first round of parts (as many as go at once, at most :data:`GROW_AFTER`) is
        confirmed, their time tells the link's speed: the rest of the file, after every
        part handed out so far, is cut into parts of about
        :data:`~ossdesk.core.plan.PART_SECONDS` at that speed (at most the configured
        size), recorded before any of them is sent, so a pause, a crash or a resume finds
        the same plan. Smaller parts than the first ones are not taken: the plan stays."""
        with self._cond:
            plan = job.plan
            if plan is None or not plan.grows or job.growing or job.stopping is not None \
                    or job.upload_id is None:
                return
            job.timed_parts += 1
            job.timed_bytes += length
            job.timed_seconds += max(0.0, seconds)
            if job.timed_parts < min(self._parallel, GROW_AFTER):
                return
            waiting = set(job.pending)
            head = next((n for n in range(plan.part_count, 0, -1) if n not in waiting), 0)
            size = grown_part_size(job.timed_bytes, job.timed_seconds,
                                   ceiling=job.grow_ceiling or plan.part_size)
            if head >= plan.part_count - 1 or size <= plan.part_size:
                job.plan = replace(plan, grows=False)  # it stays as it is
                return
            grown = plan.grow(head, size)
            job.growing = True  # no part of this file is handed out until it is recorded
            upload_id = job.upload_id
        recorded = False
        try:
            recorded = self.store.grow_plan(job.upload, upload_id, head, grown.part_size)
        finally:
            with self._cond:
                job.growing = False
                if recorded:
                    job.plan = grown
                    job.pending = deque([n for n in job.pending if n <= head]
                                        + list(range(head + 1, grown.part_count + 1)))
                else:
                    job.plan = replace(plan, grows=False)
                self._cond.notify_all()
        if recorded:
            _log.info("%s: parts 1-%d of %s, the rest in %d parts of %s (%.2f s per part "
                      "measured)", job.row.key, head, format_size(grown.head_size),
                      grown.part_count - head, format_size(grown.part_size),
                      job.timed_seconds / job.timed_parts)

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
        try:
            plan = _recorded_plan(row, size)
        except ValueError:
            return False
        if plan is None or not parts:
            return False
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

    def _send_part(self, job: _Job, number: int) -> None:
        assert job.plan is not None and job.client is not None and job.upload_id is not None
        assert job.meter is not None
        offset, length = job.plan.part(number)
        client, key, upload_id, meter = job.client, job.row.key, job.upload_id, job.meter
        what = f"part {number} of {key}"
        started = self._clock()
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
        self._grow_plan(job, length, self._clock() - started)
        meter.confirm(reader.sent, length)

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
        if (left := self._abort_earlier(job, client, upload_id)) is not None:
            self._emit(left)
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
            left = self._abort_earlier(job, job.client, job.upload_id)  # in case it lingers
            if left is not None:
                self._emit(left)
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

    def _abort_earlier(self, job: _Job, client: OssClient, upload_id: str) -> Notice | None:
        """Abort the file's earlier multipart upload, which is about to be forgotten: None
        when it is gone, else the notice to send (its parts stay in the bucket, billed; the
        notice names it, so that it can be aborted later from the bucket's unfinished
        uploads)."""
        key = job.row.key
        try:
            client.abort_multipart(key, upload_id)
        except OssError as exc:
            _log.info("could not abort the earlier upload of %s: %s", key, exc.message)
            return Notice(upload=job.upload, message=(
                f"the earlier unfinished upload {upload_id} of {job.row.source.name} could "
                f"not be aborted: {failure_reason(exc)}; its parts stay in the bucket, "
                "billed, until it is aborted (the bucket's unfinished uploads list it)"))
        return None
