"""Verified is visible (issue 15, item 8): the State column says how a done file was
checked, and "Copy URL" gives an address a user can read that a browser still opens.
Real sandbox, the window's real engine process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from ossdesk.core.checksum import crc64
from ossdesk.sandbox.server import DEFAULT_BUCKET, SandboxServer
from ossdesk.ui import engine_types as rq
from ossdesk.ui.app import SANDBOX_PROFILE
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import Column, TransferState
from tests.gui.test_engine_window import MIB, client, close_window, open_window

NAME = "照片 #1+2.jpg"
FOLDER = "相册 2024"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


def test_done_says_verified_and_the_url_is_readable(qtbot: QtBot, sandbox: SandboxServer,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    (folder / NAME).write_bytes(b"picture" * 1000)
    window, engine = open_window(qtbot, sandbox, Settings(), "process")
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 1, timeout=10_000)
        qtbot.waitUntil(lambda: window.model.rows()[0].state is TransferState.DONE,
                        timeout=60_000)
        row = window.model.rows()[0]
        state = window.model.index(0, Column.STATE).data()
        assert state == "Verified (CRC-64)"
        # The row knows its account (the Account column tells two accounts apart).
        assert window.model.index(0, Column.ACCOUNT).data() == SANDBOX_PROFILE

        window.row_actions.select_ids([row.id])
        window.row_actions.act_copy_url.trigger()
        url = QGuiApplication.clipboard().text()
        key = f"drop/{FOLDER}/{NAME}"
        # Readable: the Chinese stays Chinese; what would break the address is escaped.
        assert url == f"{sandbox.endpoint}/{DEFAULT_BUCKET}/drop/相册%202024/照片%20%231%2B2.jpg"
        # Still a valid address: a browser (here Qt's URL parser) finds the same key, and
        # sends exactly the fully escaped form.
        parsed = QUrl(url, QUrl.ParsingMode.StrictMode)
        assert parsed.isValid()
        assert parsed.path() == f"/{DEFAULT_BUCKET}/{key}"
        encoded = bytes(parsed.toEncoded().data()).decode()
        assert encoded == f"{sandbox.endpoint}/{DEFAULT_BUCKET}/{quote(key, safe='/')}"
    finally:
        close_window(qtbot, window, engine)

    # After a restart the row still says how it was verified (read from the upload list).
    window2, engine2 = open_window(qtbot, sandbox, Settings(), "process")
    try:
        qtbot.waitUntil(lambda: len(window2.model.rows(full=False)) == 1, timeout=15_000)
        assert window2.model.index(0, Column.STATE).data() == "Verified (CRC-64)"
    finally:
        close_window(qtbot, window2, engine2)


def test_details_show_the_check_upload_id_parts_and_times(qtbot: QtBot, sandbox: SandboxServer,
                                                          tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 100)
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("small")
    window, engine = open_window(qtbot, sandbox, Settings(part_size_mib=1), "process")
    try:
        window.add_paths([str(tmp_path / "big.bin"), str(tmp_path / "small.txt")])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 2, timeout=10_000)
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE for r in window.model.rows()),
                        timeout=60_000)
        big = next(r for r in window.model.rows() if r.name == "big.bin")
        window.row_actions.select_ids([big.id])
        assert window.row_actions.act_details.isEnabled()
        assert window.row_actions.act_details in window.row_actions.context_menu().actions()
        dialog = window.row_actions.details_dialog(big)
        values = dialog.values
        assert values["crc64"] == str(crc64(data))
        info = client(sandbox).head_object("drop/big.bin")
        assert info is not None and values["crc64"] == str(info.crc64)
        assert values["check"] == "CRC-64: the object's CRC-64 equals the file's"
        assert values["parts"] == "4" and values["part_size"] == "1 MiB"
        assert values["upload_id"] not in ("", "—")
        assert values["destination"] == f"oss://{DEFAULT_BUCKET}/drop/big.bin"
        assert values["url"] == f"{sandbox.endpoint}/{DEFAULT_BUCKET}/drop/big.bin"
        assert values["account"] == SANDBOX_PROFILE
        assert all(values[k] != "—" for k in ("queued", "started", "finished"))
        details = engine.ask(rq.Details(big))
        assert details is not None and details.started_at is not None
        assert details.finished_at is not None
        assert details.queued_at <= details.started_at <= details.finished_at
        dialog.copy_button.click()
        assert QGuiApplication.clipboard().text() == values["url"]
        dialog.close()

        small = next(r for r in window.model.rows() if r.name == "small.txt")
        values = window.row_actions.details_dialog(small).values
        assert values["upload_id"] == "None (sent in one request)"
        assert values["crc64"] == str(crc64(b"small"))
    finally:
        close_window(qtbot, window, engine)


class _NoUrlEngine:
    """The upload list knows the row, but the URL query fails (e.g. not recorded yet)."""

    def __init__(self, details: rq.UploadDetails) -> None:
        self.details = details

    def ask(self, query: object) -> object:
        if isinstance(query, rq.Details):
            return self.details
        raise LookupError("no such row yet")


def test_details_do_not_depend_on_the_url_query(qtbot: QtBot) -> None:
    from ossdesk.ui.dialogs.details import DetailsDialog
    from ossdesk.ui.transfer_model import TransferRow

    row = TransferRow(id=7, name="a.bin", source_path="/data/a.bin", size=3,
                      destination="oss://b/k/a.bin", bucket="b", key="k/a.bin",
                      state=TransferState.DONE)
    known = rq.UploadDetails(
        source="/data/a.bin", size=3, account="work", endpoint="http://127.0.0.1:1",
        bucket="b", key="k/a.bin", url="http://127.0.0.1:1/b/k/a.bin", state="done",
        skipped=False, check="crc64", crc64=42, etag=None, upload_id=None, parts=0,
        part_size=None, queued_at=1.0, started_at=2.0, finished_at=3.0)
    dialog = DetailsDialog.for_row(_NoUrlEngine(known), row, None)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    assert dialog.values["crc64"] == "42"
    assert dialog.url == known.url


def test_details_of_a_plan_that_grew_say_both_part_sizes(qtbot: QtBot) -> None:
    from ossdesk.ui.dialogs.details import DetailsDialog
    from ossdesk.ui.transfer_model import TransferRow

    row = TransferRow(id=7, name="a.bin", source_path="/data/a.bin", size=3,
                      destination="oss://b/k/a.bin", bucket="b", key="k/a.bin",
                      state=TransferState.DONE)
    mib = 1024 * 1024
    known = rq.UploadDetails(
        source="/data/a.bin", size=1024 * mib, account="work", endpoint="http://127.0.0.1:1",
        bucket="b", key="k/a.bin", url="http://127.0.0.1:1/b/k/a.bin", state="done",
        skipped=False, check="crc64", crc64=42, etag=None, upload_id="U", parts=140,
        part_size=8 * mib, queued_at=1.0, started_at=2.0, finished_at=3.0,
        head_size=2 * mib, head_parts=16)
    dialog = DetailsDialog.for_row(_NoUrlEngine(known), row, None)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    assert dialog.values["part_size"] == "2 MiB (the first 16 parts), then 8 MiB"
