"""``ossdesk watch DIR --endpoint URL --bucket NAME --prefix P``: sync DIR once, then upload
each file that appears or changes in it once it has stopped changing.

The first pass is ``ossdesk sync`` (same options, same rules). Then the OS's change
notifications (``watchdog``) and a rescan every ``--rescan`` seconds nominate files; a file
is queued once its size and mtime have been steady for ``--settle`` seconds (and, where the
OS tells, its writer has closed it), as an ordinary row of the upload list (``ossdesk
status`` and ``resume`` see it), uploaded and verified by the scheduler. See
:mod:`ossdesk.core.watch` for the rules, the vanished folder included.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ossdesk.commands import (
    EXIT_BUSY,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_limit_options,
    error,
    json_line,
    summarize,
)
from ossdesk.commands.earlier import EarlierUploads
from ossdesk.commands.sync import (
    _Plan,
    _Sync,
    add_sync_options,
    open_sync,
)
from ossdesk.core.names import printable
from ossdesk.core.oss import OssError
from ossdesk.core.plan import format_size
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import State, StoreError
from ossdesk.core.sync import LocalFile, may_delete
from ossdesk.core.walk import FoundFile
from ossdesk.core.watch import DEFAULT_RESCAN, DEFAULT_SETTLE, FolderWatch, Step, observe
from ossdesk.credentials import default_credentials

#: Seconds between two looks at the watch (notifications drained, quiet times checked).
POLL = 0.25


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    add_sync_options(parser)
    parser.add_argument("--settle", type=_seconds, default=DEFAULT_SETTLE, metavar="SECONDS",
                        help="upload a file once its size and modification time have not "
                             "changed for this long (default %(default)g)")
    parser.add_argument("--rescan", type=_seconds, default=DEFAULT_RESCAN, metavar="SECONDS",
                        help="look through the whole folder this often, for changes the "
                             "system's notifications missed (network shares, overflows; "
                             "default %(default)g)")
    add_limit_options(parser)
    parser.set_defaults(dry_run=False)


def run(args: argparse.Namespace) -> int:
    args.folder = Path(os.path.abspath(args.folder))
    opened = open_sync(args, "watch")
    if isinstance(opened, int):
        return opened
    keys, dest, store, client = opened
    try:
        return _Watch(args, store, dest, client, keys).run()
    finally:
        client.close()
        store.close()


class _Watch(_Sync):
    """The first pass (``_Sync``), then the watch loop."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.baseline: list[FoundFile] = []
        self.compared = False
        self.observer: Any = None
        self.ids: list[int] = []
        #: Key -> this run's last upload of it.
        self.active: dict[str, int] = {}
        #: Changed files whose upload in this run is still going: queued when it ends.
        self.waiting: dict[str, FoundFile] = {}
        self.earlier = EarlierUploads(self.store, self.on_problem)

    # -- the first pass --------------------------------------------------------------------

    def local_files(self, plan: _Plan) -> dict[str, LocalFile]:
        files = super().local_files(plan)
        self.baseline = [FoundFile(f.path, f.key, f.size, f.mtime_ns) for f in files.values()]
        return files

    def compare(self) -> _Plan:
        plan = super().compare()
        self.compared = True
        return plan

    # -- the watch -------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        watch = FolderWatch(args.folder, self.dest.prefix, self.keys, settle=args.settle,
                            rescan=args.rescan, clock=time.monotonic)
        self.start_observer(watch)  # before the first pass: nothing changed meanwhile is lost
        try:
            code = super().run()
            if code in (EXIT_INTERRUPTED, EXIT_USAGE, EXIT_BUSY) or not self.compared:
                return code
            if code != EXIT_OK:
                error("the first pass did not sync everything (see above); watching for "
                      "changes now")
            watch.set_baseline(self.baseline)
            self.baseline = []
            return self.loop(watch)
        finally:
            self.stop_observer()

    def start_observer(self, watch: FolderWatch) -> None:
        self.stop_observer()
        try:
            self.observer = observe(watch)
        except OSError as exc:
            error(f"{self.args.folder}: the system's change notifications are not available "
                  f"({exc.strerror or exc}); changes are found by a rescan every "
                  f"{self.args.rescan:g} s")

    def stop_observer(self) -> None:
        observer, self.observer = self.observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)

    def say(self, data: dict[str, Any], text: str) -> None:
        if self.args.json:
            self.display.write_line(json_line({**data, "time": round(time.time(), 3)}))
        else:
            self.display.write_line(printable(text))

    def loop(self, watch: FolderWatch) -> int:
        args = self.args
        target = f"oss://{self.dest.bucket}/{self.dest.prefix}"
        scheduler = Scheduler(self.store, jobs=args.jobs or 3, parallel=args.parallel or 8,
                              small_parallel=args.small_parallel, rate=args.limit_rate or 0,
                              part_size=args.part_size, credentials=default_credentials)
        scheduler.add_listener(self.display)
        self.display.start()
        self.say({"event": "watching", "folder": str(args.folder), "bucket": self.dest.bucket,
                  "prefix": self.dest.prefix, "settle": args.settle, "rescan": args.rescan},
                 f"watching {args.folder} -> {target} (a file is uploaded {args.settle:g} s "
                 f"after its last change; full rescan every {args.rescan:g} s; Ctrl-C stops)")
        try:
            while True:
                step = watch.step()
                self.report(watch, step)
                if step.gone and args.delete:
                    self.delete_gone(step.gone)
                self.queue(scheduler, [*self.finished_waiting(), *step.ready])
                time.sleep(POLL)
        except KeyboardInterrupt:
            return self.stop(scheduler, watch)
        except StoreError as exc:
            scheduler.close(pause=True)
            self.display.stop()
            error(f"{exc}; stopped watching")
            return EXIT_BUSY

    def report(self, watch: FolderWatch, step: Step) -> None:
        folder = self.args.folder
        for problem in step.problems:
            error(problem.message)
        if step.missing:
            self.stop_observer()
            self.say({"event": "folder-missing", "folder": str(folder)},
                     f"{folder} is missing (unplugged, unmounted or moved?); nothing is "
                     "uploaded or deleted until it is back; checking every "
                     f"{POLL:g} s")
        if step.back:
            self.say({"event": "folder-back", "folder": str(folder)},
                     f"{folder} is back; looking through it for changes")
            self.start_observer(watch)
        if step.gone and not self.args.delete:
            for key in step.gone:
                self.say({"event": "removed-locally", "key": key},
                         f"removed locally  {key}  (kept in OSS; --delete removes it)")

    def delete_gone(self, keys: list[str]) -> None:
        for key in keys:
            if not may_delete(key, self.dest.prefix, self.keys):
                continue
            if self.store.unfinished_sources(self.dest.endpoint, self.dest.bucket, [key]):
                error(f"{key}: its file was removed while an upload of it is in the list; "
                      "the object is not deleted")
                continue
            try:
                self.client.delete_object(key)
            except OssError as exc:
                error(f"{key}: not deleted: {exc.message}")
                continue
            self.say({"event": "deleted", "key": key},
                     f"deleted  {key}  (its file was removed)")

    def moving(self, key: str) -> bool:
        """This run's last upload of ``key`` is queued or being sent."""
        upload = self.active.get(key)
        row = self.store.get(upload) if upload is not None else None
        return row is not None and row.state in (State.QUEUED, State.RUNNING)

    def finished_waiting(self) -> list[FoundFile]:
        """Files that changed while this run's upload of them was still going, whose upload
        has ended since: their new version is queued now."""
        return [self.waiting.pop(key) for key in list(self.waiting) if not self.moving(key)]

    def queue(self, scheduler: Scheduler, files: list[FoundFile]) -> None:
        if not files:
            return
        fresh = self.not_done_already(files)
        others = self.store.unfinished_sources(self.dest.endpoint, self.dest.bucket,
                                               [f.key for f in fresh])
        todo: list[FoundFile] = []
        for found in fresh:
            sources = [s for s in others.get(found.key, ()) if s != found.path]
            if sources:
                error(f"{found.path} and {sources[0]} (an unfinished upload in the list) "
                      f"both go to {found.key}; {found.path} is not uploaded")
            elif self.moving(found.key):
                self.waiting[found.key] = found  # queued again when that upload ends
            else:
                todo.append(found)
        if not todo:
            return
        uploads = [self.new_upload(LocalFile(f.path, f.key, f.size, f.mtime_ns)) for f in todo]
        # An unfinished upload of the same file (failed, or left by an earlier run) is
        # continued, or, the file being another version now, cancelled and aborted first:
        # never a second row for it.
        new_rows, again = self.earlier.sort(uploads)
        # A row cancelled for a new one is not this run's file any more (its new row is).
        if self.earlier.cancelled:
            gone = set(self.earlier.cancelled)
            self.ids = [i for i in self.ids if i not in gone]
        rows = {r.key: r.id for r in self.store.rows_for(scheduler.resume(again))}
        rows.update(zip((u.key for u in new_rows), scheduler.add(new_rows), strict=True))
        for found in todo:
            upload = rows.get(found.key)
            if upload is None:
                continue  # not queued (said why)
            if upload not in self.ids:
                self.ids.append(upload)
            self.active[found.key] = upload
            how = "queued" if upload not in again else \
                f"continuing its unfinished upload, row {upload}"
            self.say({"event": "changed", "key": found.key, "source": str(found.path),
                      "size": found.size},
                     f"changed  {found.key}  {format_size(found.size)}  ({how})")

    def not_done_already(self, files: list[FoundFile]) -> list[FoundFile]:
        """``files`` without those whose last finished upload was this very version (same
        file, size and mtime)."""
        done = self.store.last_done(self.dest.endpoint, self.dest.bucket, [f.key for f in files])
        out = []
        for found in files:
            row = done.get(found.key)
            if row is None or row.source != found.path or row.size != found.size \
                    or row.mtime_ns != found.mtime_ns:
                out.append(found)
        return out

    def stop(self, scheduler: Scheduler, watch: FolderWatch) -> int:
        self.display.stop()
        print("\nStopping...", file=sys.stderr, flush=True)
        self.stop_observer()
        scheduler.close(pause=True)
        if self.ids:
            summarize(self.store, self.ids, self.display)
        left = watch.settling + len(self.waiting)
        message = f"stopped watching {self.args.folder}"
        if not self.ids and not left:
            message += "; nothing had changed since the first pass"
        if left:
            message += (f"; {left} changed file(s) were not queued yet (still changing or "
                        "waiting for an earlier upload of theirs): the next `ossdesk watch` or"
                        " `ossdesk sync` uploads them")
        error(message)
        return EXIT_INTERRUPTED

