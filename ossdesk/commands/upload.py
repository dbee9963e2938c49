"""``ossdesk upload PATH... --endpoint URL --bucket NAME``: upload files and folders, verified."""

from __future__ import annotations

import argparse
import contextlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ossdesk.commands import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Display,
    Listing,
    add_limit_options,
    error,
    open_store,
    run_until_idle,
    unfinished_walks,
)
from ossdesk.commands.earlier import EarlierUploads
from ossdesk.core.names import is_utf8
from ossdesk.core.object_options import (
    ACLS,
    ENCRYPTIONS,
    MAX_TAGS,
    ObjectOptions,
    OptionError,
    parse_tags,
)
from ossdesk.core.oss import Credentials, Endpoint, ErrorKind, OssClient, OssError, Timeouts
from ossdesk.core.plan import parse_size
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import (
    ENVIRONMENT,
    OVERWRITE,
    SKIP,
    NewUpload,
    Request,
    Store,
    StoreError,
)
from ossdesk.core.walk import FoundFile, WalkProblem, normalize_prefix
from ossdesk.credentials import (
    KeyringUnavailable,
    ProfileStore,
    credentials_from_env,
    default_credentials,
)

#: ``--on-collision``: a later source for a key already taken is not uploaded either way;
#: ``refuse`` makes the run fail (exit 1), ``skip`` only says so.
REFUSE = "refuse"
SKIP_LATER = "skip"
#: The region ``ossdesk sandbox`` signs with unless told otherwise.
SANDBOX_REGION = "cn-hangzhou"


def _size_value(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_destination_options(parser: argparse.ArgumentParser, *, bucket_help: str,
                            prefix_help: str, prefix_default: str | None = None) -> None:
    """Where to reach OSS and with which credentials: --endpoint, --bucket, --region,
    --prefix, --profile, --signature (read back by :func:`_destination`)."""
    parser.add_argument("--endpoint", metavar="URL",
                        help="OSS endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com")
    parser.add_argument("--bucket", metavar="NAME", help=bucket_help)
    parser.add_argument("--region", metavar="R",
                        help="the bucket's region, e.g. cn-hangzhou (needed by V4 signatures)")
    parser.add_argument("--prefix", metavar="P", default=prefix_default, help=prefix_help)
    parser.add_argument("--profile", metavar="NAME",
                        help="a saved account (its secret stays in the system keyring); "
                             "without it OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET / "
                             "OSS_SESSION_TOKEN are used")
    parser.add_argument("--signature", choices=("v4", "v1"), default=None,
                        help="request signature version (default v4)")


def add_object_options(parser: argparse.ArgumentParser) -> None:
    """How objects are written: part size, storage class, metadata, ACL, headers, tags and
    server-side encryption (checked by :func:`object_options` before anything is sent)."""
    parser.add_argument("--part-size", type=_size_value, metavar="SIZE", default=None,
                        help="multipart part size, e.g. 8MiB, kept as given (default: "
                             "sized so that a part takes about 4 s at the measured speed or "
                             "--limit-rate, at most 8MiB; grown when a file would need more "
                             "than 10,000 parts)")
    parser.add_argument("--storage-class", metavar="CLASS", default=None,
                        help="Standard, IA, Archive, ColdArchive, ...")
    parser.add_argument("--meta", metavar="NAME=VALUE", action="append", default=[],
                        help="object metadata (x-oss-meta-NAME); repeatable")
    parser.add_argument("--acl", choices=ACLS, default=None,
                        help="the object's ACL (x-oss-object-acl); default: the bucket's")
    parser.add_argument("--content-type", metavar="TYPE", default=None,
                        help="Content-Type of every object (default: from each file's name)")
    parser.add_argument("--cache-control", metavar="VALUE", default=None,
                        help="Cache-Control of the objects, e.g. 'max-age=3600'")
    parser.add_argument("--content-disposition", metavar="VALUE", default=None,
                        help="Content-Disposition of the objects, e.g. 'attachment'")
    parser.add_argument("--tags", metavar="K=V&K2=V2", action="append", default=[],
                        help="object tags (x-oss-tagging), URL-encoded or plain; repeatable; "
                             f"at most {MAX_TAGS}")
    parser.add_argument("--sse", choices=ENCRYPTIONS, default=None,
                        help="server-side encryption (x-oss-server-side-encryption)")
    parser.add_argument("--kms-key-id", metavar="ID", default=None,
                        help="the KMS key to encrypt with (with --sse KMS; default: OSS's)")


def object_options(args: argparse.Namespace) -> ObjectOptions:
    """The object options given on the command line, checked (:class:`OptionError`)."""
    tags: list[tuple[str, str]] = []
    for text in args.tags:
        tags.extend(parse_tags(text))
    return ObjectOptions(acl=args.acl, content_type=args.content_type,
                         cache_control=args.cache_control,
                         content_disposition=args.content_disposition, tags=tuple(tags),
                         encryption=args.sse, kms_key_id=args.kms_key_id).checked()


def user_metadata(args: argparse.Namespace) -> dict[str, str]:
    """``--meta NAME=VALUE`` as a dict (:class:`OptionError` for a bad one)."""
    metadata: dict[str, str] = {}
    for item in args.meta:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"--meta {item!r}: write NAME=VALUE")
        metadata[name.strip().lower()] = value
    return metadata


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", type=Path,
                        help="files and folders (folders are uploaded with everything below)")
    add_destination_options(parser, bucket_help="the bucket to upload to",
                            prefix_help="folder in the bucket to upload into, e.g. backups/2024/")
    add_object_options(parser)
    parser.add_argument("--existing", choices=(OVERWRITE, SKIP), default=OVERWRITE,
                        help="when the key already exists: overwrite it (default), or skip "
                             "the file if the object has the same size and CRC-64 (checked "
                             "before anything is sent; different content is overwritten)")
    parser.add_argument("--on-collision", choices=(REFUSE, SKIP_LATER), default=REFUSE,
                        help="when two files would go to one key (two files of one name, "
                             "two folders of one name, or a file whose key an unfinished "
                             "upload already has): the later one is never uploaded; refuse "
                             "(default) also makes the run fail, skip does not (unless "
                             "nothing is left to upload)")
    add_limit_options(parser)


