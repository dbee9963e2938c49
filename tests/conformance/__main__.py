"""``python -m tests.conformance --a ENDPOINT_A --b ENDPOINT_B``: compare two OSS endpoints.

Each side's account comes from the environment, never the command line (docs/CONFORMANCE.md):
``OSSDESK_CONF_A_KEY_ID``, ``OSSDESK_CONF_A_SECRET``, ``OSSDESK_CONF_A_TOKEN`` (STS only),
``OSSDESK_CONF_A_BUCKET``, ``OSSDESK_CONF_A_REGION``, and the same with ``_B_``. An endpoint
of ``sandbox`` starts a sandbox in this process with its own account instead.

Exit status: 0 when every answer is the same (or differs as the list expects), 1 when some
answer differs otherwise, 2 when the comparison could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.conformance.cases import CASES
from tests.conformance.client import Target, env_names, target_from_env
from tests.conformance.compare import compare, in_process_sandbox, render


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance",
        description="Send the same OSS requests to two endpoints and compare the answers.",
        epilog="Credentials: " + ", ".join(env_names("A").values())
        + " (and the same with _B_). An endpoint 'sandbox' is a sandbox started here.",
    )
    parser.add_argument("--a", required=True, metavar="ENDPOINT",
                        help="first endpoint, e.g. http://127.0.0.1:9000 or sandbox")
    parser.add_argument("--b", required=True, metavar="ENDPOINT",
                        help="second endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com")
    parser.add_argument("--only", action="append", choices=[case.name for case in CASES],
                        metavar="CASE", help="run only this case (repeatable)")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="also write the table (Markdown) to FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cases = [case for case in CASES if args.only is None or case.name in args.only]
    with contextlib.ExitStack() as stack:
        targets: list[Target] = []
        for side, endpoint in (("A", args.a), ("B", args.b)):
            if endpoint == "sandbox":
                targets.append(stack.enter_context(in_process_sandbox(side)))
                continue
            try:
                targets.append(target_from_env(side, endpoint))
            except ValueError as exc:
                print(f"conformance: {exc}", file=sys.stderr)
                return 2
        a, b = targets
        rows = compare(a, b, cases)
    table = render(rows, a, b)
    sys.stdout.write(table)
    if args.output is not None:
        args.output.write_text(table, encoding="utf-8")
    return 0 if all(row.same or row.note for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
