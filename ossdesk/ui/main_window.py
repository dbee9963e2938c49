"""The main window: toolbar, the destination bar, the queue and its totals.

The window owns no upload logic, and each of its parts lives in a helper it owns (each
finds the window as its Qt parent): the :class:`DestinationBar` (account, bucket, folder
and the account list), the :class:`RowActions` (what can be done to the selected rows, the
context menu), the :class:`TrayMenu` (hiding into the tray and back) and the
:class:`DropFlow`. Dropped paths go to the drop flow (walked by a :class:`WalkJob` in a
worker thread, checked against the bucket, then handed to the :class:`EngineAdapter`); the
engine's events come back through the :class:`EventBridge` into the
:class:`TransferModel`. Profile lists, pre-signed links and folder listings are fetched
with :class:`BackgroundCall`, so the GUI thread does no file or network I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
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
from ossdesk.ui.drop_flow import DropFlow
from ossdesk.ui.formatting import format_duration, format_size, format_speed
from ossdesk.ui.icons import symbol_icon
from ossdesk.ui.progress_delegate import ProgressDelegate
from ossdesk.ui.queue_filter import FilterBar, QueueFilter
from ossdesk.ui.queue_view import FirstRunPanel, QueueView, local_paths
from ossdesk.ui.row_actions import RowActions
from ossdesk.ui.settings import Settings
from ossdesk.ui.status_bar import StatusBar
from ossdesk.ui.transfer_model import (
    Column,
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
        # Its counts read states, buckets and paths only: the rows as kept, not copied whole.
        self.watched = WatchedFoldersUi(self, engine, self.model.waiting_under)
        self._connect()
        self.retranslate()
        self.row_actions.update_actions()
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
        self.row_actions = RowActions(self)

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
        for action in self.row_actions.actions:
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
        self.model.rowsDragged.connect(self.row_actions._on_rows_dragged)
        self.model.rowsInserted.connect(self.row_actions._on_rows_changed)
        self.model.rowsRemoved.connect(self.row_actions._on_rows_changed)
        self.model.dataChanged.connect(self.row_actions._on_data_changed)
        self.view.selectionModel().selectionChanged.connect(self.row_actions._on_selection_changed)
        self.view.customContextMenuRequested.connect(self.row_actions._show_context_menu)
        self.view.doubleClicked.connect(self.row_actions._on_double_clicked)
        self.first_run.addAccountRequested.connect(self.open_accounts)
        self.first_run.sandboxRequested.connect(self.sandboxRequested)
        self.bridge.uploadFailed.connect(self._on_upload_failed)
        self.bridge.noticeReceived.connect(self._on_notice)
        self.bridge.queueIdle.connect(self._on_queue_idle)
        self.bridge.engineFailed.connect(self._on_engine_failed)
        self.bridge.dropQueued.connect(self.drops.on_drop_queued)

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
            (self.row_actions.act_pause, "pause"),
            (self.act_resume_all, "play"),
            (self.row_actions.act_resume, "play"),
            (self.row_actions.act_retry, "reload"),
            (self.row_actions.act_cancel, "cancel"),
            (self.row_actions.act_error_details, "warning"),
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
        ]
        for action, text, tip in texts:
            action.setText(text)
            action.setToolTip(tip)
            action.setStatusTip(tip)
        self.row_actions.retranslate()
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

    # ---- queue-wide actions ------------------------------------------------------------

    @Slot()
    def pause_all(self) -> None:
        ids = self.model.ids_where(lambda state: state.can_pause)
        if ids and self.engine is not None:
            self.engine.send(rq.Pause(ids))

    @Slot()
    def resume_all(self) -> None:
        ids = self.model.ids_where(lambda state: state.can_resume)
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
        self.row_actions.update_actions()

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
