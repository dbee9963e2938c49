"""Files dropped again while the queue has them (the real engine in the window's process
and in its own, a real sandbox on 127.0.0.1, the real upload list).

The engine decides, from the upload list, as ``ossdesk upload`` run again does: the same
file to another object is another upload; the same file to the same object continues its
unfinished row (a paused or failed row goes on with the parts OSS confirmed, a waiting or
uploading row is left as it is), and the window says so in its language.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import oss2
import pytest
from pytestqt.qtbot import QtBot

from ossdesk import config
from ossdesk.core.checksum import crc64
from ossdesk.core.store import NewUpload, State, Store
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    SandboxServer,
)
from ossdesk.ui import engine_types as rq
from ossdesk.ui.drop_flow import EXISTING_SKIP
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import RowKey, TransferState
from tests.gui.test_engine_window import Engine, client, close_window, open_window, row_of
from tests.gui.test_unfinished_drop import _unfinished_requests, paced_walk
from tests.reliability.helpers import part_puts
from tests.support.sandbox import read_access_log

__all__ = ["paced_walk"]

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024


@pytest.fixture(params=["in-process", "process"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def logged_sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox that writes every request to its access log (the UploadParts are counted)."""
    server = SandboxServer(tmp_path / "sandbox-root", port=0,
                           log_path=tmp_path / "access.log").start()
    yield server
    server.stop()


def _verified(server: SandboxServer, key: str, data: bytes) -> bool:
    info = client(server).head_object(key)
    return info is not None and info.size == len(data) and info.crc64 == crc64(data)


def _messages(window: MainWindow) -> list[str]:
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    return said


def _pause(qtbot: QtBot, window: MainWindow, upload: RowKey) -> None:
    window.row_actions.select_ids([upload])
    window.row_actions.act_pause.trigger()
    qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.PAUSED,
                    timeout=20_000)


def _paused_then_other_options(qtbot: QtBot, window: MainWindow, path: Path) -> RowKey:
    """Drop ``path``, pause its row once a part is confirmed, then give the destination
    another storage class (IA); the paused row's id."""
    window.add_paths([str(path)])
    qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 1, timeout=10_000)
    [first] = window.model.ids()
    qtbot.waitUntil(lambda: row_of(window, first).confirmed_bytes >= MIB, timeout=30_000)
    _pause(qtbot, window, first)
    bar = window.destination_bar
    plain = bar.destination()
    assert plain is not None
    bar.destination = lambda: dataclasses.replace(  # type: ignore[method-assign]
        plain, storage_class="IA")
    return first


def _settle(window: MainWindow, engine: Engine) -> None:
    engine.ask(rq.WaitIdle())
    window.bridge.drain()


def _sent_parts(log: Path) -> list[tuple[str, int]]:
    return [(p.upload_id, p.number) for p in part_puts(log) if p.status == 200]


def test_the_same_file_dropped_into_another_folder_is_a_second_upload(
        qtbot: QtBot, engine_kind: str, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 5)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    # 1 MiB/s: the first upload is still on its way when the file is dropped again.
    settings = Settings(part_size_mib=1, bandwidth_limit_kib=1024)
    window, engine = open_window(qtbot, logged_sandbox, settings, engine_kind)
    try:
        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 1, timeout=10_000)
        window.destination_bar.folder_edit.setText("other")
        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 2, timeout=10_000)
        rows = window.model.rows()
        assert sorted(r.key for r in rows) == ["drop/x.bin", "other/x.bin"]
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE
                                    for r in window.model.rows()), timeout=60_000)
        assert _verified(logged_sandbox, "drop/x.bin", data)
        assert _verified(logged_sandbox, "other/x.bin", data)
        assert not window.drops.problems
    finally:
        close_window(qtbot, window, engine)


