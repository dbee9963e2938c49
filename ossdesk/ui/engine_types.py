"""Everything the window and the engine exchange, one dataclass each (no Qt here: the
engine process imports it): the queue's plain data (rows, files, destinations), the
engine's requests (:class:`EngineRequest`, :class:`EngineQuery`) and the pipe's messages.

Over the pipe, requests travel inside :class:`Call` / :class:`Ask`; a frame is a 4-byte
big-endian length and one pickled message (:func:`ossdesk.engine_host.read_frame` refuses
anything not in the list it is given; :func:`refusal` refuses a request of an unknown type
or with a field not of its declared type, checked by typeguard).
:mod:`ossdesk.ui.transfer_model`, :mod:`ossdesk.ui.bridge` and :mod:`ossdesk.ui.walker`
re-export some under their historical names.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Generic, TypeVar
from typing import get_type_hints as hints_of

from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

from ossdesk.core.object_options import ObjectOptions
from ossdesk.ui.settings import Settings

RowKey = int | str


class TransferState(enum.StrEnum):
    QUEUED = "queued"
    CHECKING = "checking"
    UPLOADING = "uploading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        """Nothing more will happen to this row without the user (failed rows stay)."""
        return self in (TransferState.DONE, TransferState.CANCELLED, TransferState.SKIPPED)

    @property
    def active(self) -> bool:
        return self in (TransferState.CHECKING, TransferState.UPLOADING, TransferState.VERIFYING)

    @property
    def can_pause(self) -> bool:
        return self in (
            TransferState.QUEUED,
            TransferState.CHECKING,
            TransferState.UPLOADING,
        )

    @property
    def can_resume(self) -> bool:
        return self is TransferState.PAUSED

    @property
    def can_retry(self) -> bool:
        return self in (TransferState.FAILED, TransferState.CANCELLED)

    @property
    def can_cancel(self) -> bool:
        return not self.finished



@dataclass(slots=True)
class TransferRow:
    """One file in the queue, as the window shows it."""

    id: RowKey
    name: str
    source_path: str
    size: int
    destination: str
    state: TransferState = TransferState.QUEUED
    confirmed_bytes: int = 0
    sent_bytes: int = 0
    speed: float = 0.0
    eta: float | None = None
    error: str = ""
    error_detail: str = ""
    bucket: str = ""
    key: str = ""
    profile: str = ""
    added_at: float = field(default_factory=time.time)
    #: How a done row was verified: "crc64" or "md5" ("" when not known or not done).
    check: str = ""
    #: The dropped folder (:attr:`FolderInfo.id`) this file was found in; None for a file
    #: dropped (or queued) on its own.
    folder: int | None = None

    def __post_init__(self) -> None:
        self.state = TransferState(self.state)



@dataclass(frozen=True, slots=True)
class SourceFile:
    """A regular file to upload; ``key`` is its object key relative to the drop folder."""

    path: str
    key: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Destination:
    """Where dropped files go: a profile's bucket and a folder (key prefix) inside it."""

    profile: str
    endpoint: str
    bucket: str
    prefix: str = ""
    region: str | None = None
    signature: str = "v4"
    #: How the objects are written (the window's upload options for this destination).
    storage_class: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    options: ObjectOptions = field(default_factory=ObjectOptions)

    def key_for(self, relative_key: str) -> str:
        folder = self.prefix.strip("/")
        return f"{folder}/{relative_key}" if folder else relative_key

    def display(self, key: str) -> str:
        return f"oss://{self.bucket}/{key}"


