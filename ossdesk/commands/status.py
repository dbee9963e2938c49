"""``ossdesk status``: the queue, each upload's state and progress (read only)."""

from __future__ import annotations

import argparse

from ossdesk import config
from ossdesk.commands import EXIT_BUSY, EXIT_OK, error, json_line, unfinished_walks
from ossdesk.core.names import printable
from ossdesk.core.plan import format_size
from ossdesk.core.store import State, Store, StoreError, UploadRow

#: How a done row was verified, after its key.
_CHECKS = {"crc64": "  (verified by CRC-64)",
           "md5": "  (verified by MD5: the server gave no CRC-64)"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per upload")


def _as_dict(row: UploadRow, interrupted: bool) -> dict[str, object]:
    return {
        "id": row.id, "state": row.state.value, "reason": row.reason,
        "interrupted": interrupted, "skipped": row.skipped, "source": str(row.source),
        "endpoint": row.endpoint, "bucket": row.bucket, "key": row.key, "size": row.size,
        "confirmed_bytes": row.size if row.state.value == "done" else row.confirmed_bytes,
        "confirmed_parts": row.confirmed_parts, "part_size": row.part_size,
        # A plan that grew once the link was known: its first parts' size and how many.
        "head_size": row.head_size, "head_parts": row.head_parts,
        "multipart": row.upload_id is not None, "error": row.error, "error_code": row.error_code,
        "crc64": row.crc64, "check": row.checked_by, "credentials": row.credentials,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def run(args: argparse.Namespace) -> int:
    path = config.paths().database
    if not path.exists():
        if not args.json:
            print("The upload list is empty.")
        return EXIT_OK
    try:
        store = Store.open(path, owner=False)
    except StoreError as exc:
        error(str(exc))
        return EXIT_BUSY
    try:
        rows = store.rows()
        walks = unfinished_walks(store)
    finally:
        store.close()
    # "running" rows are running only while an ossdesk holds the upload list; otherwise
    # the process that ran them ended (crash, kill, power cut) and they wait for a resume.
    owner = Store.owner_running(path)

    def interrupted(row: UploadRow) -> bool:
        return row.state is State.RUNNING and not owner

    if args.json:
        for row in rows:
            print(json_line(_as_dict(row, interrupted(row))))
        return EXIT_OK
    if not rows:
        print("The upload list is empty." if not walks else "No file is queued yet.")
        for line in walks:
            print(line[0].upper() + line[1:] + ".")
        return EXIT_OK
    for row in rows:
        confirmed = row.size if row.state.value == "done" else row.confirmed_bytes
        percent = 100.0 * confirmed / row.size if row.size else (
            100.0 if row.state.value == "done" else 0.0)
        state = "interrupted" if interrupted(row) else row.state.value
        state += f" ({row.reason})" if row.reason else ""
        check = _CHECKS.get(row.checked_by or "", "") if row.state is State.DONE else ""
        print(f"{row.id:>6}  {state:<22} {percent:5.1f}%  {format_size(row.size):>10}  "
              f"{printable(row.bucket)}/{printable(row.key)}{check}")
        if row.error:
            print(f"{'':>8}{printable(row.error)}")
    counts: dict[str, int] = {}
    for row in rows:
        name = "interrupted" if interrupted(row) else row.state.value
        counts[name] = counts.get(name, 0) + 1
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    if counts.get("interrupted"):
        print("The ossdesk that was uploading them has stopped: run `ossdesk resume` to "
              "continue where they stopped.")
    # A walk cut short: more files were asked for than the rows above.
    for line in walks:
        print(line[0].upper() + line[1:] + ".")
    return EXIT_OK
