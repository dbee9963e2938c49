"""Watched folders in the window: the list (kept in the upload list's database), each
folder's watch, and the panel that shows them.

Each watched folder that is not paused has a thread running :class:`FolderWatch` (the same
rules as ``ossdesk watch``: a file is queued once it has stopped changing; a vanished
folder queues and removes nothing) fed by watchdog's notifications. Its results come to
the GUI thread as a signal; files that the upload list shows were already uploaded in this
very version are left alone, the others are queued through the engine like any dropped
file (``existing=skip``: an identical object already in the bucket is not sent again), so
they appear in the queue like any other. The window never deletes objects for a watched
folder.
"""

from __future__ import annotations

import enum
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QMainWindow,
    QPushButton,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ossdesk.core.store import SKIP, Store, StoreError, WatchedFolder
from ossdesk.core.sync import KeyFilter
from ossdesk.core.watch import DEFAULT_RESCAN, DEFAULT_SETTLE, FolderWatch, Step, observe
from ossdesk.ui import engine_types as rq
from ossdesk.ui.bridge import EngineAdapter
from ossdesk.ui.dialogs.object_options import with_upload_options
from ossdesk.ui.engine_text import engine_text
from ossdesk.ui.engine_types import Destination, SourceFile

__all__ = ["WatchManager", "WatchState", "WatchedFolderModel", "WatchedFoldersPanel",
           "WatchedFoldersUi"]

_Index = QModelIndex | QPersistentModelIndex


class WatchState(enum.Enum):
    WATCHING = "watching"
    UPLOADING = "uploading"
    PAUSED = "paused"
    MISSING = "missing"
    ERROR = "error"


@dataclass
class _Entry:
    spec: WatchedFolder
    state: WatchState = WatchState.WATCHING
    uploading: int = 0
    error: str = ""
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    #: Files that were ready while an unfinished row of their key was in the queue.
    waiting: dict[str, SourceFile] = field(default_factory=dict)


class _Runner(QObject):
    """Carries a watch thread's results to the GUI thread (a queued signal)."""

    stepped = Signal(int, object)  # watched folder id, Step
    failed = Signal(int, str)


