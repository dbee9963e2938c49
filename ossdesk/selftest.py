"""``ossdesk selftest``: check that this installation of ossdesk works, offline and headless.

It is what the release builds run against each frozen app before publishing it, and what a
user (or support) can run to tell a broken installation from a network or account problem.
Each check prints one line; the command exits 0 only when every check passed.

- ``version``: the package metadata is there (a frozen app without it reports no version).
- ``crc64``: the compiled CRC-64 module loads and computes the catalogued check value.
- ``modules``: every module of the engine, the sandbox and the command line imports.
- ``tls``: HTTPS endpoints are verified against the system's certificate store
  (truststore), and certifi's CA certificates, the fallback, are bundled and load.
- ``keyring``: keyring's backends are registered and this platform's native backend imports.
- ``watch``: the system's change notifications (watchdog's observer) report a new file.
- ``qt``: in a child process, Qt starts on its ``offscreen`` platform plugin, paints text and
  builds a widget, the window's modules import, its icons decode and its translations load
  (a frozen app missing a plugin or a resource is broken).
- ``upload``: an in-process sandbox server receives a generated multi-part file through the
  upload engine, and the object's CRC-64 equals the file's.
- ``endpoint`` (only with ``--endpoint URL --bucket NAME``): the same through a real bucket: a
  multipart upload under ``ossdesk-selftest/<random>/`` is stopped after its first confirmed
  part, continued by a new engine from its checkpoint, verified by CRC-64 (the engine's, then
  HeadObject's and the bytes read back), and everything it wrote is removed, also on failure.
  Credentials come from ``--profile NAME`` (the keyring) or OSS_ACCESS_KEY_ID /
  OSS_ACCESS_KEY_SECRET / OSS_SESSION_TOKEN, never from the command line.

Everything happens in a temporary folder that is removed afterwards; ``OSSDESK_HOME`` points
there while the checks run, so the user's checkpoints, settings and keyring are never touched
(a profile's secret is read before that, and only read).
Nothing here imports Qt or the engine at module level: ``ossdesk --version`` stays fast.

This module is the command (its options, the temporary folder, running the checks, their
lines); the checks are in :mod:`ossdesk.selftest_checks` (the installation itself, and the
Qt probe) and :mod:`ossdesk.selftest_upload` (``upload`` and ``endpoint``).
"""

# Imports inside the checks are on purpose: ossdesk.cli imports this module for every command
# (even --version), and each check should load only what it tests.

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ossdesk.selftest_checks import (
    CheckFailed,
    _qt_probe,
    check_crc64,
    check_keyring,
    check_modules,
    check_qt,
    check_tls,
    check_version,
    check_watch,
)
from ossdesk.selftest_checks import Context as Context  # noqa: PLC0414
from ossdesk.selftest_checks import Remote as Remote  # noqa: PLC0414
from ossdesk.selftest_upload import check_endpoint, check_upload

__all__ = ["CHECKS", "CheckFailed", "configure", "run", "run_checks"]

_KiB = 1024
ENDPOINT_CHECK = "endpoint"
_SANDBOX_REGION = "cn-hangzhou"  # what ``ossdesk sandbox`` signs with unless told otherwise


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    seconds: float