def test_a_paused_file_dropped_again_continues_in_its_row_with_its_parts(
        qtbot: QtBot, engine_kind: str, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    data = os.urandom(6 * MIB + 3)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    settings = Settings(part_size_mib=1, parts_in_flight=1, bandwidth_limit_kib=2048)
    window, engine = open_window(qtbot, logged_sandbox, settings, engine_kind)
    said = _messages(window)
    try:
        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 1, timeout=10_000)
        [upload] = window.model.ids()
        qtbot.waitUntil(lambda: row_of(window, upload).confirmed_bytes >= 2 * MIB,
                        timeout=30_000)
        _pause(qtbot, window, upload)
        _settle(window, engine)
        kept = set(_sent_parts(logged_sandbox.log_path or Path()))
        assert len(kept) >= 2
        said.clear()

        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.DONE,
                        timeout=60_000)
        _settle(window, engine)
        # One row, the same one; the parts OSS had confirmed were not sent again.
        assert window.model.ids() == [upload]
        sent = _sent_parts(logged_sandbox.log_path or Path())
        assert all(sent.count(part) == 1 for part in kept), sent
        assert len({u for u, _ in sent}) == 1
        assert _verified(logged_sandbox, "drop/x.bin", data)
        assert any("x.bin was in the queue: it continues there" in m for m in said), said
        assert not any(m.startswith("Added") for m in said), said  # no file was added
        assert not window.drops.problems
    finally:
        close_window(qtbot, window, engine)


def test_a_failed_file_dropped_again_is_tried_again_in_its_row(
        qtbot: QtBot, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    data = os.urandom(4 * MIB)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    # OSS refuses the third part for good (no permission): the row fails, its parts kept.
    logged_sandbox.faults.fail(403, method="PUT", pattern=r"partNumber=3\b", count=None,
                               code="AccessDenied")
    settings = Settings(part_size_mib=1, parts_in_flight=1)
    window, engine = open_window(qtbot, logged_sandbox, settings)
    said = _messages(window)
    try:
        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 1, timeout=10_000)
        [upload] = window.model.ids()
        qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.FAILED,
                        timeout=30_000)
        kept = set(_sent_parts(logged_sandbox.log_path or Path()))
        assert len(kept) == 2
        logged_sandbox.faults.clear()

        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: row_of(window, upload).state is TransferState.DONE,
                        timeout=60_000)
        _settle(window, engine)
        assert window.model.ids() == [upload]
        sent = _sent_parts(logged_sandbox.log_path or Path())
        assert all(sent.count(part) == 1 for part in kept), sent
        assert _verified(logged_sandbox, "drop/x.bin", data)
        assert any("x.bin was in the queue: it continues there" in m for m in said), said
    finally:
        close_window(qtbot, window, engine)


def test_a_waiting_file_dropped_again_is_left_as_it_is(
        qtbot: QtBot, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    contents = {first: os.urandom(2 * MIB), second: os.urandom(MIB + 7)}
    for p, d in contents.items():
        p.write_bytes(d)
    # One file at a time at 1 MiB/s: b.bin waits while a.bin is sent.
    settings = Settings(part_size_mib=1, files_at_once=1, bandwidth_limit_kib=1024)
    window, engine = open_window(qtbot, logged_sandbox, settings)
    said = _messages(window)
    try:
        window.add_paths([str(first), str(second)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 2, timeout=10_000)
        ids = window.model.ids()
        waiting = next(r.id for r in window.model.rows() if r.name == "b.bin")
        assert row_of(window, waiting).state is TransferState.QUEUED

        window.add_paths([str(second)])
        qtbot.waitUntil(lambda: any("b.bin is in the queue" in m for m in said),
                        timeout=20_000)
        _settle(window, engine)
        assert window.model.ids() == ids
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE
                                    for r in window.model.rows()), timeout=60_000)
        for p, d in contents.items():
            assert _verified(logged_sandbox, f"drop/{p.name}", d)
        assert any("b.bin is in the queue: left as it is" in m for m in said), said
        assert not window.drops.problems
    finally:
        close_window(qtbot, window, engine)