@dataclass(frozen=True, slots=True)
class UploadDetails:
    """What the upload list knows of one row, for its details (None: not known)."""

    source: str
    size: int
    account: str
    endpoint: str
    bucket: str
    key: str
    url: str
    state: str  # the store's state: queued, running, paused, done, failed
    skipped: bool
    check: str | None  # crc64 / md5
    crc64: int | None
    etag: str | None
    upload_id: str | None  # the current one, or the one it was completed with
    parts: int | None  # confirmed so far, or what it was completed with
    part_size: int | None  # the size of its parts (after the first ones, if it grew)
    queued_at: float
    started_at: float | None
    finished_at: float | None
    #: A plan that grew once the link was known: its first parts' size and how many.
    head_size: int | None = None
    head_parts: int | None = None


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A dropped folder: one transfer in the window, the files found in it its children
    (rows whose :attr:`TransferRow.folder` is this ``id``)."""

    id: int
    #: The folder's own name (the last part of ``source_path``).
    name: str
    #: Where it is on this computer.
    source_path: str
    #: Where its files go: ``oss://bucket/prefix/name/``.
    destination: str
    bucket: str
    profile: str
    added_at: float


@dataclass(frozen=True, slots=True)
class FoldersAdded:
    """Folders that rows refer to: sent before the first row of each (at start, before
    the :class:`RowsRestored` whose rows are in them)."""

    folders: tuple[FolderInfo, ...]


@dataclass(frozen=True, slots=True)
class RowsRestored:
    """Rows read back from the store at start (state and confirmed bytes included)."""

    rows: tuple[TransferRow, ...]


@dataclass(frozen=True, slots=True)
class RowsRemoved:
    """Rows the engine forgot (a cancelled upload queued again gets a new id)."""

    ids: tuple[RowKey, ...]


@dataclass(frozen=True, slots=True)
class DropQueued:
    """What the engine did with the files of a drop, sent once its :class:`EndDrop` is
    handled. The upload list decides, as ``ossdesk upload`` run again does: a file whose
    unfinished row goes to the same object (same endpoint, bucket and key) with the same
    account and options continues in that row instead of getting a second one."""

    drop: int
    #: New rows, and their bytes.
    added: int = 0
    added_bytes: int = 0
    #: Paused or failed rows of files of the drop, set going again (parts kept).
    continued: int = 0
    #: Rows of files of the drop already waiting or being sent: left as they are.
    unchanged: int = 0
    #: The file's name when one file of the drop continued, and when one was left as is.
    continued_name: str = ""
    unchanged_name: str = ""
    #: What else the engine has to say about files of the drop (an earlier upload written
    #: with other options cancelled for the new one, or one that could not be), in English.
    notes: tuple[str, ...] = ()
    #: Files of the drop that were not queued because of such a note.
    not_added: int = 0


@dataclass(frozen=True, slots=True)
class EngineUnavailable:
    """The engine could not start (its upload list is locked or unreadable) or stopped
    unexpectedly: say why."""

    message: str


# ---- the engine's requests: one dataclass each -------------------------------------------
# Adding an engine call = one dataclass here + one ``@handles`` method of SchedulerAdapter
# (ossdesk.ui.engine_adapter). The window calls ``engine.send(Pause(ids))`` or
# ``engine.ask(FindExisting(files, destination))``; mypy checks the fields and the answer.

_Answer = TypeVar("_Answer")


class EngineRequest:
    """A request the window does not wait for."""

    __slots__ = ()


class EngineQuery(Generic[_Answer]):
    """A request the window waits for; answers an ``_Answer``."""

    __slots__ = ()
    #: Seconds the window waits for the answer (None: as long as it takes).
    timeout: ClassVar[float | None] = 5.0

    def wait(self) -> float | None:
        return self.timeout


def _ints(ids: Sequence[RowKey]) -> tuple[int, ...]:
    return tuple(int(i) for i in ids)


@dataclass(frozen=True, slots=True)
class Enqueue(EngineRequest):
    """Queue files; ``existing``: "overwrite" or "skip" an object of the same size and
    CRC-64; ``drop``: the drop (:class:`BeginDrop`) the files were found by."""

    files: Sequence[SourceFile]
    destination: Destination
    existing: str = "overwrite"
    drop: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))


@dataclass(frozen=True, slots=True)
class BeginDrop(EngineRequest):
    """What was dropped, recorded before its walk, so a walk cut short is finished later."""

    drop: int
    roots: Sequence[str]
    destination: Destination

    def __post_init__(self) -> None:
        object.__setattr__(self, "roots", tuple(self.roots))


@dataclass(frozen=True, slots=True)
class EndDrop(EngineRequest):
    """Every file of the drop is queued (or the user declined the rest)."""

    drop: int


@dataclass(frozen=True, slots=True)
class _Rows(EngineRequest):
    ids: Sequence[RowKey]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", _ints(self.ids))


class Pause(_Rows):
    __slots__ = ()


class Resume(_Rows):
    __slots__ = ()


class Cancel(_Rows):
    __slots__ = ()


class Retry(_Rows):
    """Failed uploads continue; cancelled ones start over."""

    __slots__ = ()


class Remove(_Rows):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Move(EngineRequest):
    ids: Sequence[RowKey]
    top: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", _ints(self.ids))


@dataclass(frozen=True, slots=True)
class ClearFinished(EngineRequest):
    pass


@dataclass(frozen=True, slots=True)
class CredentialsChanged(EngineRequest):
    """A profile's secret was saved: its queued, paused, new and retried files use it."""

    profile: str


@dataclass(frozen=True, slots=True)
class ApplySettings(EngineRequest):
    settings: Settings