@dataclass(frozen=True)
class _Destination:
    endpoint: str
    bucket: str
    region: str | None
    prefix: str
    signature: Literal["v4", "v1"]
    source: str  # a profile name or "environment"


def _destination(args: argparse.Namespace) -> _Destination | None:
    """Where to upload and with which credentials, checked; None after an error line."""
    endpoint, bucket, region = args.endpoint, args.bucket, args.region
    prefix, signature = args.prefix, args.signature
    creds: Credentials | None
    if args.profile:
        profiles = ProfileStore()
        try:
            profile = profiles.get(args.profile)
        except Exception as exc:  # noqa: BLE001 - a damaged profiles file is reported
            error(f"cannot read the profile {args.profile!r}: {exc}")
            return None
        if profile is None:
            error(f"there is no saved profile named {args.profile!r}")
            return None
        endpoint = endpoint or profile.endpoint
        bucket = bucket or profile.bucket
        region = region or profile.region
        prefix = prefix if prefix is not None else profile.prefix
        signature = signature or profile.signature
        source = args.profile
        try:
            creds = profiles.credentials(args.profile)
        except (LookupError, KeyringUnavailable) as exc:
            error(str(exc))
            return None
    else:
        creds = credentials_from_env()
        if creds is None:
            error("no credentials: set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (and "
                  "OSS_SESSION_TOKEN for an STS token) in the environment, or use --profile "
                  "NAME (credentials are never taken as command-line arguments)")
            return None
        source = ENVIRONMENT
    if not endpoint or not bucket:
        error("say where to upload: --endpoint URL and --bucket NAME (or --profile NAME)")
        return None
    where = Endpoint(endpoint, bucket, region, "v1" if signature == "v1" else "v4")
    if where.signature == "v4" and not where.effective_region and where.is_loopback:
        # A local sandbox: its default region, unless told otherwise.
        where = Endpoint(endpoint, bucket, SANDBOX_REGION, "v4")
    try:
        timeouts = Timeouts.from_env().quick()
    except ValueError as exc:
        error(str(exc))
        return None
    try:
        with OssClient(where, creds, timeouts=timeouts, source=source) as client:
            client.check_connection()
    except OssError as exc:
        # A permanent verdict (wrong secret, no such bucket, bad endpoint) stops here, before
        # anything is queued. Network trouble does not: the uploads retry by themselves (and
        # say so). A key that may upload but not read the bucket's information is fine too.
        if exc.kind is ErrorKind.PERMANENT and exc.code != "AccessDenied":
            error(exc.message)
            return None
        if exc.kind is ErrorKind.RETRYABLE:
            error(f"note: the destination could not be checked ({exc.reason}); the uploads "
                  "start anyway and say when they try again")
    if not is_utf8(prefix or ""):
        error(f"--prefix {prefix}: not valid UTF-8, which an object key must be")
        return None
    return _Destination(where.url, where.bucket, where.region, normalize_prefix(prefix),
                        where.signature, source)


def run(args: argparse.Namespace) -> int:
    try:
        metadata = user_metadata(args)
        options = object_options(args)
    except OptionError as exc:
        error(f"{exc}; nothing was sent")
        return EXIT_USAGE
    dest = _destination(args)
    if dest is None:
        return EXIT_USAGE
    opened = open_store()
    if isinstance(opened, int):
        return opened
    store = opened
    try:
        return _run(args, store, dest, metadata, options)
    finally:
        store.close()


