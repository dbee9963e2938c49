"""The window's :class:`~ossdesk.ui.bridge.EngineAdapter` over the engine's Scheduler.

Every request goes to one adapter thread, in order: opening the SQLite store, queueing
100,000 files, pausing, reordering. The GUI thread only submits; the scheduler's events go
straight to the listener (the :class:`EventBridge`, which is thread-safe).

This module imports no Qt: the window runs it in the engine process
(:mod:`ossdesk.engine_host`, driven by :mod:`ossdesk.ui.engine_process`), and in-process
for tests and diagnosis (``OSSDESK_ENGINE_IN_PROCESS=1``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from ossdesk.commands.earlier import EarlierUploads, abort_reason
from ossdesk.core import events as ev
from ossdesk.core.names import printable
from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.scheduler import CredentialResolver, Scheduler
from ossdesk.core.store import (
    HISTORY,
    Folder,
    NewUpload,
    Request,
    State,
    Store,
    StoreBusy,
    StoreError,
    UploadRow,
)
from ossdesk.core.threads import StartThread, start_thread
from ossdesk.core.walk import FoundFile, WalkProblem, join_key, normalize_prefix, walk_request
from ossdesk.credentials import default_credentials
from ossdesk.ui import engine_types as rq
from ossdesk.ui.engine_rows import (
    _DropTally,
    _Waiting,
    _Where,
    folder_info,
    folder_name,
    object_url,
    readable_path,
    transfer_row,
)
from ossdesk.ui.engine_types import (
    EngineUnavailable,
    FoldersAdded,
    RowKey,
    RowsRemoved,
    RowsRestored,
    TransferRow,
    UploadDetails,
)
from ossdesk.ui.settings import Settings

_log = logging.getLogger(__name__)

__all__ = ["HANDLERS", "SchedulerAdapter", "UnknownRequest", "folder_info", "folder_name",
           "handles", "object_url", "readable_path", "transfer_row"]


_R = TypeVar("_R")
_T = TypeVar("_T")
_Handler = Callable[["SchedulerAdapter", Any], Any]

#: The one handler table: each request type of :mod:`ossdesk.ui.engine_types` -> the
#: method of :class:`SchedulerAdapter` that serves it (in the engine process and in-process).
HANDLERS: dict[type, _Handler] = {}


def handles(kind: type[_R]) -> Callable[[Callable[[SchedulerAdapter, _R], _T]],
                                        Callable[[SchedulerAdapter, _R], _T]]:
    """Registers the decorated method as the handler of ``kind``."""

    def register(fn: Callable[[SchedulerAdapter, _R], _T]) -> Callable[[SchedulerAdapter, _R], _T]:
        HANDLERS[kind] = fn
        return fn

    return register


class UnknownRequest(LookupError):
    """A request no handler serves."""


class SchedulerAdapter:
    """Drives a :class:`Scheduler` for the window (see the module docstring)."""

    #: Files in the first ``Scheduler.add`` of an enqueue (the rest go in a second one).
    FIRST_CHUNK = 64

    def __init__(
        self,
        settings: Settings,
        *,
        database: Path | None = None,
        credentials: CredentialResolver = default_credentials,
        scheduler_factory: Callable[[Store], Scheduler] | None = None,
        busy_wait: float = 0.0,
        start_thread: StartThread = start_thread,
    ) -> None:
        """``busy_wait``: seconds to keep trying when another process holds the upload list
        (an engine process of a window that just ended is still pausing its uploads).
        ``start_thread`` starts the scheduler's workers and timers: QThreads in the window's
        process (:func:`ossdesk.ui.qthreads.start_qthread`), plain threads elsewhere."""
        self.settings = settings
        self._busy_wait = busy_wait
        self._database = database
        self._credentials = credentials
        self._factory = scheduler_factory
        self._start_thread = start_thread
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ossdesk-engine"
        )
        self._listener: Callable[[Any], None] | None = None
        self._store: Store | None = None
        self.scheduler: Scheduler | None = None
        self._where: dict[RowKey, _Where] = {}
        self._requests: dict[int, Request] = {}  # by drop number, while a drop is walked
        # The dropped folders of each drop being walked (absolute path -> folder id, None
        # until its first file is queued), and the folders the window has been told of.
        self._drop_folders: dict[int, dict[str, int | None]] = {}
        self._announced: set[int] = set()
        self._tallies: dict[int, _DropTally] = {}  # by drop number, until its EndDrop
        # Earlier rows being cancelled for a file dropped again (row id -> the file), and
        # the outcomes of those cancels that came before their file was noted here.
        self._waiting: dict[int, _Waiting] = {}
        self._watched: set[int] = set()
        self._outcomes: dict[int, ev.Event] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    # ---- plumbing -----------------------------------------------------------------------

    def _submit(self, fn: Callable[[], object]) -> concurrent.futures.Future[object] | None:
        try:
            return self._executor.submit(self._guarded, fn)
        except RuntimeError:  # shut down already
            return None

    def _guarded(self, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - reported to the user as a notice
            _log.exception("engine request failed")
            if self._listener is not None:
                self._listener(ev.Notice(upload=None, message=str(exc)))
            return None

    def _remember(self, rows: Sequence[UploadRow]) -> None:
        with self._lock:
            for r in rows:
                self._where[r.id] = _Where(
                    Path(r.source), r.endpoint, r.bucket, r.key, r.region, r.signature,
                    r.credentials, r.storage_class, dict(r.metadata), r.options, r.folder,
                )

    # ---- EngineAdapter ------------------------------------------------------------------

    def send(self, request: rq.EngineRequest) -> None:
        self.handle(request)

    def ask(self, query: rq.EngineQuery[_T]) -> _T:
        """The answer (BLOCKING for the queries that say so)."""
        return cast(_T, self.handle(query))

    def handle(self, request: object) -> Any:
        """Serve ``request`` by its handler in :data:`HANDLERS`."""
        handler = HANDLERS.get(type(request))
        if handler is None:
            raise UnknownRequest(f"no engine request {type(request).__name__}")
        return handler(self, request)

    def start(self, listener: Callable[[Any], None]) -> None:
        self._listener = listener
        self._submit(self._open)

    def _open_store(self) -> Store:
        deadline = time.monotonic() + self._busy_wait
        while True:
            try:
                return Store.open(self._database)
            except StoreBusy:
                if time.monotonic() >= deadline or self._closed.is_set():
                    raise
                time.sleep(0.25)

    def _open(self) -> None:
        try:
            store = self._open_store()
        except StoreError as exc:
            assert self._listener is not None
            self._listener(EngineUnavailable(str(exc)))
            return
        self._store = store
        s = self.settings
        if self._factory is not None:
            scheduler = self._factory(store)
        else:
            scheduler = Scheduler(
                store,
                jobs=s.files_at_once,
                parallel=s.parts_in_flight,
                rate=s.bandwidth_limit_bytes or 0,
                part_size=s.part_size_bytes,
                credentials=self._credentials,
                reread_limit=s.reread_limit_bytes,
                start_thread=self._start_thread,
            )
        self.scheduler = scheduler
        assert self._listener is not None
        scheduler.add_listener(self._listener)
        scheduler.add_listener(self._on_event)
        self._finish_walks(store)
        rows = store.unfinished()
        self._remember(rows)
        if not s.auto_resume:
            waiting = [r.id for r in rows if r.state in (State.QUEUED, State.RUNNING)]
            if waiting:
                store.set_states(waiting, State.PAUSED, reason=ev.PauseReason.SHUTDOWN)
        self._announce(store, {r.folder for r in rows if r.folder is not None})
        self._listener(
            RowsRestored(tuple(transfer_row(r, auto_resume=s.auto_resume) for r in rows))
        )
        if s.auto_resume:
            scheduler.restore()
        # Then the finished and cancelled rows, as history until the user clears them
        # ("Clear finished" deletes them from the store): after the unfinished ones and
        # their restart, so 20,000 of them delay neither.
        history = store.rows(HISTORY)
        if history:
            self._remember(history)
            self._announce(store, {r.folder for r in history if r.folder is not None})
            self._listener(
                RowsRestored(tuple(transfer_row(r, auto_resume=s.auto_resume) for r in history))
            )

    def _announce(self, store: Store, ids: set[int]) -> None:
        """Tell the window of the folders among ``ids`` it does not know yet (before the
        first row in them)."""
        new = ids - self._announced
        if not new or self._listener is None:
            return
        folders = store.folders(new)
        self._announced.update(f.id for f in folders)
        if folders:
            self._listener(FoldersAdded(tuple(folder_info(f) for f in folders)))

    def _folder_of_root(self, store: Store, request: Request, root: Path) -> Folder:
        """The stored folder of one dropped folder ``root`` of ``request``."""
        prefix = join_key(normalize_prefix(request.prefix), folder_name(root)) + "/"
        return store.folder_for(request.id, root, credentials=request.credentials,
                                endpoint=request.endpoint, bucket=request.bucket,
                                prefix=prefix)

    def _finish_walks(self, store: Store) -> None:
        """Drops whose walk was cut short (the window closed, a crash) are walked again:
        the files not queued yet are queued now (paused with the rest when uploads do not
        resume by themselves), those queued already are not again: a paused or failed one
        goes on in its row, or, when uploads do not resume by themselves, stays as it is
        (a failed one with its error)."""
        assert self._listener is not None
        for request in store.unfinished_requests():
            roots = ", ".join(printable(str(r)) for r in request.roots)
            skipped: list[WalkProblem] = []
            notes: list[WalkProblem] = []
            added = continued = 0

            def on_collision(found: FoundFile, first: Path,
                             into: list[WalkProblem] = skipped) -> None:
                into.append(WalkProblem(found.path, f"{found.path} and {first} both go to "
                                                       f"{found.key}; {found.path} is not added"))

            current: list[int | None] = [None]

            def on_root(root: Path, current: list[int | None] = current,
                        request: Request = request) -> None:
                # Told before the first file of each root is yielded.
                current[0] = (self._folder_of_root(store, request, root).id
                              if root.is_dir() else None)

            try:
                stream = (dataclasses.replace(item, folder=current[0]) for item in walk_request(
                    request, skipped.append, on_root=on_root, on_collision=on_collision))
                while batch := list(itertools.islice(stream, 500)):
                    # Two sources never share one key: a key an unfinished row of another
                    # source has is left out, as the window leaves it out of a drop.
                    taken = store.unfinished_sources(request.endpoint, request.bucket,
                                                     [i.key for i in batch])
                    kept = []
                    for item in batch:
                        others = [s for s in taken.get(item.key, ()) if s != item.source]
                        if others:
                            on_collision(FoundFile(item.source, item.key, item.size,
                                                   item.mtime_ns), others[0])
                        else:
                            kept.append(item)
                    # A file in the queue already (an unfinished row of it from before the
                    # drop, e.g. paused) continues in that row, as in a drop and as
                    # `ossdesk upload` run again: it is queued again below with the rest
                    # (or left as it is when uploads do not resume by themselves).
                    fresh, again = EarlierUploads(store, notes.append, request=request).sort(kept)
                    stopped = [r.id for r in store.rows_for(again)
                               if r.state in (State.PAUSED, State.FAILED)]
                    if stopped and self.settings.auto_resume:
                        store.set_states(stopped, State.QUEUED)
                    continued += len(again)
                    added += len(store.add(fresh, request=request))
                assert request.id is not None
                store.finish_request(request.id)
            except StoreError as exc:
                self._listener(ev.Notice(upload=None, message=(
                    f"The files of {roots} could not all be added ({exc}); {added} were. "
                    "They are added when ossdesk starts next time.")))
                continue
            skipped += [n for n in notes if n.skipped]
            message = (f"Finished adding {roots}, which was still being listed when ossdesk "
                       f"stopped: {added} more file(s) added")
            if skipped:
                message += f"; {len(skipped)} item(s) skipped: " + "; ".join(
                    printable(p.message) for p in skipped[:5])
            self._listener(ev.Notice(upload=None, message=message + "."))
            if continued and self.settings.auto_resume:
                self._listener(ev.Notice(upload=None, message=(
                    f"{continued} file(s) of {roots} were in the queue already: they continue "
                    "there.")))
            elif continued:
                self._listener(ev.Notice(upload=None, message=(
                    f"{continued} file(s) of {roots} were in the queue already: they stay "
                    "there (uploads do not resume by themselves: Resume or Retry continues "
                    "them).")))
            for note in notes:
                if not note.skipped:
                    self._listener(ev.Notice(upload=None, message=printable(note.message)))

    @handles(rq.WaitIdle)
    def _wait_idle(self, r: rq.WaitIdle) -> None:
        """Wait until every request submitted so far has been handled (tests, shutdown)."""
        future = self._submit(lambda: None)
        if future is not None:
            future.result(r.seconds)

    @handles(rq.BeginDrop)
    def _begin_drop(self, r: rq.BeginDrop) -> None:
        drop, destination = r.drop, r.destination
        asked = Request(
            roots=tuple(Path(os.path.abspath(p)) for p in r.roots),
            endpoint=destination.endpoint, bucket=destination.bucket,
            credentials=destination.profile, region=destination.region,
            signature=destination.signature, prefix=destination.prefix,
            part_size=self.settings.part_size_bytes, metadata=dict(destination.metadata),
            storage_class=destination.storage_class, options=destination.options,
        )

        def run() -> None:
            if self._store is not None:
                self._requests[drop] = self._store.begin_request(asked)
                # Each dropped folder is one transfer; its record is made with its first file.
                self._drop_folders[drop] = {str(root): None for root in asked.roots
                                            if root.is_dir()}

        self._submit(run)

    @handles(rq.EndDrop)
    def _end_drop(self, r: rq.EndDrop) -> None:
        def run() -> None:
            request = self._requests.pop(r.drop, None)
            self._drop_folders.pop(r.drop, None)
            tally = self._tallies.pop(r.drop, _DropTally())
            if tally.waiting:  # told once the earlier uploads of those files are cancelled
                tally.ended, tally.request = True, request
                self._tallies[r.drop] = tally
                return
            self._tell_drop(r.drop, tally, request)

        self._submit(run)

    def _tell_drop(self, drop: int, tally: _DropTally, request: Request | None) -> None:
        """Finish the drop's request and say what the engine did with its files."""
        if request is not None and request.id is not None and self._store is not None:
            self._store.finish_request(request.id)
        if self._listener is not None:
            self._listener(tally.told(drop))

    @handles(rq.FindExisting)
    def _find_existing(self, r: rq.FindExisting) -> list[str]:
        """BLOCKING: which keys of ``files`` exist in the bucket (a ranged listing; called
        by the window from a background thread)."""
        destination = r.destination
        endpoint = Endpoint(
            url=destination.endpoint,
            bucket=destination.bucket,
            region=destination.region,
            signature="v1" if destination.signature == "v1" else "v4",
        )
        with OssClient(endpoint, self._credentials(destination.profile)) as client:
            return sorted(client.existing_keys(f.key for f in r.files))

    @handles(rq.Enqueue)
    def _enqueue(self, r: rq.Enqueue) -> None:
        # The upload records are built on the engine's thread, not the GUI thread; the
        # first few reach the scheduler on their own, so the first rows of a big drop
        # show up while the rest of the batch is still being stored.
        batch, destination, existing, drop = list(r.files), r.destination, r.existing, r.drop
        part_size = self.settings.part_size_bytes

        def add() -> None:
            request = self._requests.get(drop) if drop is not None else None
            if drop is not None and request is not None and request.id is not None and \
                    request.existing != existing and self._store is not None:
                self._store.set_request_existing(request.id, existing)
                request = self._requests[drop] = dataclasses.replace(request, existing=existing)
            start, chunk = 0, self.FIRST_CHUNK
            while start < len(batch) and self.scheduler is not None:
                items = [
                    NewUpload(
                        source=Path(f.path),
                        size=f.size,
                        mtime_ns=f.mtime_ns,
                        key=f.key,
                        endpoint=destination.endpoint,
                        bucket=destination.bucket,
                        credentials=destination.profile,
                        region=destination.region,
                        signature=destination.signature,
                        part_size=part_size,
                        existing=existing,
                        metadata=dict(destination.metadata),
                        storage_class=destination.storage_class,
                        options=destination.options,
                        folder=self._folder_of_file(drop, request, f.path),
                    )
                    for f in batch[start : start + chunk]
                ]
                if self._store is not None:
                    self._announce(self._store,
                                   {i.folder for i in items if i.folder is not None})
                start += chunk
                chunk = len(batch)  # then the rest at once: each add has a fixed cost
                tally = self._tallies.setdefault(drop, _DropTally()) if drop is not None \
                    else None
                store = self._store
                if store is not None:
                    items = self._without_earlier(store, self.scheduler, items, request, drop)
                ids = self.scheduler.add(items, request=request) if items else []
                if store is not None:
                    added = [r for r in (store.get(i) for i in ids) if r is not None]
                    self._remember(added)
                    if tally is not None:
                        tally.added += len(added)
                        tally.added_bytes += sum(r.size for r in added)

        self._submit(add)

    def _without_earlier(self, store: Store, scheduler: Scheduler, items: list[NewUpload],
                         request: Request | None, drop: int | None) -> list[NewUpload]:
        """``items`` less the files the upload list has an unfinished row of, to the same
        object with the same account and options (:class:`EarlierUploads`, the rule of
        ``ossdesk upload`` run again): a paused or failed one goes on (its parts kept, its
        place kept), one waiting or being sent is left as it is. Engine thread only."""
        notes: list[WalkProblem] = []

        def cancel(uploads: list[int]) -> None:
            # Watched before the cancel begins: its outcome may come at once.
            with self._lock:
                self._watched.update(uploads)
            scheduler.cancel(uploads)

        earlier = EarlierUploads(store, notes.append, request=request, cancel=cancel,
                                 holds_all=True, defer=True)
        fresh, again = earlier.sort(items)
        rows = store.rows_for(again)
        stopped = [r for r in rows if r.state in (State.PAUSED, State.FAILED)]
        if stopped:
            scheduler.resume([r.id for r in stopped])
        tally = self._tallies.get(drop) if drop is not None else None
        if tally is None:  # not a drop: each said on its own
            for note in notes:
                if self._listener is not None:
                    self._listener(ev.Notice(upload=None, message=note.message))
            self._wait_for_cancels(earlier, notes, request, drop)
            return fresh
        going = {r.id for r in stopped}
        for row in rows:
            if row.id in going:
                tally.continued += 1
                tally.continued_name = tally.continued_name or Path(row.source).name
            else:
                tally.unchanged += 1
                tally.unchanged_name = tally.unchanged_name or Path(row.source).name
        tally.notes.extend(note.message for note in notes[:20 - len(tally.notes)])
        tally.not_added += sum(1 for note in notes if note.skipped)
        self._wait_for_cancels(earlier, notes, request, drop)
        return fresh

    def _wait_for_cancels(self, earlier: EarlierUploads, notes: list[WalkProblem],
                          request: Request | None, drop: int | None) -> None:
        """Note the files of ``earlier.waiting``: each is queued (or not) once the cancel of
        its earlier row has ended. Engine thread only."""
        for item, upload, what in earlier.waiting:
            said = next((n.message for n in notes
                         if n.path == item.source and n.message.startswith(what)), "")
            waiting = _Waiting(item, upload, what, said, request, drop)
            tally = self._tallies.get(drop) if drop is not None else None
            if tally is not None:
                tally.waiting += 1
            # Done before the cancel began: no event will tell (the Done one came first).
            row = self._store.get(upload) if self._store is not None else None
            done = row is not None and row.state is State.DONE
            with self._lock:
                outcome = self._outcomes.pop(upload, None)
                if outcome is None and not done:
                    self._waiting[upload] = waiting
                    continue
                self._watched.discard(upload)
            self._cancel_ended(waiting, outcome)
        earlier.waiting.clear()

    def _on_event(self, event: ev.Event) -> None:
        """The scheduler's events (its threads): the end of the cancel of an earlier row
        a dropped file waits for."""
        if not isinstance(event, (ev.Cancelled, ev.Done, ev.Failed)) or event.upload is None:
            return
        if isinstance(event, ev.Failed) and event.code != "AbortFailed":
            return
        with self._lock:
            if event.upload not in self._watched:
                return
            self._watched.discard(event.upload)
            waiting = self._waiting.pop(event.upload, None)
            if waiting is None:
                self._outcomes[event.upload] = event
                return
        self._submit(lambda: self._cancel_ended(waiting, event))

    def _cancel_ended(self, waiting: _Waiting, outcome: ev.Event | None) -> None:
        """Queue the file whose earlier row is now cancelled (or finished before the
        cancel: the new upload then writes the object after it; ``outcome`` None when it
        was done before the cancel began), or, when that row's upload could not be
        aborted, leave the file out and say why. Engine thread only."""
        item, what = waiting.item, waiting.what
        name = printable(str(item.source))
        if isinstance(outcome, ev.Failed):
            why = abort_reason(outcome.message)
            message = (f"{what}; it could not be aborted on the server ({why}); {name} is "
                       "not uploaded, so that the object is not written with the older "
                       "options later: cancel that row, then add the file again")
            added: list[UploadRow] = []
        else:
            if isinstance(outcome, ev.Cancelled):
                message = (f"{what}; it was cancelled (its multipart upload was aborted on "
                           "the server) and the file is uploaded from the start with this "
                           "run's options")
            else:
                message = (f"{what}; it was finished before it could be cancelled, and the "
                           "file is uploaded again with this run's options")
            ids = (self.scheduler.add([item], request=waiting.request)
                   if self.scheduler is not None else [])
            added = [r for r in (self._store.get(i) for i in ids) if r is not None] \
                if self._store is not None else []
            self._remember(added)
        tally = self._tallies.get(waiting.drop) if waiting.drop is not None else None
        if tally is None:
            if self._listener is not None:
                self._listener(ev.Notice(upload=None, message=message))
            return
        tally.notes = [message if n == waiting.said else n for n in tally.notes]
        if message not in tally.notes and len(tally.notes) < 20:
            tally.notes.append(message)
        tally.added += len(added)
        tally.added_bytes += sum(r.size for r in added)
        tally.not_added += 0 if added else 1
        tally.waiting -= 1
        if tally.ended and not tally.waiting:
            assert waiting.drop is not None
            del self._tallies[waiting.drop]
            self._tell_drop(waiting.drop, tally, tally.request)

    def _folder_of_file(self, drop: int | None, request: Request | None,
                        path: str) -> int | None:
        """The folder id of the dropped folder ``path`` was found in (None: the file was
        dropped on its own, or not through a drop); engine thread only."""
        roots = self._drop_folders.get(drop) if drop is not None else None
        if not roots or request is None or self._store is None:
            return None
        full = os.path.abspath(path)
        for root, known in roots.items():
            if full.startswith(root.rstrip(os.sep) + os.sep):
                if known is not None:
                    return known
                made = roots[root] = self._folder_of_root(self._store, request, Path(root)).id
                return made
        return None

    def _with_scheduler(self, fn: Callable[[Scheduler], object]) -> None:
        def run() -> None:
            if self.scheduler is not None:
                fn(self.scheduler)

        self._submit(run)

    @handles(rq.Pause)
    def _pause(self, r: rq.Pause) -> None:
        uploads = [int(i) for i in r.ids]
        self._with_scheduler(lambda s: s.pause(uploads))

    @handles(rq.Resume)
    def _resume(self, r: rq.Resume) -> None:
        uploads = [int(i) for i in r.ids]
        self._with_scheduler(lambda s: s.resume(uploads))

    @handles(rq.Retry)
    def _retry(self, r: rq.Retry) -> None:
        """Failed uploads continue; cancelled ones start over in their place in the queue
        (a row no longer in the list is queued again at the end)."""
        uploads = [int(i) for i in r.ids]

        def run(s: Scheduler) -> None:
            store = self._store
            if store is None:
                return
            known = [u for u in uploads if store.get(u) is not None]
            if known:
                s.resume(known)
            again: list[tuple[int, NewUpload]] = []
            for upload in uploads:
                if upload in known:
                    continue
                with self._lock:
                    where = self._where.get(upload)
                if where is None:
                    continue
                st = where.source.stat()
                again.append((upload, NewUpload(
                    source=where.source, size=st.st_size, mtime_ns=st.st_mtime_ns,
                    key=where.key, endpoint=where.endpoint, bucket=where.bucket,
                    credentials=where.credentials, region=where.region,
                    signature=where.signature, part_size=self.settings.part_size_bytes,
                    storage_class=where.storage_class, metadata=dict(where.metadata),
                    options=where.options, folder=where.folder,
                )))
            if again and self._listener is not None:
                self._listener(RowsRemoved(tuple(old for old, _ in again)))
                ids_new = s.add([item for _, item in again])
                self._remember([r for r in (store.get(i) for i in ids_new) if r is not None])

        self._with_scheduler(run)

    @handles(rq.Cancel)
    def _cancel(self, r: rq.Cancel) -> None:
        uploads = [int(i) for i in r.ids]
        self._with_scheduler(lambda s: s.cancel(uploads))

    @handles(rq.Remove)
    def _remove(self, r: rq.Remove) -> None:
        uploads = [int(i) for i in r.ids]
        self._with_scheduler(lambda s: s.remove(uploads))

    @handles(rq.Move)
    def _move(self, r: rq.Move) -> None:
        uploads, top = [int(i) for i in r.ids], r.top

        def run(s: Scheduler) -> None:
            if top:
                for upload in reversed(uploads):
                    s.move_to_top(upload)
            else:
                for upload in uploads:
                    s.move_to_bottom(upload)

        self._with_scheduler(run)

    @handles(rq.ClearFinished)
    def _clear_finished(self, r: rq.ClearFinished) -> None:
        self._with_scheduler(lambda s: s.clear_finished())

    @handles(rq.CredentialsChanged)
    def _credentials_changed(self, r: rq.CredentialsChanged) -> None:
        """A profile's secret was saved: its queued, paused and retried files use the new
        one (the engine keeps each profile's credentials once it has asked for them)."""
        profile = r.profile

        def run(s: Scheduler) -> None:
            try:
                credentials = self._credentials(profile)
            except Exception as exc:  # noqa: BLE001 - a removed profile: its files fail
                _log.warning("cannot read the new credentials of %r: %s", profile, exc)
                return
            s.update_credentials(profile, credentials)

        self._with_scheduler(run)

    @handles(rq.ApplySettings)
    def _apply_settings(self, r: rq.ApplySettings) -> None:
        self.settings = settings = r.settings

        def run(s: Scheduler) -> None:
            s.set_limits(
                jobs=settings.files_at_once,
                parallel=settings.parts_in_flight,
                rate=settings.bandwidth_limit_bytes or 0,
            )
            s.part_size = settings.part_size_bytes
            s.reread_limit = settings.reread_limit_bytes

        self._with_scheduler(run)

    def _where_of(self, row: TransferRow) -> _Where:
        with self._lock:
            where = self._where.get(row.id)
        if where is None:
            raise LookupError(f"upload {row.id} is not known")
        return where

    @handles(rq.ObjectUrl)
    def _object_url(self, r: rq.ObjectUrl) -> str:
        where = self._where_of(r.row)
        return object_url(where.endpoint, where.bucket, where.key)

    @handles(rq.Details)
    def _details(self, r: rq.Details) -> UploadDetails | None:
        store = self._store
        row = r.row
        if store is None or not isinstance(row.id, int):
            return None
        found = store.get(row.id)
        if found is None:
            return None
        done = found.state is State.DONE
        return UploadDetails(
            source=str(found.source), size=found.size, account=found.credentials,
            endpoint=found.endpoint, bucket=found.bucket, key=found.key,
            url=object_url(found.endpoint, found.bucket, found.key),
            state=found.state.value, skipped=found.skipped, check=found.checked_by,
            crc64=found.crc64, etag=found.etag,
            upload_id=found.done_upload_id if done else found.upload_id,
            parts=found.done_parts if done else found.confirmed_parts,
            part_size=found.part_size, queued_at=found.created_at,
            started_at=found.started_at, finished_at=found.finished_at,
            head_size=found.head_size, head_parts=found.head_parts,
        )

    @handles(rq.PresignedUrl)
    def _presigned_url(self, r: rq.PresignedUrl) -> str:
        where = self._where_of(r.row)
        endpoint = Endpoint(
            url=where.endpoint,
            bucket=where.bucket,
            region=where.region,
            signature="v1" if where.signature == "v1" else "v4",
        )
        credentials: Credentials = self._credentials(where.credentials)
        with OssClient(endpoint, credentials) as client:
            return client.presign_get(where.key, r.expires_seconds)

    def shutdown(self, *, pause: bool) -> None:
        def close() -> None:
            try:
                if self.scheduler is not None:
                    self.scheduler.close(pause=pause)
            finally:
                if self._store is not None:
                    self._store.close()
                self._closed.set()

        if self._submit(close) is None:
            self._closed.set()
        self._executor.shutdown(wait=False)

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._closed.wait(timeout)
