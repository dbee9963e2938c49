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
"""

# Imports inside the checks are on purpose: ossdesk.cli imports this module for every command
# (even --version), and each check should load only what it tests.

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ossdesk.core.oss import Credentials, Endpoint, OssClient

__all__ = ["CHECKS", "CheckFailed", "configure", "run", "run_checks"]

_QT_PROBE_TIMEOUT = 120.0
_UPLOAD_TIMEOUT = 120.0
_KiB = 1024
ENDPOINT_CHECK = "endpoint"
_SANDBOX_REGION = "cn-hangzhou"  # what ``ossdesk sandbox`` signs with unless told otherwise
_REMOTE_PREFIX = "ossdesk-selftest/"


class CheckFailed(Exception):
    """A check's verdict: the message says what is wrong, for the user."""


@dataclass(frozen=True)
class Remote:
    """A real bucket to check against (``--endpoint``), with the credentials to use."""

    endpoint: Endpoint
    credentials: Credentials
    source: str  # "the environment" or "profile NAME", for messages


@dataclass(frozen=True)
class Context:
    """What the checks share: the temporary folder, the upload's shape, the real bucket."""

    workdir: Path
    parts: int
    part_size: int
    remote: Remote | None = None


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


def _self_command(*args: str) -> list[str]:
    """The command line that runs this ossdesk again (a frozen app is its own interpreter)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "ossdesk", *args]


# --- the checks ----------------------------------------------------------------------------


def check_version(context: Context) -> str:
    import ossdesk

    version = ossdesk.__version__
    if "unknown" in version:
        raise CheckFailed(f"no package metadata for ossdesk (version {version!r})")
    how = "frozen" if getattr(sys, "frozen", False) else "from Python"
    return (
        f"ossdesk {version}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {how}"
    )


def check_crc64(context: Context) -> str:
    from ossdesk.core.checksum import combine_parts, crc64

    expected = 0x995DC9BBDF1939FA  # CRC-64/XZ of b"123456789", from the CRC catalogue
    got = crc64(b"123456789")
    if got != expected:
        raise CheckFailed(f"CRC-64 of the check string is {got:#x}, expected {expected:#x}")
    if combine_parts([(crc64(b"12345"), 5), (crc64(b"6789"), 4)]) != expected:
        raise CheckFailed("combining part CRCs does not give the whole CRC")
    return "CRC-64/XZ check value and part combination"


# Modules that must not be imported by the check: __main__ runs the command, and the window's
# modules load Qt (they are imported by the Qt probe instead, in its own process).
_NOT_IMPORTED = ("ossdesk.__main__",)
_QT_PACKAGES = ("ossdesk.ui",)


def _ossdesk_modules(*, qt: bool) -> list[str]:
    import ossdesk

    names: list[str] = []
    for info in pkgutil.walk_packages(ossdesk.__path__, prefix="ossdesk.", onerror=_raise):
        name = info.name
        if name in _NOT_IMPORTED or name.endswith(".__main__"):
            continue
        in_qt = any(name == pkg or name.startswith(pkg + ".") for pkg in _QT_PACKAGES)
        if in_qt == qt:
            names.append(name)
    return names


def _raise(name: str) -> None:
    raise CheckFailed(f"cannot list the modules of {name}")


def check_modules(context: Context) -> str:
    names = _ossdesk_modules(qt=False)
    broken: list[str] = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported, with every other broken module
            broken.append(f"{name} ({type(exc).__name__}: {exc})")
    if broken:
        raise CheckFailed("cannot import " + "; ".join(broken))
    if len(names) < 3:
        raise CheckFailed(f"only {len(names)} ossdesk modules found: this installation is partial")
    return f"{len(names)} modules of the engine, sandbox and command line import"


def check_tls(context: Context) -> str:
    """HTTPS to OSS is verified against this system's certificate store (truststore), and
    certifi's CA certificates, the fallback, are there and load."""
    import ssl

    import certifi  # the fallback where truststore cannot load

    try:
        import truststore
    except ImportError as exc:
        raise CheckFailed(f"truststore cannot be imported ({exc}): HTTPS would trust only "
                          "certifi's bundle, not this system's certificates") from None
    truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bundle = Path(certifi.where())
    if not bundle.is_file():
        raise CheckFailed(f"no CA certificates at {bundle}: HTTPS endpoints cannot be verified")
    tls = ssl.create_default_context(cafile=str(bundle))
    count = len(tls.get_ca_certs())
    if count < 50:
        raise CheckFailed(f"only {count} CA certificates in {bundle}")
    where = f"{bundle.parent.name}/{bundle.name}"
    return (f"the system's certificate store (truststore {truststore.__version__}); fallback "
            f"{count} CA certificates load ({where}), {ssl.OPENSSL_VERSION}")


