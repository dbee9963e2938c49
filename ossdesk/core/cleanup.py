"""Unfinished multipart uploads on the server: which are ours, and aborting them.

An unfinished multipart upload keeps its parts on OSS (and OSS bills them) until it is
completed or aborted. ossdesk aborts on its own only uploads whose id a row of its store
records (it started them); ``ossdesk cancel`` and ``ossdesk uploads`` let the user abort the
rest. OSS returns no metadata in ListMultipartUploads or ListParts, so "ours" can only be
known from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ossdesk.core.oss import Credentials, Endpoint, OssClient, OssError, RemoteUpload
from ossdesk.core.store import UploadRow
from ossdesk.core.upload import RetryPolicy

__all__ = ["CLEANUP_RETRY", "RemoteUploadInfo", "abort_upload", "client_for_row",
           "failure_reason", "list_uploads"]

#: Tries for an abort or a listing asked for by the user: a short wait, then a clear answer.
CLEANUP_RETRY = RetryPolicy(tries=3, base=0.5, cap=2.0)

T = TypeVar("T")


@dataclass(frozen=True)
class RemoteUploadInfo:
    """An unfinished multipart upload as ``ossdesk uploads`` shows it."""

    upload: RemoteUpload
    row: int | None  # the row of this installation's store that records it, if any
    parts: int | None = None  # with ``--parts``: how many parts OSS holds ...
    size: int | None = None  # ... and their bytes


def client_for_row(row: UploadRow, credentials: Credentials | Callable[[], Credentials]
                   ) -> OssClient:
    """A client for the row's endpoint and bucket, signing as the row says."""
    endpoint = Endpoint(url=row.endpoint, bucket=row.bucket, region=row.region,
                        signature="v1" if row.signature == "v1" else "v4")
    return OssClient(endpoint, credentials)


def _retried(fn: Callable[[], T], retry: RetryPolicy,
                sleep: Callable[[float], None]) -> T:
    attempt = 0
    while True:
        try:
            return fn()
        except OssError as exc:
            if not exc.retryable or attempt + 1 >= retry.tries:
                raise
            sleep(retry.delay(attempt))
            attempt += 1


def abort_upload(client: OssClient, key: str, upload_id: str, *,
                 retry: RetryPolicy = CLEANUP_RETRY,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Abort one multipart upload (an id OSS no longer knows counts as aborted); network
    trouble is tried again ``retry.tries`` times, then :class:`OssError` is raised."""
    _retried(lambda: client.abort_multipart(key, upload_id), retry, sleep)


def list_uploads(client: OssClient, prefix: str = "", *, page_size: int | None = None,
                 retry: RetryPolicy = CLEANUP_RETRY,
                 sleep: Callable[[float], None] = time.sleep) -> list[RemoteUpload]:
    """Every unfinished multipart upload under ``prefix`` (all pages)."""
    return _retried(lambda: client.list_multipart_uploads(prefix, page_size=page_size),
                    retry, sleep)


def failure_reason(exc: OssError) -> str:
    """Why a request asked for by the user failed, without promising a retry."""
    if exc.retryable:
        status = f", HTTP {exc.status}" if exc.status is not None else ""
        return f"OSS could not be reached or did not accept it ({exc.code}{status})"
    return exc.message