@dataclass(frozen=True, slots=True)
class FindExisting(EngineQuery[list[str]]):
    """BLOCKING (network): the keys among ``files`` that already exist as objects."""

    timeout: ClassVar[float | None] = 600.0
    files: Sequence[SourceFile]
    destination: Destination

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))


@dataclass(frozen=True, slots=True)
class ObjectUrl(EngineQuery[str]):
    """The object's plain URL (no I/O)."""

    row: TransferRow


@dataclass(frozen=True, slots=True)
class Details(EngineQuery["UploadDetails | None"]):
    """What the upload list knows of the row (None: it is no longer in the list)."""

    row: TransferRow


@dataclass(frozen=True, slots=True)
class PresignedUrl(EngineQuery[str]):
    """BLOCKING (reads credentials): a pre-signed GET link valid for that long."""

    timeout: ClassVar[float | None] = 600.0
    row: TransferRow
    expires_seconds: int


@dataclass(frozen=True, slots=True)
class WaitIdle(EngineQuery[None]):
    """Every request sent before this one has been handled (tests, benchmarks)."""

    seconds: float | None = None

    def wait(self) -> float | None:
        return None if self.seconds is None else self.seconds + 5


#: Every request, both kinds: the engine's handler table has one handler for each.
REQUESTS: tuple[type, ...] = (
    Enqueue, BeginDrop, EndDrop, Pause, Resume, Cancel, Retry, Remove, Move, ClearFinished,
    CredentialsChanged, ApplySettings, FindExisting, ObjectUrl, Details, PresignedUrl,
    WaitIdle,
)


@functools.cache
def _field_types(kind: type) -> tuple[tuple[str, Any], ...]:
    """Each field of a request type with its declared type (the annotations resolved)."""
    hints = hints_of(kind)
    return tuple((f.name, hints[f.name]) for f in fields(kind))


def _fits(value: object, hint: Any) -> bool:
    """Whether ``value`` is of the declared type ``hint`` (typeguard's rules: an ``int``
    where a ``float`` is declared fits, as ``bool`` where an ``int`` is). Every item of a
    sequence is checked: about 1.4 ms for the 500 files of one walk batch, on the engine's
    side, where storing them takes far longer."""
    try:
        check_type(value, hint, collection_check_strategy=CollectionCheckStrategy.ALL_ITEMS)
    except TypeCheckError:
        return False
    return True


def refusal(request: object, *, answered: bool) -> str | None:
    """Why ``request`` is not one the engine serves (of that kind), or None."""
    base = EngineQuery if answered else EngineRequest
    if type(request) not in REQUESTS or not isinstance(request, base):
        kind = "answers" if answered else "takes without an answer"
        return f"a {type(request).__name__} is not a request the engine {kind}"
    request_type: type = type(request)
    for name, hint in _field_types(request_type):
        if not _fits(getattr(request, name), hint):
            described = hint.__name__ if isinstance(hint, type) else str(hint)
            return f"{type(request).__name__}.{name} is not a {described}"
    return None


# ---- window -> engine -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Open the upload list and start the engine (the first message)."""

    settings: Settings
    database: str | None
    log_level: int
    busy_wait: float


@dataclass(frozen=True, slots=True)
class Call:
    """A request the window does not wait for."""

    request: EngineRequest


@dataclass(frozen=True, slots=True)
class Ask:
    """A query; answered by an :class:`Answer` of that ``request`` number."""

    request: int
    query: EngineQuery[Any]


@dataclass(frozen=True, slots=True)
class CredentialsAnswer:
    """The window's answer to a :class:`CredentialsQuestion`: ``Credentials`` when ``ok``,
    else ``(message, code, kind, retryable)`` of the error."""

    request: int
    ok: bool
    value: Any


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop (pausing what moves when ``pause``); answered by :class:`Closed`."""

    pause: bool


# ---- engine -> window -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Events:
    """Engine events gathered for a few milliseconds (progress of one upload coalesced)."""

    events: list[Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to an :class:`Ask`: its value when ``ok``, else ``(error name, message)``."""

    request: int
    ok: bool
    value: Any


@dataclass(frozen=True, slots=True)
class CredentialsQuestion:
    """The engine needs a profile's credentials: the window owns every secret."""

    request: int
    profile: str


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A log record of the engine (``logging.LogRecord.__dict__``, made plain)."""

    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Closed:
    """After a :class:`Shutdown`: the engine has stopped."""


#: What the window may send, and what the engine may send: nothing else is read.
TO_ENGINE: tuple[type, ...] = (Start, Call, Ask, CredentialsAnswer, Shutdown)
TO_WINDOW: tuple[type, ...] = (Events, Answer, CredentialsQuestion, LogRecord, Closed)
