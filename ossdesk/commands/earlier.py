"""A file queued again while an unfinished upload of it is in the list.

``ossdesk upload`` run again (or ``sync``, ``watch``, a walk finished by ``resume``) for a
file whose earlier row, for the same source, endpoint, bucket and key, is still queued,
running (in a process that died), paused or failed: that row is continued as part of this
run, its confirmed parts kept, instead of a second row starting from zero. When this run
asks for the object to be written differently (another account, storage class, metadata,
headers, tags, encryption, or an ``--existing`` policy while its multipart upload has not
begun yet: after that the policy is not applied), the earlier upload is cancelled first
(its multipart upload aborted on the server, the row kept as cancelled) and the file is
uploaded from the start; if that abort fails the file is not uploaded, so the bucket never
ends up holding the older options.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ossdesk.core.cleanup import abort_upload, client_for_row, failure_reason
from ossdesk.core.events import Cancelled, Done, Event, Failed
from ossdesk.core.oss import OssError
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, Request, State, Store, UploadRow
from ossdesk.core.upload import UploadError
from ossdesk.core.walk import WalkProblem
from ossdesk.credentials import default_credentials

__all__ = ["Cancels", "EarlierUploads", "abort_reason", "cancel_row"]

#: How the engine words a failed abort (core/file_steps.py), around its reason.
_ABORT_FAILED = ("not cancelled: its unfinished upload could not be aborted on the server (",
                 "); cancel it again to abort it")


def _listed(items: Collection[str]) -> str:
    names = list(items)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def cancel_row(store: Store, row: UploadRow) -> str | None:
    """Abort the row's multipart upload (if it has one) and keep the row as cancelled; the
    reason when the abort failed (the row is then left as it was)."""
    if row.upload_id:
        try:
            creds = default_credentials(row.credentials)
            with client_for_row(row, creds) as client:
                abort_upload(client, row.key, row.upload_id)
        except (OssError, UploadError) as exc:
            return failure_reason(exc) if isinstance(exc, OssError) else exc.message
    store.cancelled(row.id)
    return None


def abort_reason(message: str) -> str:
    """The reason in the message of a row whose abort failed (the message if not one)."""
    head, tail = _ABORT_FAILED
    if message.startswith(head) and message.endswith(tail):
        return message[len(head):-len(tail)]
    return message


class Cancels:
    """Cancels begun through a scheduler, and how each ended: :class:`Cancelled`,
    :class:`Done` (it finished before the cancel reached it) or :class:`Failed` with the
    code ``AbortFailed`` (its multipart upload is still on the server)."""

    def __init__(self, scheduler: Scheduler, store: Store) -> None:
        self._scheduler = scheduler
        self._store = store
        self._cond = threading.Condition()
        self._watched: set[int] = set()
        self._ended: dict[int, Event] = {}
        scheduler.add_listener(self._on_event)

    def cancel(self, uploads: list[int]) -> None:
        with self._cond:
            self._watched.update(uploads)
        self._scheduler.cancel(uploads)

    def _on_event(self, event: Event) -> None:
        if event.upload is None or not isinstance(event, (Cancelled, Done, Failed)):
            return
        if isinstance(event, Failed) and event.code != "AbortFailed":
            return
        with self._cond:
            if event.upload in self._watched:
                self._watched.discard(event.upload)
                self._ended[event.upload] = event
                self._cond.notify_all()

    def wait(self, upload: int) -> Event | None:
        """How the cancel of ``upload`` ended (waits for it; Ctrl-C stops the wait); None
        when the row was done before the cancel began (no event tells of that)."""
        with self._cond:
            while upload not in self._ended:
                row = self._store.get(upload)
                if row is not None and row.state is State.DONE and upload not in self._ended:
                    self._watched.discard(upload)
                    return None
                self._cond.wait(0.2)
            return self._ended.pop(upload)


@dataclass
class EarlierUploads:
    """Sorts each batch of files about to be queued: files to queue as new rows, and earlier
    unfinished rows of the same files to continue (see the module's description)."""

    store: Store
    #: A file that is not uploaded (its earlier upload could not be aborted), as a problem.
    on_problem: Callable[[WalkProblem], None]
    #: The request this run queues for: its own rows (and those queued since it began) are
    #: not "earlier".
    request: Request | None = None
    #: Rows this run is already sending (``resume``): cancelled through ``cancel`` (the
    #: scheduler stops them first), never aborted under its feet.
    ours: Collection[int] = ()
    cancel: Callable[[list[int]], None] | None = None
    #: The caller's scheduler holds every unfinished row of the list (the window's engine):
    #: an earlier row to replace is cancelled through ``cancel`` too, never behind its back.
    holds_all: bool = False
    #: When this run began resuming ``ours``: rows of them done since are still its own.
    since: float | None = None
    #: The caller queues a file whose earlier row it cancels through ``cancel`` only once
    #: that row is cancelled (:attr:`waiting`), never at once: an abort that fails leaves
    #: the row able to finish later with the older options, after the new one.
    defer: bool = False
    #: Earlier rows continued so far, and those cancelled for a new row.
    continued: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    #: With ``defer``: each file left out of :meth:`sort` until its earlier row (the id,
    #: being cancelled) is gone, with what was said of it so far.
    waiting: list[tuple[NewUpload, int, str]] = field(default_factory=list)

    def sort(self, batch: list[NewUpload]) -> tuple[list[NewUpload], list[int]]:
        """``(files to queue as new rows, earlier rows to continue)``; the rows to continue
        are made part of :attr:`request` (when given)."""
        fresh: list[NewUpload] = []
        again: list[int] = []
        joined: list[int] = []
        found = self.store.unfinished_for(batch, request=self.request,
                                          finished_since=self.since)
        for item, row in zip(batch, found, strict=True):
            if row is None:
                fresh.append(item)
                continue
            # The policy for an object already there is applied before a multipart upload
            # begins; once it has begun, another policy changes nothing.
            asked = dataclasses.replace(item, existing=row.existing) if row.upload_id else item
            differs = asked.written_differently(row)
            if differs and row.state is State.DONE:  # finished by this run meanwhile
                self.on_problem(WalkProblem(
                    item.source, f"{item.key}: uploaded by this run (row {row.id}) with "
                    f"{_listed(differs)} than its walk asks for; it is uploaded again with "
                    "the walk's options", skipped=False))
                fresh.append(item)
                continue
            if not differs:
                joined.append(row.id)
                if row.id not in self.ours:
                    again.append(row.id)
            elif self._replace(item, row, differs):
                fresh.append(item)
        if joined and self.request is not None and self.request.id is not None:
            self.store.join_request(joined, self.request.id)
        self.continued.extend(again)
        return fresh, again

    def _replace(self, item: NewUpload, row: UploadRow, differs: tuple[str, ...]) -> bool:
        """Cancel ``row`` for ``item``, saying so; False (and a problem) when its upload could
        not be aborted, so ``item`` is not queued."""
        what = (f"{item.key}: the unfinished upload of {row.source} in the list (row {row.id}) "
                f"was to be written with {_listed(differs)}")
        if (item.size, item.mtime_ns) != (row.size, row.mtime_ns):
            what += " (and the file changed since it began)"
        if (row.id in self.ours or self.holds_all) and self.cancel is not None:
            self.cancel([row.id])
            if self.defer:
                self._say(item, f"{what}; it is being cancelled (its multipart upload is being "
                          "aborted on the server), then the file is uploaded from the start "
                          "with this run's options")
                self.waiting.append((item, row.id, what))
                self.cancelled.append(row.id)
                return False
            self._say(item, f"{what}; it is cancelled (its multipart upload is aborted on the "
                      "server) and the file is uploaded from the start with this run's options")
            self.cancelled.append(row.id)
            return True
        why = cancel_row(self.store, row)
        if why is not None:
            self.on_problem(WalkProblem(
                item.source,
                f"{what}, and it could not be aborted on the server ({why}); "
                f"{item.source} is not uploaded, so that the object is not written with "
                f"the older options later: run `ossdesk cancel {row.id}`, then this "
                "command again"))
            return False
        how = ("its multipart upload was aborted on the server" if row.upload_id
               else "nothing of it was on the server")
        self._say(item, f"{what}; it was cancelled ({how}) and the file is uploaded from the start "
                  "with this run's options")
        self.cancelled.append(row.id)
        return True

    def _say(self, item: NewUpload, message: str) -> None:
        self.on_problem(WalkProblem(item.source, message, skipped=False))

    def note(self) -> str | None:
        """One line for the rows continued, if any."""
        if not self.continued:
            return None
        return (f"{len(self.continued)} file(s) had an unfinished upload in the list: "
                "continued as part of this run, not queued again")
