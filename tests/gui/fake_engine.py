"""An engine stand-in for window tests: records requests, answers with real engine events
posted from a plain Python thread (as the engine's workers would)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ossdesk.core import events as ev
from ossdesk.ui import engine_types as rq
from ossdesk.ui.bridge import Destination
from ossdesk.ui.engine_types import UploadDetails
from ossdesk.ui.transfer_model import RowKey, TransferRow
from ossdesk.ui.walker import SourceFile

_T = TypeVar("_T")


class FakeEngine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.listener: Callable[[Any], None] | None = None
        self.files: dict[int, SourceFile] = {}
        self.destinations: dict[int, Destination] = {}
        self._ids = itertools.count(1)
        self.closed = False
        self.remote_keys: set[str] = set()  # keys find_existing reports as present
        self.checked: list[list[str]] = []
        self.policies: list[str] = []
        self.drops: list[tuple[str, int]] = []  # ("begin" | "end", drop number)
        self.enqueued_drops: list[int | None] = []
        self.queued_by_drop: dict[int, list[SourceFile]] = {}

    def _post(self, events: list[Any]) -> None:
        assert self.listener is not None
        listener = self.listener
        thread = threading.Thread(target=lambda: [listener(e) for e in events])
        thread.start()
        thread.join()

    def start(self, listener: Callable[[Any], None]) -> None:
        self.listener = listener
        self.calls.append(("start", None))

    def send(self, r: rq.EngineRequest) -> None:
        match r:
            case rq.Enqueue():
                self.enqueue(r.files, r.destination, existing=r.existing, drop=r.drop)
            case rq.BeginDrop():
                self.begin_drop(r.drop, r.roots, r.destination)
            case rq.EndDrop():
                self.end_drop(r.drop)
            case rq.Move():
                self.move(r.ids, top=r.top)
            case rq.Pause() | rq.Resume() | rq.Cancel() | rq.Retry() | rq.Remove():
                getattr(self, type(r).__name__.lower())(r.ids)
            case rq.ClearFinished():
                self.clear_finished()
            case rq.CredentialsChanged():
                self.credentials_changed(r.profile)
            case rq.ApplySettings():
                self.apply_settings(r.settings)
            case _:
                raise TypeError(r)

    def ask(self, q: rq.EngineQuery[_T]) -> _T:
        match q:
            case rq.FindExisting():
                return cast(_T, self.find_existing(q.files, q.destination))
            case rq.ObjectUrl():
                return cast(_T, self.object_url(q.row))
            case rq.Details():
                return cast(_T, self.details(q.row))
            case rq.PresignedUrl():
                return cast(_T, self.presigned_url(q.row, q.expires_seconds))
        raise TypeError(q)

    def find_existing(self, files: Sequence[SourceFile], destination: Destination) -> list[str]:
        self.checked.append([f.key for f in files])
        return sorted(f.key for f in files if f.key in self.remote_keys)

    def begin_drop(self, drop: int, roots: Sequence[str], destination: Destination) -> None:
        self.drops.append(("begin", drop))

    def end_drop(self, drop: int) -> None:
        self.drops.append(("end", drop))
        files = self.queued_by_drop.pop(drop, [])
        self._post([rq.DropQueued(drop, added=len(files),
                                  added_bytes=sum(f.size for f in files))])

    def enqueue(self, files: Sequence[SourceFile], destination: Destination, *,
                existing: str = "overwrite", drop: int | None = None) -> None:
        self.calls.append(("enqueue", [f.key for f in files]))
        self.policies.append(existing)
        self.enqueued_drops.append(drop)
        if drop is not None:
            self.queued_by_drop.setdefault(drop, []).extend(files)
        events = []
        for f in files:
            upload = next(self._ids)
            self.files[upload] = f
            self.destinations[upload] = destination
            events.append(
                ev.Queued(upload=upload, source=f.path, key=f.key, size=f.size,
                          bucket=destination.bucket)
            )
        self._post(events)

    def pause(self, ids: Sequence[RowKey]) -> None:
        self.calls.append(("pause", list(ids)))
        self._post([ev.Paused(upload=int(i), reason="user", message="paused") for i in ids])

    def resume(self, ids: Sequence[RowKey]) -> None:
        self.calls.append(("resume", list(ids)))
        self._post([
            ev.Queued(upload=int(i), source=self.files[int(i)].path, key=self.files[int(i)].key,
                      size=self.files[int(i)].size, bucket="b")
            for i in ids
        ])

    def retry(self, ids: Sequence[RowKey]) -> None:
        self.calls.append(("retry", list(ids)))

    def cancel(self, ids: Sequence[RowKey]) -> None:
        self.calls.append(("cancel", list(ids)))
        self._post([ev.Cancelled(upload=int(i)) for i in ids])

    def remove(self, ids: Sequence[RowKey]) -> None:
        self.calls.append(("remove", list(ids)))

    def move(self, ids: Sequence[RowKey], *, top: bool) -> None:
        self.calls.append(("move_top" if top else "move_bottom", list(ids)))

    def clear_finished(self) -> None:
        self.calls.append(("clear_finished", None))

    def credentials_changed(self, profile: str) -> None:
        self.calls.append(("credentials_changed", profile))

    def apply_settings(self, settings: Any) -> None:
        self.calls.append(("apply_settings", settings))

    def object_url(self, row: TransferRow) -> str:
        return f"https://{row.bucket}.example.invalid/{row.key}"

    def details(self, row: TransferRow) -> UploadDetails | None:
        return None

    def presigned_url(self, row: TransferRow, expires_seconds: int) -> str:
        self.calls.append(("presign", (row.id, expires_seconds)))
        return f"https://{row.bucket}.example.invalid/{row.key}?Expires={expires_seconds}"

    def shutdown(self, *, pause: bool) -> None:
        self.calls.append(("shutdown", pause))
        self.closed = True

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]