def test_a_folder_dropped_again_retries_only_its_failed_file(
        qtbot: QtBot, engine_kind: str, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    contents = {"a.jpg": os.urandom(200_000), "b.jpg": os.urandom(300_000),
                "c.bin": os.urandom(4 * MIB)}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    logged_sandbox.faults.fail(403, method="PUT", pattern=r"c\.bin\?.*partNumber=3\b",
                               count=None, code="AccessDenied")
    settings = Settings(part_size_mib=1, parts_in_flight=1)
    window, engine = open_window(qtbot, logged_sandbox, settings, engine_kind)
    # The files done are in the bucket: the drop asks, and is told to skip identical ones.
    window.drops.ask_existing = lambda count, keys: EXISTING_SKIP  # type: ignore[method-assign]
    said = _messages(window)
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 3, timeout=10_000)
        qtbot.waitUntil(lambda: {r.name: r.state for r in window.model.rows()} == {
            "a.jpg": TransferState.DONE, "b.jpg": TransferState.DONE,
            "c.bin": TransferState.FAILED}, timeout=30_000)
        failed = next(r.id for r in window.model.rows() if r.name == "c.bin")
        first = _sent_parts(logged_sandbox.log_path or Path())
        kept = set(first)
        assert len(kept) == 2
        logged_sandbox.faults.clear()

        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: row_of(window, failed).state is TransferState.DONE,
                        timeout=60_000)
        qtbot.waitUntil(lambda: any("c.bin was in the queue" in m for m in said),
                        timeout=20_000)
        _settle(window, engine)
        rows = window.model.rows()
        # c.bin went on in its row (its parts kept); it has no second row.
        assert [r.id for r in rows if r.name == "c.bin"] == [failed]
        sent = _sent_parts(logged_sandbox.log_path or Path())
        # None of them was sent again (a busy machine may have had one sent twice in the
        # first drop already: a try whose answer came too late).
        assert all(sent.count(part) == first.count(part) for part in kept), (first, sent)
        # The two files already done were not sent again (found identical in the bucket).
        assert all(r.state in (TransferState.DONE, TransferState.SKIPPED) for r in rows)
        log = read_access_log(logged_sandbox.log_path or Path())
        for name in ("a.jpg", "b.jpg"):  # one PutObject each, in the first drop
            assert [r["method"] for r in log if unquote(r["path"]).endswith(f"/album/{name}")
                    and r["method"] == "PUT"] == ["PUT"], name
        for name, data in contents.items():
            assert _verified(logged_sandbox, f"drop/album/{name}", data)
        refused = [p for p in part_puts(logged_sandbox.log_path or Path()) if p.status != 200]
        assert len(refused) >= 1  # part 3, in the first drop
        assert any("c.bin was in the queue: it continues there" in m for m in said), said
    finally:
        close_window(qtbot, window, engine)



def test_a_paused_file_dropped_again_with_other_options_replaces_its_row(
        qtbot: QtBot, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    """The destination's options changed since the file was queued (another storage class):
    as ``ossdesk upload`` run again does, the earlier upload is cancelled through the engine
    (aborted on the server, its row kept as cancelled) and the file goes again as a new row
    with the new options; the window says so."""
    data = os.urandom(4 * MIB)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    settings = Settings(part_size_mib=1, parts_in_flight=1, bandwidth_limit_kib=1024)
    window, engine = open_window(qtbot, logged_sandbox, settings)
    said = _messages(window)
    try:
        first = _paused_then_other_options(qtbot, window, path)
        said.clear()

        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 2, timeout=20_000)
        second = next(i for i in window.model.ids() if i != first)
        qtbot.waitUntil(lambda: row_of(window, second).state is TransferState.DONE,
                        timeout=60_000)
        qtbot.waitUntil(lambda: row_of(window, first).state is TransferState.CANCELLED,
                        timeout=20_000)
        _settle(window, engine)
        assert _verified(logged_sandbox, "drop/x.bin", data)
        bucket = oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                             logged_sandbox.endpoint, DEFAULT_BUCKET)
        assert bucket.head_object("drop/x.bin").headers["x-oss-storage-class"] == "IA"
        assert client(logged_sandbox).list_multipart_uploads("drop/") == []  # aborted
        assert any(m.startswith("Added 1 file") and "another storage class" in m
                   and "it was cancelled" in m for m in said), said
    finally:
        close_window(qtbot, window, engine)


