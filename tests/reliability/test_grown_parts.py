"""An upload begun before the link's speed was known sends small parts first and the rest of
the file in larger ones once the speed is known; that plan is recorded before any larger
part is sent, so a SIGKILL among the larger parts and ``ossdesk resume`` go on with the
same plan: no confirmed part is sent again, every part has its planned size, and the object
is verified."""

from __future__ import annotations

import math
import signal
from pathlib import Path

from ossdesk import config
from ossdesk.core.plan import DEFAULT_PART_SIZE, START_PART_SIZE, MiB
from tests.reliability.helpers import (
    assert_uploaded,
    cli_env,
    dest,
    json_lines,
    ossdesk,
    part_puts,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo


def test_killed_among_the_larger_parts_resume_keeps_the_plan(sandbox: SandboxInfo,
                                                             tmp_path: Path) -> None:
    size = 64 * MiB + 7
    path = write_random(tmp_path / "big.bin", size)
    assert sandbox.server is not None
    # The parts after the first few answer slowly, so the upload is still running when the
    # first larger part is confirmed (the first ones, which measure the link, do not wait).
    sandbox.server.faults.delay(0.5, method="PUT", pattern=r"partNumber=([5-9]|[1-9]\d+)\b",
                                count=None)
    db = config.paths().database

    def larger_part_confirmed() -> bool:
        snap = snapshot_store(db)
        if not snap.rows or snap.rows[0].get("head_parts") is None:
            return False
        head = snap.rows[0]["head_parts"]
        return any(number > head for _, number in snap.confirmed)

    with (tmp_path / "upload.out").open("w") as out:
        # Defaults (no --part-size, no --limit-rate: the speed is not known at the start);
        # two parts at once.
        child = spawn(["upload", str(path), *dest(sandbox), "--parallel", "2"],
                      cli_env(sandbox), out)
        try:
            wait_until(larger_part_confirmed, 60, "a larger part confirmed")
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    snap = snapshot_store(db)
    [row] = snap.rows
    upload_id, head, tail = row["upload_id"], row["head_parts"], row["part_size"]
    assert upload_id and row["head_size"] == START_PART_SIZE
    assert 2 <= head < 32
    assert START_PART_SIZE < tail <= DEFAULT_PART_SIZE
    confirmed = {number for _, number in snap.confirmed}
    assert any(number > head for number in confirmed)
    count = head + math.ceil((size - head * START_PART_SIZE) / tail)
    assert len(confirmed) < count  # killed before the end
    status = json_lines(ossdesk("status", "--json", env=cli_env(sandbox)).stdout)
    assert [(r["head_size"], r["head_parts"], r["part_size"]) for r in status] == [
        (START_PART_SIZE, head, tail)]

    sandbox.server.faults.clear()
    resumed = ossdesk("resume", env=cli_env(sandbox))
    said = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, said
    assert "verified (CRC-64)" in said, said
    assert_uploaded(sandbox, "big.bin", path)

    accepted = [p for p in part_puts(sandbox.log_path) if p.status == 200]
    assert {p.upload_id for p in accepted} == {upload_id}  # one upload throughout
    assert {p.number for p in accepted} == set(range(1, count + 1))
    last = size - head * START_PART_SIZE - (count - head - 1) * tail
    for p in accepted:  # before the kill and after it: the sizes of the recorded plan
        want = START_PART_SIZE if p.number <= head else tail if p.number < count else last
        assert p.received == want, (p, head, tail)
    for number in confirmed:  # no part confirmed before the kill was sent again
        assert [p.number for p in accepted].count(number) == 1, number
    assert remote_uploads(sandbox) == []
    assert snapshot_store(db).rows[0]["state"] == "done"
