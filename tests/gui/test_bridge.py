from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from ossdesk.core import events as ev
from ossdesk.ui.bridge import EventBridge, RowsRemoved, RowsRestored
from ossdesk.ui.transfer_model import TransferModel, TransferRow, TransferState

GIB = 1024**3


@pytest.fixture
def bridge(qapp):
    model = TransferModel()
    b = EventBridge(model)
    yield b
    b.stop()
    b.deleteLater()
    model.deleteLater()


def engine_thread(events: Sequence[object], listener) -> None:
    """Post from a plain Python thread, as the engine's workers do."""
    thread = threading.Thread(target=lambda: [listener(e) for e in events])
    thread.start()
    thread.join()


def test_events_from_a_worker_thread_update_the_model(qtbot, bridge):
    model = bridge._model
    size = 5 * GIB + 3
    events: list[object] = [
        ev.Queued(upload=1, source="/d/big.iso", key="iso/big.iso", size=size, bucket="b"),
        ev.Queued(upload=2, source="/d/small.txt", key="small.txt", size=10, bucket="b"),
        ev.Started(upload=1, key="iso/big.iso", size=size, confirmed_bytes=GIB, resumed=True,
                   multipart=True),
    ]
    # 500 progress events for one file: only the last one matters.
    events += [
        ev.Progress(upload=1, confirmed_bytes=GIB + n * 8 * 1024**2, sent_bytes=16 * 1024**2,
                    total=size, speed=40e6, eta=100.0)
        for n in range(500)
    ]
    events += [
        ev.Failed(upload=2, message="No such bucket “b”.", code="NoSuchBucket", retryable=False,
                  error_kind="permanent"),
        ev.Notice(upload=1, message="started over"),
    ]
    notices = []
    bridge.noticeReceived.connect(lambda upload, message: notices.append((upload, message)))
    with qtbot.waitSignal(bridge.drained, timeout=3000) as blocker:
        engine_thread(events, bridge)
    assert blocker.args == [len(events)]
    assert model.rowCount() == 2
    big = model.row(1)
    assert big.state is TransferState.UPLOADING
    assert big.confirmed_bytes == GIB + 499 * 8 * 1024**2
    assert big.sent_bytes == big.confirmed_bytes + 16 * 1024**2
    assert big.size == size and big.speed == 40e6
    small = model.row(2)
    assert small.state is TransferState.FAILED
    assert "NoSuchBucket" in small.error_detail and small.error == "No such bucket “b”."
    assert notices == [(1, "started over")]
    # One flush applied all of it (progress merged per upload).
    assert model.flush_count <= 2


def test_done_pause_cancel_and_requeue_keep_progress(qtbot, bridge):
    model = bridge._model
    engine_thread(
        [
            RowsRestored((
                TransferRow(id=7, name="a", source_path="/a", size=100, destination="oss://b/a",
                            state=TransferState.PAUSED, confirmed_bytes=40, sent_bytes=40),
            )),
            ev.Queued(upload=8, source="/c", key="c", size=50, bucket="b"),
        ],
        bridge,
    )
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=3000)
    assert model.row(7).confirmed_bytes == 40
    # Resumed: queued again, the 40 confirmed bytes stay shown.
    engine_thread([ev.Queued(upload=7, source="/a", key="a", size=100, bucket="b")], bridge)
    qtbot.waitUntil(lambda: model.row(7).state is TransferState.QUEUED, timeout=3000)
    assert model.row(7).confirmed_bytes == 40
    engine_thread(
        [
            ev.Paused(upload=8, reason=ev.PauseReason.CREDENTIALS, message="The STS token expired"),
            ev.Done(upload=7, key="a", size=100, crc64=5, etag="x", seconds=2.0),
            ev.Progress(upload=7, confirmed_bytes=60, sent_bytes=0, total=100, speed=1.0, eta=1.0),
        ],
        bridge,
    )
    qtbot.waitUntil(lambda: model.row(7).state is TransferState.DONE, timeout=3000)
    # A late progress event does not move a finished row back.
    assert model.row(7).confirmed_bytes == 100
    assert model.row(8).state is TransferState.PAUSED
    assert model.row(8).error == "The STS token expired"
    idle = []
    bridge.queueIdle.connect(lambda: idle.append(True))
    engine_thread([ev.Cancelled(upload=8), ev.Idle(upload=None)], bridge)
    qtbot.waitUntil(lambda: bool(idle), timeout=3000)
    assert model.row(8).state is TransferState.CANCELLED


