"""The engine in its own process (``ProcessEngineAdapter`` + ``ossdesk _engine``), against
the real sandbox on 127.0.0.1: credentials asked of the window, a window that vanishes, an
engine that dies. The window-level behaviour of both adapters is in test_engine_window."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
from pytestqt.qtbot import QtBot

from ossdesk.core import events as ev
from ossdesk.core.checksum import crc64
from ossdesk.core.store import State, Store
from ossdesk.credentials import Profile, ProfileStore
from ossdesk.engine_host import ProtocolError, encode_frame, read_frame
from ossdesk.sandbox.server import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from ossdesk.ui import engine_types as rq
from ossdesk.ui.app import SANDBOX_PROFILE, credentials_resolver, make_engine
from ossdesk.ui.engine_adapter import HANDLERS, SchedulerAdapter
from ossdesk.ui.engine_process import (
    IN_PROCESS_ENV,
    EngineRequestFailed,
    EngineStopped,
    ProcessEngineAdapter,
    engine_command,
)
from ossdesk.ui.engine_types import (
    TO_ENGINE,
    TO_WINDOW,
    Answer,
    Ask,
    Call,
    Destination,
    EngineUnavailable,
    Events,
    LogRecord,
    RowsRestored,
    SourceFile,
    Start,
    TransferRow,
    TransferState,
)
from ossdesk.ui.settings import Settings
from tests.gui.test_engine_window import close_window, local_sandbox, open_window  # noqa: F401
from tests.support.engine import Recorder
from tests.support.sandbox import SandboxInfo

MIB = 1024 * 1024
_HAS_PROC = Path("/proc/self/environ").exists()


def source_file(path: Path, key: str) -> SourceFile:
    st = path.stat()
    return SourceFile(str(path), key, st.st_size, st.st_mtime_ns)


def destination(sb: SandboxInfo, profile: str = SANDBOX_PROFILE) -> Destination:
    return Destination(profile, sb.endpoint, sb.bucket, region=sb.region)


def queued_id(rec: Recorder, key: str) -> int:
    event = rec.wait_for(lambda e: isinstance(e, ev.Queued) and e.key == key)
    assert event.upload is not None
    return event.upload


def row_for(upload: int) -> TransferRow:
    return TransferRow(id=upload, name="", source_path="", size=0, destination="")


def pid_gone(pid: int) -> bool:
    """The process has ended (a zombie nobody reaped counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture
def engines():
    """Process adapters made by a test; any still running at the end are shut down."""
    made: list[ProcessEngineAdapter] = []

    def make(settings: Settings | None = None, **kwargs) -> ProcessEngineAdapter:
        engine = ProcessEngineAdapter(settings or Settings(part_size_mib=1),
                                      credentials=credentials_resolver(), **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.shutdown(pause=True)
        assert engine.wait_closed(30)


def test_the_window_runs_the_engine_process_by_default(monkeypatch):
    monkeypatch.delenv(IN_PROCESS_ENV, raising=False)
    assert isinstance(make_engine(Settings(), credentials_resolver()), ProcessEngineAdapter)
    monkeypatch.setenv(IN_PROCESS_ENV, "1")
    assert isinstance(make_engine(Settings(), credentials_resolver()), SchedulerAdapter)


def test_engine_command_runs_the_hidden_subcommand(monkeypatch):
    assert engine_command() == [sys.executable, "-m", "ossdesk", "_engine"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert engine_command() == [sys.executable, "_engine"]


def test_session_only_credentials_are_asked_of_the_window(engines, sandbox, tmp_path,
                                                          ossdesk_home):
    # A profile whose secret exists only in this (the window's) process memory.
    ProfileStore().save(
        Profile(name="session-acct", endpoint=sandbox.endpoint, bucket=sandbox.bucket,
                region=sandbox.region, access_key_id=DEFAULT_ACCESS_KEY_ID),
        secret=DEFAULT_ACCESS_KEY_SECRET, session_only=True,
    )
    data = os.urandom(2 * MIB + 7)
    path = tmp_path / "session.bin"
    path.write_bytes(data)
    engine = engines()
    rec = Recorder()
    engine.start(rec)
    rec.wait_for(lambda e: isinstance(e, RowsRestored))
    where = destination(sandbox, "session-acct")
    assert engine.ask(rq.FindExisting([source_file(path, "s/session.bin")], where)) == []
    engine.send(rq.Enqueue([source_file(path, "s/session.bin")], where))
    upload = queued_id(rec, "s/session.bin")
    done = rec.wait_for(lambda e: isinstance(e, (ev.Done, ev.Failed)) and e.upload == upload)
    assert isinstance(done, ev.Done), done
    info = sandbox.bucket_client().head_object("s/session.bin")
    assert int(info.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    # The blocking requests answer through the pipe.
    assert engine.ask(rq.FindExisting([source_file(path, "s/session.bin")], where)) == [
        "s/session.bin"]
    link = engine.ask(rq.PresignedUrl(row_for(upload), 600))
    assert link.startswith(f"{sandbox.endpoint}/{sandbox.bucket}/")
    with urllib.request.urlopen(link, timeout=10) as response:  # 127.0.0.1 only
        assert response.read() == data
    assert engine.ask(rq.ObjectUrl(row_for(upload))) == (
        f"{sandbox.endpoint}/{sandbox.bucket}/s/session.bin")
    with pytest.raises(EngineRequestFailed, match="not known"):
        engine.ask(rq.PresignedUrl(row_for(upload + 1000), 600))
    # The secret never left through the command line, the environment or a file.
    secret = DEFAULT_ACCESS_KEY_SECRET.encode()
    assert engine.process is not None
    pid = engine.process.pid
    if _HAS_PROC:
        assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert secret not in Path(f"/proc/{pid}/environ").read_bytes()
        # ... and the engine process has not loaded Qt.
        assert b"PySide6" not in Path(f"/proc/{pid}/maps").read_bytes()
    for file in ossdesk_home.rglob("*"):
        if file.is_file():
            assert secret not in file.read_bytes(), file


def test_a_profile_without_credentials_fails_its_file_not_the_engine(engines, sandbox,
                                                                     tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a")
    engine = engines()
    rec = Recorder()
    engine.start(rec)
    engine.send(rq.Enqueue([source_file(path, "a.txt")], destination(sandbox, "no-such-profile")))
    upload = queued_id(rec, "a.txt")
    failed = rec.wait_for(lambda e: isinstance(e, (ev.Done, ev.Failed)) and e.upload == upload)
    assert isinstance(failed, ev.Failed) and "no-such-profile" in failed.message
    with pytest.raises(EngineRequestFailed, match="nobody"):
        engine.ask(rq.FindExisting([source_file(path, "a.txt")], destination(sandbox, "nobody")))


def test_closed_pipe_pauses_the_uploads_and_a_restart_finishes_them(engines, sandbox, tmp_path):
    data = os.urandom(4 * MIB)
    path = tmp_path / "slow.bin"
    path.write_bytes(data)
    engine = engines(Settings(part_size_mib=1, bandwidth_limit_kib=1024))
    rec = Recorder()
    engine.start(rec)
    engine.send(rq.Enqueue([source_file(path, "slow.bin")], destination(sandbox)))
    upload = queued_id(rec, "slow.bin")
    rec.wait_for(lambda e: isinstance(e, ev.Progress) and e.upload == upload
                 and e.confirmed_bytes >= MIB)
    engine.abandon()  # what a killed window does to the pipe: no shutdown request
    assert engine.wait_closed(30)
    assert engine.returncode == 0
    assert not any(isinstance(e, EngineUnavailable) for e in rec.events)
    with pytest.raises(EngineStopped):
        engine.ask(rq.FindExisting([source_file(path, "slow.bin")], destination(sandbox)))
    store = Store.open(owner=False)
    try:
        row = store.get(upload)
    finally:
        store.close()
    assert row is not None and row.state is State.PAUSED and row.upload_id
    assert 0 < row.confirmed_bytes < len(data)

    again = engines(Settings(part_size_mib=1, auto_resume=True))
    rec2 = Recorder()
    again.start(rec2)
    restored = rec2.wait_for(lambda e: isinstance(e, RowsRestored))
    assert isinstance(restored, RowsRestored)
    assert [r.id for r in restored.rows] == [upload]
    assert restored.rows[0].confirmed_bytes == row.confirmed_bytes
    started = rec2.wait_for(lambda e: isinstance(e, ev.Started) and e.upload == upload)
    assert isinstance(started, ev.Started) and started.resumed
    done = rec2.wait_for(lambda e: isinstance(e, (ev.Done, ev.Failed)) and e.upload == upload)
    assert isinstance(done, ev.Done), done
    info = sandbox.bucket_client().head_object("slow.bin")
    assert int(info.headers["x-oss-hash-crc64ecma"]) == crc64(data)


_KILLED_WINDOW = textwrap.dedent(
    """
    import sys, time
    from ossdesk.core import events as ev
    from ossdesk.ui.app import credentials_resolver
    from ossdesk.ui.engine_process import ProcessEngineAdapter
    from ossdesk.ui import engine_types as rq
    from ossdesk.ui.engine_types import Destination, SourceFile
    from ossdesk.ui.settings import Settings

    path, endpoint, bucket, region, size, mtime_ns = sys.argv[1:]
    engine = ProcessEngineAdapter(Settings(part_size_mib=1, bandwidth_limit_kib=1024),
                                  credentials=credentials_resolver())
    def listener(event):
        if isinstance(event, ev.Progress) and event.confirmed_bytes >= 1024 * 1024:
            print("moving", engine.process.pid, flush=True)
    engine.start(listener)
    engine.send(rq.Enqueue([SourceFile(path, "killed.bin", int(size), int(mtime_ns))],
                           Destination("sandbox", endpoint, bucket, region=region)))
    time.sleep(120)
    """
)


@pytest.mark.skipif(not _HAS_PROC, reason="watches the engine process through /proc")
def test_a_killed_window_leaves_no_engine_and_the_next_one_finishes(engines, sandbox,
                                                                    tmp_path):
    data = os.urandom(4 * MIB)
    path = tmp_path / "killed.bin"
    path.write_bytes(data)
    st = path.stat()
    window = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WINDOW, str(path), sandbox.endpoint, sandbox.bucket,
         sandbox.region, str(st.st_size), str(st.st_mtime_ns)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert window.stdout is not None
        line = window.stdout.readline()
        assert line.startswith("moving "), line
        child = int(line.split()[1])
    finally:
        window.kill()  # SIGKILL: no shutdown, no goodbye
        window.wait()
        if window.stdout is not None:
            window.stdout.close()
    deadline = time.monotonic() + 30
    while not pid_gone(child):
        assert time.monotonic() < deadline, "the engine outlived its window"
        time.sleep(0.1)

    store = Store.open(owner=False)
    try:
        rows = store.unfinished()
    finally:
        store.close()
    assert [r.state for r in rows] == [State.PAUSED]
    assert rows[0].confirmed_bytes > 0

    engine = engines(Settings(part_size_mib=1, auto_resume=True))
    rec = Recorder()
    engine.start(rec)
    upload = rows[0].id
    done = rec.wait_for(lambda e: isinstance(e, (ev.Done, ev.Failed)) and e.upload == upload)
    assert isinstance(done, ev.Done), done
    info = sandbox.bucket_client().head_object("killed.bin")
    assert int(info.headers["x-oss-hash-crc64ecma"]) == crc64(data)


def test_an_engine_that_dies_is_reported_not_waited_for(
    qtbot: QtBot, local_sandbox  # noqa: F811
):
    window, engine = open_window(qtbot, local_sandbox, Settings(), "process")
    assert isinstance(engine, ProcessEngineAdapter)
    qtbot.waitUntil(lambda: engine.process is not None, timeout=10_000)
    assert engine.process is not None
    engine.process.kill()
    qtbot.waitUntil(lambda: bool(window.engine_error), timeout=10_000)
    assert "stopped unexpectedly" in window.engine_error
    assert not window.act_add_files.isEnabled()
    # At once, with the reason: not after a call's timeout ("did not answer in time").
    with pytest.raises(EngineStopped, match="stopped unexpectedly"):
        engine.ask(rq.PresignedUrl(row_for(1), 60))
    with pytest.raises(EngineStopped, match="stopped unexpectedly"):
        engine.ask(rq.FindExisting([], window.destination_bar.destination()))  # type: ignore[arg-type]
    close_window(qtbot, window, engine)


def test_rows_reach_the_window_through_the_engine_process(qtbot: QtBot,
                                                          local_sandbox,  # noqa: F811
                                                          tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1200):  # more than one frame of events
        (folder / f"f{i:04d}.txt").write_bytes(b"x")
    window, engine = open_window(qtbot, local_sandbox,
                                 Settings(files_at_once=4, parts_in_flight=8), "process")
    try:
        window.add_paths([str(folder)])
        qtbot.waitUntil(lambda: len(window.model.rows(full=False)) == 1200, timeout=30_000)
        qtbot.waitUntil(
            lambda: all(r.state is TransferState.DONE for r in window.model.rows()),
            timeout=120_000,
        )
    finally:
        close_window(qtbot, window, engine)


def test_the_engine_logs_through_the_window(engines, caplog):
    engine = engines()
    rec = Recorder()
    engine.start(rec)
    with caplog.at_level(logging.WARNING):
        engine._send(Call(rq.Move([1], top=cast(Any, "yes"))))
        engine.ask(rq.WaitIdle(30))
    records = [r for r in caplog.records if r.name == "ossdesk.engine_host"]
    assert records and "Move.top is not a bool" in records[0].getMessage()
    assert records[0].levelno == logging.ERROR


def _frames_until_answer(process: subprocess.Popen[bytes], request: int) -> tuple[Any, ...]:
    assert process.stdout is not None
    while True:
        message = read_frame(process.stdout, TO_WINDOW)
        assert message is not None, "the engine ended without answering"
        if isinstance(message, Answer) and message.request == request:
            return (message.ok, message.value)


def test_the_engine_process_refuses_unknown_and_ill_typed_requests(tmp_path):
    """A request reaches the handler table only if it is one of ``rq.REQUESTS``, of the
    kind asked (answered or not) and with every field of its declared type: a pipe frame
    built by hand is refused with a reason, and the engine goes on serving."""
    env = {**os.environ, "OSSDESK_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(engine_command(), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=env)
    assert process.stdin is not None
    row = TransferRow(id=1, name="", source_path="", size=0, destination="")
    try:
        def ask(request: int, query: object) -> tuple[Any, ...]:
            assert process.stdin is not None
            process.stdin.write(encode_frame(Ask(request, cast(Any, query))))
            process.stdin.flush()
            return _frames_until_answer(process, request)

        assert process.stdin is not None
        process.stdin.write(encode_frame(
            Start(Settings(), str(tmp_path / "uploads.db"), logging.WARNING, 0.0)))
        ok, value = ask(1, rq.Pause([1]))  # a request the window does not wait for
        assert ok is False and value == (
            "UnknownRequest", "a Pause is not a request the engine answers")
        ok, value = ask(2, row)  # not a request at all
        assert ok is False and value[0] == "UnknownRequest"
        ok, value = ask(3, rq.ObjectUrl(cast(Any, "oss://b/k")))
        assert ok is False and value == ("UnknownRequest", "ObjectUrl.row is not a TransferRow")
        ok, value = ask(4, rq.PresignedUrl(row, cast(Any, "600")))
        assert ok is False and value[1] == "PresignedUrl.expires_seconds is not a int"
        # The engine is still there and serves well-typed queries.
        assert ask(5, rq.WaitIdle(5.0)) == (True, None)
        ok, value = ask(6, rq.ObjectUrl(row))
        assert ok is False and value[0] == "LookupError"  # unknown row: an error answer
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        code = process.wait(30)
        process.stdout.close()
    assert code == 0


def test_every_engine_request_has_one_handler():
    """Adding an engine call is one dataclass and one handler: the table covers every
    request type and nothing else, the window's protocol has no per-request method, and
    both engines refuse what is not a request."""
    from ossdesk.ui.bridge import EngineAdapter
    from ossdesk.ui.engine_adapter import UnknownRequest

    assert set(HANDLERS) == set(rq.REQUESTS)
    for kind in rq.REQUESTS:
        assert issubclass(kind, rq.EngineRequest) != issubclass(kind, rq.EngineQuery), kind
    protocol = {name for name in vars(EngineAdapter)
                if not name.startswith("_") and callable(getattr(EngineAdapter, name))}
    assert protocol == {"start", "send", "ask", "shutdown"}
    with pytest.raises(UnknownRequest, match="no engine request TransferRow"):
        SchedulerAdapter(Settings()).handle(row_for(1))
    engine = ProcessEngineAdapter(Settings(), credentials=credentials_resolver())
    with pytest.raises(TypeError, match="not an engine query"):
        engine.ask(cast(Any, rq.Pause([1])))
    with pytest.raises(TypeError, match="not an engine request"):
        engine.send(cast(Any, rq.WaitIdle()))


def test_a_new_engine_waits_for_the_previous_one_to_let_go(engines):
    # The previous engine (here: this test) still holds the upload list for a moment.
    owner = Store.open()
    engine = engines(busy_wait=10.0)
    rec = Recorder()
    try:
        engine.start(rec)
        time.sleep(1.5)
        assert not rec.events  # still waiting, not failed
    finally:
        owner.close()
    restored = rec.wait_for(lambda e: isinstance(e, (RowsRestored, EngineUnavailable)))
    assert isinstance(restored, RowsRestored)


def test_the_pipe_threads_of_the_window_are_started_as_it_says(engines, sandbox, tmp_path):
    """The window's side of the pipe (the writer that starts the engine process and the
    reader of its events) runs on threads the given ``start_thread`` starts: QThreads in
    the window (``make_engine``)."""
    import threading

    from PySide6.QtCore import QThread

    from ossdesk.ui.qthreads import EngineThread, start_qthread

    started: list[str] = []
    readers: list[bool] = []

    def start(target: Any, name: str) -> EngineThread:
        started.append(name)
        return start_qthread(target, name)

    engine = engines(start_thread=start)
    rec = Recorder()

    def listener(event: object) -> None:
        readers.append(isinstance(QThread.currentThread(), EngineThread)
                       and threading.current_thread() is not threading.main_thread())
        rec(event)  # type: ignore[arg-type]

    engine.start(listener)
    rec.wait_for(lambda e: isinstance(e, RowsRestored))
    assert sorted(started) == ["ossdesk-engine-in", "ossdesk-engine-out"]
    assert readers and all(readers)


def test_a_frame_that_is_not_a_message_of_its_direction_is_refused(tmp_path):
    """Each side reads only its list of messages (TO_ENGINE / TO_WINDOW): a bare tuple, or
    a message of the other direction, is a protocol error, not something to guess at."""
    import io

    assert read_frame(io.BytesIO(encode_frame(Call(rq.Pause([1])))), TO_ENGINE) == \
        Call(rq.Pause([1]))
    for message, expected in ((("call", "pause", ([1],), {}), TO_ENGINE),
                              (Events([]), TO_ENGINE), (Call(rq.Pause([1])), TO_WINDOW)):
        with pytest.raises(ProtocolError, match="not a message of this pipe"):
            read_frame(io.BytesIO(encode_frame(message)), expected)
    # The engine process itself: a bare tuple ends its reading like a broken pipe (it
    # pauses and exits); it is never run.
    env = {**os.environ, "OSSDESK_HOME": str(tmp_path / "home")}
    done = subprocess.run(engine_command(), input=encode_frame(
        Start(Settings(), str(tmp_path / "uploads.db"), logging.WARNING, 0.0))
        + encode_frame(("ask", 1, "wait_idle", (5.0,), {})), capture_output=True, env=env,
        timeout=60, check=False)
    assert done.returncode == 0
    answers = []
    out = io.BytesIO(done.stdout)
    while (message := read_frame(out, TO_WINDOW)) is not None:
        answers.append(message)
    assert not [m for m in answers if isinstance(m, Answer)]
    logged = [m.record["msg"] for m in answers if isinstance(m, LogRecord)]
    assert any("not a message of this pipe" in text for text in logged), logged


def test_the_engine_events_reach_the_model_as_one_queued_signal_per_read(
    qtbot: QtBot, engines, sandbox, tmp_path
):
    """The reader QThread of the pipe hands each read to the window's bridge, which emits
    it as one Qt signal (a list of events, typed ``object``) queued into the GUI thread:
    rows reach the model through the event loop, with no queue polled by the test."""
    import threading

    from PySide6.QtCore import QThread

    from ossdesk.ui.bridge import EventBridge
    from ossdesk.ui.qthreads import EngineThread, start_qthread
    from ossdesk.ui.transfer_model import TransferModel

    emitted: list[tuple[bool, int]] = []  # (from the reader QThread, events in the read)
    received: list[bool] = []  # the slot ran on the GUI thread

    class Bridge(EventBridge):
        def post_batch(self, events: list[Any]) -> None:
            emitted.append((isinstance(QThread.currentThread(), EngineThread), len(events)))
            super().post_batch(events)

        def _receive(self, events: list[Any]) -> None:
            received.append(threading.current_thread() is threading.main_thread())
            super()._receive(events)

    model = TransferModel()
    bridge = Bridge(model)
    engine = engines(start_thread=start_qthread)
    try:
        engine.start(bridge)
        folder = tmp_path / "small"
        folder.mkdir()
        files = []
        for i in range(300):
            path = folder / f"f{i:03d}.txt"
            path.write_bytes(b"x" * (i + 1))
            files.append(source_file(path, f"sig/f{i:03d}.txt"))
        engine.send(rq.Enqueue(files, destination(sandbox)))
        qtbot.waitUntil(lambda: len(model.rows(full=False)) == 300, timeout=30_000)
        qtbot.waitUntil(lambda: all(r.state is TransferState.DONE for r in model.rows()),
                        timeout=60_000)
    finally:
        bridge.stop()
    assert emitted and all(from_reader for from_reader, _ in emitted)
    assert max(size for _, size in emitted) > 1  # batched per read, not one signal an event
    assert received and all(received)
    assert model.row(model.ids()[-1]).confirmed_bytes == 300  # type: ignore[union-attr]
