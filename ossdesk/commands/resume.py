"""``ossdesk resume``: continue every unfinished upload in the upload list."""

from __future__ import annotations

import argparse

from ossdesk.commands import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_USAGE,
    Display,
    add_limit_options,
    error,
    open_store,
    run_until_idle,
)
from ossdesk.core.scheduler import Scheduler, default_credentials
from ossdesk.core.store import StoreError
from ossdesk.core.upload import UploadError


def configure(parser: argparse.ArgumentParser) -> None:
    add_limit_options(parser)


def run(args: argparse.Namespace) -> int:
    opened = open_store()
    if isinstance(opened, int):
        return opened
    store = opened
    try:
        rows = store.unfinished()
        if not rows:
            print("Nothing to resume: every upload in the list is finished.", flush=True)
            return EXIT_OK
        for source in sorted({r.credentials for r in rows}):
            try:
                default_credentials(source)
            except UploadError as exc:
                error(f"cannot resume: {exc.message}")
                return EXIT_USAGE
        display = Display(json_mode=args.json)
        scheduler = Scheduler(store, jobs=args.jobs or 3, parallel=args.parallel or 8,
                              small_parallel=args.small_parallel, rate=args.limit_rate or 0,
                              reread_limit=args.reread_limit)
        scheduler.add_listener(display)
        display.start()
        try:
            ids = scheduler.resume()
        except StoreError as exc:
            scheduler.close(pause=False)
            display.stop()
            error(str(exc))
            return EXIT_BUSY
        return run_until_idle(scheduler, display, ids)
    finally:
        store.close()
