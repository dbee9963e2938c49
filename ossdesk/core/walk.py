"""From dropped or named paths to (file, object key) pairs, lazily.

A file's key is the prefix plus its name; a folder's files keep the folder's name and their
path below it, with ``/`` separators and NFC-normalised names (macOS hands out NFD), so the
key is what the user sees. Symlinked folders are followed once: a loop (or the same folder
reached twice) is reported and skipped. Unreadable entries are reported, never fatal.

Two sources never share one key: :func:`unique_keys` keeps the first source of each key
and hands every later one to the caller (which refuses it, naming both).
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ossdesk.core.names import is_utf8
from ossdesk.core.store import Fingerprint, NewUpload, Request
from ossdesk.core.upload import check_key

__all__ = ["FoundFile", "KeyClaims", "WalkProblem", "join_key", "normalize_prefix",
           "unique_keys", "walk", "walk_folder", "walk_request"]

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


@dataclass(frozen=True)
class WalkProblem:
    """``skipped``: a file that will not be uploaded (unreadable, bad key); else a warning."""

    path: Path
    message: str
    skipped: bool = True


def normalize_prefix(prefix: str | None) -> str:
    """``"a\\b"`` or ``"/a/b"`` -> ``"a/b/"``; empty stays empty. The prefix is a folder."""
    if not prefix:
        return ""
    text = unicodedata.normalize("NFC", prefix.replace("\\", "/"))
    folders = [part for part in text.split("/") if part]  # no empty folder names
    return "".join(f"{part}/" for part in folders)


def join_key(prefix: str, *names: str) -> str:
    return prefix + "/".join(unicodedata.normalize("NFC", n) for n in names if n)


def walk(paths: Iterable[Path], prefix: str | None,
         on_problem: Callable[[WalkProblem], None]) -> Iterator[FoundFile]:
    """Every regular file under ``paths`` with its key; problems go to ``on_problem``."""
    base = normalize_prefix(prefix)
    for raw in paths:
        path = Path(raw)
        if not is_utf8(str(path)):
            on_problem(WalkProblem(path, _NOT_UTF8.format(path=path)))
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            on_problem(WalkProblem(path, f"{path}: no such file or folder"))
            continue
        except OSError as exc:
            on_problem(WalkProblem(path, f"{path}: cannot be read "
                                         f"({_unreadable(exc, link=path.is_symlink())})"))
            continue
        if stat.S_ISDIR(st.st_mode):
            name = path.resolve().name if path.name in ("", ".", "..") else path.name
            yield from _walk_dir(path, [name] if name else [], base, on_problem,
                                 {(st.st_dev, st.st_ino)})
        elif stat.S_ISREG(st.st_mode):
            found = _file(path, st, join_key(base, path.name), on_problem)
            if found is not None:
                yield found
        else:
            on_problem(WalkProblem(path, f"{path}: not a regular file or folder"))


_ELOOP = {getattr(errno, "ELOOP", 40)}
_WINDOWS_LOOP = 1921  # ERROR_CANT_RESOLVE_FILENAME: links that lead to each other


def _unreadable(exc: OSError, *, link: bool) -> str:
    """Why a path cannot be read: a loop of links, a broken link, or the system's reason."""
    if exc.errno in _ELOOP or getattr(exc, "winerror", None) == _WINDOWS_LOOP:
        return "a link in a loop of links, which never reaches a file"
    if link and isinstance(exc, FileNotFoundError):
        return "a broken link: what it points to does not exist"
    return exc.strerror or str(exc)


def walk_folder(folder: Path, prefix: str | None,
                on_problem: Callable[[WalkProblem], None]) -> Iterator[FoundFile]:
    """Every regular file below ``folder``, keyed by the prefix plus its path *below* the
    folder (the folder's own name is not part of the key: the prefix stands for it)."""
    st = folder.stat()
    yield from _walk_dir(folder, [], normalize_prefix(prefix), on_problem,
                         {(st.st_dev, st.st_ino)})


def _file(path: Path, st: os.stat_result, key: str,
          on_problem: Callable[[WalkProblem], None]) -> FoundFile | None:
    problem = check_key(key)
    if problem is not None:
        on_problem(WalkProblem(path, f"{path}: {problem}"))
        return None
    if not os.access(path, os.R_OK):
        on_problem(WalkProblem(path, f"{path}: permission denied"))
        return None
    seen = Fingerprint.of(st)
    return FoundFile(path=path, key=key, size=st.st_size, mtime_ns=st.st_mtime_ns,
                     ctime_ns=seen.ctime_ns, dev=seen.dev, ino=seen.ino)


def _walk_dir(folder: Path, names: list[str], base: str,
              on_problem: Callable[[WalkProblem], None],
              seen: set[tuple[int, int]]) -> Iterator[FoundFile]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        on_problem(WalkProblem(folder, f"{folder}: cannot be listed ({exc.strerror or exc})"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            on_problem(WalkProblem(path, f"{path}: cannot be read "
                                         f"({_unreadable(exc, link=entry.is_symlink())})"))
            continue
        if not is_utf8(entry.name):
            on_problem(WalkProblem(path, _NOT_UTF8.format(path=path)))
            continue
        if stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in seen:
                on_problem(WalkProblem(path, f"{path}: a link back to a folder already "
                                             "included (a loop); skipped", skipped=False))
                continue
            seen.add(ident)
            yield from _walk_dir(path, [*names, entry.name], base, on_problem, seen)
        elif stat.S_ISREG(st.st_mode):
            found = _file(path, st, join_key(base, *names, entry.name), on_problem)
            if found is not None:
                yield found
        else:
            on_problem(WalkProblem(path, f"{path}: not a regular file; skipped", skipped=False))


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
