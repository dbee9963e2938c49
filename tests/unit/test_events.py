"""Engine events: JSON-ready, listeners isolated, progress throttled at the source."""

from __future__ import annotations

import json
import logging

import pytest

from ossdesk.core.events import (
    Done,
    Event,
    EventHub,
    Failed,
    Notice,
    Paused,
    Progress,
    ProgressMeter,
    Queued,
    Started,
)
from tests.support.clock import FakeClock


def test_events_serialise_to_json() -> None:
    events: list[Event] = [
        Queued(upload=1, source="/a", key="k", size=3, bucket="b"),
        Started(upload=1, key="k", size=3, confirmed_bytes=0, resumed=False, multipart=False),
        Progress(upload=1, confirmed_bytes=1, sent_bytes=2, total=3, speed=1.5, eta=None),
        Paused(upload=1, reason="user", message="paused"),
        Done(upload=1, key="k", size=3, crc64=(1 << 64) - 1, etag="E", seconds=0.1),
        Failed(upload=1, message="m", code="C", retryable=False, error_kind="permanent"),
        Notice(upload=None, message="n"),
    ]
    for event in events:
        data = json.loads(json.dumps(event.to_dict()))
        assert data["event"] == event.kind
        assert data["upload"] == event.upload
    assert Done(upload=1, key="k", size=3, crc64=(1 << 64) - 1, etag="E",
                seconds=0.1).to_dict()["crc64"] == (1 << 64) - 1


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub()
    seen: list[Event] = []

    def bad(event: Event) -> None:
        raise RuntimeError("listener bug")

    hub.add(bad)
    hub.add(seen.append)
    with caplog.at_level(logging.ERROR):
        hub.emit(Notice(upload=None, message="x"))
    assert len(seen) == 1
    assert "listener failed" in caplog.text
    hub.remove(bad)
    hub.emit(Notice(upload=None, message="y"))
    assert len(seen) == 2


def test_progress_is_throttled_and_flushed() -> None:
    clock = FakeClock(start=100.0)
    out: list[Event] = []
    meter = ProgressMeter(7, total=1000, confirmed=0, emit=out.append, clock=clock,
                          max_rate=10)
    for _ in range(100):  # 100 reads within 50 ms of the start: no event yet
        meter.add_sent(5)
        clock.advance(0.0005)
    assert out == []
    clock.advance(0.06)  # 110 ms after the start: one event
    meter.add_sent(0)
    assert len(out) == 1
    for _ in range(50):  # then at most one per 100 ms
        meter.add_sent(0)
        clock.advance(0.001)
    assert len(out) == 1
    clock.advance(0.2)
    meter.add_sent(0)
    assert len(out) == 2
    meter.confirm(500, 500)  # throttled: too soon after the last one
    assert len(out) == 2
    meter.flush()
    last = out[-1]
    assert isinstance(last, Progress)
    assert (last.confirmed_bytes, last.sent_bytes, last.total) == (500, 0, 1000)


def test_a_file_done_within_one_interval_sends_only_its_last_progress() -> None:
    clock = FakeClock(start=100.0)
    out: list[Event] = []
    meter = ProgressMeter(3, total=64, confirmed=0, emit=out.append, clock=clock)
    meter.add_sent(64)
    clock.advance(0.01)
    meter.confirm(64, 64)
    meter.flush()
    assert len(out) == 1
    last = out[0]
    assert isinstance(last, Progress)
    assert (last.confirmed_bytes, last.sent_bytes, last.total) == (64, 0, 64)


def test_speed_and_eta() -> None:
    clock = FakeClock(start=100.0)
    out: list[Event] = []
    meter = ProgressMeter(1, total=10_000, confirmed=0, emit=out.append, clock=clock)
    for _ in range(10):
        clock.advance(0.5)
        meter.add_sent(500)  # 1000 bytes/s
    meter.confirm(5000, 5000)
    meter.flush()
    last = out[-1]
    assert isinstance(last, Progress)
    assert last.speed == pytest.approx(1000, rel=0.15)
    assert last.eta == pytest.approx(5, rel=0.15)
