"""The tray icon's words: the queue's overall progress in its tooltip, and a notification
when the queue stops (finished, paused or failed) or a file fails.

Every sentence says only what the totals show: "uploaded and verified" counts rows that
reached Done (each verified against OSS's CRC-64, or the MD5 of each part where the server
gives no CRC-64); a paused upload is said to be paused, never finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from ossdesk.ui.formatting import format_duration, percent
from ossdesk.ui.transfer_model import Totals

if TYPE_CHECKING:
    from ossdesk.ui.main_window import MainWindow

# Failures that arrive within this many milliseconds make one notification.
FAILURE_BATCH_MS = 1000


class TrayStatus(QObject):
    """Owns the tray icon's tooltip and notifications for ``window``."""

    # (title, text, warning) of each notification (also when no tray can show it).
    notified = Signal(str, str, bool)

    def __init__(self, window: QWidget, icon: QIcon) -> None:
        super().__init__(window)  # the window is found as the parent: no reference cycle
        self.icon = QSystemTrayIcon(icon, window)
        self.icon.setObjectName("trayIcon")
        self.totals = Totals()
        # Files Done when the current run of the queue began (None: the queue is idle).
        self._done_before: int | None = None
        # (failed, paused) when the queue's end was last told: a run that adds nothing
        # new (a watched folder's file, say) does not repeat the same lines.
        self._told: tuple[int, int] | None = None
        self._failures: list[tuple[str, str]] = []
        self._failure_timer = QTimer(self)
        self._failure_timer.setSingleShot(True)
        self._failure_timer.setInterval(FAILURE_BATCH_MS)
        self._failure_timer.timeout.connect(self._notify_failures)
        self.icon.setToolTip(self.tooltip(self.totals))

    # ---- the tooltip --------------------------------------------------------------------

    @Slot(object)
    def show_totals(self, totals: object) -> None:
        if not isinstance(totals, Totals):
            return
        self.totals = totals
        if (totals.active or totals.waiting) and self._done_before is None:
            self._done_before = totals.done
        if self._done_before is not None and totals.done < self._done_before:
            self._done_before = totals.done  # finished rows were cleared meanwhile
        self.icon.setToolTip(self.tooltip(totals))

    def tooltip(self, totals: Totals) -> str:
        return "ossdesk\n" + self.summary(totals)

    def summary(self, totals: Totals) -> str:
        """"3 of 12 files uploaded, 41 %, 2 min left" and the like."""
        moving = totals.active + totals.waiting
        counted = totals.done + totals.failed + totals.paused + moving
        if counted == 0:
            if totals.files:  # only cancelled rows and files already in the bucket
                return self.tr("Nothing left to upload")
            return self.tr("No uploads in the queue")
        share = f"{percent(totals.confirmed_bytes, totals.total_bytes)} %"
        of_files = self.tr("%1 of %n file(s) uploaded", "", counted).replace(
            "%1", str(totals.done))
        parts: list[str] = []
        if moving:
            parts += [of_files, share]
            if totals.eta is not None:
                parts.append(self.tr("%1 left").replace("%1", format_duration(totals.eta)))
            if totals.paused:
                parts.append(self.tr("%n paused", "", totals.paused))
        elif totals.paused:
            parts += [self.tr("%n upload(s) paused", "", totals.paused), of_files, share]
        elif totals.failed:
            parts.append(self.tr("%1 of %n file(s) uploaded and verified", "", counted)
                         .replace("%1", str(totals.done)))
        else:
            parts.append(self.tr("%n file(s) uploaded and verified", "", totals.done))
        if totals.failed:
            parts.append(self.tr("%n failed", "", totals.failed))
        return self.tr(", ").join(parts)

    # ---- notifications ------------------------------------------------------------------

    def queue_stopped_message(self, totals: Totals) -> tuple[str, str, bool] | None:
        """(title, text, warning) for the queue having nothing more to do, or None when
        there is nothing to tell (nothing was uploaded, failed or paused)."""
        before = self._done_before if self._done_before is not None else totals.done
        uploaded = max(0, totals.done - before)
        lines: list[str] = []
        if uploaded:
            lines.append(self.tr("%n file(s) uploaded and verified.", "", uploaded))
        if totals.failed:
            lines.append(self.tr("%n upload(s) failed.", "", totals.failed))
        if totals.paused:
            lines.append(self.tr("%n upload(s) paused.", "", totals.paused))
        if not lines:
            return None
        if totals.failed:
            title = self.tr("Uploads stopped")
        elif totals.paused:
            title = self.tr("Uploads paused")
        else:
            title = self.tr("Uploads finished")
        text = lines[0]
        for line in lines[1:]:
            text = self.tr("%1 %2", "two sentences").replace("%1", text).replace("%2", line)
        return title, text, bool(totals.failed)

    @Slot()
    def queue_idle(self) -> None:
        """The engine has nothing queued or moving any more."""
        self._notify_failures()  # what failed is told first
        totals = self.totals
        message = self.queue_stopped_message(totals)
        uploaded = self._done_before is not None and totals.done > self._done_before
        self._done_before = None
        told = (totals.failed, totals.paused)
        if message is not None and (uploaded or told != self._told):
            self._told = told
            self.notify(*message)

    def file_failed(self, name: str, error: str) -> None:
        """A file failed: told after a moment, together with those that fail with it."""
        self._failures.append((name, error))
        if not self._failure_timer.isActive():
            self._failure_timer.start()

    @Slot()
    def _notify_failures(self) -> None:
        self._failure_timer.stop()
        failures, self._failures = self._failures, []
        if not failures:
            return
        name, error = failures[0]
        first = self.tr("%1 failed: %2").replace("%1", name).replace("%2", error)
        if len(failures) == 1:
            self.notify(self.tr("Upload failed"), first, True)
            return
        text = self.tr("%n upload(s) failed. The first: %1", "", len(failures)).replace(
            "%1", first)
        self.notify(self.tr("Uploads failed"), text, True)

    def wants_notifications(self) -> bool:
        """Only while the window is out of sight (in the tray, minimised or behind others):
        in front of the user the status bar says it already."""
        window = self.parent()
        if not isinstance(window, QWidget):
            return True
        return not window.isVisible() or window.isMinimized() or not window.isActiveWindow()

    def notify(self, title: str, text: str, warning: bool = False) -> None:
        if not self.wants_notifications():
            return
        self.notified.emit(title, text, warning)
        if self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            kind = (QSystemTrayIcon.MessageIcon.Warning if warning
                    else QSystemTrayIcon.MessageIcon.Information)
            self.icon.showMessage(title, text, kind)


