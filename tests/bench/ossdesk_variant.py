"""``ossdesk`` with one engine constant changed, to measure what a change would buy.

    OSSDESK_BENCH_CHUNK=1048576 python -m tests.bench.ossdesk_variant upload FILE ...

``OSSDESK_BENCH_CHUNK``: bytes per file read and per socket write (the engine reads and
sends 256 KiB at a time). Also counts 10.200.0.0/24 as local, like ``ossdesk_wan``. The engine
is not edited: this only patches the running process, for experiments.
"""

from __future__ import annotations

import os
import sys

from ossdesk.cli import main
from ossdesk.core import oss_body, upload
from tests.bench import ossdesk_wan  # noqa: F401 - the WAN addresses count as local

chunk = int(os.environ.get("OSSDESK_BENCH_CHUNK", "0"))
if chunk:
    kwdefaults = upload.PartReader.__init__.__kwdefaults__
    assert kwdefaults is not None and "chunk" in kwdefaults
    kwdefaults["chunk"] = chunk
    oss_body._BLOCKSIZE = chunk

if __name__ == "__main__":
    sys.exit(main())
