"""``ossdesk resume``: finish every unfinished walk, then continue every unfinished upload."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from ossdesk.commands import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Display,
    Listing,
    add_limit_options,
    error,
    open_store,
    run_until_idle,
)
from ossdesk.commands.earlier import Cancels, EarlierUploads, abort_reason, cancel_row
from ossdesk.commands.upload import collision_checks
from ossdesk.core.events import Cancelled, Event, Failed
from ossdesk.core.names import printable
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import NewUpload, Request, State, Store, StoreError, UploadRow
from ossdesk.core.upload import UploadError
from ossdesk.core.walk import WalkProblem
from ossdesk.credentials import default_credentials


def final_failure(row: UploadRow) -> bool:
    """A failed upload whose source is gone and which holds nothing on the server."""
    if row.state is not State.FAILED or row.error_code != "SourceMissing" or row.upload_id:
        return False
    try:
        row.source.stat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _superseded(store: Store, rows: list[UploadRow]) -> tuple[list[UploadRow], bool]:
    """``rows`` without those a later done row of the same file version, written the same
    way, has made needless (each cancelled, one line each); and whether an abort failed."""
    needless = {row.id: done for row, done in store.done_since()
                if row.writes_like(done)
                and (row.size, row.mtime_ns) == (done.size, done.mtime_ns)}
    failed = False
    kept: list[UploadRow] = []
    for row in rows:
        done = needless.get(row.id)
        if done is None:
            kept.append(row)
            continue
        what = (f"row {row.id} ({row.bucket}/{row.key}): the same file was uploaded to that key "
                f"since (row {done.id}, done)")
        why = cancel_row(store, row)
        if why is None:
            how = ("its multipart upload was aborted on the server" if row.upload_id
                   else "nothing of it was on the server")
            print(f"{printable(what)}; it was cancelled ({how}), not sent again", flush=True)
        else:
            failed = True
            error(f"{what}, but its unfinished upload could not be aborted on the server "
                  f"({why}); it is not sent again: `ossdesk cancel {row.id}` aborts it")
    return kept, failed


def _after_cancel(scheduler: Scheduler, request: Request, item: NewUpload, *, upload: int,
                  what: str, outcome: Event | None,
                  on_problem: Callable[[WalkProblem], None]) -> None:
    """The file of a walk whose earlier row (``upload``, resumed by this run, to be written
    otherwise) was being cancelled for it: queued now that the row is gone, or not at all
    when its multipart upload could not be aborted."""
    if isinstance(outcome, Failed):
        on_problem(WalkProblem(
            item.source, f"{what}; it could not be aborted on the server "
            f"({abort_reason(outcome.message)}); {item.source} is not uploaded, so that the "
            f"object is not written with the older options later: run `ossdesk cancel "
            f"{upload}`, then upload the file again"))
        return
    how = ("it was cancelled (its multipart upload was aborted on the server) and the file is "
           "uploaded from the start" if isinstance(outcome, Cancelled)
           else "it was finished before it could be cancelled, and the file is uploaded again")
    scheduler.add([item], request=request)
    on_problem(WalkProblem(item.source, f"{what}; {how} with this run's options",
                           skipped=False))


def configure(parser: argparse.ArgumentParser) -> None:
    add_limit_options(parser)


def run(args: argparse.Namespace) -> int:
    opened = open_store()
    if isinstance(opened, int):
        return opened
    store = opened
    try:
        rows = store.unfinished()
        requests = store.unfinished_requests()
        # A failed file whose source is gone and whose upload was aborted already cannot
        # make progress: it was reported when it failed, and is not retried (nor counted as
        # a failure again) until its file is back.
        final = [r for r in rows if final_failure(r)]
        rows = [r for r in rows if not final_failure(r)]
        if final:
            names = ", ".join(f"row {r.id} ({r.source.name})" for r in final[:5])
            more = f" and {len(final) - 5} more" if len(final) > 5 else ""
            note = (f"{len(final)} failed upload(s) not retried: the file is gone and "
                    f"nothing of it is left on the server: {names}{more}. Put the file back "
                    "to upload it; `ossdesk cancel --failed` cancels them (they stay in the list "
                    "as cancelled).")
            if args.json:
                error(f"note: {note}")
            else:
                print(note, flush=True)
        if not rows and not requests:
            if store.notice:  # the list was set aside: what it held is not known here
                error("nothing to resume from the new, empty upload list (see above)")
                return EXIT_BUSY
            if not final:
                cancelled = store.count([State.CANCELLED])
                print("Nothing to resume: every upload in the list is finished"
                      + (" or cancelled." if cancelled else "."), flush=True)
            return EXIT_OK
        for source in sorted({r.credentials for r in rows} | {r.credentials for r in requests}):
            try:
                default_credentials(source)
            except UploadError as exc:
                error(f"cannot resume: {exc.message}")
                return EXIT_USAGE
        # The same file queued twice by an older ossdesk (run again before its first upload
        # had finished) and uploaded since by the later row: the earlier one is not sent
        # again; its multipart upload is aborted.
        rows, not_cancelled = _superseded(store, rows)
        if not rows and not requests:
            return EXIT_FAILED if not_cancelled else EXIT_OK
        display = Display(json_mode=args.json)
        scheduler = Scheduler(store, jobs=args.jobs or 3, parallel=args.parallel or 8,
                              small_parallel=args.small_parallel, rate=args.limit_rate or 0,
                              reread_limit=args.reread_limit,
                              credentials=default_credentials)
        scheduler.add_listener(display)
        display.start()
        problems: list[WalkProblem] = []

        def on_problem(problem: WalkProblem) -> None:
            problems.append(problem)
            error(problem.message)

        listing = Listing(scheduler, requests[0], on_problem) if requests else None
        try:
            began = time.time()
            ids = scheduler.resume([r.id for r in rows])
            # Walks cut short (Ctrl-C, a full disk, a crash) are finished first: the files
            # they had not reached yet are queued now, those queued already are not again.
            for request in requests:
                # Two sources never share one key, as when the walk began.
                on_collision, keep = collision_checks(store, request.endpoint, request.bucket,
                                                      on_problem, refuse=True)
                # A file whose unfinished row from before the walk began is resumed above
                # is not queued a second time (or, asked to be written differently, that row
                # is cancelled first).
                # (and its file is queued only once that row is gone: if the abort fails, a
                # later resume of that row would write the older options after the new one).
                cancels = Cancels(scheduler, store)
                earlier = EarlierUploads(store, on_problem, request=request, ours=set(ids),
                                         cancel=cancels.cancel, since=began, defer=True)
                listing = Listing(scheduler, request, on_problem, on_collision=on_collision,
                                  keep=keep, earlier=earlier.sort)
                listing.run()
                for item, upload, what in earlier.waiting:
                    _after_cancel(scheduler, request, item, upload=upload, what=what,
                                  outcome=cancels.wait(upload), on_problem=on_problem)
                # Rows cancelled for a new one are not this run's files any more.
                gone = set(earlier.cancelled)
                ids = [i for i in ids if i not in gone]
            listing = None
            # The summary counts every file of a walk finished now, those done before too.
            seen = set(ids)
            for request in requests:
                assert request.id is not None
                walked = [i for i in store.request_ids(request.id) if i not in seen]
                seen.update(walked)
                ids.extend(walked)
        except KeyboardInterrupt:
            scheduler.close(pause=True)
            display.stop()
            error(listing.stopped() if listing is not None
                  else "paused; nothing was lost. Run `ossdesk resume` to continue.")
            return EXIT_INTERRUPTED
        except StoreError as exc:
            scheduler.close(pause=listing is not None)
            display.stop()
            error(str(exc))
            if listing is not None:
                error(listing.stopped())
            return EXIT_BUSY
        code = run_until_idle(scheduler, display, ids)
        if not_cancelled and code == EXIT_OK:
            return EXIT_FAILED
        skipped = [p for p in problems if p.skipped]
        if skipped and code == 0:
            error(f"{len(skipped)} item(s) were skipped (see above)")
            return EXIT_FAILED
        return code
    finally:
        store.close()
