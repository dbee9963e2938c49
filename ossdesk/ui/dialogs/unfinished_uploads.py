"""The bucket's unfinished multipart uploads: list them (ours marked) and abort chosen ones.

An unfinished multipart upload keeps its parts on OSS, billed, until it is completed or
aborted. The list comes from ListMultipartUploads (every page); the parts and bytes of each
upload from ListParts, one upload after another once the list is shown. "Ours" are the
uploads whose id a row of this computer's upload list records. Those are not aborted here:
their row in the queue would be left with an upload id OSS no longer has, so the dialog
says to cancel the row instead (Cancel aborts the upload and removes the row).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ossdesk.core.cleanup import abort_upload, failure_reason, list_uploads
from ossdesk.core.oss import Endpoint, OssClient, OssError, RemoteUpload
from ossdesk.core.store import Store, StoreError
from ossdesk.ui.bridge import Destination
from ossdesk.ui.engine_text import engine_text
from ossdesk.ui.formatting import format_size
from ossdesk.ui.qthreads import BackgroundCall

_UPLOAD = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class Listing:
    uploads: list[RemoteUpload]
    ours: dict[str, int]  # upload id -> row of this computer's upload list


@dataclass(frozen=True)
class Aborted:
    done: list[RemoteUpload]
    failed: list[tuple[RemoteUpload, str]]


class UnfinishedUploadsDialog(QDialog):
    COL_KEY, COL_STARTED, COL_PARTS, COL_SIZE, COL_OWNER = range(5)

    def __init__(self, credentials: Callable[[str], Any], destination: Destination,
                 database: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("unfinishedUploadsDialog")
        self.setWindowTitle(self.tr("Unfinished uploads in %1").replace(
            "%1", destination.bucket))
        self._credentials = credentials
        self._destination = destination
        self._database = database
        self._lock = threading.Lock()
        self._client: OssClient | None = None
        self.listing = Listing([], {})
        self._pending_parts: list[RemoteUpload] = []
        self.loaded = False  # the list is shown (tests, screenshots)
        self._note = ""  # what the last abort did, shown above the new count
        self._refused = ""
        self.parts_loaded = False  # and every upload's parts are counted

        self.intro = QLabel(self.tr(
            "Multipart uploads that were started and never completed or aborted. OSS keeps "
            "their parts, and bills them, until they are aborted."))
        self.intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setObjectName("unfinishedTree")
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setHeaderLabels([self.tr("Name"), self.tr("Started"), self.tr("Parts"),
                                   self.tr("Size so far"), self.tr("Started by")])
        header = self.tree.header()
        header.setSectionResizeMode(self.COL_KEY, QHeaderView.ResizeMode.Stretch)
        for column in (self.COL_STARTED, self.COL_PARTS, self.COL_SIZE, self.COL_OWNER):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.status = QLabel()
        self.status.setObjectName("unfinishedStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.refresh_button = QPushButton(self.tr("Refresh"))
        self.abort_button = QPushButton(self.tr("Abort selected…"))
        self.abort_button.setObjectName("abortButton")
        self.abort_button.setEnabled(False)
        self.buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.abort_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.refresh_button.clicked.connect(self.refresh)
        self.abort_button.clicked.connect(self.abort_selected)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(760, 420)
        self.refresh()

    # -- background work (BLOCKING parts run on threads) -------------------------------------

    def _oss(self) -> OssClient:
        with self._lock:
            if self._client is None:
                d = self._destination
                endpoint = Endpoint(url=d.endpoint, bucket=d.bucket, region=d.region,
                                    signature="v1" if d.signature == "v1" else "v4")
                self._client = OssClient(endpoint, self._credentials(d.profile))
            return self._client

    def _list(self) -> Listing:
        uploads = list_uploads(self._oss())
        ours: dict[str, int] = {}
        if self._database is not None and self._database.exists():
            try:
                with Store.open(self._database, owner=False) as store:
                    ours = store.known_upload_ids([u.upload_id for u in uploads])
            except StoreError:
                ours = {}
        return Listing(sorted(uploads, key=lambda u: (u.key, u.initiated or 0)), ours)

    @Slot()
    def refresh(self) -> None:
        self.loaded = self.parts_loaded = False
        self.refresh_button.setEnabled(False)
        self.abort_button.setEnabled(False)
        self.status.setText(self.tr("Asking OSS…"))
        call = BackgroundCall(self._list, self)
        call.succeeded.connect(self._on_listed)
        call.failed.connect(self._on_failed)
        call.start()

    @Slot(object)
    def _on_failed(self, exc: object) -> None:
        reason = engine_text(failure_reason(exc) if isinstance(exc, OssError) else str(exc))
        self.status.setText(self.tr("The unfinished uploads could not be listed: %1").replace(
            "%1", reason))
        self.refresh_button.setEnabled(True)
        self.loaded = True

    @Slot(object)
    def _on_listed(self, listing: object) -> None:
        assert isinstance(listing, Listing)
        self.listing = listing
        self.tree.clear()
        for upload in listing.uploads:
            row = listing.ours.get(upload.upload_id)
            started = (time.strftime("%Y-%m-%d %H:%M", time.localtime(upload.initiated))
                       if upload.initiated is not None else "")
            owner = (self.tr("ossdesk (row %1)").replace("%1", str(row)) if row is not None
                     else self.tr("Another program"))
            item = QTreeWidgetItem([upload.key, started, "…", "…", owner])
            item.setData(self.COL_KEY, _UPLOAD, upload.upload_id)
            item.setToolTip(self.COL_KEY, f"{upload.key}\n{upload.upload_id}")
            for column in (self.COL_PARTS, self.COL_SIZE):
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter)
            self.tree.addTopLevelItem(item)
        ours = sum(1 for u in listing.uploads if u.upload_id in listing.ours)
        if listing.uploads:
            self.status.setText(self.tr("%1 unfinished upload(s), %2 of them started by "
                                        "ossdesk on this computer.")
                                .replace("%1", str(len(listing.uploads)))
                                .replace("%2", str(ours)))
        else:
            self.status.setText(self.tr("No unfinished upload in this bucket."))
        if self._note:
            self.status.setText(self._note + " " + self.status.text())
            self._note = ""
        self.refresh_button.setEnabled(True)
        self.loaded = True
        self._pending_parts = list(listing.uploads)
        self._count_next()

    def _count_next(self) -> None:
        if not self._pending_parts:
            self.parts_loaded = True
            return
        upload = self._pending_parts.pop(0)

        def count() -> tuple[str, int, int]:
            parts = self._oss().list_parts(upload.key, upload.upload_id)
            return upload.upload_id, len(parts), sum(p.size for p in parts)

        call = BackgroundCall(count, self)
        call.succeeded.connect(self._on_counted)
        call.failed.connect(self._on_count_failed)
        call.start()

    def _item(self, upload_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None and item.data(self.COL_KEY, _UPLOAD) == upload_id:
                return item
        return None

    @Slot(object)
    def _on_counted(self, result: object) -> None:
        assert isinstance(result, tuple)
        upload_id, parts, size = (str(result[0]), int(result[1]), int(result[2]))
        item = self._item(upload_id)
        if item is not None:
            item.setText(self.COL_PARTS, str(parts))
            item.setText(self.COL_SIZE, format_size(size))
        self._count_next()

    @Slot(object)
    def _on_count_failed(self, exc: object) -> None:
        del exc  # the upload may have been completed or aborted meanwhile: "?" says unknown
        self._count_next()

    # -- aborting -----------------------------------------------------------------------

    @Slot()
    def _on_selection(self) -> None:
        self.abort_button.setEnabled(bool(self.tree.selectedItems()) and self.loaded)

    def selected(self) -> list[RemoteUpload]:
        ids = {item.data(self.COL_KEY, _UPLOAD) for item in self.tree.selectedItems()}
        return [u for u in self.listing.uploads if u.upload_id in ids]

    def confirm(self, count: int) -> bool:
        answer = QMessageBox.question(
            self, self.tr("Abort uploads"),
            self.tr("Abort %1 unfinished upload(s)? Their parts are deleted from OSS; this "
                    "cannot be undone.").replace("%1", str(count)))
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def abort_selected(self) -> None:
        chosen = self.selected()
        ours = [u for u in chosen if u.upload_id in self.listing.ours]
        others = [u for u in chosen if u.upload_id not in self.listing.ours]
        refused = ""
        if ours:
            rows = ", ".join(str(self.listing.ours[u.upload_id]) for u in ours)
            refused = self.tr("%1 of the chosen uploads belong to files in ossdesk's upload "
                              "list (rows %2) and were not aborted: cancel those files in the "
                              "queue, which aborts their uploads.").replace(
                "%1", str(len(ours))).replace("%2", rows)
        if not others:
            self.status.setText(refused)
            return
        if not self.confirm(len(others)):
            return
        self.abort_button.setEnabled(False)
        self.refresh_button.setEnabled(False)
        self.status.setText(self.tr("Aborting…"))
        self._refused = refused
        call = BackgroundCall(lambda: self._abort(others), self)
        call.succeeded.connect(self._on_aborted)
        call.failed.connect(self._on_failed)
        call.start()

    def _abort(self, uploads: Sequence[RemoteUpload]) -> Aborted:
        done: list[RemoteUpload] = []
        failed: list[tuple[RemoteUpload, str]] = []
        for upload in uploads:
            try:
                abort_upload(self._oss(), upload.key, upload.upload_id)
            except OssError as exc:
                failed.append((upload, failure_reason(exc)))
            else:
                done.append(upload)
        return Aborted(done, failed)

    @Slot(object)
    def _on_aborted(self, result: object) -> None:
        assert isinstance(result, Aborted)
        lines = [self.tr("%1 upload(s) aborted.").replace("%1", str(len(result.done)))]
        for upload, reason in result.failed:
            lines.append(self.tr("%1 could not be aborted (%2); it is still on OSS.")
                         .replace("%1", upload.key).replace("%2", engine_text(reason)))
        if self._refused:
            lines.append(self._refused)
        self._note = " ".join(lines)
        self.refresh()
