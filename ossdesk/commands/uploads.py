"""``ossdesk uploads --endpoint URL --bucket NAME``: unfinished multipart uploads in a bucket.

An unfinished multipart upload keeps its parts on OSS, billed, until it is completed or
aborted: ossdesk's own (an upload this computer's list records: "ours") and those of other
clients, machines or earlier lists alike. This lists them (every page of
ListMultipartUploads) and aborts the ones asked for (``--abort ID...``, ``--abort-all``,
``--older-than``). An upload a row of the list still uses is not aborted here:
``ossdesk cancel ROW`` cancels that file and aborts it, keeping the list consistent.
"""

from __future__ import annotations

import argparse
import re
import time

from ossdesk import config
from ossdesk.commands import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    error,
    open_store,
    positive_int,
)
from ossdesk.commands.upload import _destination, add_destination_options
from ossdesk.core.cleanup import RemoteUploadInfo, abort_upload, failure_reason, list_uploads
from ossdesk.core.oss import Endpoint, OssClient, OssError, RemoteUpload
from ossdesk.core.plan import format_size
from ossdesk.core.store import Store, StoreError
from ossdesk.core.upload import UploadError
from ossdesk.credentials import default_credentials

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: write a number and s, m, h, d or w, e.g. 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def configure(parser: argparse.ArgumentParser) -> None:
    add_destination_options(parser, bucket_help="the bucket to look in",
                            prefix_help="only uploads whose key begins with P",
                            prefix_default="")
    parser.add_argument("--parts", action="store_true",
                        help="also count each upload's parts and bytes (one request each)")
    parser.add_argument("--older-than", type=duration, metavar="AGE", default=None,
                        help="only uploads begun longer ago than AGE, e.g. 7d, 12h, 30m")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--abort", nargs="+", metavar="UPLOAD_ID", default=None,
                       help="abort these uploads (their parts are deleted on the server)")
    which.add_argument("--abort-all", action="store_true",
                       help="abort every upload listed that this computer's list does not "
                            "use (with --prefix / --older-than: those only)")
    # Tests: a small page proves that every page of the listing is read.
    parser.add_argument("--page-size", type=positive_int, default=None,
                        help=argparse.SUPPRESS)


def _known(store: Store | None, uploads: list[RemoteUpload]) -> dict[str, int]:
    if store is None:
        return {}
    return store.known_upload_ids([u.upload_id for u in uploads])


def _when(upload: RemoteUpload) -> str:
    if upload.initiated is None:
        return "(unknown time)     "
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(upload.initiated))


def run(args: argparse.Namespace) -> int:
    if not args.profile and not (args.endpoint and args.bucket):
        error("say which bucket: --endpoint URL and --bucket NAME (or --profile NAME)")
        return EXIT_USAGE
    prefix = args.prefix
    args.prefix = None  # the upload's prefix rules (a folder) do not apply to a key prefix
    dest = _destination(args)
    if dest is None:
        return EXIT_USAGE
    try:
        creds = default_credentials(dest.source)
    except UploadError as exc:
        error(exc.message)
        return EXIT_USAGE
    client = OssClient(Endpoint(dest.endpoint, dest.bucket, dest.region, dest.signature),
                       creds)
    aborting = args.abort is not None or args.abort_all
    store: Store | None = None
    try:
        if aborting:
            # Owning the list while aborting: no ossdesk can be between an Initiate and
            # saving its id meanwhile, so "ours" is known exactly.
            opened = open_store()
            if isinstance(opened, int):
                return opened
            store = opened
        elif config.paths().database.exists():
            store = Store.open(config.paths().database, owner=False)
        return _run(args, client, store, dest.bucket, prefix)
    except StoreError as exc:
        error(str(exc))
        return EXIT_BUSY
    finally:
        if store is not None:
            store.close()
        client.close()


