"""``ossdesk`` with one engine constant changed, to measure what a change would buy.

    OSSDESK_BENCH_CHUNK=1048576 python -m tests.bench.ossdesk_variant upload FILE ...

``OSSDESK_BENCH_CHUNK``: bytes per file read and per socket write (the engine reads and
sends 256 KiB at a time; a value above the transport's 1 MiB block raises that too). Also counts
10.200.0.0/24 as local, like ``ossdesk_wan``. The engine is not edited: this only patches
the running process, for experiments.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ossdesk.cli import main
from ossdesk.core import oss_body, transport, upload
from ossdesk.core.checksum import crc64_block
from tests.bench import ossdesk_wan  # noqa: F401 - the WAN addresses count as local

chunk = int(os.environ.get("OSSDESK_BENCH_CHUNK", "0"))
if chunk:
    kwdefaults = upload.PartReader.__init__.__kwdefaults__
    assert kwdefaults is not None and "chunk" in kwdefaults
    kwdefaults["chunk"] = chunk
    oss_body._BLOCKSIZE = chunk
    transport.BLOCKSIZE = max(chunk, transport.BLOCKSIZE)

views = int(os.environ.get("OSSDESK_BENCH_VIEWS", "0"))
if views:
    _STEP = 256 * 1024

    def _next(self: Any, n: int) -> Any:
        if self._pending:
            chunk, self._pending = self._pending[:n], self._pending[n:]
            return chunk
        assert self._read is not None
        data = self._read(n)
        if not isinstance(data, bytes | memoryview):
            data = bytes(data)
        if len(data) > n:
            data, self._pending = data[:n], data[n:]
        return data

    def _refill(self: Any) -> None:
        if self._fh is None:
            self._fh = open(self.path, "rb", buffering=0)  # noqa: SIM115
            self._fh.seek(self.offset)
            self._buf = memoryview(bytearray(max(1, min(views, self.length))))
        want = min(len(self._buf), self.length - self._read_total)
        got = 0
        while got < want:
            n = self._fh.readinto(self._buf[got:min(want, got + _STEP)])
            if not n:
                raise self._fail(upload.SourceChanged(f"{self.path} became shorter"))
            self.crc = crc64_block(self._buf[got:got + n], self.crc)
            if self.md5 is not None:
                self.md5.update(self._buf[got:got + n])
            got += n
        self._read_total += got
        self._block, self._start = self._buf[:got], 0

    oss_body._Body._next = _next  # type: ignore[method-assign]
    upload.PartReader._refill = _refill  # type: ignore[method-assign]
    transport.BLOCKSIZE = max(views, transport.BLOCKSIZE)

if __name__ == "__main__":
    sys.exit(main())
