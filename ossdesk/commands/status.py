"""``ossdesk status``: the queue, each upload's state and progress (read only)."""

from __future__ import annotations

import argparse
import json

from ossdesk import config
from ossdesk.commands import EXIT_BUSY, EXIT_OK, error
from ossdesk.core.plan import format_size
from ossdesk.core.store import Store, StoreError, UploadRow


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per upload")


def _as_dict(row: UploadRow) -> dict[str, object]:
    return {
        "id": row.id, "state": row.state.value, "reason": row.reason, "source": str(row.source),
        "endpoint": row.endpoint, "bucket": row.bucket, "key": row.key, "size": row.size,
        "confirmed_bytes": row.size if row.state.value == "done" else row.confirmed_bytes,
        "confirmed_parts": row.confirmed_parts, "part_size": row.part_size,
        "multipart": row.upload_id is not None, "error": row.error, "error_code": row.error_code,
        "crc64": row.crc64, "credentials": row.credentials, "created_at": row.created_at,
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
    finally:
        store.close()
    if args.json:
        for row in rows:
            print(json.dumps(_as_dict(row), ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("The upload list is empty.")
        return EXIT_OK
    for row in rows:
        confirmed = row.size if row.state.value == "done" else row.confirmed_bytes
        percent = 100.0 * confirmed / row.size if row.size else (
            100.0 if row.state.value == "done" else 0.0)
        state = row.state.value + (f" ({row.reason})" if row.reason else "")
        print(f"{row.id:>6}  {state:<22} {percent:5.1f}%  {format_size(row.size):>10}  "
              f"{row.bucket}/{row.key}")
        if row.error:
            print(f"{'':>8}{row.error}")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state.value] = counts.get(row.state.value, 0) + 1
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    return EXIT_OK
