"""The window over the real engine and a real sandbox server on 127.0.0.1.

Every test runs twice: with the engine in the window's process (``SchedulerAdapter``) and
in its own process (``ProcessEngineAdapter``, what the window uses)."""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from ossdesk.core.checksum import crc64
from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.store import Store
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    SandboxServer,
)
from ossdesk.ui import engine_types as rq
from ossdesk.ui.app import SANDBOX_PROFILE, SessionProfile, credentials_resolver
from ossdesk.ui.dialogs.folder_browser import FolderBrowserDialog
from ossdesk.ui.engine_adapter import SchedulerAdapter, object_url
from ossdesk.ui.engine_process import ProcessEngineAdapter
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.qthreads import start_qthread
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import RowKey, TransferRow, TransferState

MIB = 1024 * 1024


class NoProfiles:
    def list(self) -> list[object]:
        return []


Engine = SchedulerAdapter | ProcessEngineAdapter


@pytest.fixture(params=["in-process", "process"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def local_sandbox(tmp_path):
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


def profile_for(server: SandboxServer) -> SessionProfile:
    return SessionProfile(name=SANDBOX_PROFILE, endpoint=server.endpoint, bucket=DEFAULT_BUCKET,
                          region=DEFAULT_REGION, prefix="drop")


def make_engine(kind: str, settings: Settings, resolver: Any, **kwargs: Any) -> Engine:
    if kind == "process":
        return ProcessEngineAdapter(settings, credentials=resolver, start_thread=start_qthread,
                                    **kwargs)
    return SchedulerAdapter(settings, credentials=resolver, start_thread=start_qthread)


def open_window(
    qtbot: QtBot, server: SandboxServer, settings: Settings, kind: str = "in-process",
    **kwargs: Any,
) -> tuple[MainWindow, Engine]:
    resolver = credentials_resolver()
    engine = make_engine(kind, settings, resolver, **kwargs)
    window = MainWindow(engine, settings=settings, profile_store=NoProfiles(),
                        extra_profiles=[profile_for(server)], credentials=resolver)
    qtbot.addWidget(window)
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    window.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    window.show()
    qtbot.waitUntil(lambda: window.destination_bar.destination() is not None, timeout=5000)
    return window, engine


def close_window(qtbot: QtBot, window: MainWindow, engine: Engine) -> None:
    window.close()
    assert engine.wait_closed(30)


def row_of(window: MainWindow, upload: RowKey) -> TransferRow:
    row = window.model.row(upload)
    assert row is not None
    return row


def client(server: SandboxServer) -> OssClient:
    return OssClient(
        Endpoint(server.endpoint, DEFAULT_BUCKET, DEFAULT_REGION),
        Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
    )


def test_dropped_folder_uploads_to_done_and_verified(qtbot, engine_kind, local_sandbox, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    contents = {
        "empty.txt": b"",
        "hello.txt": "你好, OSS".encode(),
        "sub/part.bin": os.urandom(3 * MIB + 12345),  # multipart with 1 MiB parts
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    settings = Settings(part_size_mib=1, files_at_once=2, parts_in_flight=4)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 3, timeout=10_000)
        qtbot.waitUntil(
            lambda: all(r.state is TransferState.DONE for r in window.model.rows()),
            timeout=60_000,
        )
        oss = client(local_sandbox)
        for name, data in contents.items():
            info = oss.head_object(f"drop/mixed/{name}")
            assert info is not None and info.size == len(data)
            assert info.crc64 == crc64(data)
        row = next(r for r in window.model.rows() if r.key.endswith("/part.bin"))
        assert row.confirmed_bytes == row.size == len(contents["sub/part.bin"])
        assert "3 files" in window.totals_label.text()
        url = engine.ask(rq.ObjectUrl(row))
        assert url == object_url(local_sandbox.endpoint, DEFAULT_BUCKET, "drop/mixed/sub/part.bin")
        link = engine.ask(rq.PresignedUrl(row, 600))
        assert link.startswith(local_sandbox.endpoint + "/")
        with urllib.request.urlopen(link, timeout=10) as response:  # 127.0.0.1 only
            assert response.read() == contents["sub/part.bin"]
    finally:
        close_window(qtbot, window, engine)


def test_pause_quit_and_restart_continue_where_it_stopped(
    qtbot, engine_kind, local_sandbox, tmp_path
):
    data = os.urandom(4 * MIB)
    source = tmp_path / "slow.bin"
    source.write_bytes(data)
    # 1 MiB/s: the 4 MiB file takes seconds, long enough to pause it mid-way.
    settings = Settings(part_size_mib=1, bandwidth_limit_kib=1024, auto_resume=True)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    window.add_paths([str(source)])
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
    upload = window.model.ids()[0]
    qtbot.waitUntil(lambda: row_of(window, upload).confirmed_bytes >= MIB, timeout=30_000)
    window.row_actions.select_ids([upload])
    window.row_actions.act_pause.trigger()
    qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.PAUSED, timeout=10_000)
    kept = row_of(window, upload).confirmed_bytes
    assert 0 < kept < len(data)
    close_window(qtbot, window, engine)

    # Start again: the row is back, paused, with its confirmed bytes.
    settings2 = Settings(part_size_mib=1, auto_resume=True)
    window2, engine2 = open_window(qtbot, local_sandbox, settings2, engine_kind)
    try:
        qtbot.waitUntil(lambda: window2.model.rowCount() == 1, timeout=10_000)
        row = window2.model.row(upload)
        assert row is not None and row.state is TransferState.PAUSED
        assert row.confirmed_bytes == kept
        window2.row_actions.select_ids([upload])
        window2.row_actions.act_resume.trigger()
        qtbot.waitUntil(
            lambda: row_of(window2, upload).state is TransferState.DONE, timeout=60_000
        )
        info = client(local_sandbox).head_object("drop/slow.bin")
        assert info is not None and info.crc64 == crc64(data)
    finally:
        close_window(qtbot, window2, engine2)


def test_bad_destination_fails_with_a_readable_error(qtbot, engine_kind, local_sandbox, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    window, engine = open_window(qtbot, local_sandbox, Settings(), engine_kind)
    try:
        window.destination_bar.bucket_edit.setText("no-such-bucket")
        window.add_paths([str(tmp_path / "a.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        upload = window.model.ids()[0]
        qtbot.waitUntil(
            lambda: row_of(window, upload).state is TransferState.FAILED, timeout=30_000
        )
        row = row_of(window, upload)
        assert "no-such-bucket" in row.error or "bucket" in row.error.lower()
        window.row_actions.select_ids([upload])
        assert window.row_actions.act_error_details.isEnabled()
    finally:
        close_window(qtbot, window, engine)


def test_cancel_aborts_and_retry_starts_over(qtbot, engine_kind, local_sandbox, tmp_path):
    data = os.urandom(3 * MIB)
    source = tmp_path / "cancel-me.bin"
    source.write_bytes(data)
    settings = Settings(part_size_mib=1, bandwidth_limit_kib=768)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    try:
        window.add_paths([str(source)])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        upload = window.model.ids()[0]
        qtbot.waitUntil(lambda: row_of(window, upload).confirmed_bytes >= MIB, timeout=30_000)
        window.row_actions.select_ids([upload])
        window.row_actions.act_cancel.trigger()
        qtbot.waitUntil(
            lambda: row_of(window, upload).state is TransferState.CANCELLED, timeout=15_000
        )
        qtbot.waitUntil(lambda: client(local_sandbox).list_multipart_uploads() == [],
                        timeout=10_000)
        engine.send(rq.ApplySettings(Settings(part_size_mib=1)))  # full speed for the retry
        window.row_actions.select_ids([upload])
        window.row_actions.act_retry.trigger()
        # The same row starts over (the cancelled row stays in the list).
        qtbot.waitUntil(
            lambda: [r.state for r in window.model.rows()] == [TransferState.DONE],
            timeout=60_000,
        )
        info = client(local_sandbox).head_object("drop/cancel-me.bin")
        assert info is not None and info.crc64 == crc64(data)
    finally:
        close_window(qtbot, window, engine)


def test_a_locked_upload_list_is_explained_not_fatal(
    qtbot, engine_kind, local_sandbox, ossdesk_home
):
    # Another ossdesk process owns the store: the window says so and stops adding files.
    owner = Store.open()
    try:
        window, engine = open_window(qtbot, local_sandbox, Settings(), engine_kind, busy_wait=1.0)
        qtbot.waitUntil(lambda: bool(window.engine_error), timeout=10_000)
        assert not window.act_add_files.isEnabled() and not window.acceptDrops()
        box = window.findChild(QMessageBox, "engineErrorBox")
        assert box is not None and box.isVisible()
        assert window.engine_error in box.informativeText()
        box.close()
        close_window(qtbot, window, engine)
    finally:
        owner.close()


def test_browse_lists_the_sandbox_bucket_folders(qtbot, engine_kind, local_sandbox):
    client(local_sandbox).put_object("drop/old/a.txt", b"a", size=1)
    window, engine = open_window(qtbot, local_sandbox, Settings(), engine_kind)
    try:
        destination = window.destination_bar.destination()
        assert destination is not None and destination.prefix == "drop"
        dialog = FolderBrowserDialog(window.destination_bar._credentials_for, destination)
        qtbot.addWidget(dialog)
        root = dialog.tree.topLevelItem(0)
        assert root is not None
        qtbot.waitUntil(lambda: root.childCount() == 1, timeout=10_000)
        drop = root.child(0)
        assert drop is not None and drop.text(0) == "drop"
        assert dialog.selected_folder() == "drop"  # the folder field's value is preselected
    finally:
        close_window(qtbot, window, engine)


@pytest.mark.keyring
def test_a_corrected_secret_applies_without_a_restart(
    qtbot, engine_kind, local_sandbox, tmp_path, ossdesk_home
):
    import uuid

    import keyring

    from ossdesk.credentials import Profile, ProfileStore, keyring_available
    from ossdesk.ui.dialogs.accounts import AccountsDialog

    if not keyring_available():
        pytest.fail("this test needs a working system keyring (scripts/with-keyring)")
    service = f"ossdesk-gui-test-{uuid.uuid4().hex[:12]}"
    store = ProfileStore(tmp_path / "profiles.json", service=service)
    store.save(
        Profile(name="work", endpoint=local_sandbox.endpoint, bucket=DEFAULT_BUCKET,
                region=DEFAULT_REGION, prefix="drop", signature="v4",
                access_key_id=DEFAULT_ACCESS_KEY_ID),
        secret="a-mistyped-secret",
    )
    engine = make_engine(engine_kind, Settings(), store.credentials)
    window = MainWindow(engine, settings=Settings(), profile_store=store,
                        credentials=store.credentials)
    qtbot.addWidget(window)
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    window.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    window.show()
    try:
        qtbot.waitUntil(lambda: window.destination_bar.destination() is not None, timeout=10_000)
        (tmp_path / "first.txt").write_text("first")
        window.add_paths([str(tmp_path / "first.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        first = window.model.ids()[0]
        qtbot.waitUntil(lambda: row_of(window, first).state is TransferState.FAILED,
                        timeout=30_000)
        assert "secret" in row_of(window, first).error.lower()

        # Accounts -> type the right secret -> Save, as a user does (the dialog is modal).
        def correct_the_secret() -> None:
            dialog = window.findChild(AccountsDialog)
            assert dialog is not None
            try:
                qtbot.waitUntil(lambda: dialog.profile_names() == ["work"], timeout=10_000)
                dialog.list.setCurrentRow(0)
                assert dialog.name.text() == "work"
                dialog.secret.setText(DEFAULT_ACCESS_KEY_SECRET)
                dialog.save_button.click()
                qtbot.waitUntil(lambda: dialog.last_verdict_ok is True
                                and not dialog.is_busy(), timeout=10_000)
            finally:
                dialog.accept()

        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, correct_the_secret)
        window.open_accounts()
        assert keyring.get_password(service, "work/secret") == DEFAULT_ACCESS_KEY_SECRET

        # Retry uses the new secret...
        window.row_actions.select_ids([first])
        window.row_actions.act_retry.trigger()
        qtbot.waitUntil(lambda: row_of(window, first).state is TransferState.DONE,
                        timeout=30_000)
        # ...and so does a file added next.
        (tmp_path / "second.txt").write_text("second")
        window.add_paths([str(tmp_path / "second.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=10_000)
        second = next(i for i in window.model.ids() if i != first)
        qtbot.waitUntil(lambda: row_of(window, second).state is TransferState.DONE,
                        timeout=30_000)
        assert client(local_sandbox).head_object("drop/second.txt") is not None
    finally:
        close_window(qtbot, window, engine)
        store.delete("work")


def test_in_process_engine_runs_in_qthreads(qtbot, local_sandbox, tmp_path):
    """In the window's process the engine's workers are QThreads: every part, progress and
    done event of an upload comes from an :class:`EngineThread`, and none is left running
    once the window closed."""
    from PySide6.QtCore import QThread

    from ossdesk.core import events as ev
    from ossdesk.ui.qthreads import EngineThread, live_threads

    folder = tmp_path / "threads"
    folder.mkdir()
    data = os.urandom(3 * MIB + 7)
    (folder / "big.bin").write_bytes(data)
    settings = Settings(part_size_mib=1, files_at_once=1, parts_in_flight=2)
    window, engine = open_window(qtbot, local_sandbox, settings, "in-process")
    assert isinstance(engine, SchedulerAdapter)
    qtbot.waitUntil(lambda: engine.scheduler is not None, timeout=10_000)
    assert engine.scheduler is not None
    threads: dict[str, set[str]] = {}

    def record(event: Any) -> None:
        if isinstance(event, (ev.Progress, ev.Done)):
            current = QThread.currentThread()
            kind = "engine" if isinstance(current, EngineThread) else type(current).__name__
            threads.setdefault(type(event).__name__, set()).add(kind)

    engine.scheduler.add_listener(record)
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        qtbot.waitUntil(
            lambda: all(r.state is TransferState.DONE for r in window.model.rows()),
            timeout=60_000,
        )
        info = client(local_sandbox).head_object("drop/threads/big.bin")
        assert info is not None and info.crc64 == crc64(data)
        assert threads == {"Progress": {"engine"}, "Done": {"engine"}}
    finally:
        close_window(qtbot, window, engine)
    qtbot.waitUntil(lambda: live_threads() == [], timeout=10_000)


_EXIT_SCRIPT = """
import logging, sys, threading
logging.basicConfig()
from PySide6.QtCore import QCoreApplication
from ossdesk.ui import qthreads
qthreads.EXIT_WAIT = 1.0
app = QCoreApplication([])
stop = threading.Event()
qthreads.start_qthread(lambda: stop.wait(60), "ossdesk-worker-1")
if sys.argv[1] == "ends":
    stop.set()
"""


@pytest.mark.parametrize("case", ["ends", "stuck"])
def test_engine_qthreads_never_abort_the_exit(case):
    """A QThread deleted while it runs aborts the process ("QThread: Destroyed while thread
    is still running"). An engine thread that ends is waited for (exit status 0); one
    still running after the wait leaves the process with status 1 and a warning, not an
    abort."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, case], capture_output=True,
                          text=True, timeout=60, check=False)
    assert "Destroyed while thread" not in done.stderr
    if case == "ends":
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 1, done.stderr
        assert "threads still running: ossdesk-worker-1" in done.stderr
