"""A dropped folder as one transfer, over the real engine (in the window's process and in
its own) and a real sandbox: the engine records the folder, the window shows one line for
it, pause and resume of that line act on all its files, and a restart brings it back."""

from __future__ import annotations

import os
from pathlib import Path

from pytestqt.qtbot import QtBot

from ossdesk.core.checksum import crc64
from ossdesk.sandbox.server import DEFAULT_BUCKET, SandboxServer
from ossdesk.ui import engine_types as rq
from ossdesk.ui.drop_flow import EXISTING_SKIP
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import Column, TransferState
from tests.gui.test_engine_window import (
    client,
    close_window,
    engine_kind,  # noqa: F401 - a fixture
    local_sandbox,  # noqa: F401 - a fixture
    open_window,
)

MIB = 1024 * 1024
FOLDER = "相册 2024"


def _lines(window: MainWindow) -> list[str]:
    model = window.view.model()
    return [model.index(n, Column.NAME).data() for n in range(model.rowCount())]


def _state_text(window: MainWindow, line: int) -> str:
    return str(window.view.model().index(line, Column.STATE).data())


def _make_folder(tmp_path: Path, files: int, size: int) -> tuple[Path, dict[str, bytes]]:
    folder = tmp_path / FOLDER
    contents: dict[str, bytes] = {}
    for n in range(files):
        name = f"day {n % 3}/img {n:03}.jpg"
        data = os.urandom(size + n)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        contents[name] = data
    return folder, contents


def test_a_dropped_folder_is_one_verified_line_and_comes_back_after_a_restart(
        qtbot: QtBot, engine_kind: str, local_sandbox: SandboxServer,  # noqa: F811
        tmp_path: Path) -> None:
    folder, contents = _make_folder(tmp_path, 12, 40_000)
    loose = tmp_path / "notes.txt"
    loose.write_bytes(b"on its own")
    settings = Settings(part_size_mib=1, files_at_once=3, parts_in_flight=4)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    try:
        window.add_paths([str(folder), str(loose)])
        qtbot.waitUntil(lambda: len(window.model.rows()) == 13, timeout=20_000)
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE
                                    for r in window.model.rows()), timeout=60_000)
        window.model.flush()
        # One line for the folder, one for the file dropped on its own.
        assert _lines(window) == [f"▸ {FOLDER}", "notes.txt"]
        [node] = window.model.folders()
        assert node.destination == f"oss://{DEFAULT_BUCKET}/drop/{FOLDER}/"
        assert node.total_size == sum(len(d) for d in contents.values())
        assert _state_text(window, 0) == "Verified (CRC-64)"
        oss = client(local_sandbox)
        for name, data in contents.items():
            info = oss.head_object(f"drop/{FOLDER}/{name}")
            assert info is not None and info.crc64 == crc64(data)
    finally:
        close_window(qtbot, window, engine)

    window2, engine2 = open_window(qtbot, local_sandbox, settings, engine_kind)
    try:
        qtbot.waitUntil(lambda: len(window2.model.rows()) == 13, timeout=20_000)
        window2.model.flush()
        assert _lines(window2) == [f"▸ {FOLDER}", "notes.txt"]
        assert _state_text(window2, 0) == "Verified (CRC-64)"
    finally:
        close_window(qtbot, window2, engine2)


def test_pausing_a_folder_line_pauses_all_its_files_and_resume_finishes_them(
        qtbot: QtBot, engine_kind: str, local_sandbox: SandboxServer,  # noqa: F811
        tmp_path: Path) -> None:
    folder, contents = _make_folder(tmp_path, 6, MIB)
    # 1 MiB/s for 6 MiB: long enough to pause the folder mid-way.
    settings = Settings(part_size_mib=1, files_at_once=2, bandwidth_limit_kib=1024)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows()) == 6, timeout=20_000)
        [node] = window.model.folders()
        qtbot.waitUntil(lambda: node.confirmed_bytes > 0, timeout=30_000)
        window.row_actions.select_folder(node.info.id)
        window.row_actions.act_pause.trigger()
        qtbot.waitUntil(lambda: all(r.state in (TransferState.PAUSED, TransferState.DONE)
                                    for r in window.model.rows()), timeout=20_000)
        window.model.flush()
        assert any(r.state is TransferState.PAUSED for r in window.model.rows())
        assert _state_text(window, 0).startswith("Paused")
        window.row_actions.select_folder(node.info.id)
        window.row_actions.act_resume.trigger()
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE
                                    for r in window.model.rows()), timeout=60_000)
        window.model.flush()
        assert _state_text(window, 0) == "Verified (CRC-64)"
        oss = client(local_sandbox)
        for name, data in contents.items():
            info = oss.head_object(f"drop/{FOLDER}/{name}")
            assert info is not None and info.crc64 == crc64(data)
    finally:
        close_window(qtbot, window, engine)


def test_dropping_a_folder_again_while_its_files_wait_continues_them_in_their_rows(
        qtbot: QtBot, engine_kind: str, local_sandbox: SandboxServer,  # noqa: F811
        tmp_path: Path) -> None:
    folder, _ = _make_folder(tmp_path, 4, 300_000)
    # 64 KiB/s: the first file takes seconds, the folder is paused long before it is done.
    settings = Settings(files_at_once=1, bandwidth_limit_kib=64)
    window, engine = open_window(qtbot, local_sandbox, settings, engine_kind)
    # Files done before the pause are in the bucket: the drop asks, and is told to skip them.
    window.drops.ask_existing = lambda count, keys: EXISTING_SKIP  # type: ignore[method-assign]
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 4, timeout=20_000)
        [node] = window.model.folders()
        window.row_actions.select_folder(node.info.id)
        window.row_actions.act_pause.trigger()
        qtbot.waitUntil(lambda: all(r.state in (TransferState.PAUSED, TransferState.DONE)
                                    for r in window.model.rows()), timeout=20_000)
        paused = [r.id for r in window.model.rows() if r.state is TransferState.PAUSED]
        done = len(window.model.rows()) - len(paused)
        assert paused
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: "in the queue: " in window.statusBar().currentMessage(),
                        timeout=20_000)
        engine.ask(rq.WaitIdle())
        window.bridge.drain()
        # The paused files are not queued again: they continue in their rows (a done one
        # comes back as already there).
        assert len(window.model.rows(full=False)) == 4 + done
        assert not any(r.state is TransferState.PAUSED for r in window.model.rows())
        continued = [r.id for r in window.model.rows(full=False) if r.id in paused]
        assert continued == paused
    finally:
        close_window(qtbot, window, engine)
