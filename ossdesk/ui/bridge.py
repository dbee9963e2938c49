"""Engine events -> the window, and the window -> the engine.

The engine calls its listeners from other threads (the reader QThread of the engine's
pipe hands it each read as one batch). :class:`EventBridge` is such a listener: it emits
the events as its ``received`` signal (typed ``object``: byte counts stay Python ints,
64-bit safe), queued into the GUI thread, where the first batch to arrive starts a short
timer; its tick merges progress per upload (the last one wins) and updates the
:class:`~ossdesk.ui.transfer_model.TransferModel`, a few milliseconds of work at most,
and a backlog is worked off in ticks 16 ms apart. No Qt object but the signal is touched
from another thread.

:class:`EngineAdapter` is everything the window asks of the engine. Its methods must not
block the GUI thread (they hand the request to the engine's own threads), except those
documented as blocking, which the window calls from a worker.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal, Slot

from ossdesk.core import events as ev
from ossdesk.ui.engine_text import engine_text, kind_text, restored_row

# The engine's messages are defined Qt-free (the engine process sends them); re-exported.
from ossdesk.ui.engine_types import Destination as Destination  # noqa: PLC0414
from ossdesk.ui.engine_types import DropQueued, EngineQuery, EngineRequest
from ossdesk.ui.engine_types import EngineUnavailable as EngineUnavailable  # noqa: PLC0414
from ossdesk.ui.engine_types import FoldersAdded as FoldersAdded  # noqa: PLC0414
from ossdesk.ui.engine_types import RowsRemoved as RowsRemoved  # noqa: PLC0414
from ossdesk.ui.engine_types import RowsRestored as RowsRestored  # noqa: PLC0414
from ossdesk.ui.transfer_model import RowKey, TransferModel, TransferRow, TransferState

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class EngineAdapter(Protocol):
    """What the window needs from the engine: requests and queries are the dataclasses of
    :mod:`ossdesk.ui.engine_types` (see the module docstring on blocking)."""

    def start(self, listener: Callable[[Any], None]) -> None:
        """Begin delivering events (``ossdesk.core.events``, :class:`RowsRestored`,
        :class:`RowsRemoved`) to ``listener`` from any thread; restore the unfinished
        queue from the store."""

    def send(self, request: EngineRequest) -> None:
        """Hand ``request`` to the engine's threads; returns at once."""

    def ask(self, query: EngineQuery[_T]) -> _T:
        """The answer; BLOCKING for the queries that say so (called from a worker)."""

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
        profile=event.account,
        folder=event.folder,
    )


