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
from ossdesk.core.store import State, StoreError, UploadRow
from ossdesk.core.upload import UploadError


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


def configure(parser: argparse.ArgumentParser) -> None:
    add_limit_options(parser)


def run(args: argparse.Namespace) -> int:
    opened = open_store()
    if isinstance(opened, int):
        return opened
    store = opened
    try:
        rows = store.unfinished()
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
                    "to upload it; `ossdesk cancel --failed` removes them from the list.")
            if args.json:
                error(f"note: {note}")
            else:
                print(note, flush=True)
        if not rows:
            if not final:
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
            ids = scheduler.resume([r.id for r in rows])
        except StoreError as exc:
            scheduler.close(pause=False)
            display.stop()
            error(str(exc))
            return EXIT_BUSY
        return run_until_idle(scheduler, display, ids)
    finally:
        store.close()
