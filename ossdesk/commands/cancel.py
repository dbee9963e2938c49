"""``ossdesk cancel ID... | --failed | --all``: give up uploads in the list.

Each row's unfinished multipart upload (if it has one) is aborted on the server, so its
parts stop being stored and billed, and then the row stays in the list as cancelled history,
as the window keeps it (never started again by ``resume``). A row whose abort failed
(network, credentials) stays as it was, and the line says so. ``ossdesk cancel ID`` of a
history row (done or cancelled) removes it from the list.
"""

from __future__ import annotations

import argparse
import shlex

from ossdesk.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error, open_store
from ossdesk.core.cleanup import abort_upload, client_for_row, failure_reason
from ossdesk.core.oss import Credentials, OssClient, OssError
from ossdesk.core.store import UNFINISHED, State, Store, StoreError, UploadRow
from ossdesk.core.upload import UploadError
from ossdesk.credentials import default_credentials


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=int, metavar="ID",
                        help="the uploads to cancel, by the number `ossdesk status` shows")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="cancel every failed upload")
    which.add_argument("--all", action="store_true",
                       help="cancel every unfinished upload (finished ones stay in the list)")
    parser.epilog = ("A cancelled upload stays in the list as cancelled; `ossdesk cancel ID` of "
                     "a finished or cancelled one removes it from the list.")


def _rows(args: argparse.Namespace, store: Store) -> tuple[list[UploadRow], list[int]]:
    """The rows to cancel, and the ids asked for that the list does not have."""
    if args.failed:
        return store.rows([State.FAILED]), []
    if args.all:
        return store.rows(UNFINISHED), []
    wanted = list(dict.fromkeys(args.ids))
    rows = store.rows_for(wanted)
    found = {r.id for r in rows}
    return rows, [i for i in wanted if i not in found]


def run(args: argparse.Namespace) -> int:
    if not args.ids and not (args.failed or args.all):
        error("say which uploads to cancel: ID... (as `ossdesk status` shows them), "
              "--failed or --all")
        return EXIT_USAGE
    if args.ids and (args.failed or args.all):
        error("give either IDs or --failed / --all, not both")
        return EXIT_USAGE
    opened = open_store()
    if isinstance(opened, int):
        return opened
    store = opened
    try:
        return _run(args, store)
    finally:
        store.close()


def _run(args: argparse.Namespace, store: Store) -> int:
    rows, unknown = _rows(args, store)
    code = EXIT_OK
    for upload in unknown:
        error(f"there is no upload {upload} in the list (see `ossdesk status`)")
        code = EXIT_FAILED
    if not rows and not unknown:
        print("No failed upload in the list." if args.failed else
              "No unfinished upload in the list.", flush=True)
        return EXIT_OK
    creds: dict[str, Credentials | UploadError] = {}
    clients: dict[tuple[str, ...], OssClient] = {}
    try:
        for row in rows:
            if not _cancel(store, row, creds, clients):
                code = EXIT_FAILED
    finally:
        for client in clients.values():
            client.close()
    return code


def _cancel(store: Store, row: UploadRow, creds: dict[str, Credentials | UploadError],
            clients: dict[tuple[str, ...], OssClient]) -> bool:
    """Cancel one row (remove it, if it is history already); prints its line. False when
    it stays in the list as it was."""
    name = f"{row.id}  {row.bucket}/{row.key}"
    if row.state in (State.DONE, State.CANCELLED):
        return _remove(store, row, name)
    if row.upload_id:
        if row.credentials not in creds:
            try:
                creds[row.credentials] = default_credentials(row.credentials)
            except UploadError as exc:
                creds[row.credentials] = exc
        given = creds[row.credentials]
        if isinstance(given, UploadError):
            error(f"{name}: could not abort its unfinished upload on the server "
                  f"({given.message}); it stays in the list")
            return False
        key = (row.credentials, row.endpoint, row.bucket, row.region or "", row.signature)
        try:
            client = clients.get(key) or clients.setdefault(key, client_for_row(row, given))
            abort_upload(client, row.key, row.upload_id)
        except OssError as exc:
            error(f"{name}: could not abort its unfinished upload on the server "
                  f"({failure_reason(exc)}); it stays in the list: run `ossdesk cancel "
                  f"{row.id}` again later")
            return False
    try:
        store.cancelled(row.id)
    except StoreError as exc:
        error(f"{name}: " + (
            "its unfinished upload was aborted on the server, but " if row.upload_id else "")
            + f"it could not be marked cancelled in the list: {exc}")
        return False
    if row.upload_id:
        what = "its unfinished upload was aborted on the server"
    else:
        what = "nothing of it was on the server"
    note = ""
    if row.initiating_at is not None and not row.upload_id:
        note = (f" (an upload of it begun before ossdesk stopped cannot be told from another "
                f"client's: `ossdesk uploads --endpoint {row.endpoint} --bucket {row.bucket} "
                f"--prefix {shlex.quote(row.key)}` lists them)")
    print(f"cancelled {name}: {what}; it stays in the list as cancelled until `ossdesk "
          f"cancel {row.id}` removes it{note}", flush=True)
    return True


def _remove(store: Store, row: UploadRow, name: str) -> bool:
    """A history row (done or cancelled): nothing is on the server; it leaves the list."""
    try:
        store.remove([row.id])
    except StoreError as exc:
        error(f"{name}: it could not be removed from the list: {exc}")
        return False
    what = ("finished; the object stays in OSS" if row.state is State.DONE
            else "cancelled before")
    print(f"removed {name}: {what}; removed from the list", flush=True)
    return True
