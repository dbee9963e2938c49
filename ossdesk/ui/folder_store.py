"""A dropped folder's files as the window shows them, read from the upload list.

The window keeps of a folder's files only what its sums need (:class:`FolderNode`); their
names, paths, keys, times and stored errors are read from the upload list (the SQLite file
the engine writes, opened for each read: WAL lets it be read while the engine writes) when
they are shown: the lines Qt paints of an open folder, a page at a time around the line
asked for, a bounded number kept; a search or a sort by name reads the folder's paths once;
a dialog or a request to the engine reads the rows it needs. What the window was told by
events since (state, bytes, speed, time left, error) is written over what is read, so a
row shown is never older than the events the window has had.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ossdesk import config
from ossdesk.core.store import Store, StoreError, UploadRow
from ossdesk.ui.engine_types import TransferRow, TransferState
from ossdesk.ui.folder_rows import FolderNode, inside_name

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def base_row(node: FolderNode, row: UploadRow) -> TransferRow:
    """A stored file of a folder as the window shows it (before what events said)."""
    info = node.info
    source = str(row.source)
    error = row.error or ""
    return TransferRow(
        id=row.id, name=inside_name(info, source, row.key, row.source.name),
        source_path=source, size=row.size, destination=f"oss://{row.bucket}/{row.key}",
        error=error,
        error_detail=f"{error}\n\n{row.error_code}" if error and row.error_code else error,
        bucket=info.bucket, key=row.key, profile=info.profile, added_at=row.created_at,
        folder=info.id,
    )


class FolderReader:
    """Reads folders' files from the upload list, keeping the last :attr:`KEPT` read."""

    #: Lines read at once around the one asked for (a screenful and more).
    PAGE = 128
    #: Rows kept (the pages last shown).
    KEPT = 2048
    #: Seconds after a failed read before the list is read again (rows asked for before
    #: are shown from what the window keeps: state and bytes, no name).
    RETRY_S = 5.0
    #: Folders' files under a path kept (a watched folder inside a dropped one).
    UNDER_KEPT = 64

    def __init__(self, database: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._database = database
        self._clock = clock
        # When the last read failed (None: it did not); the next is tried RETRY_S after.
        self._failed_at: float | None = None
        # (folder, path) -> (the folder's version, slots of its files under the path)
        self._under: dict[tuple[int, str], tuple[int, array[int]]] = {}
        # id -> (row as last read and overlaid, its stored error and detail)
        self._kept: OrderedDict[int, tuple[TransferRow, str, str]] = OrderedDict()
        #: How many times the upload list was read (tests count them).
        self.reads = 0

    def retry(self) -> None:
        """Try to read the upload list again when next asked (after it could not be)."""
        self._failed_at = None

    def _ask(self, ask: Callable[[Store], _T]) -> _T | None:
        """One read of the upload list (None if it cannot be read: tried again when next
        asked after :attr:`RETRY_S`, or after :meth:`retry`). The list is opened for each
        read and closed after it: a connection kept open in the window's process would lose
        its file locks whenever something else in the process opens and closes the file,
        and the engine could then take itself for the list's last user (and fold its
        write-ahead log away under the reader)."""
        failed_at = self._failed_at
        if failed_at is not None and self._clock() - failed_at < self.RETRY_S:
            return None
        self.reads += 1
        try:
            with Store.open_reader(self._database or config.paths().database) as store:
                answer = ask(store)
        except (StoreError, sqlite3.Error) as exc:
            # Said once while it lasts, not at every try.
            (_log.debug if failed_at is not None else _log.warning)(
                "cannot read the upload list: %s", exc)
            self._failed_at = self._clock()
            return None
        if failed_at is not None:
            _log.info("the upload list can be read again")
        self._failed_at = None
        return answer

    def close(self) -> None:
        self._kept.clear()

    def forget(self, ids: Sequence[object]) -> None:
        for key in ids:
            if isinstance(key, int):
                self._kept.pop(key, None)

    def _read(self, node: FolderNode, ids: Sequence[int]) -> None:
        if not ids:
            return
        for stored in self._ask(lambda store: store.rows_for(ids)) or []:
            row = base_row(node, stored)
            self._kept[int(row.id)] = (row, row.error, row.error_detail)
        while len(self._kept) > self.KEPT:
            self._kept.popitem(last=False)

    def row_at(self, node: FolderNode, slot: int) -> TransferRow:
        """A file of the folder (its slot), as shown now; read with the page of files
        around its place in the folder's order."""
        key = node.id_of(slot)
        if key not in self._kept:
            place = node.place_of(slot)
            start = max(0, place - self.PAGE // 4)
            stop = min(len(node), start + self.PAGE)
            self._read(node, [k for k in (node.id_at(p) for p in range(start, stop))
                              if k not in self._kept])
        return self._overlay(node, key, self._kept.get(key), slot)

    def rows(self, node: FolderNode, ids: Sequence[int]) -> list[TransferRow]:
        """These files of the folder (ids in it), as shown now, in the order given."""
        missing = [k for k in ids if k not in self._kept]
        for start in range(0, len(missing), 500):
            self._read(node, missing[start:start + 500])
        return [self._overlaid(node, key) for key in ids]

    def all_rows(self, node: FolderNode) -> list[TransferRow]:
        """Every file of the folder in its order (one read of the folder's rows, not kept)."""
        stored = {r.id: r for r in self._ask(
            lambda store: store.folder_rows(node.info.id)) or []}
        out = []
        for key in node.ids():
            kept = self._kept.get(key)
            found = stored.get(key)
            if kept is None and found is not None:
                row = base_row(node, found)
                kept = (row, row.error, row.error_detail)
            out.append(self._overlay(node, key, kept))
        return out

    def listed(self, node: FolderNode) -> list[TransferRow]:
        """Every file of the folder in its order as the node keeps it, with its source path,
        key and destination (one read of the folder's paths, not of whole rows): for the
        callers that look for files already in the queue."""
        paths = {key: (source, object_key) for key, source, object_key in self._ask(
            lambda store: store.folder_paths(node.info.id)) or []}
        rows = node.light_rows()
        bucket = node.info.bucket
        for row in rows:
            found = paths.get(int(row.id))
            if found is not None:
                row.source_path, row.key = found
                row.destination = f"oss://{bucket}/{row.key}"
        return rows

    def count_under(self, node: FolderNode, prefix: str,
                    wanted: Callable[[TransferState], bool]) -> int:
        """How many of the folder's files whose source path begins with ``prefix`` are in
        a state ``wanted`` accepts. Which files are under ``prefix`` is read once (the
        folder's paths) and kept until the folder's files change; their states are the
        node's (nothing read)."""
        key = (node.info.id, prefix)
        kept = self._under.get(key)
        if kept is None or kept[0] != node.version:
            paths = self._ask(lambda store: store.folder_paths(node.info.id))
            if paths is None:  # not read: the files of the folder under it are not known
                return 0
            found = (node.slot(i) for i, source, _ in paths if source.startswith(prefix))
            kept = (node.version, array("i", sorted(s for s in found if s is not None)))
            if len(self._under) >= self.UNDER_KEPT:
                self._under.clear()
            self._under[key] = kept
        return node.count_where(kept[1], wanted)

    def names(self, node: FolderNode) -> dict[int, str]:
        """Each file's path inside the folder, by id (one read of the folder's paths)."""
        paths = self._ask(lambda store: store.folder_paths(node.info.id)) or []
        info = node.info
        return {key: inside_name(info, source, object_key) for key, source, object_key in paths}

    def _overlaid(self, node: FolderNode, key: int) -> TransferRow:
        return self._overlay(node, key, self._kept.get(key))

    @staticmethod
    def _overlay(node: FolderNode, key: int, kept: tuple[TransferRow, str, str] | None,
                 slot: int | None = None) -> TransferRow:
        """The row read, with what the window was told since written over it."""
        slot = node.slot(key) if slot is None else slot
        if slot is None:
            raise KeyError(key)
        light = node.light(slot)
        if kept is None:
            return light  # not (or no longer) in the upload list: what the window knows
        row, error, detail = kept
        row.state = light.state
        row.size = light.size
        row.confirmed_bytes = light.confirmed_bytes
        row.sent_bytes = light.sent_bytes
        row.check = light.check
        row.speed = light.speed
        row.eta = light.eta
        if key in node.notes:
            row.error, row.error_detail = light.error, light.error_detail
        elif light.state is TransferState.FAILED:
            row.error, row.error_detail = error, detail
        else:
            row.error = row.error_detail = ""
        return row
