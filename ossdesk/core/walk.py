"""From dropped or named paths to (file, object key) pairs, lazily.

A file's key is the prefix plus its name; a folder's files keep the folder's name and their
path below it, with ``/`` separators and NFC-normalised names (macOS hands out NFD), so the
key is what the user sees. Symlinked folders are followed once: a loop (or the same folder
reached twice) is reported and skipped. Unreadable entries are reported, never fatal.

Two sources never share one key: :func:`unique_keys` keeps the first source of each key
and hands every later one to the caller (which refuses it, naming both).

One walker and one key rule serve the command line and the window: the window runs
:func:`walk_batches` in a worker thread (batches it can add as rows while the walk goes on,
a cancel check) and translates each problem by its :class:`ProblemKind` and
:class:`~ossdesk.core.upload.KeyFault`.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ossdesk.core.names import is_utf8
from ossdesk.core.store import Fingerprint, NewUpload, Request
from ossdesk.core.upload import KeyFault, check_key, key_fault

__all__ = ["FoundFile", "KeyClaims", "ProblemKind", "WalkBatch", "WalkProblem", "join_key",
           "normalize_prefix", "unique_keys", "walk", "walk_batches", "walk_folder",
           "walk_request"]

_NOT_UTF8 = ("{path}: the name is not valid UTF-8, which an object key and the upload list "
             "must be; rename it to upload it (left out)")


@dataclass(frozen=True)
class FoundFile:
    path: Path
    key: str
    size: int
    mtime_ns: int
    #: Change time and identity (device, inode / file index); None where the OS gives 0.
    ctime_ns: int | None = None
    dev: int | None = None
    ino: int | None = None


class ProblemKind(enum.StrEnum):
    """What kind of problem a :class:`WalkProblem` is (the window words each one)."""

    LOOP = "loop"  # a link back to a folder that contains it, or a loop of links
    UNREADABLE = "unreadable"
    DUPLICATE = "duplicate"  # a second way to a folder (or file) already included
    MISSING = "missing"
    SPECIAL = "special"  # not a regular file or folder (a pipe, a device)
    COLLISION = "collision"  # another source goes to the same object key
    BAD_NAME = "bad-name"  # not valid UTF-8: no object key, no row in the upload list
    BAD_KEY = "bad-key"  # the object key breaks a rule of OSS (see ``fault``)
    OTHER = "other"


@dataclass(frozen=True)
class WalkProblem:
    """``skipped``: a file that will not be uploaded (unreadable, bad key); else a warning.
    ``detail``: the system's reason, or the refused key (with its ``fault``)."""

    path: Path
    message: str
    skipped: bool = True
    kind: ProblemKind = ProblemKind.OTHER
    detail: str = ""
    fault: KeyFault | None = None


@dataclass
class WalkBatch:
    """Files and problems found since the last batch (see :func:`walk_batches`)."""

    files: list[FoundFile] = field(default_factory=list)
    problems: list[WalkProblem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.problems)


def normalize_prefix(prefix: str | None) -> str:
    """``"a\\b"`` or ``"/a/b"`` -> ``"a/b/"``; empty stays empty. The prefix is a folder."""
    if not prefix:
        return ""
    text = unicodedata.normalize("NFC", prefix.replace("\\", "/"))
    folders = [part for part in text.split("/") if part]  # no empty folder names
    return "".join(f"{part}/" for part in folders)


def join_key(prefix: str, *names: str) -> str:
    return prefix + "/".join(unicodedata.normalize("NFC", n) for n in names if n)


Cancel = Callable[[], bool]


def _never() -> bool:
    return False


