"""Pick a folder of the bucket (ListObjectsV2 with delimiter ``/``), loaded as expanded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ossdesk.ui.bridge import Destination
from ossdesk.ui.engine_text import engine_text
from ossdesk.ui.qthreads import BackgroundCall

Lister = Callable[[str], tuple[list[str], list[Any]]]

_PREFIX = Qt.ItemDataRole.UserRole
_LOADED = Qt.ItemDataRole.UserRole + 1


def bucket_lister(credentials: Callable[[str], Any], destination: Destination) -> Lister:
    """A BLOCKING ``prefix -> (folders, objects)`` for the destination's bucket;
    ``credentials`` maps a profile name to its credentials (reads the keyring)."""
    lock = threading.Lock()
    client: list[Any] = []

    def list_folder(prefix: str) -> tuple[list[str], list[Any]]:
        from ossdesk.core.oss import Endpoint, OssClient

        with lock:
            if not client:
                endpoint = Endpoint(
                    url=destination.endpoint,
                    bucket=destination.bucket,
                    region=destination.region,
                    signature="v1" if destination.signature == "v1" else "v4",
                )
                client.append(OssClient(endpoint, credentials(destination.profile)))
        folders, objects = client[0].list_folder(prefix)
        return list(folders), list(objects)

    return list_folder


class FolderBrowserDialog(QDialog):
    def __init__(
        self,
        credentials: Callable[[str], Any],
        destination: Destination,
        parent: QWidget | None = None,
        *,
        lister: Lister | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("folderBrowser")
        self.setWindowTitle(self.tr("Choose a folder in %1").replace("%1", destination.bucket))
        self._list = lister or bucket_lister(credentials, destination)
        self.tree = QTreeWidget()
        self.tree.setObjectName("folderTree")
        self.tree.setHeaderHidden(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(self.tr("Choose"))
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(self.tr("Cancel"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(460, 420)

        self._folder_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DirIcon)
        root = QTreeWidgetItem([self.tr("%1 (top level)").replace("%1", destination.bucket)])
        root.setIcon(0, self._folder_icon)
        root.setData(0, _PREFIX, "")
        self.tree.addTopLevelItem(root)
        self.tree.itemExpanded.connect(self._on_expanded)
        wanted = destination.prefix.strip("/")
        self.tree.setCurrentItem(root)
        self._wanted = wanted
        root.setExpanded(True)
        self._load(root)

    def _load(self, item: QTreeWidgetItem) -> None:
        if item.data(0, _LOADED):
            return
        item.setData(0, _LOADED, True)
        prefix = str(item.data(0, _PREFIX))
        self.status.setText(self.tr("Loading…"))
        lister = self._list
        call = BackgroundCall(lambda: (prefix, lister(prefix)), self)
        call.succeeded.connect(self._on_listed)
        call.failed.connect(self._on_failed)
        call.start()

    @Slot(QTreeWidgetItem)
    def _on_expanded(self, item: QTreeWidgetItem) -> None:
        self._load(item)

    def _item_for(self, prefix: str) -> QTreeWidgetItem | None:
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item is None:
                continue
            if item.data(0, _PREFIX) == prefix:
                return item
            stack.extend(item.child(i) for i in range(item.childCount()))
        return None

    @Slot(object)
    def _on_listed(self, result: object) -> None:
        if not isinstance(result, tuple):
            return
        prefix: str = result[0]
        folders: list[str] = list(result[1][0])
        parent = self._item_for(prefix)
        self.status.clear()
        if parent is None:
            return
        parent.takeChildren()
        for folder in folders:
            name = folder[len(prefix) :].rstrip("/")
            child = QTreeWidgetItem([name])
            child.setIcon(0, self._folder_icon)
            child.setData(0, _PREFIX, folder)
            child.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            parent.addChild(child)
            if self._wanted and (self._wanted + "/").startswith(folder):
                self.tree.setCurrentItem(child)
                child.setExpanded(True)
        if not folders:
            parent.setChildIndicatorPolicy(
                QTreeWidgetItem.ChildIndicatorPolicy.DontShowIndicatorWhenChildless
            )

    @Slot(object)
    def _on_failed(self, exc: object) -> None:
        message = engine_text(getattr(exc, "message", None) or str(exc))
        self.status.setText(self.tr("Could not list the bucket: %1").replace("%1", message))

    def selected_folder(self) -> str:
        item = self.tree.currentItem()
        if item is None:
            return ""
        return str(item.data(0, _PREFIX) or "").rstrip("/")