class EventBridge(QObject):
    """A thread-safe engine listener that updates the model on the GUI thread."""

    noticeReceived = Signal(object, str)  # upload id (or None), message
    uploadFailed = Signal(object)  # TransferRow
    queueIdle = Signal()
    engineFailed = Signal(str)
    dropQueued = Signal(object)  # DropQueued: what the engine did with a drop's files
    drained = Signal(int)  # events applied in one tick
    #: Engine events (a list: one read of the engine's pipe, or the single events gathered
    #: since the GUI thread last took them), emitted from any thread, queued to the GUI.
    received = Signal(object)

    #: Events that arrive are applied this long after the first of them (so a stream of
    #: small batches is applied a few times a second, with paints between).
    DRAIN_INTERVAL_MS = 200
    #: With events still waiting after a tick, the next one comes this soon.
    BACKLOG_INTERVAL_MS = 16
    #: A timer tick stops applying events after about this long (seconds) ...
    DRAIN_BUDGET_S = 0.008
    #: ... checked after each chunk of this many rows' worth of events.
    DRAIN_CHUNK = 200

    def __init__(self, model: TransferModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._backlog: collections.deque[Any] = collections.deque()  # GUI thread only
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.DRAIN_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._stopped = False
        self._lock = threading.Lock()
        self._gathered: list[Any] = []  # single events not taken by the GUI thread yet
        self.received.connect(self._receive)
        # Rows showing "Retrying ...": their confirmed bytes then (cleared when they grow).
        self._retrying: dict[RowKey, int] = {}
        # Files failed in the batch being applied: (id, error, its detail).
        self._failures: list[tuple[RowKey, str, str]] = []

    def __call__(self, event: Any) -> None:
        """The listener of single events (the in-process engine's threads): safe from any
        thread; one signal wakes the GUI thread, which takes all gathered by then."""
        with self._lock:
            self._gathered.append(event)
            if len(self._gathered) > 1:
                return
        self.received.emit([])

    def post_batch(self, events: list[Any]) -> None:
        """Events of one read of the engine's pipe: safe from any thread."""
        self.received.emit(events)

    @Slot(object)
    def _receive(self, events: list[Any]) -> None:
        with self._lock:
            gathered, self._gathered = self._gathered, []
        self._backlog.extend(gathered)
        self._backlog.extend(events)
        if not self._stopped and not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        self._stopped = True
        self._timer.stop()

    @Slot()
    def drain(self) -> int:
        """Apply every waiting event (progress merged per upload); returns the count."""
        return self._drain(budget=None)

    @Slot()
    def _tick(self) -> int:
        """The timer's drain: at most about DRAIN_BUDGET_S of work, so a burst of events
        (10,000 rows queued at once) is spread over several ticks with paints between."""
        return self._drain(budget=self.DRAIN_BUDGET_S)

    def _take(self, limit: int) -> list[Any]:
        """The next events, up to ``limit`` rows' worth (progress events are cheap and do
        not count; a large RowsRestored is cut into pieces)."""
        events: list[Any] = []
        weight = 0
        while weight < limit:
            if not self._backlog:
                break
            event = self._backlog.popleft()
            if isinstance(event, RowsRestored) and len(event.rows) > limit:
                self._backlog.appendleft(RowsRestored(event.rows[limit:]))
                event = RowsRestored(event.rows[:limit])
            events.append(event)
            if isinstance(event, RowsRestored):
                weight += len(event.rows)
            elif not isinstance(event, ev.Progress):
                weight += 1
        return events

    def _drain(self, *, budget: float | None) -> int:
        started = time.perf_counter()
        # Batches emitted by other threads and not yet delivered are taken in first.
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)
        applied = 0
        while True:
            events = self._take(self.DRAIN_CHUNK)
            if not events:
                break
            self._apply_events(events)
            applied += len(events)
            if budget is not None and time.perf_counter() - started >= budget:
                break
        if not self._stopped:
            more = bool(self._backlog)
            self._timer.setInterval(self.BACKLOG_INTERVAL_MS if more else self.DRAIN_INTERVAL_MS)
            if more:
                self._timer.start()
        if applied:
            self._model.flush()
            self.drained.emit(applied)
        return applied

    def _apply_events(self, events: list[Any]) -> None:
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
                    new_rows.extend(restored_row(r) for r in event.rows)
                    new_ids.update(r.id for r in event.rows)
                    continue
                if isinstance(event, FoldersAdded):
                    model.add_folders(event.folders)  # the rows that follow go into them
                    continue
                if isinstance(event, EngineUnavailable):
                    self.engineFailed.emit(engine_text(event.message))
                    continue
                if isinstance(event, DropQueued):
                    add_pending_rows()  # its rows are shown before it is told
                    self.dropQueued.emit(event)
                    continue
                if isinstance(event, RowsRemoved):
                    add_pending_rows()
                    model.remove(event.ids)
                    continue
                if isinstance(event, ev.Queued):
                    if event.upload is not None and (
                        event.upload in new_ids or model.contains(event.upload)
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
        self._tell_failures()

    def _tell_failures(self) -> None:
        """Emit :attr:`uploadFailed` for the files failed in the batch just applied (each
        with the error it failed with, even if a later event of the batch queued it
        again)."""
        failures, self._failures = self._failures, []
        if not failures:
            return
        try:
            found = {row.id: row for row in self._model.rows_of([f[0] for f in failures])}
        except Exception:  # noqa: BLE001 - the window goes on without these messages
            _log.exception("could not read the failed files")
            return
        for key, message, detail in failures:
            row = found.get(key)
            if row is not None:
                row = replace(row, state=TransferState.FAILED, speed=0.0, eta=None,
                              error=message, error_detail=detail)
                self.uploadFailed.emit(row)

    def _apply_progress(self, event: ev.Progress) -> None:
        assert event.upload is not None
        state = self._model.current_state(event.upload)
        if state is None or state.finished:
            return
        if state is TransferState.FAILED:
            # The file's last progress (its meter's flush as it stops) can follow its
            # failure: what OSS confirmed and what was sent are shown, nothing moving.
            confirmed = event.confirmed_bytes
            self._model.update(event.upload, confirmed_bytes=confirmed,
                               sent_bytes=confirmed + event.sent_bytes)
            return
        noted = self._retrying.get(event.upload)
        if noted is not None and event.confirmed_bytes > noted:
            # The try after the retry note got through: the note is no longer true.
            del self._retrying[event.upload]
            self._model.update(event.upload, error="", error_detail="")
        self._model.update_progress(
            event.upload, event.confirmed_bytes, event.confirmed_bytes + event.sent_bytes,
            event.speed, event.eta,
        )

    def _apply(self, event: Any) -> None:
        model = self._model
        translate = QCoreApplication.translate
        if isinstance(event, ev.Event) and event.upload is not None:
            self._retrying.pop(event.upload, None)
        if isinstance(event, ev.Retrying) and event.upload is not None:
            state = model.current_state(event.upload)
            if state is None or not state.active:
                return
            # A request of this upload failed; %4 is what failed (in English, from the engine).
            note = (
                translate("EventBridge", "Retrying in %1 s (attempt %2 of %3): %4")
                .replace("%1", str(max(1, round(event.delay))))
                .replace("%2", str(event.attempt))
                .replace("%3", str(event.tries))
                .replace("%4", engine_text(event.reason))
            )
            model.update(event.upload, speed=0.0, eta=None, error=note, error_detail=note)
            self._retrying[event.upload] = model.current_confirmed(event.upload) or 0
        elif isinstance(event, ev.Started) and event.upload is not None:
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
            note = "" if event.reason == ev.PauseReason.USER else engine_text(event.message)
            model.update(
                event.upload, state=TransferState.PAUSED, speed=0.0, eta=None, error=note,
                error_detail=note,
            )
        elif isinstance(event, ev.Done) and event.upload is not None:
            model.update(
                event.upload,
                state=TransferState.SKIPPED if event.skipped else TransferState.DONE,
                check="" if event.skipped else event.check,
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
            message = engine_text(event.message)
            detail = (
                detail.replace("%1", message)
                .replace("%2", event.code or "-")
                .replace("%3", kind_text(event.error_kind) or "-")
                .replace(
                    "%4",
                    translate("EventBridge", "yes") if event.retryable
                    else translate("EventBridge", "no"),
                )
            )
            model.update(
                event.upload, state=TransferState.FAILED, speed=0.0, eta=None,
                error=message, error_detail=detail,
            )
            # Told once the batch is applied: the failed files of a folder are read from
            # the upload list together, not one read per file.
            self._failures.append((event.upload, message, detail))
        elif isinstance(event, ev.Cancelled) and event.upload is not None:
            model.update(event.upload, state=TransferState.CANCELLED, speed=0.0, eta=None)
        elif isinstance(event, ev.Notice):
            self.noticeReceived.emit(event.upload, engine_text(event.message))
        elif isinstance(event, ev.Idle):
            self._tell_failures()  # what failed is told before the queue stopped
            self.queueIdle.emit()
