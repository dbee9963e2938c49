"""Crash soak: a real ``ossdesk upload`` / ``ossdesk resume`` child killed with SIGKILL again
and again, at random moments and inside the critical windows, until every file is uploaded.

Each *generation* is a fresh mixed set of files (empty, tiny, exactly one part, one part
plus a byte, several parts). A generation runs ``upload`` (or ``resume``), kills it, resumes,
kills again... until the set is done; then the next generation starts, until the wanted
number of kills is reached. Kinds of kill, chosen at random each round:

* ``random``: a random moment (0-0.6 s) after the child's first request reached the server;
* ``initiate``: while the server holds the answer to an InitiateMultipartUpload it has
  already carried out (the upload exists on the server, the child does not know its id);
* ``part``: while the server holds the answer to an UploadPart it has stored (the part is
  on the server, not confirmed in the checkpoint database);
* ``complete``: while the server holds the answer to a CompleteMultipartUpload it has
  carried out (the object exists, the database still says "multipart in progress");
* ``crash-point`` (not counted as a SIGKILL): the engine's own abrupt-exit points, exactly
  between the server's confirmation and the database commit (``OSSDESK_CRASH_AT``).

Proven at the end of each generation: every object byte-exact (GetObject, bytes and CRC64
equal the file's, and the server's CRC64 header equals it too), every row ``done`` with the
file's CRC64, ListMultipartUploads holding only uploads without any part (an Initiate whose
answer was lost to a kill: ossdesk cannot prove such an upload is its own, so it leaves it
alone and says so); and over the whole run: no part the database had recorded as confirmed
at a kill was ever sent again afterwards.

``OSSDESK_SOAK_SEED`` replays a run, ``OSSDESK_SOAK_KILLS`` sets the number of SIGKILLs
(default 50), ``OSSDESK_SOAK_REPORT=FILE`` writes the figures as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ossdesk import config
from ossdesk.core.checksum import crc64_file
from tests.reliability.helpers import (
    KiB,
    StoreSnapshot,
    assert_uploaded,
    cli_env,
    dest,
    part_puts,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log

PART = 128 * KiB
PARALLEL = 3
HOLD = 0.8  # seconds the server holds a chosen answer
MODES = ("random", "random", "initiate", "part", "complete", "crash-point")
CRASH_POINTS = ("initiated", "id-saved", "part-sent:1", "part-sent:3", "part-saved:2",
                "completed")
PATTERNS = {
    "initiate": ("POST", r"\?uploads(?:=|&|$)"),
    "part": ("PUT", r"partNumber="),
    "complete": ("POST", r"uploadId="),
}


def _sizes(rng: random.Random) -> list[int]:
    return [0, 1, rng.randrange(2, 100 * KiB), PART, PART + 1, 2 * PART - 1,
            rng.randrange(3 * PART, 6 * PART), rng.randrange(6 * PART, 10 * PART),
            rng.randrange(10 * PART, 16 * PART)]


def _gen_rows(snap: StoreSnapshot, folder: Path) -> dict[str, dict[str, Any]]:
    return {s: r for s, r in snap.by_source().items() if Path(s).parent == folder}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_crash_soak(sandbox: SandboxInfo, tmp_path: Path) -> None:
    seed = int(os.environ.get("OSSDESK_SOAK_SEED", "0")) or random.randrange(1, 1 << 31)
    target = int(os.environ.get("OSSDESK_SOAK_KILLS", "50"))
    print(f"crash soak: OSSDESK_SOAK_SEED={seed} OSSDESK_SOAK_KILLS={target}")
    rng = random.Random(seed)
    assert sandbox.server is not None
    faults = sandbox.server.faults
    db = config.paths().database
    env = cli_env(sandbox)
    limits = ["--parallel", str(PARALLEL), "--jobs", "3", "--limit-rate", "2MiB", "--json"]
    kills: Counter[str] = Counter()
    crash_exits: Counter[str] = Counter()
    snapshots: list[tuple[int, set[tuple[str, int]]]] = []
    files_done = bytes_done = generations = runs = lost_initiates = 0
    start = time.monotonic()
    history: list[str] = []
    logs = tmp_path / "child-output"
    logs.mkdir()

    while sum(kills.values()) < target:
        generations += 1
        folder = tmp_path / f"gen-{generations}"
        files = [write_random(folder / f"f{i}-{size}.bin", size, seed=seed)
                 for i, size in enumerate(_sizes(rng))]
        prefix = f"soak/{generations}/"
        rounds = 0
        while True:
            snap = snapshot_store(db)
            rows = _gen_rows(snap, folder)
            if len(rows) == len(files) and all(r["state"] == "done" for r in rows.values()):
                break
            rounds += 1
            assert rounds <= 40, f"seed {seed}: generation {generations} does not finish"
            missing = [str(f) for f in files if str(f) not in rows]
            args = (["upload", *missing, *dest(sandbox), "--prefix", prefix, "--part-size",
                     str(PART), *limits] if missing else ["resume", *limits])
            killing = sum(kills.values()) < target
            mode = rng.choice(MODES) if killing else "finish"
            child_env = dict(env)
            faults.clear()
            probe = faults.delay(0.0, count=None)  # counts the requests that reach the server
            held = None
            if mode == "crash-point":
                point = rng.choice(CRASH_POINTS)
                child_env["OSSDESK_CRASH_AT"] = point
            elif mode in PATTERNS:
                method, pattern = PATTERNS[mode]
                held = faults.delay(HOLD, method=method, pattern=pattern, count=1)
            runs += 1
            lines_before = len(read_access_log(sandbox.log_path))
            out_path = logs / f"run-{runs}.out"
            with out_path.open("w") as out:
                child = spawn(args, child_env, out)
                try:
                    code = _drive(child, mode, probe, held, rng)
                finally:
                    if child.poll() is None:
                        child.kill()
                    child.wait(30)
            # Every request of this run that reached the server is logged once it has been
            # answered (a held one when its hold ends), before the database is looked at.
            want = lines_before + probe.hits
            wait_until(lambda: len(read_access_log(sandbox.log_path)) >= want,  # noqa: B023
                       15, "the run's requests to be logged", interval=0.05)
            faults.clear()
            output = out_path.read_text(errors="replace")
            if code == -signal.SIGKILL:
                kills[mode if held is None or held.hits else "random"] += 1
            elif mode == "crash-point" and code == 137:
                crash_exits[child_env["OSSDESK_CRASH_AT"]] += 1
            else:
                assert code == 0, f"seed {seed}: run {runs} ({args[0]}) exit {code}:\n{output}"
                assert "Traceback" not in output, output
            after = snapshot_store(db)
            snapshots.append((len(read_access_log(sandbox.log_path)), after.confirmed))
            history.append(f"run {runs}: {args[0]} {mode} exit {code}, log lines "
                           f"{lines_before}..{snapshots[-1][0]}, "
                           f"{len(after.confirmed)} parts confirmed")

        # The generation is done: verify everything it claims.
        rows = _gen_rows(snapshot_store(db), folder)
        for path in files:
            row = rows[str(path)]
            assert row["key"] == prefix + path.name
            assert row["crc64"] is not None
            assert row["crc64"] % (1 << 64) == crc64_file(path), path
            assert_uploaded(sandbox, prefix + path.name, path)
            files_done += 1
            bytes_done += path.stat().st_size
        # Left on the server: only uploads whose Initiate answer was lost to a kill (their
        # ids never reached the database, so ossdesk cannot tell them from another client's
        # and leaves them alone, with a notice). No part is ever sent to such an upload.
        bucket = sandbox.bucket_client()
        for upload in remote_uploads(sandbox):
            parts = bucket.list_parts(upload.key, upload.upload_id).parts
            assert parts == [], f"seed {seed}: orphan upload with parts: {upload.key}"
            lost_initiates += 1
            bucket.abort_multipart_upload(upload.key, upload.upload_id)

    puts = part_puts(sandbox.log_path)
    resent = []
    for seen, confirmed in snapshots:
        resent += [p for p in puts if p.line >= seen and (p.upload_id, p.number) in confirmed]
    assert resent == [], (f"seed {seed}: parts confirmed in the database were sent again: "
                          f"{resent}\n" + "\n".join(history))
    ok = [(p.upload_id, p.number) for p in puts if p.status == 200]
    report = {
        "seed": seed, "kills": dict(kills), "kills_total": sum(kills.values()),
        "crash_point_exits": dict(crash_exits), "generations": generations, "runs": runs,
        "files": files_done, "bytes": bytes_done, "part_requests": len(puts),
        "parts_stored_twice": len(ok) - len(set(ok)), "lost_initiates": lost_initiates,
        "seconds": round(time.monotonic() - start, 1),
    }
    print("crash soak:", json.dumps(report))
    if os.environ.get("OSSDESK_SOAK_REPORT"):
        Path(os.environ["OSSDESK_SOAK_REPORT"]).write_text(json.dumps(report, indent=2))
    # Re-sending is bounded: at most what was in flight at each interruption.
    assert len(ok) - len(set(ok)) <= (sum(kills.values()) + sum(crash_exits.values())) * PARALLEL
    assert sum(kills.values()) >= target


def _drive(child: Any, mode: str, probe: Any, held: Any, rng: random.Random) -> int:
    """Let the child run and kill it as ``mode`` says; returns its exit code."""
    if mode in ("finish", "crash-point"):
        return int(child.wait(120))
    base = probe.hits
    # The child is talking to the server (past its start-up).
    wait_until(lambda: probe.hits > base or child.poll() is not None, 60, "the first request")
    if held is not None:
        # Inside the held window if the child gets there; else a random moment.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: held.hits > 0 or child.poll() is not None, 4, "the held request")
        pause = rng.uniform(0.0, HOLD / 3) if held.hits else rng.uniform(0.0, 0.6)
    else:
        pause = rng.uniform(0.0, 0.6)
    if child.poll() is None:
        time.sleep(pause)  # the random moment of the kill
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
    return int(child.wait(30))
