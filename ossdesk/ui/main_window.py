"""The main window: destination bar, the queue, toolbar and per-row actions, totals.

The window owns no upload logic. Dropped paths go to its :class:`DropFlow` (walked by a
:class:`WalkJob` in a worker thread, checked against the bucket, then handed to the
:class:`EngineAdapter`); the engine's events come back through
the :class:`EventBridge` into the :class:`TransferModel`. Profile lists, pre-signed links
and folder listings are fetched with :class:`BackgroundCall`, so the GUI thread does no
file or network I/O.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QSystemTrayIcon,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ossdesk.ui import collector
from ossdesk.ui import engine_types as rq
from ossdesk.ui.bridge import EngineAdapter, EventBridge
from ossdesk.ui.destination_bar import DestinationBar
from ossdesk.ui.dialogs.details import DetailsDialog
from ossdesk.ui.drop_flow import DropFlow
from ossdesk.ui.formatting import format_duration, format_size, format_speed
from ossdesk.ui.icons import symbol_icon
from ossdesk.ui.progress_delegate import ProgressDelegate
from ossdesk.ui.qthreads import BackgroundCall
from ossdesk.ui.queue_filter import FilterBar, QueueFilter
from ossdesk.ui.queue_order import (
    MOVE_BOTTOM_KEYS,
    MOVE_DOWN_KEYS,
    MOVE_TOP_KEYS,
    MOVE_UP_KEYS,
    StayPut,
    step_target,
)
from ossdesk.ui.queue_view import FirstRunPanel, QueueView, local_paths
from ossdesk.ui.settings import Settings
from ossdesk.ui.status_bar import StatusBar
from ossdesk.ui.transfer_model import (
    Column,
    RowKey,
    Totals,
    TransferModel,
    TransferRow,
    TransferState,
    state_label,
    verified_label,
)
from ossdesk.ui.tray import TrayMenu, TrayStatus
from ossdesk.ui.walker import Problem, WalkJob
from ossdesk.ui.watched import WatchedFoldersUi


class MainWindow(QMainWindow):
    """The ossdesk window."""


    sandboxRequested = Signal()
    settingsChanged = Signal(object)  # Settings

    def __init__(
        self,
        engine: EngineAdapter | None,
        *,
        settings: Settings | None = None,
        profile_store: Any | None = None,
        extra_profiles: Sequence[Any] = (),
        credentials: Callable[[str], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.engine = engine
        self.settings = settings or Settings()
        self.drops = DropFlow(self)
        self._quitting = False
        self._shut_down = False
        self.engine_error = ""
        self.model = TransferModel(self)
        self.bridge = EventBridge(self.model, self)
        self.tray_status = TrayStatus(self, QApplication.windowIcon())
        self.tray_menu = TrayMenu(self)
        self.destination_bar = DestinationBar(profile_store, credentials, extra_profiles,
                                              self.settings.last_folder, self)
        self.setAcceptDrops(True)
        self.resize(1100, 640)
        self.setMinimumSize(QSize(720, 420))

        self._build_actions()
        self._build_toolbar()
        self._build_central()
        self._build_status_bar()
        self.watched = WatchedFoldersUi(self, engine, self.model.rows)
        self._connect()
        self.retranslate()
        self._update_actions()
        self._on_totals(self.model.totals())

        if engine is not None:
            engine.start(self.bridge)
        self.tray_menu.show_tray()
        self.watched.manager.load()
        self.destination_bar.refresh_profiles()
        # Modules, Qt wrappers and the window live as long as the process: out of the
        # garbage collector's full walks from now on (before any row; see collector).
        collector.settle()

    # ---- construction -------------------------------------------------------------------

    def _icon(self, pixmap: QStyle.StandardPixmap) -> QIcon:
        return self.style().standardIcon(pixmap)

    def _action(
        self,
        name: str,
        slot: Callable[[], None],
        icon: QStyle.StandardPixmap | None = None,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
    ) -> QAction:
        action = QAction(self)
        action.setObjectName(name)
        if icon is not None:
            action.setIcon(self._icon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.act_add_files = self._action(
            "addFiles", self.add_files_dialog, sp.SP_FileIcon, QKeySequence.StandardKey.Open
        )
        self.act_add_folder = self._action(
            "addFolder", self.add_folder_dialog, sp.SP_DirIcon, "Ctrl+Shift+O"
        )
        self.act_pause_all = self._action("pauseAll", self.pause_all, sp.SP_MediaPause)
        self.act_resume_all = self._action("resumeAll", self.resume_all, sp.SP_MediaPlay)
        self.act_clear_finished = self._action(
            "clearFinished", self.clear_finished, sp.SP_DialogResetButton
        )
        self.act_settings = self._action(
            "settings", self.open_settings, sp.SP_FileDialogDetailedView, "Ctrl+,"
        )
        self.act_accounts = self._action("accounts", self.open_accounts, sp.SP_DirHomeIcon)
        self.act_unfinished = self._action("unfinishedUploads", self.show_unfinished_uploads,
                                           sp.SP_FileDialogContentsView)

        # Per-row actions: context menu, row buttons and keyboard (while the queue has focus).
        self.act_pause = self._action("pause", self.pause_selected, sp.SP_MediaPause, "Ctrl+P")
        self.act_resume = self._action("resume", self.resume_selected, sp.SP_MediaPlay, "Ctrl+R")
        self.act_cancel = self._action(
            "cancel", self.cancel_selected, sp.SP_MediaStop, "Ctrl+Backspace"
        )
        self.act_retry = self._action("retry", self.retry_selected, sp.SP_BrowserReload, "F5")
        self.act_remove = self._action(
            "remove", self.remove_selected, sp.SP_TrashIcon, QKeySequence.StandardKey.Delete
        )
        self.act_open_folder = self._action(
            "openFolder", self.open_containing_folder, sp.SP_DirOpenIcon, "Ctrl+E"
        )
        self.act_copy_url = self._action(
            "copyUrl", self.copy_object_url, None, QKeySequence.StandardKey.Copy
        )
        self.act_copy_presigned = self._action(
            "copyPresigned", self.copy_presigned_link, None, "Ctrl+Shift+C"
        )
        self.act_error_details = self._action(
            "errorDetails", self.show_error_details, sp.SP_MessageBoxWarning, "Ctrl+I"
        )
        self.act_details = self._action("details", self.show_details, None, "Alt+Return")
        self.act_move_top = self._action(
            "moveTop", self.move_selected_to_top, sp.SP_ArrowUp, MOVE_TOP_KEYS
        )
        self.act_move_bottom = self._action(
            "moveBottom", self.move_selected_to_bottom, sp.SP_ArrowDown, MOVE_BOTTOM_KEYS
        )
        self.act_move_up = self._action("moveUp", self.move_selected_up, None, MOVE_UP_KEYS)
        self.act_move_down = self._action(
            "moveDown", self.move_selected_down, None, MOVE_DOWN_KEYS
        )
        self.row_actions = [
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
        for action in self.row_actions:
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def _build_toolbar(self) -> None:
        bar = QToolBar(self)
        bar.setObjectName("mainToolBar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setIconSize(QSize(18, 18))
        bar.addAction(self.act_add_files)
        bar.addAction(self.act_add_folder)
        bar.addSeparator()
        bar.addAction(self.act_pause_all)
        bar.addAction(self.act_resume_all)
        bar.addAction(self.act_clear_finished)
        spacer = QWidget(bar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addAction(self.act_unfinished)
        bar.addAction(self.act_accounts)
        bar.addAction(self.act_settings)
        self.toolbar = bar
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def _build_central(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(6)

        layout.addWidget(self.destination_bar)

        # Queue, or the first-run panel.
        self.stack = QStackedWidget(central)
        self.first_run = FirstRunPanel(self.stack)
        self.view = QueueView(self.stack)
        self.view.setObjectName("queueView")
        # The view shows the queue through the state filters and the name search.
        self.queue_filter = QueueFilter(self.model, self)
        self.filter_bar = FilterBar(self.queue_filter, central)
        layout.addWidget(self.filter_bar)
        self.view.setModel(self.queue_filter)
        self.view.setItemDelegateForColumn(Column.PROGRESS, ProgressDelegate(self.view))
        self._apply_symbol_icons()
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(Column.NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(Column.DESTINATION, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        header.setSortIndicatorShown(True)
        self.view.setSortingEnabled(True)
        widths = {
            Column.SIZE: 90,
            Column.PROGRESS: 195,  # room for "100 % (99 % confirmed)"
            Column.SPEED: 95,
            Column.ETA: 95,
            Column.STATE: 150,
            Column.DESTINATION: 260,
            Column.ACCOUNT: 120,
        }
        for column, width in widths.items():
            self.view.setColumnWidth(column, width)
        self._fit_state_column()
        # Shown once rows of two accounts are in the queue (see _on_totals).
        self.view.setColumnHidden(Column.ACCOUNT, True)
        for action in self.row_actions:
            self.view.addAction(action)
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.first_run)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        bar = StatusBar(self)
        self.setStatusBar(bar)
        self.totals_label = QLabel(bar)
        self.totals_label.setObjectName("totalsLabel")
        self.problems_button = QToolButton(bar)
        self.problems_button.setObjectName("problemsButton")
        self.problems_button.setAutoRaise(True)
        self.problems_button.setVisible(False)
        self.problems_button.clicked.connect(self.drops.show_problems)
        bar.addPermanentWidget(self.problems_button)
        bar.addPermanentWidget(self.totals_label)

    def _connect(self) -> None:
        self.model.totalsChanged.connect(self._on_totals)
        self.model.totalsChanged.connect(self.tray_status.show_totals)
        self.model.rowsDragged.connect(self._on_rows_dragged)
        self.model.rowsInserted.connect(self._on_rows_changed)
        self.model.rowsRemoved.connect(self._on_rows_changed)
        self.model.dataChanged.connect(self._on_data_changed)
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.view.customContextMenuRequested.connect(self._show_context_menu)
        self.view.doubleClicked.connect(self._on_double_clicked)
        self.first_run.addAccountRequested.connect(self.open_accounts)
        self.first_run.sandboxRequested.connect(self.sandboxRequested)
        self.bridge.uploadFailed.connect(self._on_upload_failed)
        self.bridge.noticeReceived.connect(self._on_notice)
        self.bridge.queueIdle.connect(self._on_queue_idle)
        self.bridge.engineFailed.connect(self._on_engine_failed)

    # ---- texts --------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
            if hasattr(self, "view"):
                self._fit_state_column()
        elif event.type() == QEvent.Type.PaletteChange and hasattr(self, "view"):
            self._apply_symbol_icons()
        super().changeEvent(event)

    def _fit_state_column(self) -> None:
        """Wide enough for the longest state word in the current language, icon included
        ("Skipped (already there)" is not cut)."""
        metrics = self.view.fontMetrics()
        labels = [state_label(s) for s in TransferState]
        labels += [verified_label("crc64"), verified_label("md5")]
        text = max(metrics.horizontalAdvance(label) for label in labels)
        style = self.view.style()
        icon = style.pixelMetric(QStyle.PixelMetric.PM_SmallIconSize, None, self.view)
        margins = 4 * style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self.view)
        self.view.setColumnWidth(Column.STATE, text + icon + margins + 16)

    def _apply_symbol_icons(self) -> None:
        """State and media icons in the current palette's colours (light or dark)."""
        palette = self.palette()

        def icon(kind: str) -> QIcon:
            return symbol_icon(kind, palette)

        for action, kind in (
            (self.act_pause_all, "pause"),
            (self.act_pause, "pause"),
            (self.act_resume_all, "play"),
            (self.act_resume, "play"),
            (self.act_retry, "reload"),
            (self.act_cancel, "cancel"),
            (self.act_error_details, "warning"),
        ):
            action.setIcon(icon(kind))
        blank = icon("blank")
        self.model.state_icons = {state: blank for state in TransferState}
        self.model.state_icons.update({
            TransferState.UPLOADING: icon("up"),
            TransferState.VERIFYING: icon("reload"),
            TransferState.PAUSED: icon("pause"),
            TransferState.FAILED: icon("warning"),
            TransferState.DONE: icon("check"),
            TransferState.CANCELLED: icon("cancel"),
        })
        if hasattr(self, "view"):  # not yet while the window is being built
            self.view.viewport().update()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("ossdesk: uploads to Alibaba Cloud OSS"))
        texts: list[tuple[QAction, str, str]] = [
            (self.act_add_files, self.tr("Add files…"), self.tr("Choose files to upload")),
            (self.act_add_folder, self.tr("Add folder…"), self.tr("Choose a folder to upload")),
            (self.act_pause_all, self.tr("Pause all"), self.tr("Pause every upload")),
            (self.act_resume_all, self.tr("Resume all"), self.tr("Resume every paused upload")),
            (
                self.act_clear_finished,
                self.tr("Clear finished"),
                self.tr("Remove the done, cancelled and skipped files from the list"),
            ),
            (self.act_settings, self.tr("Settings…"), self.tr("Limits, part size, language")),
            (
                self.act_accounts,
                self.tr("Accounts…"),
                self.tr("Add, edit or remove OSS accounts"),
            ),
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
        self.toolbar.setWindowTitle(self.tr("Main toolbar"))
        self.act_unfinished.setText(self.tr("Unfinished uploads…"))
        self.act_unfinished.setToolTip(self.tr(
            "Multipart uploads left unfinished in this bucket, by ossdesk or other programs"))
        self.view.hint_title = self.tr("Drop files or folders here")
        self.view.hint_detail = self.tr(
            "or use Add files / Add folder above. Each file is uploaded to the bucket and "
            "folder shown at the top, and checked once it is there."
        )
        self.view.viewport().update()
        self.first_run.retranslate()
        self.destination_bar.retranslate()
        self.drops.update_problems_button()
        self._on_totals(self.model.totals())

    # ---- destination ------------------------------------------------------------------

    def unfinished_uploads_dialog(self) -> QDialog | None:
        """The bucket's unfinished multipart uploads (None: no destination chosen)."""
        dest = self.destination_bar.destination()
        if dest is None:
            return None
        from ossdesk.config import paths
        from ossdesk.ui.dialogs.unfinished_uploads import UnfinishedUploadsDialog

        return UnfinishedUploadsDialog(self.destination_bar._credentials_for, dest,
                                       paths().database, self)

    @Slot()
    def show_unfinished_uploads(self) -> None:
        dialog = self.unfinished_uploads_dialog()
        if dialog is not None:
            dialog.exec()

    # ---- adding files -------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and local_paths(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event.mimeData().urls()) if event.mimeData().hasUrls() else []
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    @Slot()
    def add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, self.tr("Choose files to upload"))
        if files:
            self.add_paths(files)

    @Slot()
    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Choose a folder to upload"))
        if folder:
            self.add_paths([folder])

    def add_paths(self, paths: Sequence[str]) -> WalkJob | None:
        """Walk ``paths`` off the GUI thread and queue every file found."""
        return self.drops.add_paths(paths)

    @property
    def walk_jobs(self) -> list[WalkJob]:
        return self.drops.walk_jobs

    @property
    def problems(self) -> list[Problem]:
        """What the drops left out, and why."""
        return self.drops.problems

    @problems.setter
    def problems(self, problems: list[Problem]) -> None:
        self.drops.problems = problems

    def problem_text(self, problem: Problem) -> str:
        return self.drops.problem_text(problem)

    # ---- selection and row actions ------------------------------------------------------

    def selected_rows(self) -> list[TransferRow]:
        self.model.flush()
        to_source = self.queue_filter.to_source_row
        numbers = sorted({to_source(i) for i in self.view.selectionModel().selectedRows()})
        return [self.model.row_at(n) for n in numbers if 0 <= n < self.model.rowCount()]

    def select_ids(self, ids: Sequence[RowKey]) -> None:
        """Select these rows (tests and keyboard users)."""
        selection = self.view.selectionModel()
        selection.clearSelection()
        for key in ids:
            n = self.model.index_of(key)
            if n is not None:
                selection.select(
                    self.queue_filter.from_source_row(n),
                    selection.SelectionFlag.Select | selection.SelectionFlag.Rows,
                )

    @Slot()
    def _on_selection_changed(self) -> None:
        self._update_actions()

    @Slot(QModelIndex, QModelIndex)
    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex) -> None:
        if top_left.column() <= Column.STATE <= bottom_right.column() or top_left.column() == 0:
            self._update_actions()

    @Slot()
    def _on_rows_changed(self) -> None:
        if self.model.rowCount() and self.stack.currentWidget() is not self.view:
            self.stack.setCurrentWidget(self.view)
        self._update_actions()

    def _update_actions(self) -> None:
        rows = self.selected_rows() if self.view.selectionModel() is not None else []
        states = [r.state for r in rows]
        self.act_pause.setEnabled(any(s.can_pause for s in states))
        self.act_resume.setEnabled(any(s.can_resume for s in states))
        self.act_cancel.setEnabled(any(s.can_cancel for s in states))
        self.act_retry.setEnabled(any(s.can_retry for s in states))
        self.act_remove.setEnabled(bool(rows))
        self.act_open_folder.setEnabled(len(rows) == 1)
        self.act_copy_url.setEnabled(len(rows) == 1 and self.engine is not None)
        self.act_copy_presigned.setEnabled(
            len(rows) == 1 and rows[0].state is TransferState.DONE and self.engine is not None
        )
        self.act_error_details.setEnabled(len(rows) == 1 and bool(rows[0].error))
        self.act_details.setEnabled(len(rows) == 1)
        for action in (self.act_move_top, self.act_move_up, self.act_move_down,
                       self.act_move_bottom):
            action.setEnabled(bool(rows))
        totals = self.model.totals()  # kept current in O(1) per change: no walk of the queue
        self.act_pause_all.setEnabled(totals.pausable > 0)
        self.act_resume_all.setEnabled(totals.paused > 0)
        self.act_clear_finished.setEnabled(totals.finished > 0)

    @Slot(QPoint)
    def _show_context_menu(self, pos: QPoint) -> None:
        self._update_actions()
        menu = self.context_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        menu = QMenu(self)
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
        row = self.model.row_at(self.queue_filter.to_source_row(index))
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
        ids = self._ids(lambda s: s.can_pause)
        if ids and self.engine is not None:
            self.engine.send(rq.Pause(ids))

    @Slot()
    def resume_selected(self) -> None:
        ids = self._ids(lambda s: s.can_resume)
        if ids and self.engine is not None:
            self.engine.send(rq.Resume(ids))

    @Slot()
    def retry_selected(self) -> None:
        ids = self._ids(lambda s: s.can_retry)
        if ids and self.engine is not None:
            for key in ids:
                self.model.update(key, state=TransferState.QUEUED, error="", error_detail="")
            self.engine.send(rq.Retry(ids))

    def confirm(self, title: str, text: str) -> bool:
        """Ask a yes/no question (a seam tests replace)."""
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def cancel_selected(self) -> None:
        rows = [r for r in self.selected_rows() if r.state.can_cancel]
        if not rows or self.engine is None:
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
        self.engine.send(rq.Cancel([r.id for r in rows]))

    @Slot()
    def remove_selected(self) -> None:
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
        if self.engine is not None:
            self.engine.send(rq.Remove(ids))
        self.model.remove(ids)

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
        rows = self.selected_rows()
        numbers = [n for n in (self.model.index_of(r.id) for r in rows) if n is not None]
        try:
            before = step_target(numbers, self.model.rowCount(), up=up)
        except StayPut:
            return
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.model.move_before([r.id for r in rows], before)  # the engine hears rowsDragged
        first = self.model.index_of(rows[0].id)
        if first is not None:
            self.view.scrollTo(self.queue_filter.from_source_row(first))

    def _move_selected(self, *, top: bool) -> None:
        ids = [r.id for r in self.selected_rows()]
        if not ids:
            return
        # Queue order again (the order uploads start in), not a column sort.
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        if top:
            self.model.move_to_top(ids)
        else:
            self.model.move_to_bottom(ids)
        if self.engine is not None:
            self.engine.send(rq.Move(ids, top))
        first = self.model.index_of(ids[0])
        if first is not None:
            self.view.scrollTo(self.queue_filter.from_source_row(first))

    @Slot(object, object)
    def _on_rows_dragged(self, moved: object, tail: object) -> None:
        """Rows were dragged to a new place: the queue order is what the engine follows."""
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        if self.engine is not None and isinstance(tail, list) and tail:
            # Sending each row from the first moved one to the end to the back, in the
            # new order, gives the engine exactly the order shown.
            self.engine.send(rq.Move(tail, False))

    @Slot()
    def open_containing_folder(self) -> None:
        rows = self.selected_rows()
        if len(rows) != 1:
            return
        folder = os.path.dirname(rows[0].source_path)
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    @Slot()
    def copy_object_url(self) -> None:
        rows = self.selected_rows()
        if len(rows) != 1 or self.engine is None:
            return
        url = self.engine.ask(rq.ObjectUrl(rows[0]))
        QGuiApplication.clipboard().setText(url)
        self.statusBar().showMessage(self.tr("Copied: %1").replace("%1", url), 6000)

    def presign_expiry_choices(self) -> list[tuple[str, int]]:
        return [
            (self.tr("1 hour"), 3600),
            (self.tr("1 day"), 86_400),
            (self.tr("7 days (the longest OSS allows)"), 7 * 86_400),
        ]

    def ask_presign_expiry(self) -> int | None:
        """Ask how long the link should work (a seam tests replace)."""
        choices = self.presign_expiry_choices()
        labels = [label for label, _ in choices]
        current = next(
            (i for i, (_, s) in enumerate(choices) if s == self.settings.presign_expiry_seconds), 0
        )
        label, ok = QInputDialog.getItem(
            self,
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
        rows = self.selected_rows()
        if len(rows) != 1 or self.engine is None:
            return
        expires = self.ask_presign_expiry()
        if expires is None:
            return
        self.settings.presign_expiry_seconds = expires
        engine, row = self.engine, rows[0]
        call = BackgroundCall(lambda: engine.ask(rq.PresignedUrl(row, expires)), self)
        call.succeeded.connect(self._on_presigned)
        call.failed.connect(self._on_presign_failed)
        call.start()

    @Slot(object)
    def _on_presigned(self, url: object) -> None:
        QGuiApplication.clipboard().setText(str(url))
        self.statusBar().showMessage(self.tr("Pre-signed link copied to the clipboard"), 6000)

    @Slot(object)
    def _on_presign_failed(self, exc: object) -> None:
        message = getattr(exc, "message", None) or str(exc)
        QMessageBox.warning(
            self,
            self.tr("Pre-signed link"),
            self.tr("Could not make the link: %1").replace("%1", message),
        )

    def error_details_box(self, row: TransferRow) -> QMessageBox:
        box = QMessageBox(self)
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
        return DetailsDialog.for_row(self.engine, row, self)

    @Slot()
    def show_details(self) -> None:
        rows = self.selected_rows()
        if len(rows) == 1:
            self.details_dialog(rows[0]).exec()

    @Slot()
    def show_error_details(self) -> None:
        rows = self.selected_rows()
        if len(rows) != 1 or not rows[0].error:
            return
        self.error_details_box(rows[0]).exec()

    # ---- queue-wide actions ------------------------------------------------------------

    @Slot()
    def pause_all(self) -> None:
        ids = [r.id for r in self.model.rows() if r.state.can_pause]
        if ids and self.engine is not None:
            self.engine.send(rq.Pause(ids))

    @Slot()
    def resume_all(self) -> None:
        ids = [r.id for r in self.model.rows() if r.state.can_resume]
        if ids and self.engine is not None:
            self.engine.send(rq.Resume(ids))

    @Slot()
    def clear_finished(self) -> None:
        self.model.clear_finished()
        if self.engine is not None:
            self.engine.send(rq.ClearFinished())

    # ---- dialogs ------------------------------------------------------------------------

    @Slot()
    def open_settings(self) -> None:
        from ossdesk.ui.dialogs.settings import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.settings = dialog.result_settings()
            if self.engine is not None:
                self.engine.send(rq.ApplySettings(self.settings))
            self.settingsChanged.emit(self.settings)

    @Slot()
    def open_accounts(self) -> None:
        store = self.destination_bar._store()
        if store is None:
            QMessageBox.warning(
                self, self.tr("Accounts"), self.tr("Accounts are not available in this build.")
            )
            return
        from ossdesk.ui.dialogs.accounts import AccountsDialog

        dialog = AccountsDialog(store, self)
        dialog.profileSaved.connect(self._on_profile_saved)
        dialog.exec()
        self.destination_bar.refresh_profiles()

    @Slot(str)
    def _on_profile_saved(self, name: str) -> None:
        """A saved secret applies at once to the account's queued and paused files, to
        files added next, and to failed files when they are retried."""
        if self.engine is not None:
            self.engine.send(rq.CredentialsChanged(name))

    # ---- status -------------------------------------------------------------------------

    @Slot(object)
    def _on_totals(self, totals: object) -> None:
        if not isinstance(totals, Totals):
            return
        self.view.setColumnHidden(Column.ACCOUNT, totals.accounts < 2)
        parts = [self.tr("%n file(s)", "", totals.files)]
        if totals.uploading > self.settings.files_at_once:
            # Files small enough for one request start beside the "Files at once" ones.
            parts.append(
                self.tr("%n uploading (small files beside the %1 at once)", "", totals.uploading)
                .replace("%1", str(self.settings.files_at_once))
            )
        elif totals.uploading:
            parts.append(self.tr("%n uploading", "", totals.uploading))
        if totals.paused:
            parts.append(self.tr("%n paused", "", totals.paused))
        if totals.failed:
            parts.append(self.tr("%n failed", "", totals.failed))
        if totals.sent_bytes > totals.confirmed_bytes:
            parts.append(
                self.tr("%1 of %2 sent, %3 confirmed by OSS")
                .replace("%1", format_size(totals.sent_bytes))
                .replace("%2", format_size(totals.total_bytes))
                .replace("%3", format_size(totals.confirmed_bytes))
            )
        else:
            parts.append(
                self.tr("%1 of %2 uploaded")
                .replace("%1", format_size(totals.confirmed_bytes))
                .replace("%2", format_size(totals.total_bytes))
            )
        if totals.speed > 0:
            parts.append(format_speed(totals.speed))
        if totals.eta is not None:
            parts.append(self.tr("%1 left").replace("%1", format_duration(totals.eta)))
        self.totals_label.setText("  ·  ".join(parts))
        self._update_actions()

    @Slot(object)
    def _on_upload_failed(self, row: object) -> None:
        if isinstance(row, TransferRow):
            message = self.tr("%1 failed: %2").replace("%1", row.name).replace("%2", row.error)
            self.statusBar().showMessage(message, 10_000)
            self.tray_status.file_failed(row.name, row.error)

    @Slot(str)
    def _on_engine_failed(self, message: str) -> None:
        """Without its upload list the engine cannot run: say so plainly, stop adding."""
        self.engine_error = message
        for action in (self.act_add_files, self.act_add_folder):
            action.setEnabled(False)
        self.setAcceptDrops(False)
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle(self.tr("Uploads cannot start"))
        box.setText(self.tr("ossdesk cannot open its list of uploads."))
        box.setInformativeText(message)
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        box.setObjectName("engineErrorBox")
        box.open()
        self.statusBar().showMessage(message)

    @Slot(object, str)
    def _on_notice(self, upload: object, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    # ---- closing ------------------------------------------------------------------------

    def ask_quit(self, active: int) -> str:
        """``"pause"``, ``"tray"`` or ``"stay"`` (a seam tests replace)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Uploads in progress"))
        box.setText(self.tr("%n upload(s) are still running.", "", active))
        box.setInformativeText(
            self.tr("Paused uploads continue where they stopped the next time you open ossdesk.")
        )
        pause = box.addButton(self.tr("Pause and quit"), QMessageBox.ButtonRole.AcceptRole)
        tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            tray = box.addButton(
                self.tr("Keep uploading in the tray"), QMessageBox.ButtonRole.ActionRole
            )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(pause)
        box.exec()
        clicked = box.clickedButton()
        if clicked is pause:
            return "pause"
        if tray is not None and clicked is tray:
            return "tray"
        return "stay"

    def closeEvent(self, event: QCloseEvent) -> None:
        totals = self.model.totals()
        moving = totals.active + totals.waiting
        if not moving and not self._quitting and self.watched.manager.watching() \
                and self.tray_menu.to_tray():  # the tray keeps watching
            event.ignore()
            return
        if moving and not self._quitting:
            choice = self.ask_quit(moving)
            if choice == "stay":
                event.ignore()
                return
            if choice == "tray" and self.tray_menu.to_tray():
                event.ignore()
                return
        self._quitting = True
        self.shut_down()
        event.accept()

    @Slot()
    def shut_down(self) -> None:
        """Stop the watches, the walks and the engine (pausing what moves) and keep the
        settings; once. Also run when the application quits without closing this window
        (the session ends while it sits in the tray)."""
        if self._shut_down:
            return
        self._shut_down = self._quitting = True
        self.watched.manager.shutdown()
        for job in list(self.walk_jobs):
            job.cancel()
        self.bridge.stop()
        if self.engine is not None:
            self.engine.shutdown(pause=True)
        self.settings.last_folder = self.destination_bar.folder_edit.text().strip()
        self.settingsChanged.emit(self.settings)
        if self.tray_menu.tray is not None:
            self.tray_menu.tray.hide()

    @Slot()
    def quit_now(self) -> None:
        """Pause and quit without asking (the tray's Quit)."""
        self._quitting = True
        QTimer.singleShot(0, self._close_and_quit)

    @Slot()
    def _close_and_quit(self) -> None:
        if self.close():  # a hidden window's close does not end the application by itself
            QApplication.quit()

    @Slot()
    def _on_queue_idle(self) -> None:
        self.model.flush()  # the totals as the engine left them
        self.tray_status.queue_idle()