def _native_keyring() -> tuple[str, str, list[str]]:
    """This platform's keyring backend: (module, class, modules it needs)."""
    if sys.platform == "win32":
        return "keyring.backends.Windows", "WinVaultKeyring", []
    if sys.platform == "darwin":
        return "keyring.backends.macOS", "Keyring", ["keyring.backends.macOS.api"]
    return "keyring.backends.SecretService", "Keyring", ["secretstorage", "jeepney"]


def check_keyring(context: Context) -> str:
    from importlib.metadata import entry_points

    import keyring

    registered = sorted(ep.name for ep in entry_points(group="keyring.backends"))
    if not registered:
        raise CheckFailed("keyring's backends are not registered (its package metadata is missing)")
    module_name, class_name, needs = _native_keyring()
    for name in (module_name, *needs):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise CheckFailed(f"cannot import {name}: {exc}") from None
    backend_class = getattr(importlib.import_module(module_name), class_name)
    try:
        priority = backend_class.priority
        usable = f"usable (priority {priority})"
    except Exception as exc:  # noqa: BLE001 - keyring says "not usable here" by raising
        if sys.platform in ("win32", "darwin"):
            # On these platforms the native backend always works unless a part is missing.
            raise CheckFailed(f"{module_name} is not usable: {exc}") from None
        # On Linux it depends on a running Secret Service (a desktop session), not on us.
        usable = f"not reachable here ({exc})"
    chosen = keyring.get_keyring()
    return (
        f"{len(registered)} backends registered; {module_name} {usable}; "
        f"in use: {type(chosen).__module__}.{type(chosen).__qualname__}"
    )


def check_qt(context: Context) -> str:
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # the probe asks for "offscreen" itself
    try:
        proc = subprocess.run(  # noqa: S603 - runs this same program
            _self_command("selftest", "--probe", "qt"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=_QT_PROBE_TIMEOUT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"Qt did not start within {_QT_PROBE_TIMEOUT:.0f} s") from None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        why = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-6:]
        raise CheckFailed(f"Qt probe exited with {proc.returncode}: " + " | ".join(why))
    return lines[-1]


def _write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            fh.write(chunk)
            left -= len(chunk)


def check_upload(context: Context) -> str:
    from ossdesk.core.checksum import crc64, crc64_file
    from ossdesk.core.events import Done, Event, Failed, Paused, Started
    from ossdesk.core.oss import Credentials, Endpoint, OssClient
    from ossdesk.core.scheduler import Scheduler
    from ossdesk.core.store import NewUpload, State, Store
    from ossdesk.sandbox.server import SandboxServer

    # Every part but the last is full; the last is half a part, so sizes are not all equal.
    size = context.part_size * (context.parts - 1) + context.part_size // 2 + 1
    source = context.workdir / "selftest.bin"
    _write_random_file(source, size)
    expected = crc64_file(source)
    stat = source.stat()
    key = "ossdesk-selftest/selftest.bin"

    events: list[Event] = []
    started = time.monotonic()
    with SandboxServer(context.workdir / "sandbox", host="127.0.0.1", port=0) as server:
        credentials = Credentials(
            server.credentials.access_key_id, server.credentials.access_key_secret
        )
        bucket = server.bucket_names[0]
        store = Store.open(context.workdir / "home" / "selftest.sqlite3")
        try:
            scheduler = Scheduler(
                store,
                jobs=1,
                parallel=min(context.parts, 4),
                part_size=context.part_size,
                credentials=lambda _source: credentials,
            )
            scheduler.add_listener(events.append)
            (upload,) = scheduler.add(
                [
                    NewUpload(
                        source=source,
                        size=stat.st_size,
                        mtime_ns=stat.st_mtime_ns,
                        key=key,
                        endpoint=server.endpoint,
                        bucket=bucket,
                        region=server.region,
                        part_size=context.part_size,
                    )
                ]
            )
            scheduler.start()
            settled = scheduler.wait(_UPLOAD_TIMEOUT)
            scheduler.close(pause=not settled)
            row = store.get(upload)
        finally:
            store.close()
        seconds = time.monotonic() - started
        if not settled:
            raise CheckFailed(f"the upload did not finish within {_UPLOAD_TIMEOUT:.0f} s")
        problems = [e for e in events if isinstance(e, Failed | Paused)]
        if problems:
            raise CheckFailed("the engine reported: " + "; ".join(_event_text(e) for e in problems))
        done = [e for e in events if isinstance(e, Done) and e.upload == upload]
        if row is None or row.state is not State.DONE or not done:
            state = "gone" if row is None else str(row.state)
            raise CheckFailed(f"the upload ended {state}, not done")
        if done[-1].crc64 != expected:
            raise CheckFailed(
                f"the engine's verified CRC-64 is {done[-1].crc64}, the file's is {expected}"
            )
        multipart = any(isinstance(e, Started) and e.multipart for e in events)
        if multipart != (context.parts > 1):
            how = "a multipart upload" if multipart else "a single PUT"
            raise CheckFailed(f"the engine chose {how} for {context.parts} part(s)")

        # Ask the server independently: what it stores must be the file, byte for byte.
        client = OssClient(Endpoint(url=server.endpoint, bucket=bucket, region=server.region),
                           credentials)
        info = client.head_object(key)
        if info is None:
            raise CheckFailed("the sandbox has no object after the upload")
        if info.size != size or info.crc64 != expected:
            raise CheckFailed(
                f"the stored object has {info.size} bytes and CRC-64 {info.crc64}; "
                f"the file has {size} bytes and CRC-64 {expected}"
            )
        if crc64(client.get_object_bytes(key)) != expected:
            raise CheckFailed("the object read back differs from the file")
    parts = f"{context.parts} parts" if context.parts > 1 else "1 PUT"
    return (
        f"{size:,} bytes in {parts} through the engine to an in-process sandbox, "
        f"CRC-64 {expected:016x} verified ({seconds:.1f} s)"
    )


