"""Property tests: the checkpoint store as a state machine, and what part planning still
lacked in ``tests/unit/test_plan.py`` (single PUT vs multipart, part numbers out of range).

The store machine runs any sequence of: queue a file, start its multipart upload, confirm a
part (in any order, again), pause, resume, the source changing (start over), finish,
remove, and a *crash*: a write left uncommitted by a connection that then dies, and the
store closed and opened again. After every step the store must equal a plain model.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from ossdesk.core.plan import (
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MAX_PUT_SIZE,
    MIN_PART_SIZE,
    plan_parts,
    use_single_put,
)
from ossdesk.core.store import NewUpload, State, Store

KiB = 1024

# ------------------------------------------------------------------------------ planning


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_OBJECT_SIZE),
       st.integers(min_value=MIN_PART_SIZE, max_value=MAX_PART_SIZE))
def test_single_put_exactly_when_one_part_fits_one_put(file_size: int, part_size: int) -> None:
    plan = plan_parts(file_size, part_size)
    single = use_single_put(file_size, plan.part_size)
    assert single == (plan.part_count == 1 and file_size <= MAX_PUT_SIZE)
    if not single:
        # Multipart: every part but the last is at least the OSS minimum.
        assert plan.part_size >= MIN_PART_SIZE and plan.part_count <= MAX_PARTS
    for bad in (0, plan.part_count + 1):
        try:
            plan.part(bad)
        except IndexError:
            pass
        else:
            raise AssertionError(f"part {bad} of {plan.part_count} was accepted")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_PARTS),
       st.integers(min_value=MIN_PART_SIZE, max_value=MAX_PART_SIZE),
       st.integers(min_value=0, max_value=MIN_PART_SIZE))
def test_every_part_count_boundary(count: int, part_size: int, extra: int) -> None:
    """Files of exactly N parts, or just over: the chosen size is kept while N <= 10,000."""
    size = count * part_size + extra
    if size > MAX_OBJECT_SIZE:
        return
    plan = plan_parts(size, part_size)
    needed = -(-size // part_size)
    if needed <= MAX_PARTS:
        assert plan.part_size == part_size and plan.part_count == max(1, needed)
    else:
        assert plan.part_count <= MAX_PARTS and plan.part_size > part_size
    assert sum(length for _, _, length in plan.parts()) == size if plan.part_count < 50 \
        else plan.part(plan.part_count)[0] + plan.part(plan.part_count)[1] == size


# ------------------------------------------------------------------- the store, as a model


class StoreMachine(RuleBasedStateMachine):
    rows = Bundle("rows")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ossdesk-store-machine-"))
        self.path = self.folder / "ossdesk.sqlite3"
        self.store = Store.open(self.path)
        self.model: dict[int, dict[str, Any]] = {}
        self.ids = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize()
    def fresh(self) -> None:
        assert self.store.count() == 0

    # -- rules

    @rule(target=rows, size=st.integers(min_value=0, max_value=3 * 1024 * KiB),
          part=st.sampled_from([100 * KiB, 256 * KiB, 1024 * KiB]))
    def add(self, size: int, part: int) -> int:
        self.ids += 1
        [upload] = self.store.add([NewUpload(
            source=self.folder / f"f{self.ids}", size=size, mtime_ns=1000 + self.ids,
            key=f"k/{self.ids}", endpoint="http://127.0.0.1:1", bucket="b", part_size=part)])
        self.model[upload] = {"size": size, "mtime_ns": 1000 + self.ids, "part_size": part,
                              "upload_id": None, "parts": {}, "state": State.QUEUED,
                              "reason": None, "crc64": None}
        return upload

    def _live(self, upload: int) -> dict[str, Any] | None:
        return self.model.get(upload)

    @rule(upload=rows, n=st.integers(min_value=0, max_value=10_000))
    def begin(self, upload: int, n: int) -> None:
        m = self._live(upload)
        assume(m is not None and m["state"] is not State.DONE)
        assert m is not None
        upload_id = f"UP{upload}-{n}"
        self.store.begin_multipart(upload, upload_id, m["part_size"])
        m["upload_id"] = upload_id
        m["parts"] = {}
        if m["state"] is State.QUEUED:
            m["state"] = State.RUNNING

    @rule(upload=rows, number=st.integers(min_value=1, max_value=40),
          crc=st.integers(min_value=0, max_value=(1 << 64) - 1))
    def confirm(self, upload: int, number: int, crc: int) -> None:
        m = self._live(upload)
        assume(m is not None and m["upload_id"] is not None)
        assert m is not None
        count = max(1, -(-m["size"] // m["part_size"]))
        assume(number <= count)
        size = min(m["part_size"], m["size"] - (number - 1) * m["part_size"])
        etag = f"E{upload}-{number}-{crc % 997}"
        self.store.confirm_part(upload, number, size, etag, crc)
        m["parts"][number] = (size, etag, crc)

    @rule(upload=rows)
    def pause(self, upload: int) -> None:
        m = self._live(upload)
        assume(m is not None and m["state"] is not State.DONE)
        assert m is not None
        self.store.set_state(upload, State.PAUSED, reason="user")
        m["state"], m["reason"] = State.PAUSED, "user"

    @rule()
    def resume_all(self) -> None:
        unfinished = [u for u, m in self.model.items() if m["state"] is not State.DONE]
        self.store.set_states(unfinished, State.QUEUED)
        for u in unfinished:
            self.model[u]["state"], self.model[u]["reason"] = State.QUEUED, None

    @rule(upload=rows, grow=st.integers(min_value=-50 * KiB, max_value=50 * KiB))
    def change_source(self, upload: int, grow: int) -> None:
        m = self._live(upload)
        assume(m is not None and m["state"] is not State.DONE)
        assert m is not None
        size = max(0, m["size"] + grow)
        self.store.reset(upload, size=size, mtime_ns=m["mtime_ns"] + 1)
        m.update(size=size, mtime_ns=m["mtime_ns"] + 1, upload_id=None, parts={}, crc64=None)

    @rule(upload=rows, crc=st.integers(min_value=0, max_value=(1 << 64) - 1))
    def finish(self, upload: int, crc: int) -> None:
        m = self._live(upload)
        assume(m is not None and m["state"] is not State.DONE)
        assert m is not None
        self.store.finish(upload, crc64=crc, etag="DONE")
        m.update(state=State.DONE, reason=None, upload_id=None, parts={}, crc64=crc)

    @rule(upload=consumes(rows))
    def remove(self, upload: int) -> None:
        self.store.remove([upload])
        self.model.pop(upload, None)

    @rule(upload=rows, number=st.integers(min_value=1, max_value=40))
    def crash(self, upload: int, number: int) -> None:
        """Another connection writes and dies before committing; the store is closed
        without ceremony and opened again: only committed writes remain."""
        raw = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("UPDATE uploads SET state = 'failed', upload_id = 'LOST'")
        if upload in self.model:
            raw.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, 1, 'LOST', 1, 0)",
                        (upload, number))
        raw.close()  # never committed
        self.store.close()
        self.store = Store.open(self.path)
        assert self.store.notice is None

    # -- what must always hold

    @invariant()
    def store_equals_model(self) -> None:
        rows = {r.id: r for r in self.store.rows()}
        assert set(rows) == set(self.model)
        for upload, m in self.model.items():
            row = rows[upload]
            assert row.state is m["state"]
            assert row.size == m["size"] and row.mtime_ns == m["mtime_ns"]
            assert row.upload_id == m["upload_id"]
            assert row.crc64 == m["crc64"]
            if m["state"] is State.PAUSED:
                assert row.reason == m["reason"]
            parts = self.store.parts(upload)
            assert {n: (p.size, p.etag, p.crc64) for n, p in parts.items()} == m["parts"]
            assert row.confirmed_parts == len(m["parts"])
            assert row.confirmed_bytes == sum(v[0] for v in m["parts"].values())
            # Parts only ever belong to a live multipart upload; never to a finished file.
            if m["upload_id"] is None:
                assert parts == {}
            assert row.confirmed_bytes <= row.size or row.size == 0
        unfinished = sum(1 for m in self.model.values() if m["state"] is not State.DONE)
        assert len(self.store.unfinished()) == unfinished

    @invariant()
    def database_is_sound(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5)
        try:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        finally:
            conn.close()


StoreMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_store_state_machine = StoreMachine.TestCase
