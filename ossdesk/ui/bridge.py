"""Engine events -> the window, and the window -> the engine.

The engine calls its listeners from worker threads. :class:`EventBridge` is such a
listener: calling it only puts the event on a thread-safe queue. A GUI-thread timer drains
the queue a few times a second, merges progress per upload (the last one wins) and
updates the :class:`~ossdesk.ui.transfer_model.TransferModel`. No Qt object is touched
from a worker thread, and byte counts stay Python ints (64-bit safe).

:class:`EngineAdapter` is everything the window asks of the engine. Its methods must not
block the GUI thread (they hand the request to the engine's own threads), except those
documented as blocking, which the window calls from a worker.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal, Slot

from ossdesk.core import events as ev
from ossdesk.ui.transfer_model import RowKey, TransferModel, TransferRow, TransferState
from ossdesk.ui.walker import SourceFile

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where dropped files go: a profile's bucket and a folder (key prefix) inside it."""

    profile: str
    endpoint: str
    bucket: str
    prefix: str = ""
    region: str | None = None
    signature: str = "v4"

    def key_for(self, relative_key: str) -> str:
        folder = self.prefix.strip("/")
        return f"{folder}/{relative_key}" if folder else relative_key

    def display(self, key: str) -> str:
        return f"oss://{self.bucket}/{key}"


@dataclass(frozen=True, slots=True)
class RowsRestored:
    """Rows read back from the store at start (state and confirmed bytes included)."""

    rows: tuple[TransferRow, ...]


@dataclass(frozen=True, slots=True)
class RowsRemoved:
    """Rows the engine forgot (a cancelled upload queued again gets a new id)."""

    ids: tuple[RowKey, ...]


@dataclass(frozen=True, slots=True)
class EngineUnavailable:
    """The engine could not start (its upload list is locked or unreadable): say why."""

    message: str


class EngineAdapter(Protocol):
    """What the window needs from the engine (see the module docstring on blocking)."""

    def start(self, listener: Callable[[Any], None]) -> None:
        """Begin delivering events (``ossdesk.core.events``, :class:`RowsRestored`,
        :class:`RowsRemoved`) to
        ``listener`` from any thread; restore the unfinished queue from the store."""

    def enqueue(self, files: Sequence[SourceFile], destination: Destination, *,
                existing: str = "overwrite") -> None:
        """Queue files; each becomes a row when its ``Queued`` event arrives. ``existing``:
        ``"overwrite"`` an object already at the key, or ``"skip"`` the file when that
        object has the same size and CRC-64 (the engine checks before sending)."""

    def find_existing(self, files: Sequence[SourceFile], destination: Destination) -> list[str]:
        """BLOCKING (network): the keys among ``files`` that already exist as objects."""

    def pause(self, ids: Sequence[RowKey]) -> None: ...

    def resume(self, ids: Sequence[RowKey]) -> None: ...

    def cancel(self, ids: Sequence[RowKey]) -> None: ...

    def retry(self, ids: Sequence[RowKey]) -> None: ...

    def remove(self, ids: Sequence[RowKey]) -> None: ...

    def move(self, ids: Sequence[RowKey], *, top: bool) -> None: ...

    def clear_finished(self) -> None: ...

    def apply_settings(self, settings: Any) -> None: ...

    def object_url(self, row: TransferRow) -> str:
        """The object's plain URL (pure computation, no I/O)."""

    def presigned_url(self, row: TransferRow, expires_seconds: int) -> str:
        """BLOCKING (reads credentials): a pre-signed GET link valid for that long."""

    def shutdown(self, *, pause: bool) -> None:
        """Stop workers; with ``pause`` every moving upload keeps its place for next time."""


def _file_name(source: str) -> str:
    """The last part of a path, by string splitting: this runs for every queued row on
    the GUI thread, where path objects cost too much."""
    cut = max(source.rfind(os.sep), source.rfind(os.altsep) if os.altsep else -1)
    return source[cut + 1 :]


def row_from_queued(event: ev.Queued) -> TransferRow:
    assert event.upload is not None
    return TransferRow(
        id=event.upload,
        name=_file_name(event.source) or event.key.rsplit("/", 1)[-1],
        source_path=event.source,
        size=event.size,
        destination=f"oss://{event.bucket}/{event.key}",
        bucket=event.bucket,
        key=event.key,
    )


