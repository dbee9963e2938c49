"""Part planning inside the OSS limits (with property tests), and size/rate/duration units."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ossdesk.core.plan import (
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MAX_PUT_SIZE,
    MIN_PART_SIZE,
    FileTooLarge,
    GiB,
    KiB,
    MiB,
    PartPlan,
    TiB,
    format_duration,
    format_rate,
    format_size,
    parse_rate,
    parse_size,
    plan_parts,
    use_single_put,
)


def test_limits_match_oss() -> None:
    assert MIN_PART_SIZE == 102_400
    assert MAX_PART_SIZE == 5 * 1024**3
    assert MAX_PARTS == 10_000
    assert MAX_OBJECT_SIZE == 53_687_091_200_000  # 48.8 TiB
    assert MAX_PUT_SIZE == 5 * 1024**3
    assert DEFAULT_PART_SIZE == 8 * 1024**2
    assert (KiB, MiB, GiB, TiB) == (1024, 1024**2, 1024**3, 1024**4)


def test_default_plan() -> None:
    plan = plan_parts(20 * MiB + 1)
    assert plan == PartPlan(20 * MiB + 1, 8 * MiB, 3, None)
    assert list(plan.parts()) == [
        (1, 0, 8 * MiB), (2, 8 * MiB, 8 * MiB), (3, 16 * MiB, 4 * MiB + 1),
    ]


def test_exact_multiple_has_no_empty_tail() -> None:
    plan = plan_parts(3 * MiB, MiB)
    assert plan.part_count == 3
    assert plan.part(3) == (2 * MiB, MiB)


def test_legal_request_honoured_exactly() -> None:
    plan = plan_parts(10 * MiB, 100 * KiB + 1)
    assert plan.part_size == 100 * KiB + 1
    assert plan.notice is None


def test_zero_byte_file_is_one_empty_part() -> None:
    plan = plan_parts(0, MiB)
    assert (plan.part_count, plan.notice) == (1, None)
    assert list(plan.parts()) == [(1, 0, 0)]


def test_too_small_request_raised_to_minimum() -> None:
    plan = plan_parts(MiB, 4 * KiB)
    assert plan.part_size == MIN_PART_SIZE
    assert plan.notice is not None
    assert "minimum" in plan.notice
    assert "100 KiB" in plan.notice


def test_too_large_request_lowered_to_maximum() -> None:
    plan = plan_parts(20 * GiB, 6 * GiB)
    assert plan.part_size == MAX_PART_SIZE
    assert plan.part_count == 4
    assert plan.notice is not None
    assert "maximum" in plan.notice


def test_too_many_parts_grows_to_whole_mib() -> None:
    plan = plan_parts(100 * GiB, MiB)
    assert plan.part_size == 11 * MiB  # ceil(100 GiB / 10,000) = 10.24 MiB -> 11 MiB
    assert plan.part_count == math.ceil(100 * GiB / (11 * MiB))
    assert plan.notice is not None
    assert "10,000" in plan.notice
    assert "11 MiB" in plan.notice


def test_default_grows_silently() -> None:
    plan = plan_parts(100 * GiB)
    assert plan.part_size == 11 * MiB
    assert plan.notice is None


def test_exactly_ten_thousand_parts_is_fine() -> None:
    plan = plan_parts(MAX_PARTS * MiB, MiB)
    assert (plan.part_size, plan.part_count, plan.notice) == (MiB, MAX_PARTS, None)
    plan = plan_parts(MAX_PARTS * MiB + 1, MiB)
    assert plan.part_size == 2 * MiB
    assert plan.part_count == 5001


def test_largest_object() -> None:
    plan = plan_parts(MAX_OBJECT_SIZE, MiB)
    assert (plan.part_size, plan.part_count) == (MAX_PART_SIZE, MAX_PARTS)
    assert plan.part(MAX_PARTS) == (MAX_OBJECT_SIZE - MAX_PART_SIZE, MAX_PART_SIZE)


def test_too_large_file_refused() -> None:
    with pytest.raises(FileTooLarge, match=r"48\.8 TiB"):
        plan_parts(MAX_OBJECT_SIZE + 1)
    assert issubclass(FileTooLarge, ValueError)


def test_negative_size_refused() -> None:
    with pytest.raises(ValueError):
        plan_parts(-1)


def test_part_numbers_out_of_range() -> None:
    plan = plan_parts(10 * MiB, MiB)
    with pytest.raises(IndexError):
        plan.part(0)
    with pytest.raises(IndexError):
        plan.part(11)


def test_single_put_threshold() -> None:
    assert use_single_put(0, 8 * MiB)
    assert use_single_put(8 * MiB, 8 * MiB)
    assert not use_single_put(8 * MiB + 1, 8 * MiB)
    assert use_single_put(MAX_PUT_SIZE, MAX_PART_SIZE)
    assert not use_single_put(MAX_PUT_SIZE + 1, 6 * GiB)


# --- property tests ------------------------------------------------------------------------

file_sizes = st.one_of(
    st.integers(min_value=0, max_value=MAX_OBJECT_SIZE),
    st.integers(min_value=0, max_value=64 * MiB),
    st.sampled_from([0, 1, MIN_PART_SIZE, MAX_PART_SIZE, MAX_PARTS * MiB, MAX_OBJECT_SIZE]),
)
requests = st.one_of(
    st.none(),
    st.integers(min_value=1, max_value=8 * GiB),
    st.integers(min_value=MIN_PART_SIZE, max_value=MAX_PART_SIZE),
    st.sampled_from([MIN_PART_SIZE - 1, MIN_PART_SIZE, MAX_PART_SIZE, MAX_PART_SIZE + 1]),
)


def check_plan(plan: PartPlan, file_size: int, requested: int | None) -> None:
    assert plan.file_size == file_size
    assert MIN_PART_SIZE <= plan.part_size <= MAX_PART_SIZE
    assert 1 <= plan.part_count <= MAX_PARTS
    # The parts tile the file exactly: all full but the last, which is not empty (unless
    # the file is).
    first_offset, first_length = plan.part(1)
    last_offset, last_length = plan.part(plan.part_count)
    assert first_offset == 0
    assert first_length == min(plan.part_size, file_size)
    assert last_offset == (plan.part_count - 1) * plan.part_size
    assert last_offset + last_length == file_size
    assert 0 < last_length <= plan.part_size or file_size == 0
    # Legal requests that fit in 10,000 parts are honoured exactly, silently.
    wanted = DEFAULT_PART_SIZE if requested is None else requested
    legal = MIN_PART_SIZE <= wanted <= MAX_PART_SIZE
    if legal and math.ceil(file_size / wanted) <= MAX_PARTS:
        assert plan.part_size == wanted
        assert plan.notice is None
    else:
        assert plan.part_size != wanted
        assert (plan.notice is not None) == (requested is not None)
        if math.ceil(file_size / min(max(wanted, MIN_PART_SIZE), MAX_PART_SIZE)) > MAX_PARTS:
            # Grown just enough, to a whole MiB: one MiB less would not do.
            assert plan.part_size % MiB == 0
            assert plan.part_size in (MiB, MAX_PART_SIZE) or (
                math.ceil(file_size / (plan.part_size - MiB)) > MAX_PARTS
            )


@settings(max_examples=1500, deadline=None)
@given(file_sizes, requests)
@example(0, None)
@example(MAX_OBJECT_SIZE, MIN_PART_SIZE)
@example(MAX_PARTS * MAX_PART_SIZE - 1, MAX_PART_SIZE)
@example(MAX_PARTS * MIN_PART_SIZE + 1, MIN_PART_SIZE)
def test_plan_properties(file_size: int, requested: int | None) -> None:
    check_plan(plan_parts(file_size, requested), file_size, requested)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_OBJECT_SIZE), requests)
def test_plan_parts_iterate_contiguously(file_size: int, requested: int | None) -> None:
    plan = plan_parts(file_size, requested)
    expected_offset = 0
    count = 0
    for number, offset, length in plan.parts():
        count += 1
        assert number == count
        assert offset == expected_offset
        assert plan.part(number) == (offset, length)
        if number < plan.part_count:
            assert length == plan.part_size
        expected_offset += length
    assert count == plan.part_count
    assert expected_offset == file_size


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=MAX_OBJECT_SIZE + 1, max_value=10 * MAX_OBJECT_SIZE), requests)
def test_plan_refuses_every_oversized_file(file_size: int, requested: int | None) -> None:
    with pytest.raises(FileTooLarge):
        plan_parts(file_size, requested)


# --- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8MiB", 8 * MiB), ("512KiB", 512 * KiB), ("10MB", 10_000_000), ("1.5GiB", 3 * GiB // 2),
        ("4096", 4096), ("8M", 8 * MiB), ("8m", 8 * MiB), (" 8 MiB ", 8 * MiB), ("1k", 1024),
        ("2T", 2 * TiB), ("1kB", 1000), ("100B", 100), ("0", 0), ("1_048_576", MiB),
        ("0.5KiB", 512), (".5M", 512 * KiB), ("3bytes", 3), ("1GB", 10**9),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "MiB", "-1MiB", "8 furlongs", "1e6", "8MiB/s", "abc", "1..2M"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\."):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48MiB", 48 * MiB), ("48MiB/s", 48 * MiB), ("48 MiB/s", 48 * MiB), ("1M/s", MiB),
        ("200Mbit", 25_000_000), ("200Mbit/s", 25_000_000), ("200Mbps", 25_000_000),
        ("8Kbit", 1000), ("1Gibit", GiB // 8), ("10MBps", 10_000_000), ("10MB/sec", 10_000_000),
        ("0", 0), ("unlimited", 0), ("Unlimited", 0), ("off", 0), ("none", 0), ("4096", 4096),
    ],
)
def test_parse_rate(text: str, expected: int) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "-5MiB", "5 MiB/h", "10Xbit"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\."):
        parse_rate(text)


@given(st.integers(min_value=0, max_value=MAX_OBJECT_SIZE))
def test_parse_size_reads_plain_integers(n: int) -> None:
    assert parse_size(str(n)) == n


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"), (1, "1 B"), (999, "999 B"), (1000, "0.98 KiB"), (1023, "1 KiB"),
        (1024, "1 KiB"), (1536, "1.5 KiB"), (999 * KiB, "999 KiB"), (1000 * KiB, "0.98 MiB"),
        (1023 * KiB, "1 MiB"), (1000 * MiB, "0.98 GiB"), (int(10.56 * KiB), "10.6 KiB"),
        (int(123.4 * KiB), "123 KiB"), (int(999.7 * KiB), "0.98 MiB"),
        (8 * MiB, "8 MiB"), (3 * GiB // 2, "1.5 GiB"), (int(12.34 * MiB), "12.3 MiB"),
        (100 * KiB, "100 KiB"), (MiB - 1, "1 MiB"), (MAX_OBJECT_SIZE, "48.8 TiB"),
        (-2048, "-2 KiB"),
    ],
)
def test_format_size(n: int, expected: str) -> None:
    assert format_size(n) == expected


def test_format_rate() -> None:
    assert format_rate(48 * MiB) == "48 MiB/s"
    assert format_rate(0) == "0 B/s"
    assert format_rate(1536.0) == "1.5 KiB/s"
    # One scale per value: never "1024 KiB/s" next to "1 MiB/s" in one column.
    assert format_rate(1000 * KiB) == "0.98 MiB/s"
    assert format_rate(1024 * KiB) == "1 MiB/s"
    assert format_rate(999.0) == "999 B/s"
    assert format_rate(float("nan")) == "--"


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        (0, "0 s"), (1.4, "1 s"), (45, "45 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"),
        (3600, "1 h 00 min"), (7380, "2 h 03 min"), (90000, "1 d 01 h"),
        (float("inf"), "--"), (float("nan"), "--"), (-1, "--"),
    ],
)
def test_format_duration(s: float, expected: str) -> None:
    assert format_duration(s) == expected


# --- part size from the measured throughput --------------------------------------------------

from ossdesk.core.plan import PART_SECONDS, START_PART_SIZE, adaptive_part_size  # noqa: E402


def test_slow_link_gets_parts_confirmed_every_few_seconds() -> None:
    # 2 MiB/s shared by 8 parts in flight: 256 KiB/s each, so 1 MiB parts take 4 s.
    size = adaptive_part_size(300 * 1000**2, 2 * MiB, 8)
    assert size == MiB
    assert size / (2 * MiB / 8) <= PART_SECONDS
    # The first confirmation, with every slot busy from the start, comes within 10 s.
    assert size * 8 / (2 * MiB) < 10


def test_fast_link_keeps_the_configured_part_size() -> None:
    assert adaptive_part_size(10 * GiB, 500 * MiB, 8) == DEFAULT_PART_SIZE
    assert adaptive_part_size(10 * GiB, 500 * MiB, 8, ceiling=64 * MiB) == 64 * MiB


def test_nothing_measured_yet_starts_small() -> None:
    assert adaptive_part_size(GiB, None, 8) == START_PART_SIZE
    assert adaptive_part_size(GiB, 0, 8) == START_PART_SIZE
    assert adaptive_part_size(GiB, None, 8, ceiling=MiB) == MiB


def test_very_slow_link_never_goes_below_the_oss_minimum() -> None:
    assert adaptive_part_size(500 * MiB, 10 * KiB, 8) == MIN_PART_SIZE


def test_a_huge_file_on_a_slow_link_stays_within_10000_parts() -> None:
    size = adaptive_part_size(200 * GiB, 2 * MiB, 8)
    assert math.ceil(200 * GiB / size) <= MAX_PARTS
    assert size % MiB == 0
    assert plan_parts(200 * GiB, size).notice is None


@given(file_size=st.integers(0, MAX_OBJECT_SIZE), rate=st.floats(0, 10 * GiB),
       parallel=st.integers(1, 64), ceiling=st.integers(1, 2 * MAX_PART_SIZE))
@settings(max_examples=300)
def test_adaptive_sizes_are_legal(file_size: int, rate: float, parallel: int,
                                  ceiling: int) -> None:
    size = adaptive_part_size(file_size, rate, parallel, ceiling=ceiling)
    assert MIN_PART_SIZE <= size <= MAX_PART_SIZE
    assert math.ceil(file_size / size) <= MAX_PARTS
    plan = plan_parts(file_size, size)
    assert plan.part_size == size and plan.notice is None


# --- parts that grow once the link is known ----------------------------------------------

from ossdesk.core.plan import grown_part_size, recorded_plan  # noqa: E402


def test_a_grown_plan_keeps_its_head_and_cuts_the_rest_anew() -> None:
    start = plan_parts(GiB + 5, START_PART_SIZE)
    grown = start.grow(12, DEFAULT_PART_SIZE)
    assert (grown.head_parts, grown.head_size, grown.part_size) == (12, 2 * MiB, 8 * MiB)
    # 24 MiB in the head, 1000 MiB + 5 bytes left: 125 parts of 8 MiB and 5 bytes.
    assert grown.part_count == 12 + 126
    parts = list(grown.parts())
    assert parts[0] == (1, 0, 2 * MiB)
    assert parts[11] == (12, 22 * MiB, 2 * MiB)
    assert parts[12] == (13, 24 * MiB, 8 * MiB)
    assert parts[-1] == (138, GiB, 5)
    # The parts cover the file once, in order, and every part but the last is legal.
    offset = 0
    for _number, start_at, length in parts:
        assert start_at == offset
        offset += length
    assert offset == GiB + 5
    assert all(length >= MIN_PART_SIZE for _, _, length in parts[:-1])
    assert not grown.grows


def test_a_grown_plan_ending_on_a_whole_part() -> None:
    grown = plan_parts(40 * MiB, 2 * MiB).grow(4, 8 * MiB)
    assert grown.part_count == 4 + 4
    assert grown.part(8) == (32 * MiB, 8 * MiB)
    with pytest.raises(IndexError):
        grown.part(9)


def test_growth_refuses_what_would_break_the_plan() -> None:
    plan = plan_parts(20 * MiB, 2 * MiB)
    with pytest.raises(ValueError):
        plan.grow(10, 8 * MiB)  # nothing left after the head
    with pytest.raises(ValueError):
        plan.grow(-1, 8 * MiB)
    with pytest.raises(ValueError):
        plan.grow(2, 8 * MiB).grow(3, 8 * MiB)  # grows once
    assert plan.grow(2, 10).part_size == MIN_PART_SIZE


def test_the_tail_grows_to_stay_within_10000_parts() -> None:
    size = 30 * GiB
    plan = plan_parts(size, 4 * MiB)
    assert plan.part_count == 7680
    grown = plan.grow(7000, 5 * MiB)
    # 2,720 MiB of 4 MiB parts would fit in 680 parts; 5 MiB ones in 544.
    assert grown.part_count == 7000 + 544
    # A tail that would not fit in the parts left is raised (to a whole MiB).
    tight = plan.grow(7679, 4 * MiB + 1)
    assert tight.part_count <= MAX_PARTS
    assert tight.part(tight.part_count)[0] + tight.part(tight.part_count)[1] == size
    huge = plan_parts(40 * TiB, None)
    near = huge.grow(huge.part_count - 1, MIN_PART_SIZE)
    assert near.part_count <= MAX_PARTS and near.part_size <= MAX_PART_SIZE
    assert sum(near.part(near.part_count)) == 40 * TiB


@given(file_size=st.integers(1, MAX_OBJECT_SIZE), head=st.integers(0, MAX_PARTS),
       start=st.integers(MIN_PART_SIZE, 64 * MiB), tail=st.integers(1, 2 * MAX_PART_SIZE))
@settings(max_examples=300)
def test_grown_plans_are_legal(file_size: int, head: int, start: int, tail: int) -> None:
    plan = plan_parts(file_size, start)
    head = min(head, plan.part_count - 1)
    grown = plan.grow(head, tail)
    assert grown.part_count <= MAX_PARTS
    assert MIN_PART_SIZE <= grown.part_size <= MAX_PART_SIZE
    for number in (1, head, head + 1, grown.part_count):
        if 1 <= number <= grown.part_count:
            offset, length = grown.part(number)
            assert length > 0 and offset + length <= file_size
            if number <= head:
                assert (offset, length) == plan.part(number)
    last = grown.part(grown.part_count)
    assert sum(last) == file_size


def test_the_rest_is_sized_from_the_time_the_first_parts_took() -> None:
    # 8 parts of 2 MiB in 0.05 s each on a fast link: the configured size.
    assert grown_part_size(8 * 2 * MiB, 8 * 0.05) == DEFAULT_PART_SIZE
    assert grown_part_size(2 * MiB, 0.05, ceiling=64 * MiB) == 64 * MiB
    # 2 MiB parts that took 2 s each: 4 MiB ones take about 4 s.
    assert grown_part_size(4 * 2 * MiB, 4 * 2.0) == 4 * MiB
    # A slow link (8 s per 2 MiB part, 2 MiB/s shared by 8): 1 MiB, so no growth.
    assert grown_part_size(8 * 2 * MiB, 8 * 8.0) == MiB
    assert grown_part_size(2 * MiB, 600.0) == MIN_PART_SIZE
    assert grown_part_size(2 * MiB, 0.0) == DEFAULT_PART_SIZE  # nothing measurable
    with pytest.raises(ValueError):
        grown_part_size(0, 1.0)


def test_the_recorded_plan_of_a_row() -> None:
    # An older row, or an explicit part size: fixed.
    assert recorded_plan(20 * MiB + 1, 8 * MiB) == plan_parts(20 * MiB + 1, 8 * MiB)
    # Begun before the speed was known: equal parts that may still grow.
    waiting = recorded_plan(GiB, 2 * MiB, head_size=2 * MiB)
    assert waiting.grows and waiting.part_count == 512 and waiting.part(512) == (
        GiB - 2 * MiB, 2 * MiB)
    # Grown: the same plan as the one that was recorded.
    grown = plan_parts(GiB, 2 * MiB).grow(16, 8 * MiB)
    again = recorded_plan(GiB, grown.part_size, head_size=grown.head_size,
                          head_parts=grown.head_parts)
    assert again == grown
