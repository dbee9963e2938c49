from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.credentials import ProfileStore, keyring_available
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    SandboxServer,
)
from ossdesk.ui.bridge import Destination
from ossdesk.ui.dialogs import accounts as accounts_module
from ossdesk.ui.dialogs.accounts import AccountsDialog
from ossdesk.ui.dialogs.folder_browser import FolderBrowserDialog, bucket_lister
from ossdesk.ui.dialogs.settings import SettingsDialog
from ossdesk.ui.settings import Settings, load_settings, save_settings

SECRET = "S3cr3t-" + uuid.uuid4().hex


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.fixture
def server(tmp_path) -> Iterator[SandboxServer]:
    s = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield s
    s.stop()


def fill(dialog: AccountsDialog, **values: str) -> None:
    for name, value in values.items():
        field = getattr(dialog, name)
        field.clear()
        QTest.keyClicks(field, value)


# ---- settings ------------------------------------------------------------------------


def test_settings_dialog_round_trip_and_persistence(qtbot, ossdesk_home):
    start = Settings(files_at_once=3, parts_in_flight=8, part_size_mib=0, language="system")
    dialog = SettingsDialog(start)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.part_auto.isChecked() and not dialog.part_size.isEnabled()
    dialog.files_at_once.setValue(5)
    dialog.parts_in_flight.setValue(12)
    QTest.mouseClick(dialog.part_fixed, Qt.MouseButton.LeftButton)
    assert dialog.part_size.isEnabled()
    dialog.part_size.setValue(32)
    dialog.bandwidth.setValue(2048)
    assert dialog.reread_limit.value() == 0  # every file is read again by default
    assert "not read again" in dialog.reread_limit.toolTip()
    dialog.reread_limit.setValue(50)
    dialog.auto_resume.setChecked(False)
    dialog.language.setCurrentIndex(dialog.language.findData("zh_CN"))
    result = dialog.result_settings()
    assert (result.files_at_once, result.parts_in_flight, result.part_size_mib) == (5, 12, 32)
    assert result.part_size_bytes == 32 * 1024 * 1024
    assert result.bandwidth_limit_bytes == 2048 * 1024
    assert result.reread_limit_bytes == 50 * 1024 ** 3
    assert Settings().reread_limit_bytes is None
    assert result.auto_resume is False and result.language == "zh_CN"
    save_settings(result)
    assert (ossdesk_home / "config" / "settings.json").is_file()
    assert load_settings() == result


def test_settings_file_with_bad_values_is_clamped(ossdesk_home):
    (ossdesk_home / "config").mkdir(parents=True)
    (ossdesk_home / "config" / "settings.json").write_text(json.dumps({
        "window": {"files_at_once": 999, "parts_in_flight": "many", "language": "klingon",
                   "auto_resume": "yes"},
        "other": {"kept": True},
    }))
    settings = load_settings()
    assert settings.files_at_once == 16 and settings.parts_in_flight == 8
    assert settings.language == "system" and settings.auto_resume is True
    save_settings(settings)
    data = json.loads((ossdesk_home / "config" / "settings.json").read_text())
    assert data["other"] == {"kept": True}


# ---- accounts ------------------------------------------------------------------------


@pytest.fixture
def keyring_service() -> Iterator[str]:
    if not keyring_available():
        if os.environ.get("OSSDESK_REQUIRE_KEYRING") == "1":
            pytest.fail("no usable keyring backend, and OSSDESK_REQUIRE_KEYRING=1")
        pytest.skip("no usable keyring backend (run inside scripts/with-keyring)")
    name = f"ossdesk-gui-test-{uuid.uuid4().hex[:12]}"
    yield name
    for profile in ("work", "renamed"):
        for kind in ("secret", "token"):
            if keyring.get_password(name, f"{profile}/{kind}") is not None:
                keyring.delete_password(name, f"{profile}/{kind}")


