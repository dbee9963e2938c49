"""What can be done to the selected rows of the queue: pause, resume, cancel, retry and
remove them, move them up or down, copy a link, show their details; the context menu and
the keyboard shortcuts (while the queue has focus). The window owns one :class:`RowActions`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QModelIndex, QObject, QPoint, Qt, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QStyle

from ossdesk.ui import engine_types as rq
from ossdesk.ui.dialogs.details import DetailsDialog
from ossdesk.ui.dialogs.folder_details import FAILED_SHOWN, FolderDetailsDialog
from ossdesk.ui.engine_text import engine_text
from ossdesk.ui.folder_rows import FolderNode
from ossdesk.ui.qthreads import BackgroundCall
from ossdesk.ui.queue_order import (
    MOVE_BOTTOM_KEYS,
    MOVE_DOWN_KEYS,
    MOVE_TOP_KEYS,
    MOVE_UP_KEYS,
    StayPut,
    step_target,
)
from ossdesk.ui.transfer_model import Column, RowKey, TransferRow, TransferState

if TYPE_CHECKING:
    from ossdesk.ui.main_window import MainWindow


class RowActions(QObject):
    """The per-row actions of the window's queue and what they do."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)  # the window is found as the parent: no reference cycle
        sp = QStyle.StandardPixmap
        self.act_pause = window._action("pause", self.pause_selected, sp.SP_MediaPause, "Ctrl+P")
        self.act_resume = window._action("resume", self.resume_selected, sp.SP_MediaPlay, "Ctrl+R")
        self.act_cancel = window._action(
            "cancel", self.cancel_selected, sp.SP_MediaStop, "Ctrl+Backspace"
        )
        self.act_retry = window._action("retry", self.retry_selected, sp.SP_BrowserReload, "F5")
        self.act_remove = window._action(
            "remove", self.remove_selected, sp.SP_TrashIcon, QKeySequence.StandardKey.Delete
        )
        self.act_open_folder = window._action(
            "openFolder", self.open_containing_folder, sp.SP_DirOpenIcon, "Ctrl+E"
        )
        self.act_copy_url = window._action(
            "copyUrl", self.copy_object_url, None, QKeySequence.StandardKey.Copy
        )
        self.act_copy_presigned = window._action(
            "copyPresigned", self.copy_presigned_link, None, "Ctrl+Shift+C"
        )
        self.act_error_details = window._action(
            "errorDetails", self.show_error_details, sp.SP_MessageBoxWarning, "Ctrl+I"
        )
        self.act_details = window._action("details", self.show_details, None, "Alt+Return")
        self.act_move_top = window._action(
            "moveTop", self.move_selected_to_top, sp.SP_ArrowUp, MOVE_TOP_KEYS
        )
        self.act_move_bottom = window._action(
            "moveBottom", self.move_selected_to_bottom, sp.SP_ArrowDown, MOVE_BOTTOM_KEYS
        )
        self.act_move_up = window._action("moveUp", self.move_selected_up, None, MOVE_UP_KEYS)
        self.act_move_down = window._action(
            "moveDown", self.move_selected_down, None, MOVE_DOWN_KEYS
        )
        self.actions = [
            self.act_pause,
            self.act_resume,
            self.act_cancel,
            self.act_retry,
            self.act_remove,
            self.act_open_folder,
            self.act_copy_url,
            self.act_copy_presigned,
            self.act_error_details,
            self.act_details,
            self.act_move_top,
            self.act_move_up,
            self.act_move_down,
            self.act_move_bottom,
        ]
        for action in self.actions:
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)


    @property
    def window(self) -> MainWindow:
        """The window that owns these actions: its Qt parent."""
        return cast("MainWindow", self.parent())

    def retranslate(self) -> None:
        texts: list[tuple[QAction, str, str]] = [
            (
                self.act_pause,
                self.tr("Pause"),
                self.tr("Pause; the parts already uploaded are kept"),
            ),
            (self.act_resume, self.tr("Resume"), self.tr("Continue where it stopped")),
            (
                self.act_cancel,
                self.tr("Cancel upload"),
                self.tr("Stop and discard the parts uploaded so far"),
            ),
            (self.act_retry, self.tr("Retry"), self.tr("Try a failed or cancelled upload again")),
            (
                self.act_remove,
                self.tr("Remove from list"),
                self.tr("Remove from the list (an unfinished upload is cancelled)"),
            ),
            (
                self.act_open_folder,
                self.tr("Open containing folder"),
                self.tr("Show the local file in the file manager"),
            ),
            (self.act_copy_url, self.tr("Copy object URL"), self.tr("Copy the object's address")),
            (self.act_details, self.tr("Details…"),
             self.tr("How the file was verified, its checksum, upload id, parts and times")),
            (
                self.act_copy_presigned,
                self.tr("Copy pre-signed link…"),
                self.tr("Copy a link anyone can download from until it expires"),
            ),
            (
                self.act_error_details,
                self.tr("Show error details…"),
                self.tr("Why this upload failed"),
            ),
            (self.act_move_top, self.tr("Move to top"), self.tr("Upload these next")),
            (self.act_move_up, self.tr("Move up"), self.tr("Upload these one place sooner")),
            (self.act_move_down, self.tr("Move down"), self.tr("Upload these one place later")),
            (self.act_move_bottom, self.tr("Move to bottom"), self.tr("Upload these last")),
        ]
        for action, text, tip in texts:
            action.setText(text)
            action.setToolTip(tip)
            action.setStatusTip(tip)

    def selected_items(self) -> list[TransferRow | FolderNode]:
        """The selected rows, files and folders, in queue order."""
        window = self.window
        window.model.flush()
        model, proxy = window.model, window.queue_filter
        # In the order of their lines (the queue's order as shown): sorting the selected
        # lines costs nothing like indexing every file of a 100,000-file folder would.
        lines = sorted(proxy.mapToSource(i).row()
                       for i in window.view.selectionModel().selectedRows())
        items = [model.item(model.index(n, 0)) for n in lines]
        return [i for i in items if i is not None]

    def selected_rows(self) -> list[TransferRow]:
        """The selected files: a selected folder stands for all its files (each once, even
        with some of them selected too) as the folder keeps them (ids, states and bytes:
        :meth:`FolderNode.light`)."""
        items = self.selected_items()
        if len(items) == 1 and not isinstance(items[0], FolderNode):
            return [items[0]]
        seen: set[RowKey] = set()
        rows: list[TransferRow] = []
        for item in items:
            for row in item.light_rows() if isinstance(item, FolderNode) else (item,):
                if row.id not in seen:
                    seen.add(row.id)
                    rows.append(row)
        return rows

    def _selected_states(self) -> tuple[set[TransferState], int]:
        """The states among the selected files (a folder's from its counts: no walk of its
        files), and how many rows are selected."""
        items = self.selected_items()
        states: set[TransferState] = set()
        for item in items:
            if isinstance(item, FolderNode):
                states.update(s for s, n in item.states.items() if n)
            else:
                states.add(item.state)
        return states, len(items)

    def select_ids(self, ids: Sequence[RowKey]) -> None:
        """Select these rows (tests and keyboard users); a file in a closed folder is
        shown (its folder opened) to be selected."""
        window = self.window
        for key in ids:
            node = window.model.folder_of(key)
            if node is not None and not window.model.is_expanded(node):
                window.model.set_expanded(node, True)
        selection = window.view.selectionModel()
        selection.clearSelection()
        for key in ids:
            index = window.queue_filter.from_key(key)
            if index.isValid():
                selection.select(
                    index, selection.SelectionFlag.Select | selection.SelectionFlag.Rows)

    def select_folder(self, folder: int) -> None:
        """Select a dropped folder's row (tests and keyboard users)."""
        window = self.window
        selection = window.view.selectionModel()
        selection.clearSelection()
        index = window.queue_filter.mapFromSource(window.model.folder_index(folder))
        if index.isValid():
            selection.select(index, selection.SelectionFlag.Select | selection.SelectionFlag.Rows)

    @Slot()
    def _on_selection_changed(self) -> None:
        self.update_actions()

    @Slot(QModelIndex, QModelIndex)
    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex) -> None:
        if top_left.column() <= Column.STATE <= bottom_right.column() or top_left.column() == 0:
            self.update_actions()

    @Slot()
    def _on_rows_changed(self) -> None:
        window = self.window
        if window.model.rowCount() and window.stack.currentWidget() is not window.view:
            window.stack.setCurrentWidget(window.view)
        self.update_actions()

    def update_actions(self) -> None:
        window = self.window
        items = self.selected_items() if window.view.selectionModel() is not None else []
        states, _ = self._selected_states() if items else (set(), 0)
        one = items[0] if len(items) == 1 else None
        file = one if isinstance(one, TransferRow) else None
        self.act_pause.setEnabled(any(s.can_pause for s in states))
        self.act_resume.setEnabled(any(s.can_resume for s in states))
        self.act_cancel.setEnabled(any(s.can_cancel for s in states))
        self.act_retry.setEnabled(any(s.can_retry for s in states))
        self.act_remove.setEnabled(bool(items))
        self.act_open_folder.setEnabled(one is not None)
        self.act_copy_url.setEnabled(file is not None and window.engine is not None)
        self.act_copy_presigned.setEnabled(
            file is not None and file.state is TransferState.DONE and window.engine is not None
        )
        self.act_error_details.setEnabled(file is not None and bool(file.error))
        self.act_details.setEnabled(one is not None)
        for action in (self.act_move_top, self.act_move_up, self.act_move_down,
                       self.act_move_bottom):
            action.setEnabled(bool(items))
        totals = window.model.totals()  # kept current in O(1) per change: no walk of the queue
        window.act_pause_all.setEnabled(totals.pausable > 0)
        window.act_resume_all.setEnabled(totals.paused > 0)
        window.act_clear_finished.setEnabled(totals.finished > 0)

    @Slot(QPoint)
    def _show_context_menu(self, pos: QPoint) -> None:
        self.update_actions()
        menu = self.context_menu()
        menu.exec(self.window.view.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        menu = QMenu(self.window)
        for action in (self.act_pause, self.act_resume, self.act_retry, self.act_cancel):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.act_move_top)
        menu.addAction(self.act_move_up)
        menu.addAction(self.act_move_down)
        menu.addAction(self.act_move_bottom)
        menu.addSeparator()
        menu.addAction(self.act_copy_url)
        menu.addAction(self.act_copy_presigned)
        menu.addAction(self.act_open_folder)
        menu.addAction(self.act_error_details)
        menu.addAction(self.act_details)
        menu.addSeparator()
        menu.addAction(self.act_remove)
        return menu

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        window = self.window
        row = window.model.item(window.queue_filter.mapToSource(index))
        if row is None:
            return
        if isinstance(row, FolderNode):
            window.view.toggle_folder(index)  # open or close it
            return
        if row.error:
            self.show_error_details()
        elif row.state.can_resume:
            self.resume_selected()
        elif row.state.can_retry:
            self.retry_selected()
        else:
            self.show_details()

    def _ids(self, predicate: Callable[[TransferState], bool]) -> list[RowKey]:
        return [r.id for r in self.selected_rows() if predicate(r.state)]

    @Slot()
    def pause_selected(self) -> None:
        window = self.window
        ids = self._ids(lambda s: s.can_pause)
        if ids and window.engine is not None:
            window.engine.send(rq.Pause(ids))

    @Slot()
    def resume_selected(self) -> None:
        window = self.window
        ids = self._ids(lambda s: s.can_resume)
        if ids and window.engine is not None:
            window.engine.send(rq.Resume(ids))

    @Slot()
    def retry_selected(self) -> None:
        window = self.window
        ids = self._ids(lambda s: s.can_retry)
        if ids and window.engine is not None:
            for key in ids:
                window.model.update(key, state=TransferState.QUEUED, error="", error_detail="")
            window.engine.send(rq.Retry(ids))

    def confirm(self, title: str, text: str) -> bool:
        """Ask a yes/no question (a seam tests replace)."""
        answer = QMessageBox.question(
            self.window,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def cancel_selected(self) -> None:
        window = self.window
        rows = [r for r in self.selected_rows() if r.state.can_cancel]
        if not rows or window.engine is None:
            return
        if any(r.confirmed_bytes > 0 for r in rows) and not self.confirm(
            self.tr("Cancel uploads"),
            self.tr(
                "Cancel %n upload(s)? The parts uploaded so far are discarded; "
                "a retry starts from the beginning.",
                "",
                len(rows),
            ),
        ):
            return
        window.engine.send(rq.Cancel([r.id for r in rows]))

    @Slot()
    def remove_selected(self) -> None:
        window = self.window
        rows = self.selected_rows()
        if not rows:
            return
        unfinished = [r for r in rows if not r.state.finished]
        if any(r.confirmed_bytes > 0 for r in unfinished) and not self.confirm(
            self.tr("Remove from list"),
            self.tr(
                "%n unfinished upload(s) will be cancelled and their uploaded parts "
                "discarded. Remove them?",
                "",
                len(unfinished),
            ),
        ):
            return
        ids = [r.id for r in rows]
        if window.engine is not None:
            window.engine.send(rq.Remove(ids))
        window.model.remove(ids)

    @Slot()
    def move_selected_to_top(self) -> None:
        self._move_selected(top=True)

    @Slot()
    def move_selected_to_bottom(self) -> None:
        self._move_selected(top=False)

    @Slot()
    def move_selected_up(self) -> None:
        self._step_selected(up=True)

    @Slot()
    def move_selected_down(self) -> None:
        self._step_selected(up=False)

    def _step_selected(self, *, up: bool) -> None:
        window = self.window
        rows = self.selected_rows()
        if not rows:
            return
        # Top rows move: a file on its own, or the folder of a file in one.
        numbers = sorted(window.model.top_rows_of(r.id for r in rows))
        try:
            before = step_target(numbers, window.model.top_count(), up=up)
        except StayPut:
            return
        window.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        window.model.move_before([r.id for r in rows], before)  # the engine hears rowsDragged
        window.view.scrollTo(window.queue_filter.from_key(rows[0].id))

    def _move_selected(self, *, top: bool) -> None:
        window = self.window
        ids = [r.id for r in self.selected_rows()]
        if not ids:
            return
        # Queue order again (the order uploads start in), not a column sort.
        window.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        model = window.model
        chosen = set(ids)
        # Some (not all) files of a folder move within their folder, not to the queue's top.
        partial = any(
            node is not None and any(k not in chosen for k in node.ids())
            for node in {model.folder_of(i) for i in ids})
        before = [r.id for r in model.rows(full=False)] if partial else []
        if top:
            model.move_to_top(ids)
        else:
            model.move_to_bottom(ids)
        if window.engine is not None:
            if partial:
                # The engine is sent the order shown: from the first place that changed,
                # every file to the back, in the new order.
                after = [r.id for r in model.rows(full=False)]
                cut = next((n for n, (a, b) in enumerate(zip(before, after, strict=True))
                            if a != b), len(after))
                if after[cut:]:
                    window.engine.send(rq.Move(after[cut:], False))
            else:
                window.engine.send(rq.Move(ids, top))
        window.view.scrollTo(window.queue_filter.from_key(ids[0]))

    @Slot(object, object)
    def _on_rows_dragged(self, moved: object, tail: object) -> None:
        """Rows were dragged to a new place: the queue order is what the engine follows."""
        window = self.window
        window.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        if window.engine is not None and isinstance(tail, list) and tail:
            # Sending each row from the first moved one to the end to the back, in the
            # new order, gives the engine exactly the order shown.
            window.engine.send(rq.Move(tail, False))

    @Slot()
    def open_containing_folder(self) -> None:
        items = self.selected_items()
        if len(items) != 1:
            return
        item = items[0]
        folder = (item.source_path if isinstance(item, FolderNode)
                  else os.path.dirname(item.source_path))
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    @Slot()
    def copy_object_url(self) -> None:
        window = self.window
        items = self.selected_items()
        row = items[0] if len(items) == 1 else None
        if not isinstance(row, TransferRow) or window.engine is None:
            return
        url = window.engine.ask(rq.ObjectUrl(window.model.full_row(row)))
        QGuiApplication.clipboard().setText(url)
        window.statusBar().showMessage(self.tr("Copied: %1").replace("%1", url), 6000)

    def presign_expiry_choices(self) -> list[tuple[str, int]]:
        return [
            (self.tr("1 hour"), 3600),
            (self.tr("1 day"), 86_400),
            (self.tr("7 days (the longest OSS allows)"), 7 * 86_400),
        ]

    def ask_presign_expiry(self) -> int | None:
        """Ask how long the link should work (a seam tests replace)."""
        window = self.window
        choices = self.presign_expiry_choices()
        labels = [label for label, _ in choices]
        wanted = window.settings.presign_expiry_seconds
        current = next((i for i, (_, s) in enumerate(choices) if s == wanted), 0)
        label, ok = QInputDialog.getItem(
            window,
            self.tr("Pre-signed link"),
            self.tr("Anyone with the link can download the file until it expires. Valid for:"),
            labels,
            current,
            False,
        )
        if not ok:
            return None
        return dict(choices).get(label)

    @Slot()
    def copy_presigned_link(self) -> None:
        window = self.window
        items = self.selected_items()
        row = items[0] if len(items) == 1 else None
        if not isinstance(row, TransferRow) or window.engine is None:
            return
        expires = self.ask_presign_expiry()
        if expires is None:
            return
        window.settings.presign_expiry_seconds = expires
        engine = window.engine
        full = window.model.full_row(row)
        call = BackgroundCall(lambda: engine.ask(rq.PresignedUrl(full, expires)), self)
        call.succeeded.connect(self._on_presigned)
        call.failed.connect(self._on_presign_failed)
        call.start()

    @Slot(object)
    def _on_presigned(self, url: object) -> None:
        QGuiApplication.clipboard().setText(str(url))
        self.window.statusBar().showMessage(
            self.tr("Pre-signed link copied to the clipboard"), 6000)

    @Slot(object)
    def _on_presign_failed(self, exc: object) -> None:
        message = engine_text(getattr(exc, "message", None) or str(exc))
        QMessageBox.warning(
            self.window,
            self.tr("Pre-signed link"),
            self.tr("Could not make the link: %1").replace("%1", message),
        )

    def error_details_box(self, row: TransferRow) -> QMessageBox:
        row = self.window.model.full_row(row)
        box = QMessageBox(self.window)
        box.setIcon(
            QMessageBox.Icon.Warning
            if row.state is TransferState.FAILED
            else QMessageBox.Icon.Information
        )
        box.setWindowTitle(self.tr("Error details"))
        box.setText(
            self.tr("%1 could not be uploaded.").replace("%1", row.name)
            if row.state is TransferState.FAILED
            else row.name
        )
        box.setInformativeText(row.error)
        details = row.error_detail or row.error
        box.setDetailedText(
            self.tr("File: %1\nDestination: %2\n\n%3")
            .replace("%1", row.source_path)
            .replace("%2", row.destination)
            .replace("%3", details)
        )
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        return box

    def details_dialog(self, row: TransferRow) -> DetailsDialog:
        """The row's details, read from the upload list (a seam tests use)."""
        return DetailsDialog.for_row(self.window.engine, self.window.model.full_row(row),
                                     self.window)

    @Slot()
    def show_details(self) -> None:
        items = self.selected_items()
        if len(items) != 1:
            return
        item = items[0]
        if isinstance(item, FolderNode):
            self.folder_details_dialog(item).exec()
        else:
            self.details_dialog(item).exec()

    def folder_details_dialog(self, node: FolderNode) -> FolderDetailsDialog:
        """A folder's counts, sizes, destination and first failures (a seam tests use)."""
        return FolderDetailsDialog(node, self.window, failed=self.window.model.failed_rows(
            node, FAILED_SHOWN))

    @Slot()
    def show_error_details(self) -> None:
        items = self.selected_items()
        row = items[0] if len(items) == 1 else None
        if not isinstance(row, TransferRow) or not row.error:
            return
        self.error_details_box(row).exec()
