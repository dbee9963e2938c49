"""The destination bar above the queue: account, bucket and folder, Browse and Options.

It keeps the account list (read off the GUI thread) and says where dropped files go
(:meth:`DestinationBar.destination`). The window owns one; the bar reaches the window as
its top-level widget, never through a reference of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from ossdesk.ui.bridge import Destination
from ossdesk.ui.dialogs.object_options import (
    ObjectOptionsDialog,
    load_upload_options,
    save_upload_options,
    with_upload_options,
)
from ossdesk.ui.qthreads import BackgroundCall

if TYPE_CHECKING:
    from ossdesk.ui.main_window import MainWindow


class DestinationBar(QFrame):
    """Where dropped files go: the account, the bucket and the folder inside it."""

    profilesChanged = Signal()

    def __init__(
        self,
        profile_store: Any | None,
        credentials: Callable[[str], Any] | None,
        extra_profiles: Sequence[Any],
        last_folder: str,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.profile_store = profile_store
        self.credentials = credentials
        self.profiles: list[Any] = []
        self.extra_profiles: list[Any] = list(extra_profiles)
        self.profiles_loaded = False
        self.setObjectName("destinationBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        dest = QHBoxLayout(self)
        dest.setContentsMargins(8, 6, 8, 6)
        self.lbl_account = QLabel(self)
        self.account_combo = QComboBox(self)
        self.account_combo.setObjectName("accountCombo")
        self.account_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.account_combo.setMinimumContentsLength(12)
        self.lbl_bucket = QLabel(self)
        self.bucket_edit = QLineEdit(self)
        self.bucket_edit.setObjectName("bucketEdit")
        self.bucket_edit.setMaximumWidth(220)
        self.lbl_folder = QLabel(self)
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setObjectName("folderEdit")
        self.folder_edit.setText(last_folder)
        self.browse_button = QToolButton(self)
        self.browse_button.setObjectName("browseButton")
        self.browse_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.lbl_account.setBuddy(self.account_combo)
        self.lbl_bucket.setBuddy(self.bucket_edit)
        self.lbl_folder.setBuddy(self.folder_edit)
        dest.addWidget(self.lbl_account)
        dest.addWidget(self.account_combo)
        dest.addSpacing(10)
        dest.addWidget(self.lbl_bucket)
        dest.addWidget(self.bucket_edit)
        dest.addSpacing(10)
        dest.addWidget(self.lbl_folder)
        dest.addWidget(self.folder_edit, 1)
        dest.addWidget(self.browse_button)
        self.options_button = QToolButton(self)
        self.options_button.setObjectName("optionsButton")
        self.options_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        dest.addWidget(self.options_button)
        self.account_combo.currentIndexChanged.connect(self._on_profile_changed)
        self.browse_button.clicked.connect(self.browse_folders)
        self.options_button.clicked.connect(self.edit_upload_options)

    def _main_window(self) -> MainWindow:
        return cast("MainWindow", self.window())

    def retranslate(self) -> None:
        self.lbl_account.setText(self.tr("&Account:"))
        self.lbl_bucket.setText(self.tr("&Bucket:"))
        self.lbl_folder.setText(self.tr("&Folder:"))
        self.account_combo.setToolTip(self.tr("The OSS account that uploads"))
        self.bucket_edit.setPlaceholderText(self.tr("bucket name"))
        self.bucket_edit.setToolTip(self.tr("The bucket files are uploaded to"))
        self.folder_edit.setPlaceholderText(self.tr("top level of the bucket"))
        self.folder_edit.setToolTip(
            self.tr("The folder inside the bucket where dropped files go, e.g. photos/2024")
        )
        self.browse_button.setText(self.tr("Browse…"))
        self.browse_button.setToolTip(self.tr("Pick a folder of the bucket"))
        self.options_button.setText(self.tr("Options…"))
        self.options_button.setToolTip(self.tr(
            "Storage class, ACL, headers, metadata, tags and encryption of the files added "
            "to this bucket"))

    def _store(self) -> Any | None:
        if self.profile_store is None:
            try:
                from ossdesk.credentials import ProfileStore
            except ImportError:
                return None
            self.profile_store = ProfileStore()
        return self.profile_store

    def _credentials_for(self, profile: str) -> Any:
        """BLOCKING: the credentials of a profile (the keyring, or the session's resolver)."""
        if self.credentials is not None:
            return self.credentials(profile)
        store = self._store()
        if store is None:
            raise LookupError(profile)
        return store.credentials(profile)

    def refresh_profiles(self) -> None:
        """Reload the account list (a file read: done off the GUI thread)."""
        store = self._store()
        if store is None:
            self._set_profiles([])
            return
        call = BackgroundCall(store.list, self)
        call.succeeded.connect(self._set_profiles)
        call.failed.connect(self._on_profiles_failed)
        call.start()

    @Slot(object)
    def _on_profiles_failed(self, exc: object) -> None:
        self._set_profiles([])
        self._main_window().statusBar().showMessage(
            self.tr("Could not read the accounts: %1").replace("%1", str(exc)), 10_000
        )

    @Slot(object)
    def _set_profiles(self, profiles: object) -> None:
        stored = list(profiles) if isinstance(profiles, (list, tuple)) else []
        extra_names = {p.name for p in self.extra_profiles}
        self.profiles = [*self.extra_profiles, *(p for p in stored if p.name not in extra_names)]
        wanted = self.account_combo.currentData() or self._main_window().settings.last_profile
        self.account_combo.blockSignals(True)
        self.account_combo.clear()
        for profile in self.profiles:
            self.account_combo.addItem(profile.name, profile.name)
        index = self.account_combo.findData(wanted)
        self.account_combo.setCurrentIndex(max(index, 0) if self.profiles else -1)
        self.account_combo.blockSignals(False)
        self.profiles_loaded = True
        self._on_profile_changed()
        self.profilesChanged.emit()

    def add_extra_profile(self, profile: Any, *, select: bool = True) -> None:
        """A profile that lives only in this session (the local sandbox)."""
        self.extra_profiles = [p for p in self.extra_profiles if p.name != profile.name]
        self.extra_profiles.append(profile)
        if select:
            self._main_window().settings.last_profile = profile.name
            self.account_combo.setCurrentIndex(-1)
        self.refresh_profiles()

    def current_profile(self) -> Any | None:
        name = self.account_combo.currentData()
        for profile in self.profiles:
            if profile.name == name:
                return profile
        return None

    @Slot()
    def _on_profile_changed(self) -> None:
        profile = self.current_profile()
        has_profile = profile is not None
        window = self._main_window()
        window.stack.setCurrentWidget(
            window.view if has_profile or window.model.rowCount() else window.first_run
        )
        for widget in (self.account_combo, self.bucket_edit, self.folder_edit, self.browse_button,
                       self.options_button):
            widget.setEnabled(has_profile)
        if profile is None:
            self.bucket_edit.clear()
            return
        self.bucket_edit.setText(profile.bucket)
        if profile.name != self._main_window().settings.last_profile:
            self.folder_edit.setText(getattr(profile, "prefix", "") or "")
        self._main_window().settings.last_profile = profile.name

    def destination(self) -> Destination | None:
        profile = self.current_profile()
        bucket = self.bucket_edit.text().strip()
        if profile is None or not bucket:
            return None
        endpoint = str(profile.endpoint)
        folder = self.folder_edit.text().strip().replace("\\", "/").strip("/")
        return with_upload_options(Destination(
            profile=profile.name,
            endpoint=endpoint,
            bucket=bucket,
            prefix=folder,
            region=getattr(profile, "region", None),
            signature=getattr(profile, "signature", "v4"),
        ))

    def upload_options_dialog(self) -> ObjectOptionsDialog | None:
        """The options of the current account and bucket, to edit (None: no destination)."""
        dest = self.destination()
        if dest is None:
            return None
        return ObjectOptionsDialog(f"oss://{dest.bucket}/",
                                   load_upload_options(dest.profile, dest.bucket),
                                   self._main_window())

    @Slot()
    def edit_upload_options(self) -> None:
        dialog = self.upload_options_dialog()
        dest = self.destination()
        if dialog is None or dest is None:
            return
        if dialog.exec() == QDialog.DialogCode.Accepted:
            save_upload_options(dest.profile, dest.bucket, dialog.result_options)

    @Slot()
    def browse_folders(self) -> None:
        destination = self.destination()
        if destination is None:
            return
        from ossdesk.ui.dialogs.folder_browser import FolderBrowserDialog

        dialog = FolderBrowserDialog(self._credentials_for, destination,
                                     self._main_window())
        if dialog.exec():
            self.folder_edit.setText(dialog.selected_folder())
