"""One-way folder sync (local to OSS): which files to upload, which objects to delete.

Pure functions, no network and no Qt: :mod:`ossdesk.commands.sync` feeds them the local
walk, the streamed remote listing and what the upload list remembers.

The comparison rules (see docs/ENGINE.md, "Sync: the comparison rules"):

* no object for the file's key: upload (``new``);
* an object of another size: upload (``changed``);
* an object of the same size is left alone without reading the file when ossdesk can show
  it holds this version of the file:

  - the upload list has a ``done`` row for this endpoint, bucket and key, from the same
    source path, with the file's present size and mtime (ns), whose ETag is the object's
    ETag now (so nobody replaced the object since); or
  - the object's metadata ``x-oss-meta-ossdesk-mtime-ns`` (set by every sync upload)
    equals the file's mtime in nanoseconds (one HEAD request, still no file read);

  otherwise it is uploaded (``unproven``). With ``--checksum`` a same-size object is left
  alone only when its ``x-oss-hash-crc64ecma`` equals the file's CRC-64 (the file is read).

* an object under the prefix that the folder no longer has is deleted with ``--delete``,
  unless its relative path is filtered out (excluded files are never deleted) or it is a
  folder marker (a key ending in ``/``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ossdesk.core.oss import ObjectInfo

__all__ = [
    "DEFAULT_EXCLUDES",
    "MTIME_META",
    "KeyFilter",
    "LocalFile",
    "Reason",
    "UploadRecord",
    "filtered",
    "may_delete",
    "pair",
    "patterns",
    "read_patterns",
    "relative_key",
    "same_by_crc",
    "same_by_metadata",
    "same_by_record",
]

#: Object metadata (without ``x-oss-meta-``) holding the file's mtime in nanoseconds.
MTIME_META = "ossdesk-mtime-ns"

#: Hidden system files and temporary files, left out unless ``--no-default-excludes``.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".DS_Store", "Thumbs.db", "~$*", "*.tmp", "*.part", "*.crdownload",
)


class Reason(enum.StrEnum):
    """Why a file is uploaded."""

    NEW = "new"  # no object for its key
    CHANGED = "changed"  # the object has another size or (with --checksum) another CRC-64
    UNPROVEN = "unproven"  # same size, but nothing shows the object holds this version


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class UploadRecord:
    """What the upload list remembers of the last finished upload of a key."""

    source: Path
    size: int
    mtime_ns: int
    etag: str | None
    crc64: int | None


def relative_key(key: str, prefix: str) -> str:
    """The key below ``prefix`` (which ends in ``/`` or is empty)."""
    if not key.startswith(prefix):
        raise ValueError(f"{key!r} is not under {prefix!r}")
    return key[len(prefix):]


def _matches(relative: str, pattern: str) -> bool:
    """``pattern`` matches the path or one of the folders it is in (right-anchored, as
    :meth:`pathlib.PurePosixPath.match`: ``*.tmp`` matches at any depth, ``a/*.log``
    matches ``x/a/b.log``; ``*`` never crosses a ``/``)."""
    path = PurePosixPath(relative)
    pattern = pattern.strip("/")
    if not pattern:
        return False
    candidates = [path, *list(path.parents)[:-1]]  # the file, then each folder above it
    return any(c.match(pattern) for c in candidates)


@dataclass(frozen=True)
class KeyFilter:
    """Which relative paths take part. A path is synced when it matches an include (or
    there are none) and no exclude. Matching is case-sensitive on every system."""

    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def wanted(self, relative: str) -> bool:
        if self.includes and not any(_matches(relative, p) for p in self.includes):
            return False
        return not any(_matches(relative, p) for p in self.excludes)


def read_patterns(lines: Iterable[str]) -> list[str]:
    """Patterns of an ``--exclude-from`` file: one a line; blank lines and ``#`` comments
    are skipped."""
    out: list[str] = []
    for line in lines:
        text = line.rstrip("\r\n").strip()
        if text and not text.startswith("#"):
            out.append(text)
    return out


def pair(local: dict[str, LocalFile],
         remote: Iterable[ObjectInfo]) -> Iterator[tuple[LocalFile | None, ObjectInfo | None]]:
    """Each key once, as (file, object): the remote listing is streamed (one page in
    memory), the local side is a dict (bounded by the folder). ``local`` is emptied."""
    for obj in remote:
        yield local.pop(obj.key, None), obj
    for key in sorted(local):
        yield local.pop(key), None


def same_by_record(file: LocalFile, obj: ObjectInfo, record: UploadRecord | None) -> bool:
    """The upload list shows this object is the upload of this version of the file."""
    if record is None or record.etag is None:
        return False
    return (record.source == file.path and record.size == file.size == obj.size
            and record.mtime_ns == file.mtime_ns
            and record.etag.strip('"').lower() == obj.etag.strip('"').lower())


def same_by_metadata(file: LocalFile, head: ObjectInfo | None) -> bool:
    """The object's recorded mtime is the file's (and the sizes match)."""
    if head is None or head.size != file.size:
        return False
    return head.metadata.get(MTIME_META) == str(file.mtime_ns)


def same_by_crc(file_crc: int, size: int, head: ObjectInfo | None) -> bool:
    """The object's CRC-64 (``x-oss-hash-crc64ecma``) is the file's."""
    return head is not None and head.size == size and head.crc64 == file_crc


def filtered(files: Iterable[LocalFile], prefix: str, keys: KeyFilter,
             on_left_out: Callable[[LocalFile], None] | None = None) -> Iterator[LocalFile]:
    """The files whose relative path ``keys`` wants."""
    for found in files:
        if keys.wanted(relative_key(found.key, prefix)):
            yield found
        elif on_left_out is not None:
            on_left_out(found)


def may_delete(key: str, prefix: str, keys: KeyFilter) -> bool:
    """An object the folder does not have may be deleted: under the prefix (never the
    prefix itself), not a folder marker, and not a path the filter leaves out."""
    if not key.startswith(prefix) or key == prefix or key.endswith("/"):
        return False
    return keys.wanted(relative_key(key, prefix))


def patterns(excludes: Sequence[str], *, defaults: bool) -> tuple[str, ...]:
    return (*(DEFAULT_EXCLUDES if defaults else ()), *excludes)
