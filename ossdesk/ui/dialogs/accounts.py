"""Accounts: add, edit and remove OSS profiles; secrets go to the OS keyring only.

Every keyring and network call runs off the GUI thread (:class:`BackgroundCall`). The
secret fields are password fields; their text is handed to the profile store and never
kept by this dialog after a save.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ossdesk.ui.engine_text import engine_text
from ossdesk.ui.qthreads import BackgroundCall


@dataclass(frozen=True)
class ProfileForm:
    """What the form holds (secrets included: never logged, never stored by the UI)."""

    name: str
    endpoint: str
    region: str
    bucket: str
    prefix: str
    signature: str
    access_key_id: str
    secret: str
    security_token: str

    def __repr__(self) -> str:  # the secrets stay out of any repr
        return f"ProfileForm(name={self.name!r}, bucket={self.bucket!r})"

    def endpoint_url(self) -> str:
        """The endpoint, or the public one of the region when only a region was given."""
        if self.endpoint:
            return self.endpoint
        region = self.region.removeprefix("oss-")
        return f"https://oss-{region}.aliyuncs.com" if region else ""


def connection_check(form: ProfileForm, stored_credentials: Callable[[], Any] | None) -> str:
    """BLOCKING: prove the form's endpoint, bucket and credentials work; returns the bucket.

    Raises ``OssError`` (its ``message`` is the verdict) or ``ValueError``.
    """
    from ossdesk.core.oss import Credentials, Endpoint, OssClient

    if form.secret:
        credentials = Credentials(form.access_key_id, form.secret, form.security_token or None)
    elif stored_credentials is not None:
        stored = stored_credentials()
        credentials = Credentials(
            form.access_key_id or stored.access_key_id,
            stored.access_key_secret,
            form.security_token or stored.security_token,
        )
    else:
        raise ValueError("no secret")
    endpoint = Endpoint(
        url=form.endpoint_url(),
        bucket=form.bucket,
        region=form.region.removeprefix("oss-") or None,
        signature="v1" if form.signature == "v1" else "v4",
    )
    client = OssClient(endpoint, credentials, connect_timeout=5.0, read_timeout=15.0)
    try:
        client.check_connection()
    finally:
        closer = getattr(client, "close", None)
        if callable(closer):
            closer()
    return form.bucket


def _keyring_available() -> bool:
    """BLOCKING (asks the keyring daemon)."""
    from ossdesk.credentials import keyring_available

    return keyring_available()


class AccountsDialog(QDialog):
    """Manage profiles in a ``ProfileStore`` (``ossdesk.credentials``)."""

    profilesChanged = Signal()
    busyChanged = Signal(bool)
    # A profile was saved (its name): files queued with it use what was saved.
    profileSaved = Signal(str)

    def __init__(self, store: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("accountsDialog")
        self.store = store
        self.keyring_ok: bool | None = None
        self._profiles: dict[str, Any] = {}
        self._editing: str | None = None  # name of the stored profile in the form
        self._busy = 0
        self._select_after_list: str | None = None
        self.last_verdict_ok: bool | None = None
        self._test_failed = False  # the last connection test of this form failed

        self.setWindowTitle(self.tr("OSS accounts"))
        self.list = QListWidget()
        self.list.setObjectName("profileList")
        self.list.setMinimumWidth(170)
        self.add_button = QPushButton(self.tr("New account"))
        self.add_button.setObjectName("newButton")
        self.remove_button = QPushButton(self.tr("Remove"))
        self.remove_button.setObjectName("removeButton")
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        left.addLayout(row)

        self.name = QLineEdit()
        self.name.setObjectName("name")
        self.name.setPlaceholderText(self.tr("e.g. work"))
        self.endpoint = QLineEdit()
        self.endpoint.setObjectName("endpoint")
        self.endpoint.setPlaceholderText("https://oss-cn-hangzhou.aliyuncs.com")
        self.region = QLineEdit()
        self.region.setObjectName("region")
        self.region.setPlaceholderText(
            self.tr("e.g. cn-hangzhou (read from the endpoint if empty)")
        )
        self.bucket = QLineEdit()
        self.bucket.setObjectName("bucket")
        self.bucket.setPlaceholderText(self.tr("e.g. my-photos"))
        self.prefix = QLineEdit()
        self.prefix.setObjectName("prefix")
        self.prefix.setPlaceholderText(self.tr("top level of the bucket"))
        self.signature = QComboBox()
        self.signature.setObjectName("signature")
        self.signature.addItem(self.tr("V4 (recommended)"), "v4")
        self.signature.addItem(self.tr("V1 (older servers)"), "v1")
        self.key_id = QLineEdit()
        self.key_id.setObjectName("accessKeyId")
        self.key_id.setPlaceholderText("LTAI…")
        self.secret = QLineEdit()
        self.secret.setObjectName("secret")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.token = QLineEdit()
        self.token.setObjectName("securityToken")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText(self.tr("only for temporary (STS) credentials"))

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self.tr("Account name:"), self.name)
        form.addRow(self.tr("Endpoint:"), self.endpoint)
        form.addRow(self.tr("Region:"), self.region)
        form.addRow(self.tr("Bucket:"), self.bucket)
        form.addRow(self.tr("Default folder:"), self.prefix)
        form.addRow(self.tr("Signature:"), self.signature)
        form.addRow(self.tr("AccessKey ID:"), self.key_id)
        form.addRow(self.tr("AccessKey secret:"), self.secret)
        form.addRow(self.tr("STS token:"), self.token)

        self.keyring_note = QLabel()
        self.keyring_note.setObjectName("keyringNote")
        self.keyring_note.setWordWrap(True)
        self.session_only = QCheckBox(self.tr("Keep the secret for this session only"))
        self.session_only.setObjectName("sessionOnly")
        self.session_only.setVisible(False)
        self.test_button = QPushButton(self.tr("Test connection"))
        self.test_button.setObjectName("testButton")
        self.save_button = QPushButton(self.tr("Save"))
        self.save_button.setObjectName("saveButton")
        self.save_button.setDefault(True)
        self.verdict = QLabel()
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict.setMinimumHeight(40)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        actions = QHBoxLayout()
        actions.addWidget(self.test_button)
        actions.addStretch(1)
        actions.addWidget(self.save_button)

        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.keyring_note)
        right.addWidget(self.session_only)
        right.addLayout(actions)
        right.addWidget(self.verdict)
        right.addStretch(1)

        body = QHBoxLayout()
        body.addLayout(left)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.VLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        body.addWidget(line)
        body.addLayout(right, 1)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.button(QDialogButtonBox.StandardButton.Close).setText(self.tr("Close"))
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(close)
        self.resize(760, 500)

        self.list.currentItemChanged.connect(self._on_current_changed)
        self.add_button.clicked.connect(self.new_profile)
        self.remove_button.clicked.connect(self.remove_profile)
        self.test_button.clicked.connect(self.test_connection)
        self.save_button.clicked.connect(self.save_profile)

        self.new_profile()
        self._set_keyring_state(None)
        self.reload()
        self._run(_keyring_available, self._on_keyring_checked, self._on_keyring_check_failed)

    # ---- background calls ---------------------------------------------------------------

    def _run(
        self, fn: Callable[[], Any], done: Callable[[object], None],
        failed: Callable[[object], None],
    ) -> BackgroundCall:
        call = BackgroundCall(fn, self)
        call.succeeded.connect(done)
        call.failed.connect(failed)
        call.finished.connect(self._call_finished)
        self._busy += 1
        self.busyChanged.emit(True)
        return call.start()

    @Slot()
    def _call_finished(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self.busyChanged.emit(False)

    def is_busy(self) -> bool:
        return self._busy > 0

    # ---- keyring ------------------------------------------------------------------------

    @Slot(object)
    def _on_keyring_checked(self, available: object) -> None:
        self._set_keyring_state(bool(available))

    @Slot(object)
    def _on_keyring_check_failed(self, exc: object) -> None:
        self._set_keyring_state(False)

    def _set_keyring_state(self, available: bool | None) -> None:
        self.keyring_ok = available
        if available is None:
            self.keyring_note.setText(self.tr("Checking the system keyring…"))
            self.session_only.setVisible(False)
        elif available:
            self.keyring_note.setText(
                self.tr(
                    "The secret and the STS token are kept in the system keyring, never in "
                    "a file."
                )
            )
            self.session_only.setVisible(False)
            self.session_only.setChecked(False)
        else:
            self.keyring_note.setText(
                self.tr(
                    "No working system keyring was found, so the secret cannot be saved. "
                    "ossdesk can keep it in memory for this session only: you will enter it "
                    "again after restarting. It is never written to a file."
                )
            )
            self.session_only.setVisible(True)
            self.session_only.setChecked(True)
        self._colour(self.keyring_note, ok=None if available is not False else False)

    # ---- list ---------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        self._select_after_list = select
        self._run(self.store.list, self._on_listed, self._on_list_failed)

    @Slot(object)
    def _on_list_failed(self, exc: object) -> None:
        self._show_verdict(
            self.tr("Could not read the accounts: %1").replace("%1", str(exc)), ok=False
        )

    @Slot(object)
    def _on_listed(self, profiles: object) -> None:
        items = list(profiles) if isinstance(profiles, (list, tuple)) else []
        self._profiles = {p.name: p for p in items}
        wanted = self._select_after_list or self._editing
        self.list.blockSignals(True)
        self.list.clear()
        for profile in items:
            item = QListWidgetItem(profile.name)
            item.setData(Qt.ItemDataRole.UserRole, profile.name)
            self.list.addItem(item)
            if profile.name == wanted:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if wanted in self._profiles:
            self._fill(self._profiles[wanted])
        self.remove_button.setEnabled(self._editing is not None)
        self.profilesChanged.emit()

    def profile_names(self) -> list[str]:
        return list(self._profiles)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current_changed(self, current: QListWidgetItem | None, _old: object) -> None:
        if current is None:
            return
        profile = self._profiles.get(current.data(Qt.ItemDataRole.UserRole))
        if profile is not None:
            self._fill(profile)
            self._show_verdict("", ok=None)

    def _fill(self, profile: Any) -> None:
        self._editing = profile.name
        self._test_failed = False
        self.name.setText(profile.name)
        self.endpoint.setText(profile.endpoint or "")
        self.region.setText(getattr(profile, "region", None) or "")
        self.bucket.setText(profile.bucket)
        self.prefix.setText(getattr(profile, "prefix", "") or "")
        index = self.signature.findData(getattr(profile, "signature", "v4"))
        self.signature.setCurrentIndex(max(index, 0))
        self.key_id.setText(getattr(profile, "access_key_id", "") or "")
        self.secret.clear()
        self.token.clear()
        self.secret.setPlaceholderText(self.tr("kept in the keyring; type a new one to replace it"))
        self.remove_button.setEnabled(True)

    @Slot()
    def new_profile(self) -> None:
        self._editing = None
        self._test_failed = False
        self.list.clearSelection()
        self.list.setCurrentRow(-1)
        for field in (
            self.name, self.endpoint, self.region, self.bucket, self.prefix, self.key_id,
            self.secret, self.token,
        ):
            field.clear()
        self.signature.setCurrentIndex(0)
        self.secret.setPlaceholderText(self.tr("required"))
        self.remove_button.setEnabled(False)
        self.verdict.clear()
        self.name.setFocus()

    # ---- form ---------------------------------------------------------------------------

    def form(self) -> ProfileForm:
        return ProfileForm(
            name=self.name.text().strip(),
            endpoint=self.endpoint.text().strip(),
            region=self.region.text().strip(),
            bucket=self.bucket.text().strip(),
            prefix=self.prefix.text().strip().replace("\\", "/").strip("/"),
            signature=str(self.signature.currentData()),
            access_key_id=self.key_id.text().strip(),
            secret=self.secret.text(),
            security_token=self.token.text().strip(),
        )

    def _missing(self, form: ProfileForm, *, for_save: bool) -> str | None:
        if for_save and not form.name:
            return self.tr("Give the account a name.")
        if not form.endpoint_url():
            return self.tr("Enter the endpoint or the region of the bucket.")
        if not form.bucket:
            return self.tr("Enter the bucket name.")
        if not form.access_key_id:
            return self.tr("Enter the AccessKey ID.")
        if not form.secret and self._editing is None:
            return self.tr("Enter the AccessKey secret.")
        if for_save and form.security_token and not form.secret:
            return self.tr("Enter the AccessKey secret together with the STS token.")
        return None

    def _colour(self, label: QLabel, *, ok: bool | None) -> None:
        palette = label.palette()
        if ok is None:
            palette.setColor(
                QPalette.ColorRole.WindowText,
                self.palette().color(QPalette.ColorRole.WindowText),
            )
        else:
            dark = self.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.5
            good, bad = ("#4cc46f", "#ff6b6b") if dark else ("#1e7b3a", "#b3261e")
            from PySide6.QtGui import QColor

            palette.setColor(QPalette.ColorRole.WindowText, QColor(good if ok else bad))
        label.setPalette(palette)

    def _show_verdict(self, text: str, *, ok: bool | None) -> None:
        self.last_verdict_ok = ok
        self.verdict.setText(text)
        self._colour(self.verdict, ok=ok)

    @Slot()
    def test_connection(self) -> None:
        form = self.form()
        problem = self._missing(form, for_save=False)
        if problem:
            self._show_verdict(problem, ok=False)
            return
        stored = None
        if not form.secret and self._editing is not None:
            name = self._editing
            stored = lambda: self.store.credentials(name)  # noqa: E731
        self._show_verdict(self.tr("Connecting…"), ok=None)
        self.test_button.setEnabled(False)
        self._run(lambda: connection_check(form, stored), self._on_tested, self._on_test_failed)

    @Slot(object)
    def _on_tested(self, bucket: object) -> None:
        self.test_button.setEnabled(True)
        self._test_failed = False
        self._show_verdict(
            self.tr("✔ Connected: bucket “%1” can be reached with these credentials.").replace(
                "%1", str(bucket)
            ),
            ok=True,
        )

    @Slot(object)
    def _on_test_failed(self, exc: object) -> None:
        self.test_button.setEnabled(True)
        self._test_failed = True
        message = engine_text(getattr(exc, "message", None) or str(exc))
        self._show_verdict(self.tr("✘ %1").replace("%1", message), ok=False)

    @Slot()
    def save_profile(self) -> None:
        form = self.form()
        problem = self._missing(form, for_save=True)
        if problem:
            self._show_verdict(problem, ok=False)
            return
        if self._test_failed and not self.confirm_save_after_failed_test():
            return
        self._test_failed = False
        from ossdesk.credentials import Profile

        profile = Profile(
            name=form.name,
            endpoint=form.endpoint_url(),
            bucket=form.bucket,
            region=form.region.removeprefix("oss-") or None,
            prefix=form.prefix,
            signature="v1" if form.signature == "v1" else "v4",
            access_key_id=form.access_key_id,
        )
        store = self.store
        session_only = self.session_only.isVisible() and self.session_only.isChecked()
        secret = form.secret or None
        token = form.security_token or None
        renamed_from = self._editing if self._editing not in (None, form.name) else None

        def save() -> str:
            if renamed_from is not None:
                store.rename(renamed_from, form.name)
            store.save(profile, secret=secret, security_token=token, session_only=session_only)
            return form.name

        self.save_button.setEnabled(False)
        self._run(save, self._on_saved, self._on_save_failed)
        self.secret.clear()
        self.token.clear()

    @Slot(object)
    def _on_saved(self, name: object) -> None:
        self.save_button.setEnabled(True)
        self._editing = str(name)
        if self.keyring_ok is False:
            text = self.tr("Saved. The secret is kept for this session only.")
        else:
            text = self.tr("Saved. The secret is in the system keyring, not in any file.")
        self._show_verdict(text, ok=True)
        self.reload(select=str(name))
        self.profileSaved.emit(str(name))

    def confirm_save_after_failed_test(self) -> bool:
        answer = QMessageBox.warning(
            self,
            self.tr("Save account"),
            self.tr(
                "The last connection test with these settings failed. Files uploaded with "
                "this account will fail the same way. Save anyway?"
            ),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Save

    @Slot(object)
    def _on_save_failed(self, exc: object) -> None:
        self.save_button.setEnabled(True)
        if type(exc).__name__ == "KeyringUnavailable":
            self._set_keyring_state(False)
            self._show_verdict(
                self.tr(
                    "The system keyring does not work, so the secret was not saved. Tick "
                    "“Keep the secret for this session only”, enter the secret again and "
                    "save."
                ),
                ok=False,
            )
            return
        message = engine_text(getattr(exc, "message", None) or str(exc))
        self._show_verdict(self.tr("Not saved: %1").replace("%1", message), ok=False)

    def confirm_remove(self, name: str) -> bool:
        """Ask before removing (a seam tests replace)."""
        answer = QMessageBox.question(
            self,
            self.tr("Remove account"),
            self.tr(
                "Remove the account “%1” and its secret from the keyring? Files already "
                "uploaded stay in the bucket."
            ).replace("%1", name),
        )
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def remove_profile(self) -> None:
        name = self._editing
        if name is None or not self.confirm_remove(name):
            return
        store = self.store
        self._run(lambda: store.delete(name), self._on_removed, self._on_save_failed)

    @Slot(object)
    def _on_removed(self, _result: object) -> None:
        self.new_profile()
        self._show_verdict(self.tr("Account removed."), ok=None)
        self.reload()