# --- the command ---------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parts",
        type=_positive_int,
        default=3,
        metavar="N",
        help="number of parts of the test upload (default: 3)",
    )
    parser.add_argument(
        "--part-size",
        type=_part_size,
        default=256 * _KiB,
        metavar="SIZE",
        help="part size of the test upload, at least 100KiB (default: 256KiB)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[name for name, _ in CHECKS] + [ENDPOINT_CHECK],
        metavar="CHECK",
        help="run only this check (repeatable): "
        + ", ".join([*(name for name, _ in CHECKS), ENDPOINT_CHECK]),
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (its path is printed) to look at afterwards",
    )
    remote = parser.add_argument_group(
        "a real bucket (the endpoint check)",
        "Credentials: --profile NAME (secret in the system keyring), or OSS_ACCESS_KEY_ID / "
        "OSS_ACCESS_KEY_SECRET (/ OSS_SESSION_TOKEN) in the environment; never as arguments.",
    )
    remote.add_argument("--endpoint", metavar="URL",
                        help="also upload through this OSS endpoint, e.g. "
                             "https://oss-cn-hangzhou.aliyuncs.com")
    remote.add_argument("--bucket", metavar="NAME", help="the bucket to check against")
    remote.add_argument("--region", metavar="R",
                        help="the bucket's region when the endpoint does not tell it")
    remote.add_argument("--profile", metavar="NAME",
                        help="a saved account: its endpoint, bucket, region and credentials")
    # The Qt check runs this same command in a child process with --probe qt.
    parser.add_argument("--probe", choices=["qt"], help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.probe == "qt":
        return _qt_probe()
    only: list[str] | None = args.only
    remote: Remote | None = None
    if args.endpoint or args.bucket or args.profile:
        found = _remote(args)
        if isinstance(found, str):
            print(f"ossdesk selftest: {found}", file=sys.stderr, flush=True)
            return 2
        remote = found
    elif only is not None and ENDPOINT_CHECK in only:
        print("ossdesk selftest: the endpoint check needs --endpoint URL --bucket NAME "
              "(or --profile NAME)", file=sys.stderr, flush=True)
        return 2
    every = [name for name, _ in CHECKS] + ([ENDPOINT_CHECK] if remote is not None else [])
    names = [name for name in every if only is None or name in only]
    started = time.monotonic()
    with _workdir(keep=args.keep) as workdir:
        if args.keep:
            print(f"temporary folder: {workdir}", flush=True)
        context = Context(workdir=workdir, parts=args.parts, part_size=args.part_size,
                          remote=remote)
        with _isolated_environment(workdir / "home"):
            results = run_checks(context, names, report=_print_result)
    failed = [result.name for result in results if not result.ok]
    elapsed = time.monotonic() - started
    if failed:
        print(f"selftest FAILED: {', '.join(failed)} ({elapsed:.1f} s)", flush=True)
        return 1
    print(f"selftest passed: {len(results)} checks in {elapsed:.1f} s", flush=True)
    return 0


def run_checks(
    context: Context,
    names: list[str],
    report: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run the named checks in order; a check that raises is a failed check, never a crash."""
    results: list[Result] = []
    table = {**dict(CHECKS), ENDPOINT_CHECK: check_endpoint}
    for name in names:
        started = time.monotonic()
        try:
            detail = table[name](context)
            ok = True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - any surprise is this check's failure
            detail, ok = f"{type(exc).__name__}: {exc}", False
        result = Result(name=name, ok=ok, detail=detail, seconds=time.monotonic() - started)
        results.append(result)
        if report is not None:
            report(result)
    return results


def _print_result(result: Result) -> None:
    verdict = "ok" if result.ok else "FAIL"
    print(f"{verdict:<4}  {result.name:<8} {result.detail}", flush=True)


def _remote(args: argparse.Namespace) -> Remote | str:
    """The bucket and credentials to check against, or why there are none."""
    from ossdesk.core.oss import Endpoint
    from ossdesk.credentials import KeyringUnavailable, ProfileStore, credentials_from_env

    endpoint, bucket, region = args.endpoint, args.bucket, args.region
    if args.profile:
        profiles = ProfileStore()
        try:
            profile = profiles.get(args.profile)
        except Exception as exc:  # noqa: BLE001 - a damaged profiles file is reported
            return f"cannot read the profile {args.profile!r}: {exc}"
        if profile is None:
            return f"there is no saved profile named {args.profile!r}"
        try:
            credentials = profiles.credentials(args.profile)
        except (LookupError, KeyringUnavailable) as exc:
            return str(exc)
        endpoint = endpoint or profile.endpoint
        bucket = bucket or profile.bucket
        region = region or profile.region
        signature = profile.signature
        source = f"profile {args.profile}"
    else:
        found = credentials_from_env()
        if found is None:
            return ("no credentials: set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (and "
                    "OSS_SESSION_TOKEN for an STS token) in the environment, or use --profile "
                    "NAME (credentials are never taken as command-line arguments)")
        credentials = found
        signature = "v4"
        source = "the environment"
    if not endpoint or not bucket:
        return "say which bucket to check: --endpoint URL and --bucket NAME (or --profile NAME)"
    where = Endpoint(endpoint, bucket, region, "v1" if signature == "v1" else "v4")
    if where.signature == "v4" and not where.effective_region and where.is_loopback:
        where = Endpoint(endpoint, bucket, _SANDBOX_REGION, "v4")  # a local sandbox's default
    return Remote(endpoint=where, credentials=credentials, source=source)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _part_size(text: str) -> int:
    from ossdesk.core.plan import MIN_PART_SIZE, parse_size

    try:
        value = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < MIN_PART_SIZE:
        raise argparse.ArgumentTypeError("OSS parts (but the last) are at least 100KiB")
    return value


@contextlib.contextmanager
def _workdir(*, keep: bool) -> Iterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="ossdesk-selftest-"))
        return
    # Windows may hold a just-closed file a moment longer (an antivirus scan, say): a folder
    # left in the temp directory is not worth failing a passed self-test for.
    with tempfile.TemporaryDirectory(
        prefix="ossdesk-selftest-", ignore_cleanup_errors=True
    ) as name:
        yield Path(name)


@contextlib.contextmanager
def _isolated_environment(home: Path) -> Iterator[None]:
    """Point every ossdesk path at ``home`` and keep proxies and credentials out of the way.

    The upload goes to a sandbox on 127.0.0.1 with the sandbox's own key pair; a user's
    ``OSS_*`` variables or an HTTP proxy must not change what it does.
    """
    overrides: dict[str, str | None] = {
        "OSSDESK_HOME": str(home),
        "OSS_ACCESS_KEY_ID": None,
        "OSS_ACCESS_KEY_SECRET": None,
        "OSS_SESSION_TOKEN": None,
    }
    saved = {name: os.environ.get(name) for name in (*overrides, "NO_PROXY", "no_proxy")}
    for name in ("NO_PROXY", "no_proxy"):
        # Loopback is added to the user's list: a real endpoint keeps the user's proxy rules.
        kept = [h for h in (saved[name] or "").split(",") if h.strip()]
        overrides[name] = ",".join([*kept, "127.0.0.1", "localhost"])
    try:
        for name, value in overrides.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- the checks (in selftest_checks and selftest_upload) ------------------------------------


CHECKS: list[tuple[str, Callable[[Context], str]]] = [
    ("version", check_version),
    ("crc64", check_crc64),
    ("modules", check_modules),
    ("tls", check_tls),
    ("keyring", check_keyring),
    ("watch", check_watch),
    ("qt", check_qt),
    ("upload", check_upload),
]