def check_endpoint(context: Context) -> str:
    """A multipart upload to the real bucket, stopped and continued, verified, then removed."""
    from ossdesk.core.oss import OssClient, OssError

    remote = context.remote
    if remote is None:
        raise CheckFailed("no bucket to check: use --endpoint URL --bucket NAME")
    prefix = f"{_REMOTE_PREFIX}{secrets.token_hex(8)}/"
    where = remote.endpoint
    try:
        client = OssClient(where, remote.credentials)
    except OssError as exc:
        raise CheckFailed(exc.message) from None
    try:
        try:
            client.check_connection()
        except OssError as exc:
            raise CheckFailed(f"bucket {where.bucket} at {where.url}: {exc.message} "
                              "(nothing was written)") from None
        try:
            detail = _stopped_and_continued(context, remote, client, prefix + "selftest.bin")
        except Exception as exc:
            left = _remove_prefix(client, prefix)
            if left:
                raise CheckFailed(f"{exc}; and {left}") from exc
            raise
        left = _remove_prefix(client, prefix)
        if left:
            raise CheckFailed(f"the upload was verified, but {left}")
    finally:
        client.close()
    return f"{detail}; nothing left under {prefix}"


def _remove_prefix(client: OssClient, prefix: str) -> str:
    """Abort the uploads and delete the objects under ``prefix``; then look again.

    Returns "" when nothing is left there, else what is left and why (it never raises)."""
    from ossdesk.core.oss import OssError

    try:
        for upload in client.list_multipart_uploads(prefix):
            client.abort_multipart(upload.key, upload.upload_id)
        _, objects = client.list_folder(prefix)
        for obj in objects:
            client.delete_object(obj.key)
        uploads = client.list_multipart_uploads(prefix)
        _, objects = client.list_folder(prefix)
    except OssError as exc:
        return (f"removing what it wrote under {prefix} failed ({exc.message}): look there "
                "and remove what is left")
    if not uploads and not objects:
        return ""
    return (f"{len(objects)} object(s) and {len(uploads)} unfinished upload(s) are still "
            f"under {prefix}; remove them")