def collision_checks(store: Store, endpoint: str, bucket: str,
                     on_problem: Callable[[WalkProblem], None], *, refuse: bool,
                     ) -> tuple[Callable[[FoundFile, Path], None],
                                Callable[[list[NewUpload]], list[NewUpload]]]:
    """Two sources never share one key: ``(on_collision, keep)`` for a :class:`Listing`.
    ``on_collision`` reports a later file of the same walk for a key already produced;
    ``keep`` leaves out of a batch the files whose key an unfinished row of another source
    has. Each is one line naming both sources and the key; with ``refuse`` the run fails."""

    def collide(later: Path, first: Path, key: str, *, queued: bool) -> None:
        """One line naming both sources and the key; the later one is left out."""
        if not queued and _same_file(later, first):
            on_problem(WalkProblem(later, f"{later}: named more than once; uploaded once, "
                                          f"to {key}", skipped=False))
            return
        what = f"{first} (an unfinished upload in the queue)" if queued else str(first)
        spelled = ""
        if str(later) != str(first) and _nfc(str(later)) == _nfc(str(first)):
            spelled = " (one name in two Unicode spellings, NFC and NFD)"
        on_problem(WalkProblem(later, f"{later} and {what} both go to {key}{spelled}; "
                                      f"{later} is not uploaded",
                               skipped=refuse))

    def on_collision(found: FoundFile, first: Path) -> None:
        collide(found.path, first, found.key, queued=False)

    def not_queued_elsewhere(batch: list[NewUpload]) -> list[NewUpload]:
        """The batch without files whose key an unfinished row of another source has (the
        same file queued again is fine: it was always allowed)."""
        taken = store.unfinished_sources(endpoint, bucket, [i.key for i in batch])
        kept: list[NewUpload] = []
        for item in batch:
            others = [s for s in taken.get(item.key, ()) if s != item.source]
            if others:
                collide(item.source, others[0], item.key, queued=True)
            else:
                kept.append(item)
        return kept

    return on_collision, not_queued_elsewhere


def _run(args: argparse.Namespace, store: Store, dest: _Destination,
         metadata: dict[str, str], options: ObjectOptions) -> int:
    display = Display(json_mode=args.json)
    problems: list[WalkProblem] = []

    def on_problem(problem: WalkProblem) -> None:
        problems.append(problem)
        error(problem.message)

    on_collision, keep = collision_checks(store, dest.endpoint, dest.bucket, on_problem,
                                          refuse=args.on_collision == REFUSE)
    for line in unfinished_walks(store):
        error(f"note: {line}")
    try:
        # What was asked for is recorded before the walk: if the walk is cut short (Ctrl-C,
        # a full disk, a crash), `ossdesk resume` finishes it.
        request = store.begin_request(Request(
            roots=tuple(p.absolute() for p in args.paths), endpoint=dest.endpoint,
            bucket=dest.bucket, credentials=dest.source, region=dest.region,
            signature=dest.signature, prefix=dest.prefix, part_size=args.part_size,
            metadata=metadata, storage_class=args.storage_class, existing=args.existing,
            options=options))
    except StoreError as exc:
        error(str(exc))
        error("nothing of this upload was queued (`ossdesk resume` does not know it): run "
              "the same `ossdesk upload` again once the upload list can be written")
        return EXIT_BUSY
    scheduler = Scheduler(
        store,
        jobs=args.jobs or 3,
        parallel=args.parallel or 8,
        small_parallel=args.small_parallel,
        rate=args.limit_rate or 0,
        part_size=args.part_size,
        reread_limit=args.reread_limit,
        credentials=default_credentials,
    )
    scheduler.add_listener(display)
    display.start()  # uploads begin while the rest of the files are still being queued
    assert request.id is not None
    earlier = EarlierUploads(store, on_problem, request=request)
    listing = Listing(scheduler, request, on_problem, on_collision=on_collision, keep=keep,
                      earlier=earlier.sort)
    try:
        ids = listing.run()
    except KeyboardInterrupt:
        scheduler.close(pause=True)
        display.stop()
        error(listing.stopped())
        return EXIT_INTERRUPTED
    except StoreError as exc:
        scheduler.close(pause=True)
        display.stop()
        error(str(exc))
        error(listing.stopped())
        return EXIT_BUSY
    if note := earlier.note():
        error(f"note: {note}")
    with contextlib.suppress(StoreError):
        if others := store.unfinished_outside(request.id):
            error(f"note: {others} unfinished upload(s) from an earlier run are not part of "
                  "this one; `ossdesk resume` continues them")
    if not ids:
        scheduler.close(pause=False)
        display.stop()
        error("nothing to upload" + (" (see the problems above)" if problems else ""))
        return EXIT_FAILED
    code = run_until_idle(scheduler, display, ids)
    skipped = [p for p in problems if p.skipped]
    if skipped and code == 0:
        error(f"{len(skipped)} item(s) were skipped (see above)")
        return EXIT_FAILED
    return code


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()
