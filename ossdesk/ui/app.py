"""The window's entry point: ``ossdesk`` (no subcommand) and ``ossdesk --sandbox``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ossdesk import APP_NAME, __version__
from ossdesk.ui.i18n import Translations, choose_language, resources_dir
from ossdesk.ui.qthreads import BackgroundCall
from ossdesk.ui.settings import Settings, load_settings, save_settings
from ossdesk.ui.single_instance import (
    HANDOFF_TIMEOUT_MS,
    Answer,
    FileOpenFilter,
    InstanceLock,
    InstanceServer,
    Request,
    hand_over,
    server_name,
)

_log = logging.getLogger(__name__)

SANDBOX_PROFILE = "sandbox"


@dataclass(frozen=True)
class SessionProfile:
    """A profile that exists only while this window runs (the local sandbox's)."""

    name: str
    endpoint: str
    bucket: str
    region: str | None = None
    prefix: str = ""
    signature: str = "v4"
    access_key_id: str = ""


def app_icon() -> QIcon:
    icon = QIcon()
    folder = resources_dir() / "icons"
    for png in sorted(folder.glob("ossdesk-*.png")):
        icon.addFile(str(png))
    if icon.isNull():
        icon.addFile(str(folder / "ossdesk.svg"))
    return icon


class Sandbox:
    """An in-process sandbox server and the profile that points at it."""

    def __init__(self) -> None:
        self.server: Any = None
        self.profile: SessionProfile | None = None
        # The kept port, when another program held it and the sandbox had to take another.
        self.port_taken: int | None = None
        # How many queued rows were pointed at the sandbox's new port (None: not tried).
        self.rows_moved: int | None = None

    def start(self, settings: Settings, *, move_rows: bool = False) -> SessionProfile:
        """BLOCKING (binds a port, creates folders; with ``move_rows``, opens the upload
        list, so only before the engine runs).

        The sandbox keeps one port (``settings.sandbox_port``, chosen at its first start:
        9000 when free), so rows queued against it resume after a restart. When another
        program holds that port, the sandbox takes a free one and keeps that from now on;
        ``move_rows`` then points the rows queued to the sandbox (their credentials are the
        sandbox's own) at the new port."""
        from ossdesk.config import paths
        from ossdesk.sandbox.server import (
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_BUCKET,
            DEFAULT_PORT,
            DEFAULT_REGION,
            SandboxServer,
        )

        if self.profile is not None:
            return self.profile
        root = paths().ensure().sandbox_root
        kept = settings.sandbox_port
        try:
            server = SandboxServer(root, port=kept or DEFAULT_PORT).start()
        except OSError:
            server = SandboxServer(root, port=0).start()
        self.port_taken = kept if kept and server.port != kept else None
        settings.sandbox_port = server.port
        if move_rows:
            self.rows_moved = _move_sandbox_rows(server.endpoint)
        self.server = server
        self.profile = SessionProfile(
            name=SANDBOX_PROFILE,
            endpoint=server.endpoint,
            bucket=DEFAULT_BUCKET,
            region=DEFAULT_REGION,
            access_key_id=DEFAULT_ACCESS_KEY_ID,
        )
        return self.profile

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _move_sandbox_rows(endpoint: str) -> int | None:
    """Point the rows queued to the window's sandbox at ``endpoint``; None if the upload
    list could not be opened (another ossdesk holds it)."""
    from ossdesk.core.store import Store, StoreError

    try:
        store = Store.open()
    except StoreError as exc:
        _log.warning("could not point the sandbox's queued uploads at %s: %s", endpoint, exc)
        return None
    try:
        return store.move_endpoint(SANDBOX_PROFILE, endpoint)
    except StoreError as exc:
        _log.warning("could not point the sandbox's queued uploads at %s: %s", endpoint, exc)
        return None
    finally:
        store.close()


def bring_forward(window: QWidget) -> None:
    """Show the window in front as it was (out of the tray, no longer minimised; a maximised
    window stays maximised)."""
    if window.isMinimized():
        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()


def credentials_resolver() -> Callable[[str], Any]:
    """Profile name -> credentials; the sandbox profile uses the sandbox's own key pair."""
    from ossdesk.core.oss import Credentials
    from ossdesk.credentials import default_credentials

    def resolve(source: str) -> Any:
        if source == SANDBOX_PROFILE:
            from ossdesk.sandbox.server import (
                DEFAULT_ACCESS_KEY_ID,
                DEFAULT_ACCESS_KEY_SECRET,
            )

            return Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
        return default_credentials(source)

    return resolve


def make_engine(settings: Settings, resolver: Callable[[str], Any]) -> Any:
    """The engine the window drives: in its own process (so the window's interpreter lock
    is the GUI's), or in-process with ``OSSDESK_ENGINE_IN_PROCESS=1`` (diagnosis)."""
    from ossdesk.ui.engine_process import ProcessEngineAdapter, in_process_requested
    from ossdesk.ui.qthreads import start_qthread

    if in_process_requested():
        from ossdesk.ui.engine_adapter import SchedulerAdapter

        _log.info("the upload engine runs in the window's process, in QThreads")
        return SchedulerAdapter(settings, credentials=resolver, start_thread=start_qthread)
    return ProcessEngineAdapter(settings, credentials=resolver, start_thread=start_qthread)


class Controller(QObject):
    """Glue between the window, settings, translations and the sandbox."""

    def __init__(
        self, app: QApplication, translations: Translations, sandbox: Sandbox
    ) -> None:
        super().__init__(app)
        self.app = app
        self.translations = translations
        self.sandbox = sandbox
        self.window: Any = None
        self.paths: list[str] = []

    @Slot(object)
    def save(self, settings: object) -> None:
        if not isinstance(settings, Settings):
            return
        if choose_language(settings.language) != self.translations.language:
            self.translations.install(self.app, choose_language(settings.language))
        call = BackgroundCall(lambda: save_settings(settings), self)
        call.failed.connect(self._save_failed)
        call.start()

    @Slot(object)
    def _save_failed(self, exc: object) -> None:
        _log.warning("could not save the settings: %s", exc)

    @Slot()
    def start_sandbox(self) -> None:
        if self.window is None:
            return
        settings = self.window.settings
        call = BackgroundCall(lambda: self.sandbox.start(settings), self)
        call.succeeded.connect(self._sandbox_ready)
        call.failed.connect(self._sandbox_failed)
        call.start()

    @Slot(object)
    def _sandbox_ready(self, profile: object) -> None:
        if self.window is not None:
            self.window.destination_bar.add_extra_profile(profile)
            self.save(self.window.settings)  # the sandbox's port, kept from now on
            self.tell_sandbox_moved()

    def tell_sandbox_moved(self) -> None:
        """Say so in the window when the sandbox could not have its usual port."""
        sandbox = self.sandbox
        if self.window is None or sandbox.port_taken is None or sandbox.server is None:
            return
        text = self.tr(
            "Another program is using port %1, where the local sandbox usually runs. The "
            "sandbox now runs on port %2 and keeps that port from now on."
        ).replace("%1", str(sandbox.port_taken)).replace("%2", str(sandbox.server.port))
        if sandbox.rows_moved:
            text += " " + self.tr("Uploads queued to the sandbox continue there.")
        elif sandbox.rows_moved is None:
            text += " " + self.tr(
                "Uploads queued to the sandbox before are moved to the new port the next "
                "time ossdesk is started with --sandbox."
            )
        box = QMessageBox(QMessageBox.Icon.Information, self.tr("Sandbox"), text,
                          QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName("sandboxMovedNotice")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()

    @Slot(object)
    def _sandbox_failed(self, exc: object) -> None:
        QMessageBox.warning(
            self.window,
            self.tr("Sandbox"),
            self.tr("The local sandbox could not start: %1").replace("%1", str(exc)),
        )

    def take_request(self, request: Request) -> Answer:
        """Paths handed over by a second ``ossdesk`` start (or opened with ossdesk on
        macOS): bring the window forward and add them to the queue."""
        window = self.window
        if window is None:
            return Answer(False, "the window is still starting")
        bring_forward(window)
        if window.engine_error:
            return Answer(False, window.engine_error)
        if not request.paths and not request.sandbox:
            return Answer(True)
        destination = window.destination_bar.destination()
        wants_sandbox = request.sandbox and (
            destination is None or destination.profile != SANDBOX_PROFILE)
        if destination is not None and not self.paths and not wants_sandbox:
            window.add_paths(request.paths)
            return Answer(True)
        self.paths.extend(request.paths)
        if wants_sandbox:
            bar = window.destination_bar
            sandbox = next((p for p in bar.extra_profiles if p.name == SANDBOX_PROFILE), None)
            if sandbox is not None:
                bar.add_extra_profile(sandbox)  # selects it; the paths follow
            else:
                self.start_sandbox()
            return Answer(True)
        if window.destination_bar.profiles_loaded and not window.destination_bar.profiles:
            return Answer(True, "the window has no account yet: they are added to the queue "
                                "once one is added")
        return Answer(True)

    def install_file_open(self, app: QApplication) -> FileOpenFilter:
        """Take macOS's "open with ossdesk" events (files dropped on the Dock icon, Finder's
        Open With) like a second start's paths."""
        handler = FileOpenFilter(self._opened, self)
        app.installEventFilter(handler)
        return handler

    def _opened(self, paths: list[str]) -> None:
        answer = self.take_request(Request(paths=paths, sandbox=False))
        if not answer.queued and self.window is not None:
            self.window.statusBar().showMessage(answer.text, 10_000)

    @Slot()
    def add_initial_paths(self) -> None:
        if self.window is None or not self.paths:
            return
        if self.window.destination_bar.destination() is not None:
            paths, self.paths = self.paths, []
            self.window.add_paths(paths)


def _hand_over(name: str, data_dir: Path, sandbox: bool, paths: list[str]) -> int:
    """Another window runs for this data folder: give it the paths; the exit code."""
    handoff = hand_over(name, paths, sandbox=sandbox)
    if handoff.outcome == "queued":
        if paths:
            note = f" ({handoff.text})" if handoff.text else ""
            one = len(paths) == 1
            count = f"{len(paths)} item{'' if one else 's'}"
            print(f"ossdesk: {count} handed to the ossdesk window already open; it adds "
                  f"{'it' if one else 'them'} to its queue{note}", flush=True)
        else:
            print("ossdesk: an ossdesk window is already open for this data folder; it was "
                  "brought forward", flush=True)
        return 0
    if handoff.outcome == "refused":
        print(f"ossdesk: the ossdesk window already open did not take the files: "
              f"{handoff.text}", file=sys.stderr)
        return 1
    what = "nothing was added" if paths else "it was not brought forward"
    print(f"ossdesk: an ossdesk window is already open for this data folder ({data_dir}) but "
          f"did not answer within {HANDOFF_TIMEOUT_MS // 1000} s ({handoff.text}); {what}. "
          "If it is stuck, end that ossdesk process and try again.", file=sys.stderr)
    return 1


def run(argv: list[str], *, sandbox: bool = False, paths: list[str] | None = None) -> int:
    """Open the window (or hand ``paths`` to the one already open for this data folder);
    returns the process exit code."""
    from ossdesk.config import paths as ossdesk_paths

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv or [APP_NAME])
    data_dir = ossdesk_paths().ensure().data_dir
    lock = InstanceLock(data_dir)
    name = server_name(data_dir)
    if not lock.acquire():
        return _hand_over(name, data_dir, sandbox, [os.path.abspath(p) for p in paths or []])
    try:
        return _run_window(app, name, sandbox=sandbox, paths=paths)
    finally:
        lock.release()


def _run_window(app: QApplication, name: str, *, sandbox: bool,
                paths: list[str] | None) -> int:
    from ossdesk.ui.main_window import MainWindow

    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName("ossdesk")
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(True)

    settings = load_settings()
    translations = Translations()
    translations.install(app, choose_language(settings.language))

    session = Sandbox()
    extra = []
    if sandbox:
        try:
            # Before the engine runs: rows queued to the sandbox follow it if it moved.
            extra.append(session.start(settings, move_rows=True))
        except OSError as exc:
            print(f"ossdesk: the sandbox could not start: {exc}", file=sys.stderr)
            return 1
        settings.last_profile = SANDBOX_PROFILE
        try:
            save_settings(settings)  # the sandbox's port, kept from now on
        except OSError as exc:
            _log.warning("could not save the settings: %s", exc)

    controller = Controller(app, translations, session)
    resolver = credentials_resolver()
    engine = make_engine(settings, resolver)
    window = MainWindow(engine, settings=settings, extra_profiles=extra, credentials=resolver)
    controller.window = window
    controller.paths = list(paths or [])
    window.settingsChanged.connect(controller.save)
    window.sandboxRequested.connect(controller.start_sandbox)
    window.destination_bar.profilesChanged.connect(controller.add_initial_paths)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
    window.show()
    controller.tell_sandbox_moved()
    instance = InstanceServer(name, controller.take_request, controller)
    if not instance.listen():
        _log.warning("a second ossdesk start cannot hand its files to this window: %s",
                     instance.server.errorString())
    if sys.platform == "darwin":
        controller.install_file_open(app)
    code = app.exec()
    # The session ending while the window sits in the tray quits without closing it: the
    # watches and the engine are stopped here then (a closed window has done it already).
    window.shut_down()
    instance.close()
    try:
        save_settings(window.settings)
    except OSError as exc:
        _log.warning("could not save the settings: %s", exc)
    if not engine.wait_closed(30):
        _log.warning("the engine did not stop in time")
    session.stop()
    return code
