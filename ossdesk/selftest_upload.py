"""The checks of ``ossdesk selftest`` that upload through the engine: ``upload`` (to an
in-process sandbox server) and ``endpoint`` (to a real bucket: stopped after its first
confirmed part, continued by a new engine, verified, and everything it wrote removed).

The command that runs them is :mod:`ossdesk.selftest`. Nothing here imports the engine at
module level.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ossdesk.selftest_checks import CheckFailed, Context, Remote

if TYPE_CHECKING:
    from ossdesk.core.oss import Credentials, OssClient

_UPLOAD_TIMEOUT = 120.0
_REMOTE_PREFIX = "ossdesk-selftest/"


def _write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            fh.write(chunk)
            left -= len(chunk)


def check_upload(context: Context) -> str:
    from ossdesk.core.checksum import crc64, crc64_file
    from ossdesk.core.events import Done, Event, Failed, Paused, Started
    from ossdesk.core.oss import Credentials, Endpoint, OssClient
    from ossdesk.core.scheduler import Scheduler
    from ossdesk.core.store import NewUpload, State, Store
    from ossdesk.sandbox.server import SandboxServer

    # Every part but the last is full; the last is half a part, so sizes are not all equal.
    size = context.part_size * (context.parts - 1) + context.part_size // 2 + 1
    source = context.workdir / "selftest.bin"
    _write_random_file(source, size)
    expected = crc64_file(source)
    stat = source.stat()
    key = "ossdesk-selftest/selftest.bin"

    events: list[Event] = []
    started = time.monotonic()
    with SandboxServer(context.workdir / "sandbox", host="127.0.0.1", port=0) as server:
        credentials = Credentials(
            server.credentials.access_key_id, server.credentials.access_key_secret
        )
        bucket = server.bucket_names[0]
        store = Store.open(context.workdir / "home" / "selftest.sqlite3")
        try:
            scheduler = Scheduler(
                store,
                jobs=1,
                parallel=min(context.parts, 4),
                part_size=context.part_size,
                credentials=lambda _source: credentials,
            )
            scheduler.add_listener(events.append)
            (upload,) = scheduler.add(
                [
                    NewUpload(
                        source=source,
                        size=stat.st_size,
                        mtime_ns=stat.st_mtime_ns,
                        key=key,
                        endpoint=server.endpoint,
                        bucket=bucket,
                        region=server.region,
                        part_size=context.part_size,
                    )
                ]
            )
            scheduler.start()
            settled = scheduler.wait(_UPLOAD_TIMEOUT)
            scheduler.close(pause=not settled)
            row = store.get(upload)
        finally:
            store.close()
        seconds = time.monotonic() - started
        if not settled:
            raise CheckFailed(f"the upload did not finish within {_UPLOAD_TIMEOUT:.0f} s")
        problems = [e for e in events if isinstance(e, Failed | Paused)]
        if problems:
            raise CheckFailed("the engine reported: " + "; ".join(_event_text(e) for e in problems))
        done = [e for e in events if isinstance(e, Done) and e.upload == upload]
        if row is None or row.state is not State.DONE or not done:
            state = "gone" if row is None else str(row.state)
            raise CheckFailed(f"the upload ended {state}, not done")
        if done[-1].crc64 != expected:
            raise CheckFailed(
                f"the engine's verified CRC-64 is {done[-1].crc64}, the file's is {expected}"
            )
        multipart = any(isinstance(e, Started) and e.multipart for e in events)
        if multipart != (context.parts > 1):
            how = "a multipart upload" if multipart else "a single PUT"
            raise CheckFailed(f"the engine chose {how} for {context.parts} part(s)")

        # Ask the server independently: what it stores must be the file, byte for byte.
        client = OssClient(Endpoint(url=server.endpoint, bucket=bucket, region=server.region),
                           credentials)
        info = client.head_object(key)
        if info is None:
            raise CheckFailed("the sandbox has no object after the upload")
        if info.size != size or info.crc64 != expected:
            raise CheckFailed(
                f"the stored object has {info.size} bytes and CRC-64 {info.crc64}; "
                f"the file has {size} bytes and CRC-64 {expected}"
            )
        if crc64(client.get_object_bytes(key)) != expected:
            raise CheckFailed("the object read back differs from the file")
    parts = f"{context.parts} parts" if context.parts > 1 else "1 PUT"
    return (
        f"{size:,} bytes in {parts} through the engine to an in-process sandbox, "
        f"CRC-64 {expected:016x} verified ({seconds:.1f} s)"
    )


def check_endpoint(context: Context) -> str:
    """A multipart upload to the real bucket, stopped and continued, verified, then removed."""
    from ossdesk.core.oss import OssClient, OssError

    remote = context.remote
    if remote is None:
        raise CheckFailed("no bucket to check: use --endpoint URL --bucket NAME")
    prefix = f"{_REMOTE_PREFIX}{secrets.token_hex(8)}/"
    where = remote.endpoint
    try:
        client = OssClient(where, remote.credentials)
    except OssError as exc:
        raise CheckFailed(exc.message) from None
    try:
        try:
            client.check_connection()
        except OssError as exc:
            raise CheckFailed(f"bucket {where.bucket} at {where.url}: {exc.message} "
                              "(nothing was written)") from None
        try:
            detail = _stopped_and_continued(context, remote, client, prefix + "selftest.bin")
        except Exception as exc:
            left = _remove_prefix(client, prefix)
            if left:
                raise CheckFailed(f"{exc}; and {left}") from exc
            raise
        left = _remove_prefix(client, prefix)
        if left:
            raise CheckFailed(f"the upload was verified, but {left}")
    finally:
        client.close()
    return f"{detail}; nothing left under {prefix}"


def _remove_prefix(client: OssClient, prefix: str) -> str:
    """Abort the uploads and delete the objects under ``prefix``; then look again.

    Returns "" when nothing is left there, else what is left and why (it never raises)."""
    from ossdesk.core.oss import OssError

    try:
        for upload in client.list_multipart_uploads(prefix):
            client.abort_multipart(upload.key, upload.upload_id)
        _, objects = client.list_folder(prefix)
        for obj in objects:
            client.delete_object(obj.key)
        uploads = client.list_multipart_uploads(prefix)
        _, objects = client.list_folder(prefix)
    except OssError as exc:
        return (f"removing what it wrote under {prefix} failed ({exc.message}): look there "
                "and remove what is left")
    if not uploads and not objects:
        return ""
    return (f"{len(objects)} object(s) and {len(uploads)} unfinished upload(s) are still "
            f"under {prefix}; remove them")


def _stopped_and_continued(context: Context, remote: Remote, client: OssClient,
                           key: str) -> str:
    from ossdesk.core.checksum import crc64, crc64_file
    from ossdesk.core.events import Done, Event, Failed, Paused, Progress, Started
    from ossdesk.core.scheduler import Scheduler
    from ossdesk.core.store import NewUpload, State, Store

    parts = max(context.parts, 2)  # a pause needs a part before it and one after
    part_size = context.part_size
    size = part_size * (parts - 1) + part_size // 2 + 1
    source = context.workdir / "endpoint.bin"
    _write_random_file(source, size)
    expected = crc64_file(source)
    stat = source.stat()
    database = context.workdir / "endpoint.sqlite3"  # never the user's upload list
    where = remote.endpoint
    started = time.monotonic()

    def resolver(_source: str) -> Credentials:
        return remote.credentials

    # First run: one part at a time, throttled to about a part a second, so that it can be
    # stopped (as by Ctrl-C or quitting) once OSS has confirmed its first part.
    events: list[Event] = []
    first_part = threading.Event()  # also set when the upload stops another way

    def first_listener(event: Event) -> None:
        events.append(event)
        if isinstance(event, Failed | Paused | Done) or (
            isinstance(event, Progress) and event.confirmed_bytes >= part_size
        ):
            first_part.set()

    store = Store.open(database)
    try:
        scheduler = Scheduler(store, jobs=1, parallel=1, rate=part_size, part_size=part_size,
                              credentials=resolver)
        scheduler.add_listener(first_listener)
        (upload,) = scheduler.add([NewUpload(
            source=source, size=size, mtime_ns=stat.st_mtime_ns, key=key, endpoint=where.url,
            bucket=where.bucket, region=where.effective_region, signature=where.signature,
            part_size=part_size)])
        scheduler.start()
        confirmed_in_time = first_part.wait(_UPLOAD_TIMEOUT)
        scheduler.close(pause=True)
        row = store.get(upload)
        recorded = store.parts(upload)
    finally:
        store.close()
    failed = [e for e in events if isinstance(e, Failed)]
    if failed:
        raise CheckFailed("the engine reported: " + "; ".join(_event_text(e) for e in failed))
    if not confirmed_in_time or not any(isinstance(e, Progress) and e.confirmed_bytes
                                        for e in events):
        raise CheckFailed(f"OSS confirmed no part within {_UPLOAD_TIMEOUT:.0f} s")
    if row is None or row.state is State.DONE:
        raise CheckFailed("the upload finished before it could be stopped; use more --parts")
    if row.state is not State.PAUSED or not row.upload_id or not recorded:
        raise CheckFailed(f"after the stop the upload is {row.state} with {len(recorded)} "
                          "recorded part(s), not paused with its first part recorded")
    held = {part.number: part for part in client.list_parts(key, row.upload_id)}
    missing = sorted(n for n, part in recorded.items()
                     if n not in held or held[n].etag.strip('"') != part.etag.strip('"'))
    if missing:
        raise CheckFailed(f"the checkpoint records parts {missing} that OSS does not hold")
    kept = sum(part.size for part in recorded.values())

    # Second run: a new engine on the same checkpoint file, as after a restart.
    events = []
    store = Store.open(database)
    try:
        scheduler = Scheduler(store, jobs=1, parallel=min(parts, 4), part_size=part_size,
                              credentials=resolver)
        scheduler.add_listener(events.append)
        continued = scheduler.restore()
        scheduler.start()
        settled = scheduler.wait(_UPLOAD_TIMEOUT)
        scheduler.close(pause=not settled)
        row = store.get(upload)
    finally:
        store.close()
    seconds = time.monotonic() - started
    if continued != [upload]:
        raise CheckFailed(f"the new engine did not pick the stopped upload up ({continued})")
    if not settled:
        raise CheckFailed(f"the continued upload did not finish within {_UPLOAD_TIMEOUT:.0f} s")
    problems = [e for e in events if isinstance(e, Failed)]
    if problems:
        raise CheckFailed("the engine reported: " + "; ".join(_event_text(e) for e in problems))
    resumed = [e for e in events if isinstance(e, Started) and e.upload == upload]
    if not resumed or not resumed[0].resumed or resumed[0].confirmed_bytes != kept:
        raise CheckFailed(f"the upload did not continue from its {kept} confirmed bytes")
    done = [e for e in events if isinstance(e, Done) and e.upload == upload]
    if row is None or row.state is not State.DONE or not done:
        raise CheckFailed(f"the upload ended {'gone' if row is None else row.state}, not done")
    if done[-1].crc64 != expected:
        raise CheckFailed(f"the engine's verified CRC-64 is {done[-1].crc64}, the file's is "
                          f"{expected}")
    # Ask OSS independently: what it stores must be the file, byte for byte.
    info = client.head_object(key)
    if info is None:
        raise CheckFailed("OSS has no object after the upload")
    if info.size != size or info.crc64 != expected:
        raise CheckFailed(f"the stored object has {info.size} bytes and CRC-64 {info.crc64}; "
                          f"the file has {size} bytes and CRC-64 {expected}")
    if crc64(client.get_object_bytes(key)) != expected:
        raise CheckFailed("the object read back differs from the file")
    return (f"{size:,} bytes in {parts} parts to {where.bucket} at {where.url} (credentials "
            f"from {remote.source}): stopped after {len(recorded)} confirmed part(s), continued "
            f"by a new engine, CRC-64 {expected:016x} verified ({seconds:.1f} s)")


def _event_text(event: object) -> str:
    message = getattr(event, "message", "") or ""
    code = getattr(event, "code", "") or getattr(event, "reason", "") or ""
    return f"{type(event).__name__.lower()} {code}: {message}".strip()
