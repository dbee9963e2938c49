"""What the window's engine adapter tells the window of stored rows and folders
(:func:`transfer_row`, :func:`folder_info`, :func:`object_url`), and what it keeps of them
meanwhile: where each row goes (:class:`_Where`), what a drop did so far (:class:`_DropTally`),
files waiting for an earlier row's cancel (:class:`_Waiting`). No Qt (see
:mod:`ossdesk.ui.engine_adapter`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ossdesk.core.object_options import ObjectOptions
from ossdesk.core.oss import Endpoint
from ossdesk.core.store import Folder, NewUpload, Request, State, UploadRow
from ossdesk.ui.engine_types import DropQueued, FolderInfo, TransferRow, TransferState

__all__ = ["folder_info", "folder_name", "object_url", "readable_path", "transfer_row"]


@dataclass(frozen=True)
class _Where:
    source: Path
    endpoint: str
    bucket: str
    key: str
    region: str | None
    signature: str
    credentials: str
    # How the object is written: a cancelled upload tried again keeps it.
    storage_class: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    options: ObjectOptions = field(default_factory=ObjectOptions)
    folder: int | None = None


@dataclass
class _DropTally:
    """What the engine has done with the files of one drop so far (see :class:`DropQueued`)."""

    added: int = 0
    added_bytes: int = 0
    continued: int = 0
    continued_name: str = ""  # the first file's name
    unchanged: int = 0
    unchanged_name: str = ""
    notes: list[str] = field(default_factory=list)
    not_added: int = 0
    # Files waiting for their earlier upload to be cancelled (see _Waiting): the drop is
    # told, and its request finished, once none is left.
    waiting: int = 0
    ended: bool = False
    request: Request | None = None

    def told(self, drop: int) -> DropQueued:
        return DropQueued(
            drop, added=self.added, added_bytes=self.added_bytes,
            continued=self.continued, unchanged=self.unchanged,
            continued_name=self.continued_name if self.continued == 1 else "",
            unchanged_name=self.unchanged_name if self.unchanged == 1 else "",
            notes=tuple(self.notes[:20]), not_added=self.not_added)


@dataclass(frozen=True)
class _Waiting:
    """A file dropped again with other options whose earlier row is being cancelled: it is
    queued once that row is cancelled, and not at all if the abort fails (see
    :class:`EarlierUploads`)."""

    item: NewUpload
    earlier: int  # the row being cancelled
    what: str  # how the earlier upload differs, as said when the cancel began
    said: str  # the note said then ("it is being cancelled")
    request: Request | None
    drop: int | None


def folder_info(folder: Folder) -> FolderInfo:
    """A stored dropped folder as the window shows it."""
    return FolderInfo(id=folder.id, name=folder.name, source_path=str(folder.root),
                      destination=f"oss://{folder.bucket}/{folder.prefix}",
                      bucket=folder.bucket, profile=folder.credentials,
                      added_at=folder.created_at)


def folder_name(root: Path) -> str:
    """The name a dropped folder's files go under (as the walk names it)."""
    return root.resolve().name if root.name in ("", ".", "..") else root.name


def transfer_row(row: UploadRow, *, auto_resume: bool) -> TransferRow:
    """A stored upload as the window shows it after a restart."""
    state = {
        State.QUEUED: TransferState.QUEUED,
        State.RUNNING: TransferState.QUEUED,
        State.PAUSED: TransferState.PAUSED,
        State.FAILED: TransferState.FAILED,
        State.DONE: TransferState.DONE,
        State.CANCELLED: TransferState.CANCELLED,
    }[row.state]
    if row.skipped:
        state = TransferState.SKIPPED
    if not auto_resume and state is TransferState.QUEUED:
        state = TransferState.PAUSED
    error = row.error or "" if state is TransferState.FAILED else ""
    return TransferRow(
        id=row.id,
        name=Path(row.source).name,
        source_path=str(row.source),
        size=row.size,
        destination=f"oss://{row.bucket}/{row.key}",
        state=state,
        confirmed_bytes=(0 if state is TransferState.CANCELLED
                         else row.size if state.finished else row.confirmed_bytes),
        sent_bytes=(0 if state is TransferState.CANCELLED
                    else row.size if state.finished else row.confirmed_bytes),
        error=error,
        error_detail=(f"{error}\n\n{row.error_code}" if error and row.error_code else error),
        bucket=row.bucket,
        key=row.key,
        profile=row.credentials,
        check=(row.checked_by or "") if state is TransferState.DONE else "",
        folder=row.folder,
    )


#: What stays as it is in the path of a copied URL besides letters and digits: the path
#: separator and the unreserved and sub-delimiter characters of RFC 3986, except "+" (some
#: servers read it as a space) and "&", "'" (they break URLs pasted into mails and shells).
_URL_SAFE = "/-._~!$()*,;=:@"


def readable_path(key: str) -> str:
    """An object key as a URL path a user can read (an IRI, RFC 3987): letters of any
    script stay as they are ("相册/照片.jpg"), while spaces, "#", "?", "%", "+", control and
    other characters that would change or break the address are percent-encoded. A
    browser sends the non-ASCII letters as UTF-8 escapes, which is what OSS expects."""
    out: list[str] = []
    for char in key:
        if char.isascii() or not char.isprintable() or char.isspace():
            out.append(quote(char, safe=_URL_SAFE))
        else:
            out.append(char)
    return "".join(out)


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """``https://bucket.oss-cn-hangzhou.aliyuncs.com/key`` (path style for a local sandbox),
    readable: see :func:`readable_path`."""
    where = Endpoint(url=endpoint, bucket=bucket)
    path = readable_path(key)
    if where.is_loopback:
        return f"{where.url}/{bucket}/{path}"
    port = where.url.split("://", 1)[1].removeprefix(where.host)
    return f"{where.scheme}://{bucket}.{where.host}{port}/{path}"