def walk(paths: Iterable[Path], prefix: str | None,
         on_problem: Callable[[WalkProblem], None], *,
         cancel: Cancel | None = None) -> Iterator[FoundFile]:
    """Every regular file under ``paths`` with its key; problems go to ``on_problem``.
    The walk ends early (quietly) once ``cancel()`` is true."""
    base = normalize_prefix(prefix)
    stop = cancel or _never
    for raw in paths:
        if stop():
            return
        path = Path(raw)
        if not is_utf8(str(path)):
            on_problem(WalkProblem(path, _NOT_UTF8.format(path=path), kind=ProblemKind.BAD_NAME))
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            on_problem(WalkProblem(path, f"{path}: no such file or folder",
                                   kind=ProblemKind.MISSING))
            continue
        except OSError as exc:
            on_problem(_unreadable_problem(path, exc, link=path.is_symlink()))
            continue
        if stat.S_ISDIR(st.st_mode):
            name = path.resolve().name if path.name in ("", ".", "..") else path.name
            ident = (st.st_dev, st.st_ino)
            yield from _walk_dir(path, [name] if name else [], base, on_problem,
                                 seen={ident}, ancestors=frozenset({ident}), stop=stop)
        elif stat.S_ISREG(st.st_mode):
            found = _file(path, st, join_key(base, path.name), on_problem)
            if found is not None:
                yield found
        else:
            on_problem(WalkProblem(path, f"{path}: not a regular file or folder",
                                   kind=ProblemKind.SPECIAL))


def walk_batches(paths: Iterable[Path], prefix: str | None, *,
                 cancel: Cancel | None = None, batch_size: int = 500,
                 batch_seconds: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> Iterator[WalkBatch]:
    """:func:`walk` in batches of at most ``batch_size`` files, each handed over once it is
    full or ``batch_seconds`` old (by ``clock``), so a caller in another thread (the window)
    can add rows while the walk goes on. Problems travel with the batch they were met in."""
    batch = WalkBatch()
    started = clock()

    def on_problem(problem: WalkProblem) -> None:
        batch.problems.append(problem)

    for found in walk(paths, prefix, on_problem, cancel=cancel):
        batch.files.append(found)
        if len(batch.files) >= batch_size or clock() - started >= batch_seconds:
            yield batch
            batch = WalkBatch()  # the closure above sees the new batch
            started = clock()
    if batch:
        yield batch


_ELOOP = {getattr(errno, "ELOOP", 40)}
_WINDOWS_LOOP = 1921  # ERROR_CANT_RESOLVE_FILENAME: links that lead to each other


def _is_link_loop(exc: OSError) -> bool:
    return exc.errno in _ELOOP or getattr(exc, "winerror", None) == _WINDOWS_LOOP


def _unreadable(exc: OSError, *, link: bool) -> str:
    """Why a path cannot be read: a loop of links, a broken link, or the system's reason."""
    if _is_link_loop(exc):
        return "a link in a loop of links, which never reaches a file"
    if link and isinstance(exc, FileNotFoundError):
        return "a broken link: what it points to does not exist"
    return exc.strerror or str(exc)


def _unreadable_problem(path: Path, exc: OSError, *, link: bool) -> WalkProblem:
    why = _unreadable(exc, link=link)
    kind = ProblemKind.LOOP if _is_link_loop(exc) else ProblemKind.UNREADABLE
    return WalkProblem(path, f"{path}: cannot be read ({why})", kind=kind, detail=why)


def walk_folder(folder: Path, prefix: str | None,
                on_problem: Callable[[WalkProblem], None]) -> Iterator[FoundFile]:
    """Every regular file below ``folder``, keyed by the prefix plus its path *below* the
    folder (the folder's own name is not part of the key: the prefix stands for it)."""
    st = folder.stat()
    ident = (st.st_dev, st.st_ino)
    yield from _walk_dir(folder, [], normalize_prefix(prefix), on_problem,
                         seen={ident}, ancestors=frozenset({ident}), stop=_never)


def _file(path: Path, st: os.stat_result, key: str,
          on_problem: Callable[[WalkProblem], None]) -> FoundFile | None:
    fault = key_fault(key)
    if fault is not None:
        on_problem(WalkProblem(path, f"{path}: {check_key(key)}", kind=ProblemKind.BAD_KEY,
                               detail=key, fault=fault))
        return None
    if not os.access(path, os.R_OK):
        on_problem(WalkProblem(path, f"{path}: permission denied",
                               kind=ProblemKind.UNREADABLE, detail="permission denied"))
        return None
    seen = Fingerprint.of(st)
    return FoundFile(path=path, key=key, size=st.st_size, mtime_ns=st.st_mtime_ns,
                     ctime_ns=seen.ctime_ns, dev=seen.dev, ino=seen.ino)


def _walk_dir(folder: Path, names: list[str], base: str,
              on_problem: Callable[[WalkProblem], None], *,
              seen: set[tuple[int, int]], ancestors: frozenset[tuple[int, int]],
              stop: Cancel) -> Iterator[FoundFile]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        why = exc.strerror or str(exc)
        on_problem(WalkProblem(folder, f"{folder}: cannot be listed ({why})",
                               kind=ProblemKind.UNREADABLE, detail=why))
        return
    for entry in entries:
        if stop():
            return
        path = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            on_problem(_unreadable_problem(path, exc, link=entry.is_symlink()))
            continue
        if not is_utf8(entry.name):
            on_problem(WalkProblem(path, _NOT_UTF8.format(path=path), kind=ProblemKind.BAD_NAME))
            continue
        if stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in seen:
                # A link up the tree is a loop; a second link to a folder walked elsewhere
                # is the same folder twice. Either way its files are included once.
                kind = ProblemKind.LOOP if ident in ancestors else ProblemKind.DUPLICATE
                on_problem(WalkProblem(path, f"{path}: a link back to a folder already "
                                             "included (a loop); skipped", skipped=False,
                                       kind=kind))
                continue
            seen.add(ident)
            yield from _walk_dir(path, [*names, entry.name], base, on_problem,
                                 seen=seen, ancestors=ancestors | {ident}, stop=stop)
        elif stat.S_ISREG(st.st_mode):
            found = _file(path, st, join_key(base, *names, entry.name), on_problem)
            if found is not None:
                yield found
        else:
            on_problem(WalkProblem(path, f"{path}: not a regular file; skipped", skipped=False,
                                   kind=ProblemKind.SPECIAL))


class KeyClaims:
    """The keys one run has produced so far, each with the source that has it.

    Kept compact (a key and its source as plain strings, about 300 bytes a file), so a run
    of 100,000 files still queues at well under 2 KiB per file.
    """

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}

    def claim(self, found: FoundFile) -> Path | None:
        """None if ``found`` now has its key; else the source that had it first."""
        source = str(found.path)
        first = self._sources.setdefault(found.key, source)
        return None if first is source else Path(first)

    def __len__(self) -> int:
        return len(self._sources)