def _run(args: argparse.Namespace, client: OssClient, store: Store | None, bucket: str,
         prefix: str) -> int:
    try:
        uploads = list_uploads(client, prefix, page_size=args.page_size)
    except OssError as exc:
        error(f"cannot list the unfinished uploads of {bucket}: {failure_reason(exc)}")
        return EXIT_FAILED
    if args.older_than is not None:
        limit = time.time() - args.older_than
        uploads = [u for u in uploads if u.initiated is not None and u.initiated < limit]
    known = _known(store, uploads)
    if args.abort is not None:
        return _abort_ids(client, uploads, known, args.abort)
    if args.abort_all:
        return _abort_all(client, uploads, known)
    infos = []
    for upload in uploads:
        info = RemoteUploadInfo(upload, known.get(upload.upload_id))
        if args.parts:
            try:
                parts = client.list_parts(upload.key, upload.upload_id)
            except OssError as exc:
                error(f"cannot list the parts of {upload.key} ({upload.upload_id}): "
                      f"{failure_reason(exc)}")
            else:
                info = RemoteUploadInfo(upload, info.row, len(parts),
                                        sum(p.size for p in parts))
        infos.append(info)
    _print(infos, bucket, prefix)
    return EXIT_OK


def _print(infos: list[RemoteUploadInfo], bucket: str, prefix: str) -> None:
    where = f"{bucket}" + (f" under {prefix}" if prefix else "")
    if not infos:
        print(f"No unfinished multipart upload in {where}.", flush=True)
        return
    for info in infos:
        owner = (f"ours: row {info.row} of this computer's list" if info.row is not None
                 else "not in this computer's list")
        parts = (f"  {info.parts} part{'' if info.parts == 1 else 's'}, "
                 f"{format_size(info.size or 0)}"
                 if info.parts is not None else "")
        print(f"{_when(info.upload)}  {info.upload.upload_id}  {info.upload.key}{parts}  "
              f"({owner})")
    ours = sum(1 for i in infos if i.row is not None)
    print(f"{len(infos)} unfinished multipart upload(s) in {where}, {ours} of them in this "
          "computer's list (`ossdesk cancel ROW` cancels those); `ossdesk uploads --abort "
          "UPLOAD_ID` or `--abort-all` aborts the others.", flush=True)


def _refuse(upload: RemoteUpload, row: int) -> None:
    error(f"{upload.upload_id} ({upload.key}) is the upload of row {row} of this computer's "
          f"list, so it was not aborted: `ossdesk cancel {row}` cancels that file and aborts it")


def _abort_one(client: OssClient, upload: RemoteUpload) -> bool:
    try:
        abort_upload(client, upload.key, upload.upload_id)
    except OssError as exc:
        error(f"could not abort {upload.upload_id} ({upload.key}): {failure_reason(exc)}; it "
              "is still on the server")
        return False
    print(f"aborted  {upload.upload_id}  {upload.key}", flush=True)
    return True


def _abort_ids(client: OssClient, uploads: list[RemoteUpload], known: dict[str, int],
               wanted: list[str]) -> int:
    by_id = {u.upload_id: u for u in uploads}
    code = EXIT_OK
    for upload_id in dict.fromkeys(wanted):
        upload = by_id.get(upload_id)
        if upload is None:
            error(f"there is no unfinished upload {upload_id} here (see `ossdesk uploads`)")
            code = EXIT_FAILED
        elif upload_id in known:
            _refuse(upload, known[upload_id])
            code = EXIT_FAILED
        elif not _abort_one(client, upload):
            code = EXIT_FAILED
    return code


def _abort_all(client: OssClient, uploads: list[RemoteUpload], known: dict[str, int]) -> int:
    code = EXIT_OK
    kept = [u for u in uploads if u.upload_id in known]
    for upload in uploads:
        if upload.upload_id not in known and not _abort_one(client, upload):
            code = EXIT_FAILED
    if kept:
        rows = ", ".join(str(known[u.upload_id]) for u in kept)
        one = len(kept) == 1
        print(f"{len(kept)} upload{'' if one else 's'} left alone: "
              f"{'row' if one else 'rows'} {rows} of this computer's list "
              f"{'uses it' if one else 'use them'} (`ossdesk cancel ROW` cancels a file and "
              "aborts its upload).", flush=True)
    elif not uploads:
        print("No unfinished multipart upload to abort.", flush=True)
    return code