class WatchManager(QObject):
    """The watched folders and their watches."""

    changed = Signal()  # the list or a state changed (the model refreshes)
    queued = Signal(int)  # files queued (tests wait on it)

    def __init__(self, engine: EngineAdapter | None, waiting: Callable[[str, str], int], *,
                 open_store: Callable[[], Store] | None = None,
                 settle: float = DEFAULT_SETTLE, rescan: float = DEFAULT_RESCAN,
                 poll: float = 0.25, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        #: (bucket, folder path with its separator) -> its files in the queue waiting or
        #: being sent (the queue model's :meth:`TransferModel.waiting_under`).
        self._waiting = waiting
        self._open_store = open_store or (lambda: Store.open(owner=False))
        self.settle = settle
        self.rescan = rescan
        self.poll = poll
        self.entries: list[_Entry] = []
        self._store: Store | None = None
        self._runner = _Runner(self)
        self._runner.stepped.connect(self._on_step)
        self._runner.failed.connect(self._on_failed)
        self._load_tries = 0
        self._retry = QTimer(self)  # a child: it goes with the manager
        self._retry.setSingleShot(True)
        self._retry.setInterval(500)
        self._retry.timeout.connect(self.load)
        self._counts = QTimer(self)
        self._counts.setInterval(1000)
        self._counts.timeout.connect(self.refresh_counts)
        self._counts.start()

    # -- the list --------------------------------------------------------------------------

    def store(self) -> Store:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def load(self) -> None:
        """Read the list and start watching (retried for a while when the upload list is
        not there yet: the engine creates or updates it as it starts)."""
        try:
            folders = self.store().watched_folders()
        except StoreError:
            self._store = None
            self._load_tries += 1
            if self._load_tries < 60:
                self._retry.start()
            return
        known = {e.spec.id for e in self.entries}  # added while the list was being read
        for spec in folders:
            if spec.id not in known:
                self._start(_Entry(spec, WatchState.PAUSED if spec.paused
                                   else WatchState.WATCHING))
        self.changed.emit()

    def add(self, spec: WatchedFolder) -> WatchedFolder:
        saved = self.store().add_watched_folder(spec)
        self._start(_Entry(saved))
        self.changed.emit()
        return saved

    def entry(self, watched_id: int) -> _Entry | None:
        return next((e for e in self.entries if e.spec.id == watched_id), None)

    def set_paused(self, watched_id: int, paused: bool) -> None:
        entry = self.entry(watched_id)
        if entry is None or entry.spec.id is None:
            return
        self.store().set_watched_paused(entry.spec.id, paused)
        self._stop(entry)
        entry.spec = replace(entry.spec, paused=paused)
        entry.state = WatchState.PAUSED if paused else WatchState.WATCHING
        entry.error = ""
        if not paused:
            self._run(entry)
        self.changed.emit()

    def remove(self, watched_id: int) -> None:
        entry = self.entry(watched_id)
        if entry is None or entry.spec.id is None:
            return
        self._stop(entry)
        self.store().remove_watched_folder(entry.spec.id)
        self.entries.remove(entry)
        self.changed.emit()

    def watching(self) -> bool:
        """Some folder is being watched (not paused)."""
        return any(e.state is not WatchState.PAUSED for e in self.entries)

    def shutdown(self) -> None:
        self._counts.stop()
        self._retry.stop()
        for entry in self.entries:
            self._stop(entry)
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the watches -----------------------------------------------------------------------

    def _start(self, entry: _Entry) -> None:
        self.entries.append(entry)
        if not entry.spec.paused:
            self._run(entry)

    def _run(self, entry: _Entry) -> None:
        spec = entry.spec
        assert spec.id is not None
        entry.stop = threading.Event()
        watch = FolderWatch(spec.folder, spec.prefix, KeyFilter(spec.includes, spec.excludes),
                            settle=self.settle, rescan=self.rescan, clock=time.monotonic)
        watch.rescan_now()  # the first look: whatever is not uploaded yet goes now
        thread = threading.Thread(target=self._loop, args=(spec.id, watch, entry.stop),
                                  name=f"ossdesk-watch-{spec.id}", daemon=True)
        entry.thread = thread
        thread.start()

    def _stop(self, entry: _Entry) -> None:
        entry.stop.set()
        if entry.thread is not None:
            entry.thread.join(5)
            entry.thread = None

    def _loop(self, watched_id: int, watch: FolderWatch, stop: threading.Event) -> None:
        observer: Any = None

        def start_observer() -> None:
            nonlocal observer
            try:
                observer = observe(watch)
            except OSError:
                observer = None  # the rescans still find every change

        def stop_observer() -> None:
            nonlocal observer
            if observer is not None:
                observer.stop()
                observer.join(5)
                observer = None

        try:
            if not watch.missing:
                start_observer()
            while not stop.is_set():
                step = watch.step()
                if step.missing:
                    stop_observer()
                if step.back:
                    start_observer()
                if step.missing or step.back or step.ready or step.problems or step.rescanned:
                    self._runner.stepped.emit(watched_id, step)
                stop.wait(self.poll)
        except Exception as exc:  # noqa: BLE001 - shown on the folder's row, never fatal
            self._runner.failed.emit(watched_id, str(exc))
        finally:
            stop_observer()

    @Slot(int, object)
    def _on_step(self, watched_id: int, step: object) -> None:
        entry = self.entry(watched_id)
        if entry is None or not isinstance(step, Step) or entry.state is WatchState.PAUSED:
            return
        before = entry.state
        if step.missing or (entry.state is WatchState.MISSING and not step.back):
            entry.state = WatchState.MISSING
        elif entry.state in (WatchState.MISSING, WatchState.ERROR) and \
                (step.back or step.rescanned):
            entry.state = WatchState.WATCHING
        files = [SourceFile(str(f.path), f.key, f.size, f.mtime_ns) for f in step.ready]
        self._queue(entry, [*entry.waiting.values(), *files])
        if entry.state is not before:
            self.changed.emit()

    @Slot(int, str)
    def _on_failed(self, watched_id: int, message: str) -> None:
        entry = self.entry(watched_id)
        if entry is not None:
            entry.state = WatchState.ERROR
            entry.error = message
            self.changed.emit()

    def _queue(self, entry: _Entry, files: list[SourceFile]) -> None:
        entry.waiting.clear()
        if not files or self.engine is None:
            return
        spec = entry.spec
        try:
            store = self.store()
            keys = [f.key for f in files]
            done = store.last_done(spec.endpoint, spec.bucket, keys)
            busy = store.unfinished_sources(spec.endpoint, spec.bucket, keys)
        except StoreError as exc:
            entry.state, entry.error = WatchState.ERROR, str(exc)
            self.changed.emit()
            return
        todo: list[SourceFile] = []
        for f in files:
            row = done.get(f.key)
            if row is not None and str(row.source) == f.path and row.size == f.size \
                    and row.mtime_ns == f.mtime_ns:
                continue  # this very version is uploaded already
            if f.key in busy:
                entry.waiting[f.key] = f  # after the unfinished upload of that key
                continue
            todo.append(f)
        if not todo:
            return
        # The options saved for the account and bucket (Options…), as a drop gets them.
        destination = with_upload_options(Destination(
            profile=spec.credentials, endpoint=spec.endpoint, bucket=spec.bucket, prefix="",
            region=spec.region, signature=spec.signature))
        self.engine.send(rq.Enqueue(todo, destination, existing=SKIP))
        self.queued.emit(len(todo))

    @Slot()
    def refresh_counts(self) -> None:
        """Each folder's "uploading N": its files in the queue waiting or being sent."""
        if not self.entries:
            return
        changed = False
        for entry in self.entries:
            folder = str(entry.spec.folder)
            prefix = folder.rstrip("/\\") + ("\\" if "\\" in folder else "/")
            count = self._waiting(entry.spec.bucket, prefix)
            if count != entry.uploading:
                entry.uploading = count
                changed = True
            state = entry.state
            if state is WatchState.WATCHING and count:
                entry.state = WatchState.UPLOADING
            elif state is WatchState.UPLOADING and not count:
                entry.state = WatchState.WATCHING
            changed = changed or entry.state is not state
        if changed:
            self.changed.emit()


class WatchedFolderModel(QAbstractTableModel):
    """The watched folders: folder, destination, state."""

    FOLDER, DESTINATION, STATE = range(3)

    def __init__(self, manager: WatchManager, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self._shown = len(manager.entries)
        manager.changed.connect(self.refresh)

    @Slot()
    def refresh(self) -> None:
        if self._shown != len(self.manager.entries):
            self.beginResetModel()
            self._shown = len(self.manager.entries)
            self.endResetModel()
        elif self._shown:
            self.dataChanged.emit(self.index(0, 0), self.index(self._shown - 1, 2))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.manager.entries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 3

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        return (self.tr("Folder"), self.tr("Uploads to"), self.tr("State"))[section]

    def state_text(self, entry: _Entry) -> str:
        state = entry.state
        if state is WatchState.UPLOADING:
            return self.tr("Uploading %n file(s)", "", entry.uploading)
        if state is WatchState.PAUSED:
            return self.tr("Paused")
        if state is WatchState.MISSING:
            return self.tr("Folder missing (unplugged or moved?): waiting for it")
        if state is WatchState.ERROR:
            return self.tr("Error: %1").replace("%1", engine_text(entry.error))
        return self.tr("Watching")

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.manager.entries):
            return None
        entry = self.manager.entries[index.row()]
        spec = entry.spec
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == self.FOLDER:
                return str(spec.folder)
            if column == self.DESTINATION:
                return f"oss://{spec.bucket}/{spec.prefix}  ({spec.credentials})"
            return self.state_text(entry)
        if role == Qt.ItemDataRole.UserRole:
            return spec.id
        return None


class WatchedFoldersPanel(QWidget):
    """The list of watched folders with Pause, Resume and Remove."""

    addRequested = Signal()
    languageChanged = Signal()

    def __init__(self, manager: WatchManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("watchedFolders")
        self.manager = manager
        self.model = WatchedFolderModel(manager, self)
        self.view = QTableView(self)
        self.view.setObjectName("watchedFoldersView")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().hide()
        self.view.setShowGrid(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(WatchedFolderModel.FOLDER, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(WatchedFolderModel.DESTINATION,
                                    QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(WatchedFolderModel.STATE,
                                    QHeaderView.ResizeMode.ResizeToContents)
        self.add_button = QPushButton(self)
        self.add_button.setObjectName("watchAdd")
        self.pause_button = QPushButton(self)
        self.pause_button.setObjectName("watchPause")
        self.resume_button = QPushButton(self)
        self.resume_button.setObjectName("watchResume")
        self.remove_button = QPushButton(self)
        self.remove_button.setObjectName("watchRemove")
        self.add_button.clicked.connect(self.addRequested)
        self.pause_button.clicked.connect(self.pause_selected)
        self.resume_button.clicked.connect(self.resume_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.pause_button, self.resume_button,
                       self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.view)
        layout.addLayout(buttons)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        self.retranslate()
        self._update_buttons()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
            self.languageChanged.emit()
        super().changeEvent(event)

    def retranslate(self) -> None:
        self.add_button.setText(self.tr("Watch a folder…"))
        self.pause_button.setText(self.tr("Pause watching"))
        self.resume_button.setText(self.tr("Resume watching"))
        self.remove_button.setText(self.tr("Stop watching"))
        self.remove_button.setToolTip(self.tr(
            "Removes the folder from this list. Nothing is deleted, here or in the bucket."))

    def selected_id(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        value = self.model.data(rows[0], Qt.ItemDataRole.UserRole)
        return value if isinstance(value, int) else None

    def select_row(self, row: int) -> None:
        self.view.selectRow(row)

    @Slot()
    def _update_buttons(self) -> None:
        watched_id = self.selected_id()
        entry = self.manager.entry(watched_id) if watched_id is not None else None
        paused = entry is not None and entry.state is WatchState.PAUSED
        self.pause_button.setEnabled(entry is not None and not paused)
        self.resume_button.setEnabled(paused)
        self.remove_button.setEnabled(entry is not None)

    @Slot()
    def pause_selected(self) -> None:
        if (watched_id := self.selected_id()) is not None:
            self.manager.set_paused(watched_id, True)

    @Slot()
    def resume_selected(self) -> None:
        if (watched_id := self.selected_id()) is not None:
            self.manager.set_paused(watched_id, False)

    @Slot()
    def remove_selected(self) -> None:
        if (watched_id := self.selected_id()) is not None:
            self.manager.remove(watched_id)



class WatchedFoldersUi(QObject):
    """What the main window gets: the "Watch a folder…" action (in its toolbar), the panel
    (a dock under the queue, shown while any folder is watched) and the manager."""

    def __init__(self, window: QMainWindow, engine: EngineAdapter | None,
                 waiting: Callable[[str, str], int], **manager_options: Any) -> None:
        super().__init__(window)
        # Weak: the window owns this object, and a cycle would keep a closed window alive.
        self._window = weakref.ref(window)
        self.manager = WatchManager(engine, waiting, parent=self, **manager_options)
        self.panel = WatchedFoldersPanel(self.manager)
        self.dock = QDockWidget(window)
        self.dock.setObjectName("watchedFoldersDock")
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.action = QAction(window)
        self.action.setObjectName("watchFolder")
        self.action.triggered.connect(self.add_dialog)
        toolbar = window.findChild(QToolBar, "mainToolBar")
        if toolbar is not None:
            actions = toolbar.actions()
            add_folder = next((a for a in actions if a.objectName() == "addFolder"), None)
            after = actions.index(add_folder) + 1 if add_folder in actions else len(actions)
            if after < len(actions):
                toolbar.insertAction(actions[after], self.action)
            else:
                toolbar.addAction(self.action)
        self.panel.addRequested.connect(self.add_dialog)
        self.panel.languageChanged.connect(self.retranslate)
        self.manager.changed.connect(self._show_or_hide)
        self.retranslate()

    @Slot()
    def retranslate(self) -> None:
        self.action.setText(self.tr("Watch a folder…"))
        self.action.setToolTip(self.tr(
            "Upload each file that appears or changes in a folder, once it stops changing"))
        self.dock.setWindowTitle(self.tr("Watched folders"))

    @Slot()
    def _show_or_hide(self) -> None:
        self.dock.setVisible(bool(self.manager.entries))

    def dialog(self) -> Any:
        from ossdesk.ui.dialogs.watch_folder import WatchFolderDialog

        window = self._window()
        bar = getattr(window, "destination_bar", None)
        profiles = list(getattr(bar, "profiles", []))
        current = getattr(bar, "current_profile", lambda: None)()
        return WatchFolderDialog(profiles, current=current.name if current else None,
                                 parent=window)

    @Slot()
    def add_dialog(self) -> None:
        dialog = self.dialog()
        if dialog.exec():
            spec = dialog.watched_folder()
            if isinstance(spec, WatchedFolder):
                self.add(spec)
        dialog.deleteLater()

    def add(self, spec: WatchedFolder) -> WatchedFolder | None:
        try:
            saved = self.manager.add(spec)
        except StoreError as exc:
            window = self._window()
            if window is not None:
                window.statusBar().showMessage(
                    self.tr("Could not save the watched folder: %1").replace("%1", str(exc)),
                    10_000)
            return None
        self.panel.select_row(len(self.manager.entries) - 1)
        return saved