def unique_keys(files: Iterable[FoundFile], on_collision: Callable[[FoundFile, Path], None],
                claims: KeyClaims | None = None) -> Iterator[FoundFile]:
    """``files`` with each key once: a later file for a key already produced is not yielded
    but given to ``on_collision(later, first_source)`` (the same file named twice, too)."""
    claims = KeyClaims() if claims is None else claims
    for found in files:
        first = claims.claim(found)
        if first is None:
            yield found
        else:
            on_collision(found, first)


def walk_request(request: Request, on_problem: Callable[[WalkProblem], None],
                 on_root: Callable[[Path], None] | None = None,
                 on_collision: Callable[[FoundFile, Path], None] | None = None,
                 ) -> Iterator[NewUpload]:
    """The rows to queue for every file under the request's roots (``on_root`` is told
    which root is being walked); with ``on_collision``, each key once (see
    :func:`unique_keys`)."""
    claims = KeyClaims()
    for root in request.roots:
        if on_root is not None:
            on_root(root)
        files: Iterable[FoundFile] = walk([root], request.prefix, on_problem)
        if on_collision is not None:
            files = unique_keys(files, on_collision, claims)
        for found in files:
            yield request.upload(found.path.absolute(), found.size, found.mtime_ns, found.key,
                                 ctime_ns=found.ctime_ns, file_dev=found.dev,
                                 file_ino=found.ino)
