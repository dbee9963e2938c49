"""CRC-64/XZ (OSS crc64ecma): known vectors, agreement with oss2's own implementation,
continuation, combination and file reading."""

from __future__ import annotations

import array
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oss2.utils import Crc64 as Oss2Crc64

from ossdesk.core.checksum import (
    ChecksumStopped,
    combine_parts,
    crc64,
    crc64_block,
    crc64_combine,
    crc64_file,
    format_crc64,
)


def reference(data: bytes) -> int:
    """The CRC computed by oss2 (crcmod), the implementation OSS's SDK trusts."""
    c = Oss2Crc64(0)
    c.update(data)
    return int(c.crc)


def test_check_vector() -> None:
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA


def test_known_vectors() -> None:
    # Independently published CRC-64/XZ values.
    assert crc64(b"") == 0
    assert crc64(b"a") == 0x330284772E652B05
    assert crc64(b"The quick brown fox jumps over the lazy dog") == 0x5B5EB8C2E54AA1C4


def test_empty_inputs() -> None:
    assert crc64(b"") == 0
    assert crc64(bytearray()) == 0
    assert crc64(memoryview(b"")) == 0
    assert crc64(b"", 12345) == 12345
    assert crc64_combine(777, 0, 0) == 777
    assert combine_parts([]) == 0
    assert combine_parts([(0, 0)]) == 0


@pytest.mark.parametrize("size", [1, 7, 8, 15, 16, 63, 64, 65, 255, 4096, 100_003, 1 << 20])
def test_equals_oss2_crc64(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert crc64(data) == reference(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_equals_oss2_crc64_property(data: bytes) -> None:
    assert crc64(data) == reference(data)


def test_buffer_types_agree() -> None:
    data = os.urandom(10_000)
    expected = reference(data)
    assert crc64(bytearray(data)) == expected
    assert crc64(memoryview(data)) == expected
    assert crc64(memoryview(bytearray(data))[100:]) == reference(data[100:])
    # A memoryview of another item format is hashed as its raw bytes.
    words = array.array("I", range(1000))
    assert crc64(memoryview(words)) == reference(words.tobytes())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1024), st.binary(max_size=1024))
def test_continuation_equals_one_shot(a: bytes, b: bytes) -> None:
    assert crc64(b, crc64(a)) == crc64(a + b)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=1024), min_size=1, max_size=6))
def test_blocks_continue_like_crc64(blocks: list[bytes]) -> None:
    """The block-by-block form the file readers use gives crc64 of the whole, for bytes
    and for slices of a reused buffer's view alike."""
    whole = b"".join(blocks)
    crc = 0
    view_crc = 0
    buffer = bytearray(max(map(len, blocks)))
    view = memoryview(buffer)
    for block in blocks:
        crc = crc64_block(block, crc)
        buffer[:len(block)] = block
        view_crc = crc64_block(view[:len(block)], view_crc)
    assert crc == view_crc == crc64(whole) == reference(whole)
    assert type(crc) is int


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1024), st.binary(max_size=1024))
def test_combine_equals_concatenation(a: bytes, b: bytes) -> None:
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)


def test_combine_large_lengths() -> None:
    rng = random.Random(7)
    chunks = [rng.randbytes(n) for n in (3 << 20, 100 * 1024, 1, 0, (1 << 20) + 5)]
    parts = [(crc64(c), len(c)) for c in chunks]
    assert combine_parts(parts) == reference(b"".join(chunks))


def test_combine_order_matters() -> None:
    a, b = b"first part", b"second part"
    forward = combine_parts([(crc64(a), len(a)), (crc64(b), len(b))])
    backward = combine_parts([(crc64(b), len(b)), (crc64(a), len(a))])
    assert forward == crc64(a + b)
    assert backward != forward


def test_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        crc64(b"x", -1)
    with pytest.raises(ValueError):
        crc64(b"x", 1 << 64)
    with pytest.raises(ValueError):
        crc64_combine(0, 5, 0)
    with pytest.raises(ValueError):
        crc64_combine(0, 0, -1)


def test_format_matches_oss_header() -> None:
    assert format_crc64(0x995DC9BBDF1939FA) == str(0x995DC9BBDF1939FA)
    assert int(format_crc64(crc64(b"abc"))) == crc64(b"abc")


@pytest.fixture
def sample_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = random.Random(42).randbytes(3 * (1 << 20) + 12_345)
    path = tmp_path / "sample.bin"
    path.write_bytes(data)
    return path, data


def test_file_whole(sample_file: tuple[Path, bytes]) -> None:
    path, data = sample_file
    assert crc64_file(path) == reference(data)


@pytest.mark.parametrize(
    ("offset", "length", "chunk"),
    [(0, 0, 1 << 20), (0, 1, 7), (5, 1 << 20, 1 << 20), (1000, 2_000_001, 65536),
     (3 * (1 << 20), 12_345, 4096), (3 * (1 << 20) + 12_345, 0, 1024)],
)
def test_file_ranges(sample_file: tuple[Path, bytes], offset: int, length: int, chunk: int) -> None:
    path, data = sample_file
    assert crc64_file(path, offset, length, chunk_size=chunk) == crc64(data[offset:offset + length])


def test_file_to_end_from_offset(sample_file: tuple[Path, bytes]) -> None:
    path, data = sample_file
    assert crc64_file(path, 777, chunk_size=100_000) == crc64(data[777:])


def test_file_parts_combine_to_file(sample_file: tuple[Path, bytes]) -> None:
    path, data = sample_file
    part = 1 << 20
    parts = []
    for offset in range(0, len(data), part):
        length = min(part, len(data) - offset)
        parts.append((crc64_file(path, offset, length), length))
    assert combine_parts(parts) == reference(data)


def test_file_shorter_than_range(sample_file: tuple[Path, bytes]) -> None:
    path, data = sample_file
    with pytest.raises(EOFError, match="changed"):
        crc64_file(path, len(data) - 10, 11)


def test_file_stop(sample_file: tuple[Path, bytes]) -> None:
    path, _ = sample_file
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 2

    with pytest.raises(ChecksumStopped):
        crc64_file(path, chunk_size=1 << 20, should_stop=stop)
    assert calls == 3


def test_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        crc64_file(tmp_path / "missing.bin")


def test_file_argument_checks(sample_file: tuple[Path, bytes]) -> None:
    path, _ = sample_file
    with pytest.raises(ValueError):
        crc64_file(path, -1)
    with pytest.raises(ValueError):
        crc64_file(path, 0, -1)
    with pytest.raises(ValueError):
        crc64_file(path, chunk_size=0)
