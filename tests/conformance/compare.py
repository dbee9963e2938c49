"""Run the cases against two targets and compare what they answered, row by row."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import oss2

from tests.conformance.cases import CASES, Case
from tests.conformance.client import Conn, Observation, Target, new_run_id

__all__ = ["Row", "compare", "in_process_sandbox", "render", "run_side"]

CLEANUP_LABEL = "clean-up: left under the prefix"


@dataclass(frozen=True)
class Row:
    request: str
    a: Observation | None
    b: Observation | None
    note: str = ""

    @property
    def differing(self) -> list[str]:
        """The fields that differ ([] when both sides answered alike)."""
        if self.a is None or self.b is None:
            return ["(no answer)"]
        a, b = self.a.as_dict(), self.b.as_dict()
        return [name for name in dict.fromkeys([*a, *b]) if a.get(name) != b.get(name)]

    @property
    def same(self) -> bool:
        return not self.differing

    @property
    def verdict(self) -> str:
        if self.same:
            return "same"
        text = "different: " + ", ".join(self.differing)
        return f"{text} (known: {self.note})" if self.note else text


def run_side(target: Target, run_id: str, cases: Sequence[Case] = CASES,
             ) -> list[tuple[str, Observation]]:
    """Send every case to ``target``; whatever happens, remove what was written."""
    conn = Conn(target, run_id)
    try:
        for case in cases:
            with conn.case(case.name):
                try:
                    case.run(conn)
                except Exception as exc:
                    print(f"conformance: {target.name}: case {case.name} stopped: "
                          f"{type(exc).__name__}: {exc}", file=sys.stderr)
                    conn.record("stopped", Observation.of(status="error",
                                                          error=type(exc).__name__))
        try:
            conn.sweep()
            bucket = conn.bucket()
            left = sum(1 for _ in oss2.ObjectIterator(bucket, prefix=conn.prefix))
            left += sum(1 for _ in oss2.MultipartUploadIterator(bucket, prefix=conn.prefix))
            conn.record(CLEANUP_LABEL, Observation.of(left=left))
        except Exception as exc:
            conn.record(CLEANUP_LABEL, Observation.of(status="error", error=type(exc).__name__))
    finally:
        conn.close()
    return conn.rows


def compare(a: Target, b: Target, cases: Sequence[Case] = CASES,
            run_id: str | None = None) -> list[Row]:
    run_id = run_id or new_run_id()
    rows_a = run_side(a, run_id, cases)
    rows_b = run_side(b, run_id, cases)
    notes = {case.name: case.note for case in cases}
    by_b = dict(rows_b)
    labels = list(dict.fromkeys([label for label, _ in rows_a] + [label for label, _ in rows_b]))
    by_a = dict(rows_a)
    return [Row(label, by_a.get(label), by_b.get(label),
                notes.get(label.split(":", 1)[0], "")) for label in labels]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows: Sequence[Row], a: Target, b: Target) -> str:
    """A Markdown table (readable as text too) and a summary line."""
    lines = [
        f"A: {a.endpoint} (bucket {a.bucket}, region {a.region})",
        f"B: {b.endpoint} (bucket {b.bucket}, region {b.region})",
        "",
        "| request | A | B | verdict |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cells = [row.request, str(row.a) if row.a else "-", str(row.b) if row.b else "-",
                 row.verdict]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", summary(rows)]
    return "\n".join(lines) + "\n"


def summary(rows: Sequence[Row]) -> str:
    same = sum(row.same for row in rows)
    known = sum(1 for row in rows if not row.same and row.note)
    other = len(rows) - same - known
    return (f"{len(rows)} requests: {same} same, {other} different"
            + (f", {known} different as known" if known else ""))


@contextlib.contextmanager
def in_process_sandbox(name: str) -> Iterator[Target]:
    """A sandbox server in this process with its default account, removed afterwards."""
    from ossdesk.sandbox.server import (
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
        DEFAULT_BUCKET,
        DEFAULT_REGION,
        SandboxServer,
    )

    with tempfile.TemporaryDirectory(prefix="ossdesk-conformance-",
                                     ignore_cleanup_errors=True) as root, \
            SandboxServer(Path(root), host="127.0.0.1", port=0) as server:
        yield Target(name=name, endpoint=server.endpoint, bucket=DEFAULT_BUCKET,
                     region=DEFAULT_REGION, access_key_id=DEFAULT_ACCESS_KEY_ID,
                     access_key_secret=DEFAULT_ACCESS_KEY_SECRET)