def test_rows_removed_by_the_engine_leave_the_model(qtbot, bridge):
    model = bridge._model
    engine_thread(
        [ev.Queued(upload=n, source=f"/s/{n}", key=f"{n}", size=1, bucket="b") for n in (1, 2, 3)]
        + [RowsRemoved((2,)), ev.Queued(upload=4, source="/s/2", key="2", size=1, bucket="b")],
        bridge,
    )
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=3000)
    assert model.ids() == [1, 3, 4]


def test_restored_rows_queued_again_in_the_same_tick(qtbot, bridge):
    # At start the engine restores the queue and, with auto-resume, queues it again at
    # once: both reach the window in one drain.
    model = bridge._model
    restored = TransferRow(id=3, name="big.bin", source_path="/d/big.bin", size=6 * GIB,
                           destination="oss://b/big.bin", state=TransferState.QUEUED,
                           confirmed_bytes=2 * GIB, sent_bytes=2 * GIB, key="big.bin")
    engine_thread([
        RowsRestored((restored,)),
        ev.Queued(upload=3, source="/d/big.bin", key="big.bin", size=6 * GIB, bucket="b"),
        ev.Started(upload=3, key="big.bin", size=6 * GIB, confirmed_bytes=2 * GIB,
                   resumed=True, multipart=True),
    ], bridge)
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=3000)
    qtbot.waitUntil(lambda: model.row(3).state is TransferState.UPLOADING, timeout=3000)
    assert model.row(3).confirmed_bytes == 2 * GIB


def test_a_bad_event_does_not_stop_the_others(qtbot, bridge):
    model = bridge._model
    engine_thread([
        ev.Queued(upload=1, source="/a", key="a", size=5, bucket="b"),
        # A malformed event (no message): its handling fails, and is logged...
        ev.Failed(upload=1, message=None, code="X", retryable=False,  # type: ignore[arg-type]
                  error_kind="permanent"),
        ev.Queued(upload=2, source="/b", key="b", size=5, bucket="b"),
        ev.Done(upload=2, key="b", size=5, crc64=1, etag="e", seconds=0.1),
    ], bridge)
    # ...and the events after it still arrive.
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=3000)
    qtbot.waitUntil(lambda: model.row(2).state is TransferState.DONE, timeout=3000)


def test_a_burst_of_events_is_applied_over_several_ticks_in_order(qtbot, bridge):
    model = bridge._model
    bridge.DRAIN_BUDGET_S = 0.0  # one chunk per tick
    restored = tuple(
        TransferRow(id=i, name=f"r{i}", source_path=f"/r/r{i}", size=1, destination="oss://b/r",
                    state=TransferState.PAUSED)
        for i in range(1, 451)
    )
    events: list[object] = [RowsRestored(restored)]
    events += [
        ev.Queued(upload=1000 + i, source=f"/q/f{i}", key=f"f{i}", size=1, bucket="b")
        for i in range(500)
    ]
    events.append(ev.Done(upload=1499, key="f499", size=1, crc64=0, etag=None, seconds=0.1))
    engine_thread(events, bridge)
    assert bridge._tick() == 1  # the restored rows, cut to one chunk
    assert model.rowCount() == bridge.DRAIN_CHUNK
    assert bridge._timer.interval() == bridge.BACKLOG_INTERVAL_MS  # more to come, soon
    qtbot.waitUntil(lambda: model.rowCount() == 950, timeout=5000)
    qtbot.waitUntil(lambda: bridge._timer.interval() == bridge.DRAIN_INTERVAL_MS, timeout=5000)
    assert model.ids()[:3] == [1, 2, 3] and model.ids()[-1] == 1499
    row = model.row(1499)
    assert row is not None and row.state is TransferState.DONE


