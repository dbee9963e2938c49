"""``ossdesk resume``: finish every unfinished walk, then continue every unfinished upload."""

from __future__ import annotations

import argparse

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
from ossdesk.core.scheduler import Scheduler, default_credentials
from ossdesk.core.store import StoreError
from ossdesk.core.upload import UploadError
from ossdesk.core.walk import WalkProblem


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
        if not rows and not requests:
            if store.notice:  # the list was set aside: what it held is not known here
                error("nothing to resume from the new, empty upload list (see above)")
                return EXIT_BUSY
            print("Nothing to resume: every upload in the list is finished.", flush=True)
            return EXIT_OK
        for source in sorted({r.credentials for r in rows} | {r.credentials for r in requests}):
            try:
                default_credentials(source)
            except UploadError as exc:
                error(f"cannot resume: {exc.message}")
                return EXIT_USAGE
        display = Display(json_mode=args.json)
        scheduler = Scheduler(store, jobs=args.jobs or 3, parallel=args.parallel or 8,
                              small_parallel=args.small_parallel, rate=args.limit_rate or 0)
        scheduler.add_listener(display)
        display.start()
        problems: list[WalkProblem] = []

        def on_problem(problem: WalkProblem) -> None:
            problems.append(problem)
            error(problem.message)

        listing = Listing(scheduler, requests[0], on_problem) if requests else None
        try:
            ids = scheduler.resume()
            # Walks cut short (Ctrl-C, a full disk, a crash) are finished first: the files
            # they had not reached yet are queued now, those queued already are not again.
            for request in requests:
                listing = Listing(scheduler, request, on_problem)
                listing.run()
            listing = None
            # The summary counts every file of a walk finished now, those done before too.
            seen = set(ids)
            for request in requests:
                assert request.id is not None
                more = [i for i in store.request_ids(request.id) if i not in seen]
                seen.update(more)
                ids.extend(more)
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
        skipped = [p for p in problems if p.skipped]
        if skipped and code == 0:
            error(f"{len(skipped)} item(s) were skipped (see above)")
            return EXIT_FAILED
        return code
    finally:
        store.close()
