"""Smoke test of a frozen ossdesk: ``--version`` and ``selftest``, failing on unexpected stderr.

    python packaging/smoke_test.py dist/ossdesk/ossdesk              # Linux
    python packaging/smoke_test.py dist/ossdesk/ossdesk.exe          # Windows (the console exe)
    python packaging/smoke_test.py dist/ossdesk.app/Contents/MacOS/ossdesk

Checks, each with its exit code, stdout and stderr:
1. ``ossdesk --version`` prints ``ossdesk <version of pyproject.toml>`` and nothing on stderr;
   it runs a few times and the start-up time (best and median) is reported.
2. ``ossdesk selftest`` exits 0, its last line says it passed, and stderr is empty.
Anything on stderr fails the test unless it matches an ``--allow-stderr`` pattern (a regular
expression per line), so new warnings are seen when they appear, not when users report them.
Runs with the Python of the build; needs nothing but the standard library.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        version: str = tomllib.load(fh)["project"]["version"]
    return version


def clean_environment() -> dict[str, str]:
    """The caller's environment without what could make the app behave unlike a user's."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "QT_", "OSSDESK_", "OSS_"))
    }
    env.pop("VIRTUAL_ENV", None)
    return env


def run(command: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    proc = subprocess.run(  # noqa: S603 - the app under test
        command,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return proc, time.perf_counter() - started


def unexpected(stderr: str, allowed: list[re.Pattern[str]]) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not any(pattern.search(line) for pattern in allowed)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executable", type=Path, help="the frozen ossdesk (console) executable")
    parser.add_argument("--expect-version", default=None,
                        help="the version it must report (default: pyproject.toml's)")
    parser.add_argument("--allow-stderr", action="append", default=[], metavar="REGEX",
                        help="a stderr line matching this is not a failure (repeatable)")
    parser.add_argument("--runs", type=int, default=5, help="--version runs to time (default 5)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    args = parser.parse_args(argv)

    exe = str(args.executable.resolve())
    expected = f"ossdesk {args.expect_version or project_version()}"
    allowed = [re.compile(pattern) for pattern in args.allow_stderr]
    failures: list[str] = []

    times: list[float] = []
    for _ in range(max(1, args.runs)):
        proc, seconds = run([exe, "--version"], args.timeout)
        times.append(seconds)
        if proc.returncode != 0 or proc.stdout.strip() != expected:
            failures.append(
                f"--version: exit {proc.returncode}, printed {proc.stdout.strip()!r}, "
                f"expected {expected!r}"
            )
            break
        if bad := unexpected(proc.stderr, allowed):
            failures.append("--version wrote to stderr:\n  " + "\n  ".join(bad))
            break
    print(
        f"--version: {expected!r}; start-up {times[0]:.2f} s first run, "
        f"best {min(times):.2f} s, median {statistics.median(times):.2f} s of {len(times)}",
        flush=True,
    )

    proc, seconds = run([exe, "selftest"], args.timeout)
    print(f"selftest ({seconds:.1f} s, exit {proc.returncode}):", flush=True)
    for line in proc.stdout.splitlines():
        print(f"  {line}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines or not lines[-1].startswith("selftest passed"):
        failures.append(f"selftest: exit {proc.returncode}")
    if bad := unexpected(proc.stderr, allowed):
        failures.append("selftest wrote to stderr:\n  " + "\n  ".join(bad))

    if failures:
        print("SMOKE TEST FAILED:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
