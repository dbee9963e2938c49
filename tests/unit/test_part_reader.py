"""The part reader, the body of every part and PUT: what it reads and hands out, and when.

Real files; the bandwidth bucket on a :class:`FakeClock`, so no test depends on the machine.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from ossdesk.core import transport, upload
from ossdesk.core.checksum import crc64
from ossdesk.core.throttle import TokenBucket
from ossdesk.core.upload import PartReader, SourceChanged, Stopped
from tests.support.clock import FakeClock

MiB = 1024 * 1024
CHUNK = 256 * 1024


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3 * MiB + 12345)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def drain(reader: PartReader, n: int) -> list[bytes]:
    blocks = []
    while block := reader.read(n):
        blocks.append(block)
    return blocks


class _Recording(io.FileIO):
    """A file whose every ``read`` result is kept, to see what the reader hands out."""

    reads: ClassVar[list[bytes]] = []

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        _Recording.reads.append(block)
        return block


def test_each_block_goes_to_the_transport_as_read(data_file: tuple[Path, bytes],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One file read per 256 KiB handed out, and what the transport gets is the very
    object the read returned (no copy of every byte)."""
    path, data = data_file
    _Recording.reads = []
    monkeypatch.setattr(upload, "open", lambda p, *a, **kw: _Recording(p, "rb"),
                        raising=False)
    offset, length = 100, MiB + 5000
    sent: list[int] = []
    with PartReader(path, offset, length, stop=threading.Event(), on_sent=sent.append) as r:
        blocks = drain(r, transport.BLOCKSIZE)
    assert [len(b) for b in blocks] == [CHUNK] * 4 + [5000]
    assert all(b is read for b, read in zip(blocks, _Recording.reads, strict=True))
    assert sent == [len(b) for b in blocks]
    assert b"".join(blocks) == data[offset:offset + length]
    assert r.crc == crc64(data[offset:offset + length]) and r.sent == length


def test_small_reads_continue_the_block(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with PartReader(path, 7, 2 * MiB, stop=threading.Event(), md5=True) as r:
        blocks = drain(r, 100_000)
    assert all(len(b) <= 100_000 for b in blocks)
    assert b"".join(blocks) == data[7:7 + 2 * MiB]
    assert r.crc == crc64(data[7:7 + 2 * MiB])
    assert r.md5 is not None
    assert r.md5.digest() == hashlib.md5(data[7:7 + 2 * MiB]).digest()


def test_a_bandwidth_limit_takes_each_block_from_the_bucket(
        data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    clock = FakeClock()
    rate = 4 * MiB
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
    with PartReader(path, 0, 2 * MiB, stop=threading.Event(), bucket=bucket) as r:
        blocks = drain(r, transport.BLOCKSIZE)
    assert b"".join(blocks) == data[:2 * MiB]
    assert {len(b) for b in blocks} == {CHUNK}
    assert clock.now() == pytest.approx((2 * MiB - bucket.burst) / rate)


def test_no_limit_takes_nothing_from_the_bucket(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    clock = FakeClock()
    bucket = TokenBucket(0, clock=clock, sleep=clock.sleep)
    with PartReader(path, 0, 2 * MiB, stop=threading.Event(), bucket=bucket) as r:
        assert [len(b) for b in drain(r, transport.BLOCKSIZE)] == [CHUNK] * 8
    assert clock.sleeps == []


def test_a_file_that_shrank_is_a_changed_source(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    with PartReader(path, 3 * MiB, MiB, stop=threading.Event()) as r:
        assert len(r.read(transport.BLOCKSIZE)) == 12345
        with pytest.raises(SourceChanged):
            r.read(transport.BLOCKSIZE)
    assert isinstance(r.failure, SourceChanged)


def test_a_stop_ends_the_next_read(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    stop = threading.Event()
    with PartReader(path, 0, 2 * MiB, stop=stop) as r:
        assert len(r.read(transport.BLOCKSIZE)) == CHUNK
        stop.set()
        with pytest.raises(Stopped):
            r.read(transport.BLOCKSIZE)
    assert isinstance(r.failure, Stopped) and r.sent == CHUNK