def _stopped_and_continued(context: Context, remote: Remote, client: OssClient,
                           key: str) -> str:
    from ossdesk.core.checksum import crc64, crc64_file
    from ossdesk.core.events import Done, Event, Failed, Paused, Progress, Started
    from ossdesk.core.scheduler import Scheduler
    from ossdesk.core.store import NewUpload, State, Store

    parts = max(context.parts, 2)  # a pause needs a part before it and one after
    part_size = context.part_size
    size = part_size * (parts - 1) + part_size // 2 + 1
    source = context.workdir / "endpoint.bin"
    _write_random_file(source, size)
    expected = crc64_file(source)
    stat = source.stat()
    database = context.workdir / "endpoint.sqlite3"  # never the user's upload list
    where = remote.endpoint
    started = time.monotonic()

    def resolver(_source: str) -> Credentials:
        return remote.credentials

    # First run: one part at a time, throttled to about a part a second, so that it can be
    # stopped (as by Ctrl-C or quitting) once OSS has confirmed its first part.
    events: list[Event] = []
    first_part = threading.Event()  # also set when the upload stops another way

    def first_listener(event: Event) -> None:
        events.append(event)
        if isinstance(event, Failed | Paused | Done) or (
            isinstance(event, Progress) and event.confirmed_bytes >= part_size
        ):
            first_part.set()

    store = Store.open(database)
    try:
        scheduler = Scheduler(store, jobs=1, parallel=1, rate=part_size, part_size=part_size,
                              credentials=resolver)
        scheduler.add_listener(first_listener)
        (upload,) = scheduler.add([NewUpload(
            source=source, size=size, mtime_ns=stat.st_mtime_ns, key=key, endpoint=where.url,
            bucket=where.bucket, region=where.effective_region, signature=where.signature,
            part_size=part_size)])
        scheduler.start()
        confirmed_in_time = first_part.wait(_UPLOAD_TIMEOUT)
        scheduler.close(pause=True)
        row = store.get(upload)
        recorded = store.parts(upload)
    finally:
        store.close()
    failed = [e for e in events if isinstance(e, Failed)]
    if failed:
        raise CheckFailed("the engine reported: " + "; ".join(_event_text(e) for e in failed))
    if not confirmed_in_time or not any(isinstance(e, Progress) and e.confirmed_bytes
                                        for e in events):
        raise CheckFailed(f"OSS confirmed no part within {_UPLOAD_TIMEOUT:.0f} s")
    if row is None or row.state is State.DONE:
        raise CheckFailed("the upload finished before it could be stopped; use more --parts")
    if row.state is not State.PAUSED or not row.upload_id or not recorded:
        raise CheckFailed(f"after the stop the upload is {row.state} with {len(recorded)} "
                          "recorded part(s), not paused with its first part recorded")
    held = {part.number: part for part in client.list_parts(key, row.upload_id)}
    missing = sorted(n for n, part in recorded.items()
                     if n not in held or held[n].etag.strip('"') != part.etag.strip('"'))
    if missing:
        raise CheckFailed(f"the checkpoint records parts {missing} that OSS does not hold")
    kept = sum(part.size for part in recorded.values())

    # Second run: a new engine on the same checkpoint file, as after a restart.
    events = []
    store = Store.open(database)
    try:
        scheduler = Scheduler(store, jobs=1, parallel=min(parts, 4), part_size=part_size,
                              credentials=resolver)
        scheduler.add_listener(events.append)
        continued = scheduler.restore()
        scheduler.start()
        settled = scheduler.wait(_UPLOAD_TIMEOUT)
        scheduler.close(pause=not settled)
        row = store.get(upload)
    finally:
        store.close()
    seconds = time.monotonic() - started
    if continued != [upload]:
        raise CheckFailed(f"the new engine did not pick the stopped upload up ({continued})")
    if not settled:
        raise CheckFailed(f"the continued upload did not finish within {_UPLOAD_TIMEOUT:.0f} s")
    problems = [e for e in events if isinstance(e, Failed)]
    if problems:
        raise CheckFailed("the engine reported: " + "; ".join(_event_text(e) for e in problems))
    resumed = [e for e in events if isinstance(e, Started) and e.upload == upload]
    if not resumed or not resumed[0].resumed or resumed[0].confirmed_bytes != kept:
        raise CheckFailed(f"the upload did not continue from its {kept} confirmed bytes")
    done = [e for e in events if isinstance(e, Done) and e.upload == upload]
    if row is None or row.state is not State.DONE or not done:
        raise CheckFailed(f"the upload ended {'gone' if row is None else row.state}, not done")
    if done[-1].crc64 != expected:
        raise CheckFailed(f"the engine's verified CRC-64 is {done[-1].crc64}, the file's is "
                          f"{expected}")
    # Ask OSS independently: what it stores must be the file, byte for byte.
    info = client.head_object(key)
    if info is None:
        raise CheckFailed("OSS has no object after the upload")
    if info.size != size or info.crc64 != expected:
        raise CheckFailed(f"the stored object has {info.size} bytes and CRC-64 {info.crc64}; "
                          f"the file has {size} bytes and CRC-64 {expected}")
    if crc64(client.get_object_bytes(key)) != expected:
        raise CheckFailed("the object read back differs from the file")
    return (f"{size:,} bytes in {parts} parts to {where.bucket} at {where.url} (credentials "
            f"from {remote.source}): stopped after {len(recorded)} confirmed part(s), continued "
            f"by a new engine, CRC-64 {expected:016x} verified ({seconds:.1f} s)")


