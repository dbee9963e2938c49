"""The queue's plain data, shared by the window and the engine process (no Qt here).

The window's engine adapter and the engine process exchange these objects (pickled over a
pipe), so they live in a module that imports no Qt: the engine process stays lean.
:mod:`ossdesk.ui.transfer_model`, :mod:`ossdesk.ui.bridge` and :mod:`ossdesk.ui.walker`
re-export them under their historical names.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from ossdesk.core.object_options import ObjectOptions

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
class RowsRestored:
    """Rows read back from the store at start (state and confirmed bytes included)."""

    rows: tuple[TransferRow, ...]


@dataclass(frozen=True, slots=True)
class RowsRemoved:
    """Rows the engine forgot (a cancelled upload queued again gets a new id)."""

    ids: tuple[RowKey, ...]


@dataclass(frozen=True, slots=True)
class EngineUnavailable:
    """The engine could not start (its upload list is locked or unreadable) or stopped
    unexpectedly: say why."""

    message: str