class TrayMenu(QObject):
    """The window's tray icon: its menu, hiding the window into it and showing it again."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)  # the window is found as the parent: no reference cycle
        self.tray: QSystemTrayIcon | None = None

    def _window(self) -> MainWindow:
        return cast("MainWindow", self.parent())

    def to_tray(self) -> bool:
        """Hide into the system tray; uploads go on. False when there is no tray."""
        if not self.show_tray():
            return False
        self._window().hide()
        return True

    def show_tray(self) -> bool:
        """Show the tray icon (the queue's progress in its tooltip); False without a tray."""
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return False
        if self.tray is None:
            window = self._window()
            tray = window.tray_status.icon  # its tooltip tells the queue's progress
            menu = QMenu(window)
            show = menu.addAction(self.tr("Show ossdesk"))
            show.triggered.connect(self.show_from_tray)
            menu.addAction(window.act_pause_all)
            menu.addAction(window.act_resume_all)
            menu.addSeparator()
            leave = menu.addAction(self.tr("Pause and quit"))
            leave.triggered.connect(window.quit_now)
            tray.setContextMenu(menu)
            tray.activated.connect(self._on_tray_activated)
            self.tray = tray
        self.tray.show()
        return True

    @Slot()
    def show_from_tray(self) -> None:
        window = self._window()
        window.showNormal()
        window.raise_()
        window.activateWindow()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.show_from_tray()