def _event_text(event: object) -> str:
    message = getattr(event, "message", "") or ""
    code = getattr(event, "code", "") or getattr(event, "reason", "") or ""
    return f"{type(event).__name__.lower()} {code}: {message}".strip()


def check_watch(context: Context) -> str:
    """The system's change notifications (watchdog's observer for this platform) arrive."""
    from ossdesk.core.sync import KeyFilter
    from ossdesk.core.watch import FolderWatch, observe

    folder = context.workdir / "watched"
    folder.mkdir()
    watch = FolderWatch(folder, "", KeyFilter(), settle=1.0, rescan=3600.0, clock=time.monotonic)
    observer = observe(watch)
    try:
        (folder / "new.txt").write_bytes(b"watched")
        deadline = time.monotonic() + 10
        while not watch.settling and time.monotonic() < deadline:
            watch.step()
            time.sleep(0.05)
    finally:
        observer.stop()
        observer.join(5)
    name = type(observer).__name__
    if not watch.settling:
        raise CheckFailed(f"{name} reported no change within 10 s; `ossdesk watch` would "
                          "find changes only by its rescans")
    return f"{name} reports changes"


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


# --- the Qt probe (child process) ----------------------------------------------------------


def _qt_probe() -> int:
    """Start Qt offscreen, paint, build a widget, import the window's modules; print one line."""
    from PySide6.QtCore import qVersion
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication(["ossdesk", "-platform", "offscreen"])
    platform_name = app.platformName()
    if platform_name != "offscreen":
        print(f"Qt started on the {platform_name!r} platform, not 'offscreen'", file=sys.stderr)
        return 1
    image = QImage(96, 24, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    painter.setPen(QColor(0, 0, 0))
    painter.drawText(2, 18, "ossdesk")
    painter.end()
    label = QLabel("ossdesk")
    label.adjustSize()
    style = app.style().name()
    window_modules = _ossdesk_modules(qt=True)
    for name in window_modules:
        importlib.import_module(name)
    try:
        resources = _probe_resources()
    except CheckFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"Qt {qVersion()} on 'offscreen', style {style}, "
        f"{len(window_modules)} window modules import, {resources}",
        flush=True,
    )
    return 0


def _probe_resources() -> str:
    """The window's icons decode (PNG built in, SVG through its plugin); its .qm files load."""
    from PySide6.QtCore import QLibraryInfo, QTranslator
    from PySide6.QtGui import QImage

    try:
        from ossdesk.ui.i18n import resources_dir
    except ImportError:
        return "no window resources in this build"
    root = resources_dir()
    icons = sorted(p for p in (root / "icons").glob("*") if p.suffix in {".png", ".svg", ".ico"})
    if not icons:
        raise CheckFailed(f"no icons in {root / 'icons'}")
    broken = [p.name for p in icons if QImage(str(p)).isNull()]
    if broken:
        raise CheckFailed(f"Qt cannot read the icons {', '.join(broken)}")
    catalogs = sorted((root / "translations").glob("*.qm"))
    unreadable = [p.name for p in catalogs if not QTranslator().load(str(p))]
    if unreadable:
        raise CheckFailed(f"Qt cannot load the translations {', '.join(unreadable)}")
    # Qt's own strings (file dialogs, standard buttons) for every language the app ships.
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    languages = sorted({p.stem.removeprefix("ossdesk_") for p in catalogs
                        if p.stem.startswith("ossdesk_")} - {"en"})
    missing = [lang for lang in languages if not QTranslator().load(f"qtbase_{lang}", qt_dir)]
    if missing:
        raise CheckFailed(f"Qt's own translations are missing for {', '.join(missing)} "
                          f"(qtbase_*.qm in {qt_dir})")
    return (f"{len(icons)} icons and {len(catalogs)} translations load, "
            f"Qt's own for {', '.join(languages) or 'no other language'}")
