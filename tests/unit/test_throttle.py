"""The shared bandwidth limit: exact rates, wake-ups, fairness, live rate changes, stops.

The bucket runs on a :class:`FakeClock` whose ``sleep`` moves the clock, so every rate and
wake-up below is exact and no test depends on how busy the machine is. One smoke test uses
the real clock, because there the real clock is what is tested.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ossdesk.core.throttle import MAX_WAIT, TokenBucket
from tests.support.clock import FakeClock

#: How long a test waits for a thread that is expected to finish at once (a hang guard,
#: not a timing assertion: a slow machine only makes the test slower).
HANG = 30.0


def fake_bucket(rate: int, burst: int | None = None) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, burst=burst, clock=clock, sleep=clock.sleep), clock


def in_thread(fn: Callable[[], bool]) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    return thread, result


def wait_for(predicate: Callable[[], bool]) -> None:
    """Until ``predicate()`` holds; fails only if it never does (a hang)."""
    deadline = time.monotonic() + HANG
    while not predicate():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.002)


def waiting(bucket: TokenBucket) -> int:
    with bucket._cond:
        return len(bucket._queue)


def test_unlimited_never_waits() -> None:
    bucket, clock = fake_bucket(0)
    assert bucket.rate == 0
    for _ in range(10_000):
        assert bucket.acquire(1 << 30)
    assert clock.sleeps == [] and clock.now() == 0.0


def test_stop_already_set_takes_nothing() -> None:
    stop = threading.Event()
    stop.set()
    assert not TokenBucket().acquire(10, stop)
    bucket, clock = fake_bucket(1000, burst=1000)
    assert not bucket.acquire(10, stop)
    assert bucket.acquire(1000)  # the whole burst is still there
    assert clock.sleeps == []


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenBucket(-1)
    with pytest.raises(ValueError):
        TokenBucket(100, burst=0)
    bucket = TokenBucket(100)
    with pytest.raises(ValueError):
        bucket.acquire(-1)
    with pytest.raises(ValueError):
        bucket.set_rate(-5)


def test_burst_default_follows_rate() -> None:
    assert TokenBucket(1000).burst == 64 * 1024
    bucket = TokenBucket(10 * 1024 * 1024)
    assert bucket.burst == 2 * 1024 * 1024
    bucket.set_rate(50 * 1024 * 1024)
    assert bucket.burst == 10 * 1024 * 1024
    assert TokenBucket(10 * 1024 * 1024, burst=4096).burst == 4096


def test_waits_exactly_as_long_as_the_missing_bytes_take() -> None:
    bucket, clock = fake_bucket(1000, burst=1000)
    assert bucket.acquire(1000)  # the initial burst goes at once
    assert clock.sleeps == []
    assert bucket.acquire(500)  # nothing left: 500 bytes take 0.5 s
    assert clock.now() == pytest.approx(0.5)
    assert bucket.acquire(300)  # nothing left again: 0.3 s more
    assert clock.now() == pytest.approx(0.8)


def test_a_waiter_wakes_at_least_every_max_wait() -> None:
    bucket, clock = fake_bucket(1000, burst=100)
    assert bucket.acquire(100)
    assert bucket.acquire(10_000)  # 10 s at 1000 B/s
    assert clock.now() == pytest.approx(10.0)
    assert max(clock.sleeps) == pytest.approx(MAX_WAIT)
    assert len(clock.sleeps) == pytest.approx(10.0 / MAX_WAIT, abs=1)
    # The last wake-up is no later than the bytes are there: no oversleeping.
    assert sum(clock.sleeps) == pytest.approx(10.0)


def test_idle_credit_is_capped_at_burst() -> None:
    bucket, clock = fake_bucket(1000, burst=1000)
    clock.advance(3600)  # an hour idle earns at most one burst
    assert bucket.acquire(1000)
    assert clock.sleeps == []
    assert bucket.acquire(1)
    assert sum(clock.sleeps) == pytest.approx(0.001)


def test_request_larger_than_burst_waits_proportionally() -> None:
    bucket, clock = fake_bucket(1000, burst=100)
    assert bucket.acquire(100)
    assert bucket.acquire(5000)
    assert clock.now() == pytest.approx(5.0)


@pytest.mark.parametrize("rate", [512 * 1024, 4 * 1024 * 1024, 100 * 1024 * 1024])
def test_measured_rate_is_the_limit(rate: int) -> None:
    burst = rate // 10
    bucket, clock = fake_bucket(rate, burst=burst)
    chunk = 16 * 1024
    sent = 0
    while clock.now() < 10.0:
        assert bucket.acquire(chunk)
        sent += chunk
    elapsed = clock.now()
    # Never more than the burst plus the rate; and no less, but for the chunk in hand.
    assert sent <= burst + rate * elapsed + 1e-6
    assert sent >= burst + rate * elapsed - chunk


def test_waiters_are_served_first_come_first_served() -> None:
    clock = FakeClock()  # moved by the test only: no waiter can get ahead by itself
    bucket = TokenBucket(1000, burst=1000, clock=clock)
    assert bucket.acquire(1000)
    order: list[int] = []
    lock = threading.Lock()

    def take(i: int) -> bool:
        got = bucket.acquire(100)
        with lock:
            order.append(i)
        return got

    threads = []
    for i in range(4):
        threads.append(in_thread(lambda i=i: take(i)))  # type: ignore[misc]
        wait_for(lambda i=i: waiting(bucket) == i + 1)  # type: ignore[misc]
    for served in range(1, 5):
        clock.advance(0.1)  # exactly one waiter's 100 bytes
        wait_for(lambda served=served: len(order) == served)  # type: ignore[misc]
        assert waiting(bucket) == 4 - served
    assert order == [0, 1, 2, 3]
    for thread, result in threads:
        thread.join(HANG)
        assert result == [True]


def test_shared_by_threads_never_exceeds_the_limit() -> None:
    rate = 1024 * 1024
    burst = 32 * 1024
    bucket, clock = fake_bucket(rate, burst=burst)
    chunk = 16 * 1024
    counts = [0] * 4
    lock = threading.Lock()
    together = threading.Barrier(4)

    def worker(i: int) -> bool:
        together.wait(HANG)
        while clock.now() < 3.0:
            assert bucket.acquire(chunk)
            with lock:
                counts[i] += chunk
        return True

    threads = [in_thread(lambda i=i: worker(i)) for i in range(4)]  # type: ignore[misc]
    for thread, result in threads:
        thread.join(HANG)
        assert result == [True]
    # Whoever's waits moved the clock, and in whatever order the threads ran, the bytes
    # handed out never exceed what the limit allows for the time that passed.
    assert burst < sum(counts) <= burst + rate * clock.now() + 1e-6


def test_set_rate_speeds_up_a_waiter() -> None:
    bucket, clock = fake_bucket(1000, burst=1000)
    assert bucket.acquire(1000)
    fast = 10 * 1024 * 1024
    clock.at(0.15, lambda: bucket.set_rate(fast))  # during the 2nd wake-up's sleep
    assert bucket.acquire(100_000)  # 100 s at 1000 B/s
    # 200 bytes came at the old rate by 0.2 s, the rest at the new one.
    assert clock.now() == pytest.approx(0.2 + (100_000 - 200) / fast)


def test_set_rate_to_unlimited_releases_a_waiter() -> None:
    bucket, clock = fake_bucket(1000, burst=1000)
    assert bucket.acquire(1000)
    clock.at(0.15, lambda: bucket.set_rate(0))
    assert bucket.acquire(50_000)
    assert clock.now() == pytest.approx(0.2)
    assert bucket.rate == 0


def test_set_rate_to_unlimited_releases_waiting_threads() -> None:
    clock = FakeClock()  # never moves: only the new rate can let them through
    bucket = TokenBucket(1000, burst=1000, clock=clock)
    assert bucket.acquire(1000)
    waiters = [in_thread(lambda: bucket.acquire(50_000)) for _ in range(3)]
    wait_for(lambda: waiting(bucket) == 3)
    assert all(r == [] for _, r in waiters)
    bucket.set_rate(0)
    for thread, result in waiters:
        thread.join(HANG)
        assert result == [True]


def test_set_rate_slows_down_a_waiter() -> None:
    bucket, clock = fake_bucket(1000, burst=100)
    assert bucket.acquire(100)
    clock.at(0.45, lambda: bucket.set_rate(100))  # at 0.5 s: 500 bytes earned
    assert bucket.acquire(1000)
    assert clock.now() == pytest.approx(0.5 + 500 / 100)  # the other 500 take 5 s


def test_stop_wakes_a_waiter_within_max_wait() -> None:
    bucket, clock = fake_bucket(1000, burst=1000)
    assert bucket.acquire(1000)
    stop = threading.Event()
    clock.at(0.35, stop.set)
    assert not bucket.acquire(10**9, stop)
    assert clock.now() == pytest.approx(0.4)
    assert clock.now() - 0.35 <= MAX_WAIT
    # A stopped waiter takes nothing: the 400 bytes earned meanwhile are still there.
    before = len(clock.sleeps)
    assert bucket.acquire(400)
    assert len(clock.sleeps) == before


def test_stopped_waiter_leaves_the_queue() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, burst=1000, clock=clock)
    assert bucket.acquire(1000)
    stop = threading.Event()
    first, first_result = in_thread(lambda: bucket.acquire(10**9, stop))
    wait_for(lambda: waiting(bucket) == 1)
    second, second_result = in_thread(lambda: bucket.acquire(100))
    wait_for(lambda: waiting(bucket) == 2)
    stop.set()
    first.join(HANG)
    assert first_result == [False]
    assert waiting(bucket) == 1
    clock.advance(0.1)
    second.join(HANG)
    assert second_result == [True]


def test_real_clock_smoke() -> None:
    """The default clock and waits: the limit holds in real time.

    The real clock is what is tested here (the fake-clock tests cover the arithmetic). Only
    the lower bound on the time taken is asserted, which a busy machine cannot break: being
    slow makes a transfer take longer, never shorter.
    """
    rate = 4 * 1024 * 1024
    burst = rate // 10
    bucket = TokenBucket(rate, burst=burst)
    chunk = 16 * 1024
    wanted = burst + rate // 4  # the burst, then 0.25 s at the limit
    start = time.monotonic()
    sent = 0
    while sent < wanted:
        assert bucket.acquire(chunk)
        sent += chunk
    elapsed = time.monotonic() - start
    assert elapsed >= (sent - chunk - burst) / rate


# --- the measured throughput ------------------------------------------------------------------

from ossdesk.core.throttle import Throughput  # noqa: E402


def test_throughput_is_unknown_until_a_second_was_measured() -> None:
    clock = FakeClock()
    meter = Throughput(clock=clock)
    assert meter.rate() is None
    meter.add(64 * 1024)
    clock.advance(0.5)
    meter.add(64 * 1024)
    assert meter.rate() is None


def test_throughput_measures_bytes_per_second_over_its_window() -> None:
    clock = FakeClock()
    meter = Throughput(window=10.0, clock=clock)
    for _ in range(300):  # 2 MiB/s for 30 s, in 0.1 s steps
        meter.add(2 * 1024 * 1024 // 10)
        clock.advance(0.1)
    rate = meter.rate()
    assert rate is not None
    assert rate == pytest.approx(2 * 1024 * 1024, rel=0.05)
    for _ in range(300):  # then 8 MiB/s: after a window, the old rate is forgotten
        meter.add(8 * 1024 * 1024 // 10)
        clock.advance(0.1)
    assert meter.rate() == pytest.approx(8 * 1024 * 1024, rel=0.05)


def test_an_idle_spell_is_not_read_as_a_slow_link() -> None:
    clock = FakeClock()
    meter = Throughput(window=10.0, gap=2.0, clock=clock)
    for _ in range(20):
        meter.add(1024 * 1024 // 10)
        clock.advance(0.1)
    clock.advance(30)
    assert meter.rate() is None  # nothing sent lately: nothing known
    for _ in range(20):
        meter.add(1024 * 1024 // 10)
        clock.advance(0.1)
    assert meter.rate() == pytest.approx(1024 * 1024, rel=0.1)
