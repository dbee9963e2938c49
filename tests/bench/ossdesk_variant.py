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

from ossdesk.cli import main
from ossdesk.core import oss, transport, upload
from tests.bench import ossdesk_wan  # noqa: F401 - the WAN addresses count as local

chunk = int(os.environ.get("OSSDESK_BENCH_CHUNK", "0"))
if chunk:
    kwdefaults = upload.PartReader.__init__.__kwdefaults__
    assert kwdefaults is not None and "chunk" in kwdefaults
    kwdefaults["chunk"] = chunk
    oss._BLOCKSIZE = chunk
    transport.BLOCKSIZE = max(chunk, transport.BLOCKSIZE)

if __name__ == "__main__":
    sys.exit(main())
