"""``ossdesk sync DIR --endpoint URL --bucket NAME --prefix P``: make ``oss://NAME/P`` hold
what DIR holds (one way, local to OSS).

New and changed files are queued as ordinary uploads (so ``ossdesk resume`` finishes an
interrupted sync); identical objects are left alone, without reading the file where the
upload list or the object's metadata shows it (see :mod:`ossdesk.core.sync`); with
``--delete`` objects under the prefix that the folder no longer has are removed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ossdesk.commands import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Display,
    add_limit_options,
    error,
    json_line,
    open_store,
    run_until_idle,
)
from ossdesk.commands.earlier import EarlierUploads
from ossdesk.commands.upload import (
    _Destination,
    _destination,
    add_destination_options,
    add_object_options,
    object_options,
    user_metadata,
)
from ossdesk.core.checksum import crc64_file
from ossdesk.core.names import printable
from ossdesk.core.object_options import ObjectOptions, OptionError
from ossdesk.core.oss import Endpoint, ObjectInfo, OssClient, OssError
from ossdesk.core.plan import format_size
from ossdesk.core.scheduler import Scheduler
from ossdesk.core.store import OVERWRITE, NewUpload, Store, StoreError
from ossdesk.core.sync import (
    DEFAULT_EXCLUDES,
    MTIME_META,
    KeyFilter,
    LocalFile,
    Reason,
    UploadRecord,
    filtered,
    may_delete,
    pair,
    patterns,
    read_patterns,
    same_by_crc,
    same_by_metadata,
    same_by_record,
)
from ossdesk.core.upload import UploadError
from ossdesk.core.walk import FoundFile, WalkProblem, join_key, unique_keys, walk_folder
from ossdesk.credentials import default_credentials

_BATCH = 500


def configure(parser: argparse.ArgumentParser) -> None:
    add_sync_options(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="only say what would be uploaded and deleted; change nothing")
    add_limit_options(parser)


def add_sync_options(parser: argparse.ArgumentParser) -> None:
    """The folder, destination, object, ``--delete``, comparison and filter options (shared
    with ``ossdesk watch``)."""
    parser.add_argument("folder", metavar="DIR", type=Path,
                        help="the folder whose contents the prefix is to hold")
    add_destination_options(parser, bucket_help="the bucket to sync to",
                            prefix_help="the folder in the bucket that mirrors DIR, e.g. "
                                        "backups/photos/ (DIR's own name is not added)")
    add_object_options(parser)
    parser.add_argument("--delete", action="store_true",
                        help="also delete objects under the prefix that DIR no longer has "
                             "(never outside the prefix; excluded paths are kept)")
    parser.add_argument("--checksum", action="store_true",
                        help="compare every same-size file by CRC-64 with the object (reads "
                             "each such file and asks OSS for each object's CRC-64)")
    parser.add_argument("--exclude", metavar="GLOB", action="append", default=[],
                        help="leave out relative paths matching GLOB (a file, or a folder "
                             "and everything in it); repeatable")
    parser.add_argument("--include", metavar="GLOB", action="append", default=[],
                        help="only sync relative paths matching GLOB; repeatable")
    parser.add_argument("--exclude-from", metavar="FILE", type=Path, action="append",
                        default=[], help="read more --exclude patterns from FILE (one a "
                                         "line, # comments)")
    parser.add_argument("--no-default-excludes", action="store_true",
                        help="also sync " + ", ".join(DEFAULT_EXCLUDES)
                             + " (left out by default)")


@dataclass
class _Plan:
    uploads: list[tuple[LocalFile, Reason]] = field(default_factory=list)
    deletes: list[ObjectInfo] = field(default_factory=list)
    unchanged: int = 0
    unchanged_bytes: int = 0
    left_out: int = 0  # files the filters leave out
    kept: int = 0  # objects the folder lacks, not deleted (no --delete, or protected)

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f, _ in self.uploads)


def run(args: argparse.Namespace) -> int:
    opened = open_sync(args, "sync")
    if isinstance(opened, int):
        return opened
    keys, dest, store, client = opened
    try:
        return _Sync(args, store, dest, client, keys).run()
    finally:
        client.close()
        store.close()


def open_sync(args: argparse.Namespace, command: str,
              ) -> tuple[KeyFilter, _Destination, Store, OssClient] | int:
    """The filters, destination, upload list and client of a sync (or watch), checked; an
    exit code after an error line."""
    folder: Path = args.folder
    if not folder.is_dir():
        error(f"{folder}: not a folder ({command} takes one folder; use `ossdesk upload` for "
              "files)")
        return EXIT_USAGE
    excludes = list(args.exclude)
    for path in args.exclude_from:
        try:
            excludes.extend(read_patterns(path.read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError) as exc:
            error(f"--exclude-from {path}: cannot be read ({exc})")
            return EXIT_USAGE
    keys = KeyFilter(tuple(args.include),
                     patterns(excludes, defaults=not args.no_default_excludes))
    try:  # checked before anything is opened; _Sync reads them again
        user_metadata(args)
        object_options(args)
    except OptionError as exc:
        error(f"{exc}; nothing was sent")
        return EXIT_USAGE
    dest = _destination(args)
    if dest is None:
        return EXIT_USAGE
    try:
        creds = default_credentials(dest.source)
    except UploadError as exc:
        error(exc.message)
        return EXIT_USAGE
    opened = open_store()
    if isinstance(opened, int):
        return opened
    client = OssClient(Endpoint(dest.endpoint, dest.bucket, dest.region, dest.signature), creds)
    return keys, dest, opened, client


class _Sync:
    def __init__(self, args: argparse.Namespace, store: Store, dest: _Destination,
                 client: OssClient, keys: KeyFilter) -> None:
        self.args = args
        # Checked by open_sync before anything was opened, so they read without error here.
        self.metadata = user_metadata(args)
        self.options: ObjectOptions = object_options(args)
        self.store = store
        self.dest = dest
        self.client = client
        self.keys = keys
        self.display = Display(json_mode=args.json)
        self.problems: list[WalkProblem] = []
        # Keys (and folders of keys) the walk could not read: their objects are never
        # deleted, the file or folder is still there.
        self.protected: list[str] = []
        self.deleted = 0

    # -- output ----------------------------------------------------------------------------

    def emit(self, data: dict[str, Any], text: str | None) -> None:
        if self.args.json:
            print(json_line({**data, "time": round(time.time(), 3)}), flush=True)
        elif text is not None:
            print(printable(text), flush=True)

    # -- the local side --------------------------------------------------------------------

    def _protect(self, path: Path) -> None:
        try:
            parts = path.relative_to(self.args.folder).parts
        except ValueError:
            return
        self.protected.append(join_key(self.dest.prefix, *parts))

    def on_problem(self, problem: WalkProblem) -> None:
        self.problems.append(problem)
        self._protect(problem.path)
        error(problem.message)

    def on_collision(self, found: FoundFile, first: Path) -> None:
        spelled = ""
        if str(found.path) != str(first) and \
                unicodedata.normalize("NFC", str(found.path)) == \
                unicodedata.normalize("NFC", str(first)):
            spelled = " (one name in two Unicode spellings, NFC and NFD)"
        self.on_problem(WalkProblem(found.path, f"{found.path} and {first} both go to "
                                                f"{found.key}{spelled}; {found.path} is not "
                                                "uploaded"))

    def local_files(self, plan: _Plan) -> dict[str, LocalFile]:
        def left_out(_: LocalFile) -> None:
            plan.left_out += 1

        found = unique_keys(walk_folder(self.args.folder, self.dest.prefix, self.on_problem),
                            self.on_collision)
        files = (LocalFile(f.path.absolute(), f.key, f.size, f.mtime_ns) for f in found)
        return {f.key: f for f in filtered(files, self.dest.prefix, self.keys, left_out)}

    # -- the comparison --------------------------------------------------------------------

    def same(self, file: LocalFile, obj: ObjectInfo, record: UploadRecord | None) -> bool:
        """Whether the object already holds this file (see :mod:`ossdesk.core.sync`)."""
        if self.args.checksum:
            head = self.client.head_object(file.key)
            if head is None or head.crc64 is None or head.size != file.size:
                return False
            return same_by_crc(crc64_file(file.path), file.size, head)
        if same_by_record(file, obj, record):
            return True
        return same_by_metadata(file, self.client.head_object(file.key))

    def compare(self) -> _Plan:
        plan = _Plan()
        local = self.local_files(plan)
        rows = self.store.last_done(self.dest.endpoint, self.dest.bucket, local)
        records = {k: UploadRecord(r.source, r.size, r.mtime_ns, r.etag, r.crc64)
                   for k, r in rows.items()}
        del rows
        for file, obj in pair(local, self.client.list_objects(self.dest.prefix)):
            if file is None:
                assert obj is not None
                if self.args.delete and may_delete(obj.key, self.dest.prefix, self.keys) \
                        and not self._is_protected(obj.key):
                    plan.deletes.append(obj)
                elif may_delete(obj.key, self.dest.prefix, self.keys):
                    plan.kept += 1
            elif obj is None:
                plan.uploads.append((file, Reason.NEW))
            elif obj.size != file.size:
                plan.uploads.append((file, Reason.CHANGED))
            elif self.same(file, obj, records.get(file.key)):
                plan.unchanged += 1
                plan.unchanged_bytes += file.size
                self.emit({"event": "unchanged", "key": file.key, "source": str(file.path),
                           "size": file.size}, None)
            else:
                plan.uploads.append((file, Reason.CHANGED if self.args.checksum
                                     else Reason.UNPROVEN))
        return plan

    def _is_protected(self, key: str) -> bool:
        return any(key == p or key.startswith(p + "/") for p in self.protected)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        target = f"oss://{self.dest.bucket}/{self.dest.prefix}"
        try:
            plan = self.compare()
        except OssError as exc:
            error(f"cannot list or read {target}: {exc.message}; nothing was uploaded or "
                  "deleted")
            return EXIT_FAILED
        except KeyboardInterrupt:
            error("interrupted while comparing; nothing was uploaded or deleted")
            return EXIT_INTERRUPTED
        self.summary(plan, target)
        if self.args.dry_run:
            for file, reason in plan.uploads:
                self.emit({"event": "would-upload", "key": file.key, "source": str(file.path),
                           "size": file.size, "reason": str(reason)},
                          f"would upload  {file.key}  {format_size(file.size)}  ({reason})")
            for obj in plan.deletes:
                self.emit({"event": "would-delete", "key": obj.key, "size": obj.size},
                          f"would delete  {obj.key}  {format_size(obj.size)}")
            self.emit({"event": "dry-run"}, "dry run: nothing was uploaded or deleted.")
            return EXIT_FAILED if self.skipped() else EXIT_OK
        try:
            delete_failed = self.delete(plan)
        except KeyboardInterrupt:
            error(f"interrupted after {self.deleted} of {len(plan.deletes)} delete(s); nothing "
                  "was uploaded. Run `ossdesk sync` again to finish.")
            return EXIT_INTERRUPTED
        code = self.upload(plan)
        if code == EXIT_OK and (delete_failed or self.skipped()):
            if self.skipped():
                error(f"{len(self.skipped())} item(s) were not synced (see above)")
            return EXIT_FAILED
        return code

    def skipped(self) -> list[WalkProblem]:
        return [p for p in self.problems if p.skipped]

    def summary(self, plan: _Plan, target: str) -> None:
        self.emit({"event": "sync-plan", "folder": str(self.args.folder), "bucket":
                   self.dest.bucket, "prefix": self.dest.prefix,
                   "upload": len(plan.uploads), "upload_bytes": plan.upload_bytes,
                   "delete": len(plan.deletes),
                   "delete_bytes": sum(o.size for o in plan.deletes),
                   "unchanged": plan.unchanged, "excluded": plan.left_out,
                   "not_in_folder": plan.kept},
                  f"sync {self.args.folder} -> {target}: {len(plan.uploads)} to upload "
                  f"({format_size(plan.upload_bytes)}), {len(plan.deletes)} to delete "
                  f"({format_size(sum(o.size for o in plan.deletes))}), {plan.unchanged} "
                  f"unchanged, {plan.left_out} excluded")
        if plan.kept and not self.args.delete:
            self.emit({"event": "note", "message": "not in the folder"},
                      f"note: {plan.kept} object(s) under {target} are not in the folder; "
                      "--delete removes them")

    def delete(self, plan: _Plan) -> bool:
        """Delete the planned objects, one line each; True if any delete failed."""
        failed = False
        for obj in plan.deletes:
            if not obj.key.startswith(self.dest.prefix):  # never outside the prefix
                raise AssertionError(f"{obj.key!r} is outside {self.dest.prefix!r}")
            try:
                self.client.delete_object(obj.key)
            except OssError as exc:
                failed = True
                error(f"{obj.key}: not deleted: {exc.message}")
                continue
            self.deleted += 1
            self.emit({"event": "deleted", "key": obj.key, "size": obj.size},
                      f"deleted  {obj.key}  {format_size(obj.size)}")
        return failed

    def upload(self, plan: _Plan) -> int:
        todo = self.not_queued_already([f for f, _ in plan.uploads])
        if len(todo) < len(plan.uploads):
            error(f"{len(plan.uploads) - len(todo)} of {len(plan.uploads)} file(s) to upload "
                  "were not queued (see above)")
        if not todo:
            if plan.uploads:
                return EXIT_FAILED
            self.emit({"event": "summary", "done": 0, "unchanged": plan.unchanged},
                      f"nothing to upload: {plan.unchanged} file(s) unchanged.")
            return EXIT_OK
        args = self.args
        scheduler = Scheduler(self.store, jobs=args.jobs or 3, parallel=args.parallel or 8,
                              small_parallel=args.small_parallel, rate=args.limit_rate or 0,
                              part_size=args.part_size, credentials=default_credentials)
        scheduler.add_listener(self.display)
        self.display.start()
        ids: list[int] = []
        stream: Iterator[NewUpload] = (self.new_upload(f) for f in todo)
        # A file whose earlier upload is unfinished (a sync stopped or killed) continues
        # that row; written differently now (it changed: its mtime is in the metadata), that
        # upload is cancelled first.
        earlier = EarlierUploads(self.store, self.on_problem)
        try:
            while batch := list(itertools.islice(stream, _BATCH)):
                batch, again = earlier.sort(batch)
                if again:
                    ids.extend(scheduler.resume(again))
                ids.extend(scheduler.add(batch))
        except KeyboardInterrupt:
            scheduler.close(pause=True)
            self.display.stop()
            error(f"paused; {len(ids)} upload(s) are in the list and `ossdesk resume` "
                  "continues them; run `ossdesk sync` again for the rest")
            return EXIT_INTERRUPTED
        except StoreError as exc:
            scheduler.close(pause=True)
            self.display.stop()
            error(str(exc))
            return EXIT_BUSY
        if note := earlier.note():
            error(f"note: {note}")
        code = run_until_idle(scheduler, self.display, ids)
        return EXIT_FAILED if code == EXIT_OK and len(todo) < len(plan.uploads) else code

    def not_queued_already(self, files: list[LocalFile]) -> list[LocalFile]:
        """``files`` without those whose key an unfinished upload of another file in the list
        already has (each one said). An unfinished upload of the same file is continued
        (see :class:`EarlierUploads`)."""
        kept: list[LocalFile] = []
        for start in range(0, len(files), _BATCH):
            batch = files[start:start + _BATCH]
            taken = self.store.unfinished_sources(self.dest.endpoint, self.dest.bucket,
                                                  [f.key for f in batch])
            for file in batch:
                sources = taken.get(file.key)
                if not sources or file.path in sources:
                    kept.append(file)  # an earlier row of this very path is continued
                elif any(_same_path(s, file.path) for s in sources):
                    error(f"{file.key}: an unfinished upload of {file.path} is already in "
                          "the list; `ossdesk resume` finishes it (not queued again)")
                else:
                    error(f"{file.path} and {sources[0]} (an unfinished upload in the list) "
                          f"both go to {file.key}; {file.path} is not uploaded")
        return kept

    def new_upload(self, file: LocalFile) -> NewUpload:
        d = self.dest
        return NewUpload(source=file.path, size=file.size, mtime_ns=file.mtime_ns,
                         key=file.key, endpoint=d.endpoint, bucket=d.bucket,
                         credentials=d.source, region=d.region, signature=d.signature,
                         part_size=self.args.part_size,
                         metadata={**self.metadata, MTIME_META: str(file.mtime_ns)},
                         storage_class=self.args.storage_class, existing=OVERWRITE,
                         options=self.options)


def _same_path(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))