@pytest.mark.keyring
def test_account_dialog_stores_the_secret_in_the_keyring_only(
    qtbot, tmp_path, ossdesk_home, keyring_service
):
    store = ProfileStore(tmp_path / "profiles.json", service=keyring_service)
    dialog = AccountsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.keyring_ok is True, timeout=10_000)
    assert not dialog.session_only.isVisible()
    fill(dialog, name="work", endpoint="https://oss-cn-hangzhou.aliyuncs.com",
         bucket="my-bucket", prefix="backups", key_id="LTAIexample", secret=SECRET,
         token="sts-token-" + SECRET)
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.profile_names() == ["work"], timeout=10_000)
    assert dialog.last_verdict_ok is True
    assert "keyring" in dialog.verdict.text()
    assert dialog.secret.text() == ""  # the dialog does not keep it
    assert keyring.get_password(keyring_service, "work/secret") == SECRET
    creds = store.credentials("work")
    assert (creds.access_key_id, creds.access_key_secret) == ("LTAIexample", SECRET)
    assert creds.security_token == "sts-token-" + SECRET
    profile = store.get("work")
    assert profile is not None and profile.prefix == "backups"
    assert files_containing(tmp_path, SECRET) == []
    assert SECRET not in repr(dialog.form())
    # Editing without typing a secret keeps the stored one.
    fill(dialog, bucket="other-bucket")
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(store.get("work"), "bucket", "") == "other-bucket",
                    timeout=10_000)
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
    assert store.credentials("work").access_key_secret == SECRET
    # Removing deletes the keyring entry too.
    dialog.confirm_remove = lambda name: True  # type: ignore[method-assign]
    QTest.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.profile_names() == [], timeout=10_000)
    assert keyring.get_password(keyring_service, "work/secret") is None


def test_without_a_keyring_the_secret_is_kept_for_the_session_only(
    qtbot, tmp_path, monkeypatch
):
    monkeypatch.setattr(accounts_module, "_keyring_available", lambda: False)
    service = f"ossdesk-gui-session-{uuid.uuid4().hex[:12]}"
    store = ProfileStore(tmp_path / "profiles.json", service=service)
    dialog = AccountsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.keyring_ok is False, timeout=5000)
    assert dialog.session_only.isVisible() and dialog.session_only.isChecked()
    assert "session only" in dialog.keyring_note.text()
    fill(dialog, name="work", region="cn-shanghai", bucket="b-1", key_id="LTAIx", secret=SECRET)
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.profile_names() == ["work"], timeout=10_000)
    assert "this session only" in dialog.verdict.text()
    profile = store.get("work")
    assert profile is not None
    assert profile.endpoint == "https://oss-cn-shanghai.aliyuncs.com"
    assert profile.region == "cn-shanghai"
    assert store.credentials("work").access_key_secret == SECRET
    assert files_containing(tmp_path, SECRET) == []
    store.delete("work")


def test_missing_fields_are_named_before_anything_runs(qtbot, tmp_path):
    dialog = AccountsDialog(ProfileStore(tmp_path / "profiles.json", service="ossdesk-unused"))
    qtbot.addWidget(dialog)
    fill(dialog, name="x", endpoint="https://oss-cn-hangzhou.aliyuncs.com")
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.verdict.text() == "Enter the bucket name."
    assert dialog.last_verdict_ok is False


def test_test_connection_gives_a_clear_verdict(qtbot, tmp_path, server):
    dialog = AccountsDialog(ProfileStore(tmp_path / "profiles.json", service="ossdesk-unused"))
    qtbot.addWidget(dialog)
    dialog.show()
    fill(dialog, name="sb", endpoint=server.endpoint, region=DEFAULT_REGION,
         bucket=DEFAULT_BUCKET, key_id=DEFAULT_ACCESS_KEY_ID, secret="wrong-secret")
    QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_verdict_ok is not None, timeout=20_000)
    assert dialog.last_verdict_ok is False
    assert "secret" in dialog.verdict.text().lower()
    assert "wrong-secret" not in dialog.verdict.text()
    fill(dialog, secret=DEFAULT_ACCESS_KEY_SECRET)
    QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_verdict_ok is True, timeout=20_000)
    assert DEFAULT_BUCKET in dialog.verdict.text()
    fill(dialog, bucket="no-such-bucket")
    QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_verdict_ok is False, timeout=20_000)
    assert "bucket" in dialog.verdict.text().lower()