class EventBridge(QObject):
    """A thread-safe engine listener that updates the model on the GUI thread."""

    noticeReceived = Signal(object, str)  # upload id (or None), message
    uploadFailed = Signal(object)  # TransferRow
    queueIdle = Signal()
    engineFailed = Signal(str)
    drained = Signal(int)  # events applied in one tick

    DRAIN_INTERVAL_MS = 200

    def __init__(self, model: TransferModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._timer = QTimer(self)
        self._timer.setInterval(self.DRAIN_INTERVAL_MS)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def __call__(self, event: Any) -> None:
        """The engine listener: safe from any thread; touches no Qt object."""
        self._queue.put(event)

    post = __call__

    def stop(self) -> None:
        self._timer.stop()

    @Slot()
    def drain(self) -> int:
        """Apply every waiting event (progress merged per upload); returns the count."""
        events: list[Any] = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not events:
            return 0
        model = self._model
        new_rows: list[TransferRow] = []
        progress: dict[RowKey, ev.Progress] = {}

        def add_pending_rows() -> None:
            if new_rows:
                model.add_rows(new_rows)
                new_rows.clear()
                new_ids.clear()

        new_ids: set[RowKey] = set()

        for event in events:
            try:
                if isinstance(event, ev.Progress) and event.upload is not None:
                    progress[event.upload] = event
                    continue
                if isinstance(event, RowsRestored):
                    new_rows.extend(event.rows)
                    new_ids.update(r.id for r in event.rows)
                    continue
                if isinstance(event, EngineUnavailable):
                    self.engineFailed.emit(event.message)
                    continue
                if isinstance(event, RowsRemoved):
                    add_pending_rows()
                    model.remove(event.ids)
                    continue
                if isinstance(event, ev.Queued):
                    if event.upload is not None and (
                        event.upload in new_ids or model.index_of(event.upload) is not None
                    ):
                        # Queued again (resume, retry, restore): keep the progress shown.
                        add_pending_rows()
                        model.update(
                            event.upload, state=TransferState.QUEUED, speed=0.0, eta=None,
                            error="", error_detail="",
                        )
                    else:
                        row = row_from_queued(event)
                        new_rows.append(row)
                        new_ids.add(row.id)
                    continue
                add_pending_rows()
                upload = event.upload if isinstance(event, ev.Event) else None
                if upload is not None and upload in progress and not isinstance(event, ev.Started):
                    self._apply_progress(progress.pop(upload))
                self._apply(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the window
                _log.exception("could not apply the engine event %s", type(event).__name__)
        add_pending_rows()
        for item in progress.values():
            self._apply_progress(item)
        model.flush()
        self.drained.emit(len(events))
        return len(events)

    def _apply_progress(self, event: ev.Progress) -> None:
        assert event.upload is not None
        state = self._model.current_state(event.upload)
        if state is None or state.finished or state is TransferState.FAILED:
            return
        self._model.update_progress(
            event.upload, event.confirmed_bytes, event.confirmed_bytes + event.sent_bytes,
            event.speed, event.eta,
        )

    def _apply(self, event: Any) -> None:
        model = self._model
        translate = QCoreApplication.translate
        if isinstance(event, ev.Started) and event.upload is not None:
            model.update(
                event.upload,
                state=TransferState.UPLOADING,
                confirmed_bytes=event.confirmed_bytes,
                sent_bytes=event.confirmed_bytes,
                size=event.size,
                error="",
                error_detail="",
            )
        elif isinstance(event, ev.Paused) and event.upload is not None:
            note = "" if event.reason == ev.PauseReason.USER else event.message
            model.update(
                event.upload, state=TransferState.PAUSED, speed=0.0, eta=None, error=note,
                error_detail=note,
            )
        elif isinstance(event, ev.Done) and event.upload is not None:
            model.update(
                event.upload,
                state=TransferState.SKIPPED if event.skipped else TransferState.DONE,
                confirmed_bytes=event.size,
                sent_bytes=event.size,
                size=event.size,
                speed=0.0,
                eta=None,
                error="",
                error_detail="",
            )
        elif isinstance(event, ev.Failed) and event.upload is not None:
            detail = translate("EventBridge", "%1\n\nError code: %2\nKind: %3\nRetryable: %4")
            detail = (
                detail.replace("%1", event.message)
                .replace("%2", event.code or "-")
                .replace("%3", event.error_kind or "-")
                .replace(
                    "%4",
                    translate("EventBridge", "yes") if event.retryable
                    else translate("EventBridge", "no"),
                )
            )
            model.update(
                event.upload, state=TransferState.FAILED, speed=0.0, eta=None,
                error=event.message, error_detail=detail,
            )
            row = model.row(event.upload)
            if row is not None:
                self.uploadFailed.emit(row)
        elif isinstance(event, ev.Cancelled) and event.upload is not None:
            model.update(event.upload, state=TransferState.CANCELLED, speed=0.0, eta=None)
        elif isinstance(event, ev.Notice):
            self.noticeReceived.emit(event.upload, event.message)
        elif isinstance(event, ev.Idle):
            self.queueIdle.emit()