def test_other_options_while_the_earlier_abort_fails_queue_nothing(
        qtbot: QtBot, logged_sandbox: SandboxServer, tmp_path: Path) -> None:
    """The earlier upload (other options) cannot be aborted (the server refuses the
    DELETE): the file is not queued, the window says why, and nothing ends in the bucket
    with the older options. Once that row is cancelled, the file dropped again goes with
    the new options."""
    data = os.urandom(4 * MIB)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    settings = Settings(part_size_mib=1, parts_in_flight=1, bandwidth_limit_kib=1024)
    window, engine = open_window(qtbot, logged_sandbox, settings)
    said = _messages(window)
    try:
        first = _paused_then_other_options(qtbot, window, path)
        # The abort is refused (a RAM policy without oss:AbortMultipartUpload).
        logged_sandbox.faults.fail(403, method="DELETE", pattern="uploadId", count=None,
                                   code="AccessDenied")
        said.clear()
        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: any("is not uploaded" in m for m in said), timeout=30_000)
        _settle(window, engine)
        assert window.model.ids() == [first]  # no second row
        assert row_of(window, first).state is TransferState.FAILED
        assert not any("it is cancelled" in m or "it was cancelled" in m for m in said), said
        assert any("could not be aborted on the server" in m and "x.bin" in m
                   for m in said), said
        assert client(logged_sandbox).head_object("drop/x.bin") is None

        # As the window says: cancel that row (the abort now succeeds), drop the file again.
        logged_sandbox.faults.clear()
        window.row_actions.select_ids([first])
        engine.send(rq.Cancel([first]))
        qtbot.waitUntil(lambda: row_of(window, first).state is TransferState.CANCELLED,
                        timeout=20_000)
        window.add_paths([str(path)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 2, timeout=20_000)
        second = next(i for i in window.model.ids() if i != first)
        qtbot.waitUntil(lambda: row_of(window, second).state is TransferState.DONE,
                        timeout=60_000)
        _settle(window, engine)
        assert _verified(logged_sandbox, "drop/x.bin", data)
        bucket = oss2.Bucket(oss2.Auth(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                             logged_sandbox.endpoint, DEFAULT_BUCKET)
        assert bucket.head_object("drop/x.bin").headers["x-oss-storage-class"] == "IA"
        assert row_of(window, first).state is TransferState.CANCELLED
    finally:
        close_window(qtbot, window, engine)


def test_a_failed_file_met_by_a_walk_finished_at_start_stays_failed_when_uploads_wait(
        qtbot: QtBot, logged_sandbox: SandboxServer, tmp_path: Path,
        paced_walk: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """A drop's walk cut short before it reached a file whose earlier upload failed; the
    window starts again with "resume by themselves" off: the walk is finished, the failed
    row stays failed with its error (nothing goes on by itself), and the window says the
    file stays in the queue rather than that it continues."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"{i:04}.txt").write_text(str(i))
    last = folder / "0299.txt"
    with Store.open() as store:
        (earlier,) = store.add([NewUpload(source=last, size=last.stat().st_size,
                                          mtime_ns=last.stat().st_mtime_ns,
                                          key=f"drop/many/{last.name}",
                                          endpoint=logged_sandbox.endpoint,
                                          bucket=DEFAULT_BUCKET)])
        store.set_state(earlier, State.FAILED, error="the connection failed",
                        error_code="ConnectionError")
    window, engine = open_window(qtbot, logged_sandbox, Settings(auto_resume=True))
    window.add_paths([str(folder)])
    qtbot.waitUntil(lambda: len(window.model.rows(full=False)) >= 101, timeout=20_000)
    close_window(qtbot, window, engine)  # the walk is still waiting after its first batch
    conn = sqlite3.connect(config.paths().database)
    try:
        with conn:  # the row as the window's own rows have it (its account and endpoint)
            conn.execute("UPDATE uploads SET (credentials, endpoint, region) = (SELECT "
                         "credentials, endpoint, region FROM uploads WHERE id != ? LIMIT 1) "
                         "WHERE id = ?", (earlier, earlier))
    finally:
        conn.close()

    said: list[str] = []
    monkeypatch.setattr(MainWindow, "_on_notice",
                        lambda self, upload, message: said.append(message))
    paced_walk[0] = False
    window2, engine2 = open_window(qtbot, logged_sandbox, Settings(auto_resume=False))
    try:
        qtbot.waitUntil(lambda: _unfinished_requests() == 0 and any(
            "were in the queue already" in m for m in said), timeout=60_000)
        _settle(window2, engine2)
        row = row_of(window2, earlier)
        assert row.state is TransferState.FAILED
        assert row.error == "the connection failed"
        [told] = [m for m in said if "were in the queue already" in m]
        assert "continue there" not in told
        assert "they stay there" in told, told
    finally:
        close_window(qtbot, window2, engine2)
