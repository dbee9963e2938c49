"""Summarize a py-spy ``--format raw`` (collapsed stacks) profile as text.

    python -m tests.bench.profile_summary PROFILE.collapsed.txt [--top 25]

Prints the share of on-CPU samples per leaf function (self) and per function anywhere on the
stack (inclusive), thread names folded away.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarize(text: str, top: int) -> str:
    self_count: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        self_count[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    out = [f"{total} on-CPU samples", "", "self (leaf) share:"]
    out += [f"  {n / total * 100:5.1f}%  {f}" for f, n in self_count.most_common(top)]
    out += ["", "inclusive share:"]
    out += [f"  {n / total * 100:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarize(args.profile.read_text(), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
