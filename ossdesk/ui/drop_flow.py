"""A drop, from the dropped paths to queued rows: the window owns one :class:`DropFlow`.

Dropped paths (or Add files / Add folder) are walked by a :class:`WalkJob` (worker thread);
files whose key another source already has are left out after one question per drop; each
batch is checked against the bucket (off the GUI thread) and the user is asked once per drop
what to do with files already there; then the batch goes to the engine. What was left out
(and why) is kept in :attr:`DropFlow.problems` behind the status bar's button.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from ossdesk.core.names import printable
from ossdesk.ui import engine_types as rq
from ossdesk.ui.bridge import Destination
from ossdesk.ui.engine_text import engine_text
from ossdesk.ui.formatting import format_size
from ossdesk.ui.qthreads import BackgroundCall
from ossdesk.ui.refusals import refusal_text
from ossdesk.ui.walker import Problem, ProblemKind, SourceFile, WalkJob, WalkSummary

if TYPE_CHECKING:
    from ossdesk.ui.main_window import MainWindow


# What to do with files of a drop whose key already exists in the bucket.
EXISTING_SKIP = "skip"  # skip those whose object is identical (size + CRC-64); send the rest
EXISTING_OVERWRITE = "overwrite"
EXISTING_CANCEL = "cancel"  # the rest of the drop is not added


@dataclass
class _Drop:
    """One drop (or Add files / Add folder) while its files are walked and checked.

    Until the user has been asked, each batch is checked against the bucket (off the GUI
    thread) before it is queued; the first batch with keys that exist asks once, and the
    answer applies to the rest of the drop. Batches wait in ``pending``, in order.
    """

    destination: Destination
    policy: str | None = None
    pending: list[list[SourceFile]] = field(default_factory=list)
    checking: bool = False
    walking: bool = True
    job: WalkJob | None = None
    # object key -> the source that has it: unfinished rows of the bucket when the drop
    # began, then every file this drop queued. A later source for a key is a collision.
    claims: dict[str, str] = field(default_factory=dict)
    skip_collisions: bool = False  # the user chose "skip the later ones" for this drop
    asking: bool = False  # the collision question is open; batches wait in ``held``
    held: list[list[SourceFile]] = field(default_factory=list)
    #: The walk was stopped before its end (the window closing): the engine finishes the
    #: drop when it starts next time, so it is not told that the drop is complete.
    cut_short: bool = False
    # The items the drop left out: told once it is complete (never while a question about
    # it is still open), with what the engine put in the queue.
    skipped: int = 0
    #: A warning to repeat with what was added (e.g. the bucket could not be checked).
    warning: str = ""


class DropFlow(QObject):
    """Walks, checks and queues the window's drops; keeps what was left out and why."""

    existingChecked = Signal()  # a drop's batch was checked and handled (tests wait on it)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.walk_jobs: list[WalkJob] = []
        self._drops: dict[int, _Drop] = {}  # by drop number
        self._drop_of_job: dict[int, int] = {}  # id(WalkJob) -> drop number, while it walks
        self._drop_numbers = itertools.count(1)
        # Complete drops whose outcome the engine has not told yet (by drop number).
        self._telling: dict[int, _Drop] = {}
        self.problems: list[Problem] = []

    @property
    def window(self) -> MainWindow:
        """The window that owns this flow: its Qt parent (no reference cycle keeps the
        window alive)."""
        return cast("MainWindow", self.parent())

    def add_paths(self, paths: Sequence[str]) -> WalkJob | None:
        """Walk ``paths`` off the GUI thread and queue every file found."""
        destination = self.window.destination_bar.destination()
        if destination is None:
            self.window.statusBar().showMessage(
                self.tr("Choose an account and a bucket before adding files."), 10_000
            )
            if not self.window.destination_bar.profiles:
                self.window.stack.setCurrentWidget(self.window.first_run)
            return None
        model = self.window.model
        unfinished = [
            r for r in model.rows(full=False)
            if not r.state.finished and r.bucket == destination.bucket
        ]
        # A file the queue has already is not left out here: the engine decides from the
        # upload list (the same file to the same object continues its row; to another
        # object it is another upload) and says what it did (DropQueued).
        job = WalkJob(paths, prefix=destination.prefix, parent=self)
        number = next(self._drop_numbers)
        claims = {model.key_of(r): r.source_path for r in unfinished}
        self._drops[number] = _Drop(destination, job=job, claims=claims)
        if self.window.engine is not None:  # recorded before the walk starts
            self.window.engine.send(rq.BeginDrop(number, list(paths), destination))
        self._drop_of_job[id(job)] = number
        job.batchReady.connect(self._on_walk_batch)
        job.problemsFound.connect(self._on_walk_problems)
        job.finished.connect(self._on_walk_finished)
        self.walk_jobs.append(job)
        self.window.stack.setCurrentWidget(self.window.view)
        self.window.statusBar().showMessage(self.tr("Looking for files…"))
        job.start()
        return job

    @Slot(object)
    def _on_walk_batch(self, files: object) -> None:
        number = self._drop_of_job.get(id(self.sender()), 0)
        drop = self._drops.get(number)
        if drop is None or not isinstance(files, list):
            return
        self._take_batch(number, [f for f in files if isinstance(f, SourceFile)])

    def _take_batch(self, number: int, keyed: list[SourceFile]) -> None:
        """Queue a batch of the drop: collisions first, then the "already there" check."""
        drop = self._drops.get(number)
        if drop is None or self.window.engine is None or not keyed \
                or drop.policy == EXISTING_CANCEL:
            return
        if drop.asking:
            drop.held.append(keyed)
            return
        keyed = self._without_collisions(number, drop, keyed)
        if keyed:
            self._check_or_queue(number, drop, keyed)
        while drop.held and not drop.asking and drop.policy != EXISTING_CANCEL:
            self._take_batch(number, drop.held.pop(0))
        self._forget_drop_if_done(number)

    def _claimed(self, drop: _Drop, key: str) -> str | None:
        """The source that already goes to ``key`` (this drop, the queue, or another drop
        into the same bucket still being added), or None."""
        first = drop.claims.get(key)
        if first is None:
            for other in self._drops.values():
                if other is not drop and other.destination.bucket == drop.destination.bucket:
                    first = other.claims.get(key)
                    if first is not None:
                        break
        return first

    def _without_collisions(self, number: int, drop: _Drop,
                            files: list[SourceFile]) -> list[SourceFile]:
        """``files`` less those whose key another source has; the user is asked once per
        drop whether to skip those (and go on) or cancel the drop."""
        fresh: list[SourceFile] = []
        clashes: list[tuple[SourceFile, str]] = []
        mine: dict[str, str] = {}
        for f in files:
            first = mine.get(f.key) or self._claimed(drop, f.key)
            if first is not None and first != f.path:
                clashes.append((f, first))
            else:
                mine.setdefault(f.key, f.path)
                fresh.append(f)
        if clashes and not drop.skip_collisions:
            drop.asking = True
            try:
                skip = self.ask_collisions(clashes)
            finally:
                drop.asking = False
            if not skip:
                drop.policy = EXISTING_CANCEL
                drop.pending.clear()
                drop.held.clear()
                if drop.job is not None:
                    drop.job.cancel()
                self.window.statusBar().showMessage(self.tr("The drop was cancelled."), 10_000)
                return []
            drop.skip_collisions = True
        if clashes:
            drop.skipped += len(clashes)
            self.problems.extend(
                Problem(f.path, ProblemKind.COLLISION, f.key, other=first)
                for f, first in clashes)
            self.update_problems_button()
        drop.claims.update(mine)
        return fresh

    def collision_lines(self, clashes: Sequence[tuple[SourceFile, str]]) -> list[str]:
        return [self.tr("%1 and %2 both go to %3").replace("%1", printable(f.path))
                .replace("%2", printable(first)).replace("%3", printable(f.key))
                for f, first in clashes]

    def collision_box(self, clashes: Sequence[tuple[SourceFile, str]]) -> QMessageBox:
        """The question asked once per drop when two of its files (or one of its files and
        an unfinished upload) would go to one object key."""
        box = QMessageBox(self.window)
        box.setObjectName("collisionBox")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("Two files for one name"))
        box.setText(self.tr("%n file(s) would go to a name in the bucket that another file "
                            "already goes to.", "", len(clashes)))
        box.setInformativeText(self.tr(
            "One object can hold only one of them. Skip the later ones: the first file for "
            "each name is uploaded and the others are not added. Cancel the drop: nothing "
            "more of it is added."))
        box.setDetailedText("\n".join(self.collision_lines(clashes[:1000])))
        skip = box.addButton(self.tr("Skip the later ones"), QMessageBox.ButtonRole.AcceptRole)
        skip.setObjectName("skipLater")
        cancel = box.addButton(self.tr("Cancel the drop"), QMessageBox.ButtonRole.RejectRole)
        cancel.setObjectName("cancelDrop")
        box.setDefaultButton(skip)
        box.setEscapeButton(cancel)
        return box

    def ask_collisions(self, clashes: Sequence[tuple[SourceFile, str]]) -> bool:
        """True to skip the later files of each key and go on; False to cancel the drop."""
        box = self.collision_box(clashes)
        box.exec()
        clicked = box.clickedButton()
        skip = clicked is not None and clicked.objectName() == "skipLater"
        box.deleteLater()
        return skip

    def _enqueue(self, number: int, drop: _Drop, batch: list[SourceFile], existing: str) -> None:
        if self.window.engine is not None:
            self.window.engine.send(rq.Enqueue(batch, drop.destination, existing, number))

    def _check_or_queue(self, number: int, drop: _Drop, keyed: list[SourceFile]) -> None:
        if self.window.engine is None or not keyed or drop.policy == EXISTING_CANCEL:
            return
        if drop.policy is not None and not drop.pending and not drop.checking:
            self._enqueue(number, drop, keyed, drop.policy)
            return
        drop.pending.append(keyed)
        self._check_next(number)

    def _check_next(self, drop_key: int) -> None:
        """Check the drop's next waiting batch against the bucket, off the GUI thread."""
        drop = self._drops.get(drop_key)
        engine = self.window.engine
        if drop is None or drop.checking or engine is None:
            return
        if not drop.pending:
            self._forget_drop_if_done(drop_key)
            return
        if drop.policy is not None:  # decided meanwhile: the rest goes as decided
            batches, drop.pending = drop.pending, []
            if drop.policy != EXISTING_CANCEL:
                for batch in batches:
                    self._enqueue(drop_key, drop, batch, drop.policy)
            self._forget_drop_if_done(drop_key)
            return
        drop.checking = True
        batch, destination = drop.pending[0], drop.destination

        def check() -> tuple[int, list[str] | None, str]:
            try:
                return drop_key, engine.ask(rq.FindExisting(batch, destination)), ""
            except Exception as exc:  # noqa: BLE001 - the files are queued anyway, said so
                return drop_key, None, getattr(exc, "message", None) or str(exc)

        call = BackgroundCall(check, self)
        call.succeeded.connect(self._on_existing_checked)
        call.start()

    @Slot(object)
    def _on_existing_checked(self, result: object) -> None:
        if not isinstance(result, tuple):
            return
        drop_key: int = result[0]
        existing: list[str] | None = result[1]
        problem: str = result[2]
        drop = self._drops.get(drop_key)
        if drop is None or self.window.engine is None:
            return
        batch = drop.pending.pop(0) if drop.pending else []
        policy = drop.policy
        if policy is None and existing:
            # Still "checking" while the question is open: batches that arrive meanwhile
            # wait for the answer instead of asking again.
            policy = drop.policy = self.ask_existing(len(existing), existing)
            if policy == EXISTING_CANCEL:
                drop.pending.clear()
                if drop.job is not None:
                    drop.job.cancel()
        elif policy is None and existing is None:
            drop.warning = self.tr("Could not check which files already exist (%1); they are "
                                   "uploaded and replace what is there.").replace(
                                       "%1", engine_text(problem))
            self.window.statusBar().showMessage(drop.warning, 10_000)
        drop.checking = False
        if batch and policy != EXISTING_CANCEL:
            self._enqueue(drop_key, drop, batch, policy or EXISTING_OVERWRITE)
        self.existingChecked.emit()
        self._check_next(drop_key)

    def _forget_drop_if_done(self, drop_key: int) -> None:
        drop = self._drops.get(drop_key)
        if drop is not None and not drop.walking and not drop.pending and not drop.checking \
                and not drop.asking and not drop.held:
            del self._drops[drop_key]
            if self.window.engine is not None and not drop.cut_short:
                # What the drop put in the queue is told when the engine says what it did.
                self._telling[drop_key] = drop
                self.window.engine.send(rq.EndDrop(drop_key))
            elif not drop.cut_short:
                self._tell_added(drop, rq.DropQueued(drop_key))

    @Slot(object)
    def on_drop_queued(self, queued: object) -> None:
        """The engine has handled every file of a drop: say what it did."""
        if isinstance(queued, rq.DropQueued):
            drop = self._telling.pop(queued.drop, None)
            if drop is not None:
                self._tell_added(drop, queued)

    def _tell_added(self, drop: _Drop, queued: rq.DropQueued) -> None:
        """What a complete drop put in the queue (after every question about it), as the
        engine did it: new rows, and files that were in the queue already."""
        skipped = drop.skipped + queued.not_added
        if drop.policy == EXISTING_CANCEL:
            message = self.tr("The drop was cancelled.")
            if queued.added:
                message += " " + self.tr("%n file(s) of it had been added before.", "",
                                         queued.added)
            parts = [message, *self.in_queue_lines(queued)]
            message = "; ".join(parts)
        else:
            parts = self.in_queue_lines(queued)
            if queued.added or not parts:
                added = self.tr("Added %n file(s)", "", queued.added)
                if queued.added:
                    added += " (" + format_size(queued.added_bytes) + ")"
                parts.insert(0, added)
            if skipped:
                parts.append(self.tr("%n item(s) skipped", "", skipped))
            message = "; ".join(parts)
        if queued.notes:  # an earlier upload with other options cancelled for a new one
            drop.warning = " ".join(
                filter(None, [drop.warning, engine_text(queued.notes[0])]))
        if drop.warning:  # said when it happened; kept in what the drop ends with
            message = self.tr("%1. %2", "what was added, then a warning").replace(
                "%1", message).replace("%2", drop.warning)
            self.window.statusBar().showMessage(message, 15_000)
            return
        self.window.statusBar().showMessage(message, 8000)

    def in_queue_lines(self, queued: rq.DropQueued) -> list[str]:
        """What the engine did with the files of a drop that the queue had already."""
        parts: list[str] = []
        if queued.continued == 1 and queued.continued_name:
            parts.append(self.tr("%1 was in the queue: it continues there")
                         .replace("%1", printable(queued.continued_name)))
        elif queued.continued:
            parts.append(self.tr("%n file(s) were in the queue: they continue there",
                                 "", queued.continued))
        if queued.unchanged == 1 and queued.unchanged_name:
            parts.append(self.tr("%1 is in the queue: left as it is")
                         .replace("%1", printable(queued.unchanged_name)))
        elif queued.unchanged:
            parts.append(self.tr("%n file(s) are in the queue: left as they are", "",
                                 queued.unchanged))
        return parts

    def existing_box(self, count: int, keys: Sequence[str]) -> QMessageBox:
        """The question asked once per drop when some of its files already exist."""
        box = QMessageBox(self.window)
        box.setObjectName("existingBox")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Files already in the bucket"))
        box.setText(self.tr("%n file(s) of what you added already exist in the bucket.", "",
                            count))
        box.setInformativeText(self.tr(
            "Skip identical: a file whose object has the same size and CRC-64 is not sent "
            "again; a file that differs replaces its object. Overwrite all: every file is "
            "sent. Your choice applies to the rest of this drop."))
        box.setDetailedText("\n".join(keys[:1000]))
        skip = box.addButton(self.tr("Skip identical"), QMessageBox.ButtonRole.AcceptRole)
        skip.setObjectName("skipIdentical")
        overwrite = box.addButton(self.tr("Overwrite all"), QMessageBox.ButtonRole.DestructiveRole)
        overwrite.setObjectName("overwriteAll")
        cancel = box.addButton(self.tr("Cancel the drop"), QMessageBox.ButtonRole.RejectRole)
        cancel.setObjectName("cancelDrop")
        box.setDefaultButton(skip)
        box.setEscapeButton(cancel)
        return box

    def ask_existing(self, count: int, keys: Sequence[str]) -> str:
        """Ask what to do with existing keys: skip identical, overwrite all, cancel the drop."""
        box = self.existing_box(count, keys)
        box.exec()
        clicked = box.clickedButton()
        name = clicked.objectName() if clicked is not None else "cancelDrop"
        box.deleteLater()
        return {"skipIdentical": EXISTING_SKIP, "overwriteAll": EXISTING_OVERWRITE}.get(
            name, EXISTING_CANCEL)

    @Slot(object)
    def _on_walk_problems(self, problems: object) -> None:
        if isinstance(problems, list):
            self.problems.extend(p for p in problems if isinstance(p, Problem))
            self.update_problems_button()

    @Slot(object)
    def _on_walk_finished(self, summary: object) -> None:
        job = self.sender()
        if isinstance(job, WalkJob):
            number = self._drop_of_job.pop(id(job), 0)
            drop = self._drops.get(number)
            if drop is not None:
                drop.walking = False
                drop.job = None
                drop.cut_short = (isinstance(summary, WalkSummary) and summary.cancelled
                                  and drop.policy != EXISTING_CANCEL)
                if isinstance(summary, WalkSummary):
                    drop.skipped += summary.problems
                self._forget_drop_if_done(number)  # says what was added once it is complete
            if job in self.walk_jobs:
                self.walk_jobs.remove(job)
            job.deleteLater()

    def update_problems_button(self) -> None:
        count = len(self.problems)
        self.window.problems_button.setVisible(count > 0)
        self.window.problems_button.setText(self.tr("%n item(s) skipped", "", count))
        self.window.problems_button.setToolTip(self.tr("Show what was not added and why"))

    def problem_text(self, problem: Problem) -> str:
        if problem.kind in (ProblemKind.BAD_KEY, ProblemKind.COLLISION):
            return printable(refusal_text(problem))
        reasons = {
            ProblemKind.LOOP: self.tr("link loop (a link to a folder that contains it)"),
            ProblemKind.UNREADABLE: self.tr("cannot be read"),
            ProblemKind.DUPLICATE: self.tr("already added"),
            ProblemKind.MISSING: self.tr("no longer exists"),
            ProblemKind.SPECIAL: self.tr("not a regular file"),
            ProblemKind.BAD_NAME: self.tr("the name is not valid UTF-8; rename it to upload it"),
        }
        reason = reasons.get(problem.kind, self.tr("not added"))
        if problem.detail:
            reason += f" ({problem.detail})"
        return printable(f"{problem.path}: {reason}")

    def problems_box(self) -> QMessageBox:
        """What was left out of the drops and why, one line a file."""
        box = QMessageBox(self.window)
        box.setObjectName("problemsBox")
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle(self.tr("Items not added"))
        box.setText(
            self.tr("%n item(s) were not added to the queue.", "", len(self.problems))
        )
        box.setInformativeText(
            self.tr(
                "Links that loop, unreadable entries, files already in the queue, names that "
                "OSS cannot take as object keys and later files for a name another file goes "
                "to are left out; each line of the details says why."
            )
        )
        box.setDetailedText("\n".join(self.problem_text(p) for p in self.problems[:5000]))
        clear = box.addButton(self.tr("Forget these"), QMessageBox.ButtonRole.ResetRole)
        clear.setObjectName("forgetProblems")
        # One line a file, with long paths: room to read them when the details are open.
        box.setStyleSheet("QTextEdit { min-width: 40em; }")
        box.addButton(QMessageBox.StandardButton.Close)
        return box

    @Slot()
    def show_problems(self) -> None:
        box = self.problems_box()
        box.exec()
        clicked = box.clickedButton()
        if clicked is not None and clicked.objectName() == "forgetProblems":
            self.problems.clear()
            self.update_problems_button()
        box.deleteLater()
