"""Retry keeps a row where it is in the queue: in the window, and in the upload list that
the next start reads."""

from __future__ import annotations

import os

import pytest

from ossdesk.core.checksum import crc64
from ossdesk.core.store import State, Store
from ossdesk.sandbox.server import SandboxServer
from ossdesk.ui import engine_types as rq
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from tests.gui.test_engine_window import client, close_window, open_window, row_of


@pytest.fixture(params=["in-process", "process"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def local_sandbox(tmp_path):
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


def test_retrying_a_failed_row_in_the_middle_leaves_it_in_the_middle(
    qtbot, engine_kind, local_sandbox, tmp_path
):
    for name in ("first", "middle", "last"):
        (tmp_path / f"{name}.txt").write_text(name)
    window, engine = open_window(qtbot, local_sandbox, Settings(), engine_kind)
    try:
        window.add_paths([str(tmp_path / "first.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
        good = window.destination_bar.bucket_edit.text()
        window.destination_bar.bucket_edit.setText("no-such-bucket")
        window.add_paths([str(tmp_path / "middle.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=10_000)
        window.destination_bar.bucket_edit.setText(good)
        window.add_paths([str(tmp_path / "last.txt")])
        qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=10_000)
        middle = window.model.ids()[1]
        qtbot.waitUntil(lambda: row_of(window, middle).state is TransferState.FAILED,
                        timeout=30_000)
        window.row_actions.select_ids([middle])
        window.row_actions.act_retry.trigger()
        qtbot.waitUntil(lambda: window.model.current_state(middle) is TransferState.FAILED,
                        timeout=30_000)
        order = window.model.ids()
        assert order[1] == middle, order
        assert [row_of(window, k).name for k in order] == [
            "first.txt", "middle.txt", "last.txt"]
    finally:
        close_window(qtbot, window, engine)

    # The next start reads the same order from the upload list.
    store = Store.open(owner=False)
    try:
        names = [r.source.name for r in store.rows()]
    finally:
        store.close()
    assert names == ["first.txt", "middle.txt", "last.txt"]



def test_retrying_a_cancelled_row_in_the_middle_restarts_it_in_the_middle(
    qtbot, engine_kind, local_sandbox, tmp_path
):
    mib = 1024 * 1024
    data = {name: os.urandom(3 * mib) for name in ("first", "middle", "last")}
    for name, content in data.items():
        (tmp_path / f"{name}.bin").write_bytes(content)
    slow = Settings(part_size_mib=1, bandwidth_limit_kib=768, files_at_once=3)
    window, engine = open_window(qtbot, local_sandbox, slow, engine_kind)
    try:
        window.add_paths([str(tmp_path / f"{name}.bin") for name in data])
        qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=10_000)
        middle = window.model.ids()[1]
        assert row_of(window, middle).name == "middle.bin"
        qtbot.waitUntil(lambda: row_of(window, middle).confirmed_bytes >= mib, timeout=30_000)
        window.row_actions.select_ids([middle])
        window.row_actions.act_cancel.trigger()
        qtbot.waitUntil(lambda: row_of(window, middle).state is TransferState.CANCELLED,
                        timeout=15_000)
        engine.send(rq.ApplySettings(Settings(part_size_mib=1)))  # full speed from here
        window.row_actions.select_ids([middle])
        window.row_actions.act_retry.trigger()
        qtbot.waitUntil(
            lambda: [r.state for r in window.model.rows()] == [TransferState.DONE] * 3,
            timeout=60_000)
        # The same row, started over, in its place.
        assert window.model.ids()[1] == middle
        assert [row_of(window, k).name for k in window.model.ids()] == [
            "first.bin", "middle.bin", "last.bin"]
    finally:
        close_window(qtbot, window, engine)
    info = client(local_sandbox).head_object("drop/middle.bin")
    assert info is not None and info.crc64 == crc64(data["middle"])
    assert client(local_sandbox).list_multipart_uploads() == []

    store = Store.open(owner=False)
    try:
        rows = store.rows()
    finally:
        store.close()
    assert [(r.source.name, r.state) for r in rows] == [
        ("first.bin", State.DONE), ("middle.bin", State.DONE), ("last.bin", State.DONE)]

    # After a restart the window shows the same order.
    window2, engine2 = open_window(qtbot, local_sandbox, Settings(), engine_kind)
    try:
        qtbot.waitUntil(lambda: window2.model.rowCount() == 3, timeout=15_000)
        assert [r.name for r in window2.model.rows()] == ["first.bin", "middle.bin", "last.bin"]
    finally:
        close_window(qtbot, window2, engine2)