# ---- folder browser ------------------------------------------------------------------


class SandboxCredentials:
    def credentials(self, name: str) -> Credentials:
        assert name == "sandbox"
        return Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


def test_folder_browser_lists_the_bucket_folders(qtbot, server):
    oss = OssClient(Endpoint(server.endpoint, DEFAULT_BUCKET, DEFAULT_REGION),
                    SandboxCredentials().credentials("sandbox"))
    for key in ("photos/2024/a.jpg", "photos/2023/b.jpg", "docs/c.txt", "top.txt"):
        oss.put_object(key, b"x", size=1)
    destination = Destination(profile="sandbox", endpoint=server.endpoint,
                              bucket=DEFAULT_BUCKET, region=DEFAULT_REGION)
    dialog = FolderBrowserDialog(SandboxCredentials().credentials, destination)
    qtbot.addWidget(dialog)
    dialog.show()
    root = dialog.tree.topLevelItem(0)
    assert root is not None
    qtbot.waitUntil(lambda: root.childCount() == 2, timeout=10_000)
    children = [c for c in (root.child(i) for i in range(root.childCount())) if c is not None]
    assert sorted(c.text(0) for c in children) == ["docs", "photos"]
    photos = next(c for c in children if c.text(0) == "photos")
    photos.setExpanded(True)
    qtbot.waitUntil(lambda: photos.childCount() == 2, timeout=10_000)
    first = photos.child(0)
    assert first is not None
    dialog.tree.setCurrentItem(first)
    assert dialog.selected_folder() in ("photos/2023", "photos/2024")
    assert bucket_lister(SandboxCredentials().credentials, destination)("photos/")[0] == [
        "photos/2023/", "photos/2024/",
    ]


@pytest.mark.keyring
def test_saving_after_a_failed_connection_test_asks_first(
    qtbot, tmp_path, server, keyring_service
):
    store = ProfileStore(tmp_path / "profiles.json", service=keyring_service)
    dialog = AccountsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.keyring_ok is True, timeout=10_000)
    asked: list[bool] = []
    answer = [False]

    def confirm() -> bool:
        asked.append(True)
        return answer[0]

    dialog.confirm_save_after_failed_test = confirm  # type: ignore[method-assign]
    saved: list[str] = []
    dialog.profileSaved.connect(saved.append)
    fill(dialog, name="work", endpoint=server.endpoint, region=DEFAULT_REGION,
         bucket=DEFAULT_BUCKET, key_id=DEFAULT_ACCESS_KEY_ID, secret="wrong-secret")
    QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_verdict_ok is False, timeout=20_000)
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert asked == [True]
    assert store.get("work") is None and not dialog.is_busy()  # cancelled: nothing saved
    answer[0] = True
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: saved == ["work"], timeout=10_000)
    assert asked == [True, True]
    assert store.credentials("work").access_key_secret == "wrong-secret"


def test_a_background_call_runs_in_a_qthread_and_answers_on_the_gui_thread(qtbot):
    """Dialogs' blocking calls run on the same kind of thread as the engine's pipe: a
    QThread the exit hook knows (ossdesk.ui.qthreads), the answer queued to the GUI."""
    import threading

    from PySide6.QtCore import QThread

    from ossdesk.ui.qthreads import BackgroundCall, EngineThread

    ran_in: list[object] = []
    answered_in: list[bool] = []

    def work() -> int:
        ran_in.append(QThread.currentThread())
        return 42

    call = BackgroundCall(work)
    results: list[object] = []

    def succeeded(value: object) -> None:
        results.append(value)
        answered_in.append(threading.current_thread() is threading.main_thread())

    call.succeeded.connect(succeeded)
    with qtbot.waitSignal(call.finished, timeout=5000):
        call.start()
    assert call.wait(5)
    assert isinstance(ran_in[0], EngineThread)
    qtbot.waitUntil(lambda: results == [42], timeout=5000)
    assert answered_in == [True]