def test_a_retry_shows_in_the_row_until_the_next_try_gets_through(qtbot, bridge):
    """The engine runs in another process: the event arrives pickled."""
    import pickle

    from PySide6.QtCore import Qt

    from ossdesk.ui.transfer_model import Column

    model = bridge._model
    retry = pickle.loads(pickle.dumps(ev.Retrying(
        upload=3, reason="cannot connect to 127.0.0.1:9: connection refused",
        code="ConnectionRefused", attempt=2, tries=10, delay=3.6, at=0.0)))
    engine_thread([
        ev.Queued(upload=3, source="/d/big.bin", key="big.bin", size=100, bucket="b"),
        ev.Started(upload=3, key="big.bin", size=100, confirmed_bytes=0, resumed=False,
                   multipart=True),
        ev.Progress(upload=3, confirmed_bytes=20, sent_bytes=10, total=100, speed=5.0,
                    eta=4.0),
        retry,
    ], bridge)
    note = ("Retrying in 4 s (attempt 2 of 10): cannot connect to 127.0.0.1:9: connection "
            "refused")
    qtbot.waitUntil(lambda: model.row(3) is not None and model.row(3).error == note,
                    timeout=3000)
    state = model.index(0, list(Column).index(Column.STATE))
    assert model.data(state) == "Retrying"
    assert model.data(state, Qt.ItemDataRole.ToolTipRole) == note
    assert model.row(3).state is TransferState.UPLOADING
    # Nothing new confirmed yet: the note stays.
    engine_thread([ev.Progress(upload=3, confirmed_bytes=20, sent_bytes=30, total=100,
                               speed=5.0, eta=4.0)], bridge)
    qtbot.waitUntil(lambda: model.row(3).sent_bytes == 50, timeout=3000)
    assert model.row(3).error == note
    # The next try got through: the note goes.
    engine_thread([ev.Progress(upload=3, confirmed_bytes=60, sent_bytes=0, total=100,
                               speed=5.0, eta=4.0)], bridge)
    qtbot.waitUntil(lambda: model.row(3).confirmed_bytes == 60, timeout=3000)
    assert model.row(3).error == ""
    assert model.data(state) == "Uploading"


def test_a_failed_files_last_progress_after_its_failure_shows_what_oss_confirmed(qtbot, bridge):
    """The engine's last progress of a file (its meter's flush when the file stops) may
    come after its Failed: the parts OSS confirmed meanwhile are shown, nothing moving."""
    model = bridge._model
    engine_thread([
        ev.Queued(upload=3, source="/d/c.bin", key="c.bin", size=100, bucket="b"),
        ev.Started(upload=3, key="c.bin", size=100, confirmed_bytes=0, resumed=False,
                   multipart=True),
        ev.Progress(upload=3, confirmed_bytes=20, sent_bytes=40, total=100, speed=9.0, eta=8.0),
    ], bridge)
    qtbot.waitUntil(lambda: model.row(3) is not None and model.row(3).confirmed_bytes == 20,
                    timeout=3000)
    engine_thread([
        ev.Failed(upload=3, message="AccessDenied", code="AccessDenied", retryable=False,
                  error_kind="permanent"),
        ev.Progress(upload=3, confirmed_bytes=50, sent_bytes=10, total=100, speed=9.0, eta=5.0),
    ], bridge)
    qtbot.waitUntil(lambda: model.row(3).state is TransferState.FAILED, timeout=3000)
    bridge.drain()
    model.flush()
    row = model.row(3)
    assert (row.confirmed_bytes, row.sent_bytes, row.speed, row.eta) == (50, 60, 0.0, None)
    assert row.state is TransferState.FAILED and row.error == "AccessDenied"
