"""``ossdesk upload / resume / status`` as real child processes against the sandbox."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ossdesk import config
from ossdesk.core.plan import KiB, MiB
from ossdesk.credentials import Profile, ProfileStore, keyring_available
from tests.integration.test_engine_upload import (
    assert_uploaded,
    part_puts,
    remote_uploads,
    write_random,
)
from tests.support.sandbox import SandboxInfo


def cli_env(sb: SandboxInfo, **extra: str) -> dict[str, str]:
    env = {**os.environ, "OSS_ACCESS_KEY_ID": sb.access_key_id,
           "OSS_ACCESS_KEY_SECRET": sb.access_key_secret, "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def dest(sb: SandboxInfo) -> list[str]:
    return ["--endpoint", sb.endpoint, "--bucket", sb.bucket, "--region", sb.region]


def ossdesk(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ossdesk", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ossdesk", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_upload_files_and_a_folder(sandbox: SandboxInfo, tmp_path: Path) -> None:
    one = write_random(tmp_path / "one.bin", 700 * KiB + 3)
    folder = tmp_path / "Photos"
    write_random(folder / "a.jpg", 10)
    write_random(folder / "trip" / "cafe\u0301.txt", 5)  # NFD on disk, NFC as key
    (folder / "empty.txt").write_bytes(b"")
    if sys.platform != "win32":
        (folder / "trip" / "loop").symlink_to(folder)
    result = ossdesk("upload", str(one), str(folder), *dest(sandbox), "--prefix", "backup",
                     "--part-size", "256KiB", env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    assert "4 of 4 files uploaded and verified" in result.stdout
    if sys.platform != "win32":
        assert "loop" in result.stderr  # reported, not fatal
    bucket = sandbox.bucket_client()
    keys = sorted(o.key for o in bucket.list_objects(prefix="backup/").object_list)
    assert keys == ["backup/Photos/a.jpg", "backup/Photos/empty.txt",
                    "backup/Photos/trip/caf\u00e9.txt", "backup/one.bin"]
    assert_uploaded(sandbox, "backup/one.bin", one)
    status = ossdesk("status", "--json", env=cli_env(sandbox))
    assert status.returncode == 0
    rows = json_lines(status.stdout)
    assert [r["state"] for r in rows] == ["done"] * 4
    assert {r["key"] for r in rows} == set(keys)
    text = ossdesk("status", env=cli_env(sandbox)).stdout
    assert "4 done" in text and "backup/one.bin" in text


def test_json_events(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "j.bin", 600 * KiB)
    result = ossdesk("upload", str(path), *dest(sandbox), "--part-size", "200KiB", "--json",
                     env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "queued" and "started" in kinds and "done" in kinds
    assert kinds[-1] == "summary" and events[-1]["done"] == 1
    done = next(e for e in events if e["event"] == "done")
    assert done["key"] == "j.bin" and done["size"] == 600 * KiB
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["confirmed_bytes"] == 600 * KiB


def test_no_credentials_is_one_clear_error(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "n.bin", 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSS_")}
    result = ossdesk("upload", str(path), *dest(sandbox), env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "OSS_ACCESS_KEY_ID" in result.stderr
    assert "Traceback" not in result.stderr
    assert not config.paths().database.exists()


@pytest.mark.parametrize("fault", ["wrong secret", "missing bucket"])
def test_wrong_settings_stop_before_anything_is_queued(sandbox: SandboxInfo, tmp_path: Path,
                                                       fault: str) -> None:
    path = write_random(tmp_path / "w.bin", 10)
    env = cli_env(sandbox)
    where = dest(sandbox)
    if fault == "wrong secret":
        env["OSS_ACCESS_KEY_SECRET"] = "not-the-secret"
    else:
        where[where.index("--bucket") + 1] = "no-such-bucket"
    result = ossdesk("upload", str(path), *where, env=env)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert ("does not match" if fault == "wrong secret" else "does not exist") in lines[0]
    assert "not-the-secret" not in result.stderr + result.stdout
    assert json_lines(ossdesk("status", "--json", env=env).stdout) == []


def test_sandbox_needs_no_region(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The README's first try: ``ossdesk upload FILE --endpoint URL --bucket sandbox``."""
    path = write_random(tmp_path / "r.bin", 300 * KiB)
    result = ossdesk("upload", str(path), "--endpoint", sandbox.endpoint, "--bucket",
                     sandbox.bucket, "--part-size", "100KiB", env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    assert_uploaded(sandbox, "r.bin", path)


def test_missing_file_and_bad_key_are_reported(sandbox: SandboxInfo, tmp_path: Path) -> None:
    good = write_random(tmp_path / "g.bin", 10)
    result = ossdesk("upload", str(good), str(tmp_path / "missing.bin"), *dest(sandbox),
                     env=cli_env(sandbox))
    assert result.returncode == 1
    assert "missing.bin: no such file" in result.stderr
    assert sandbox.bucket_client().object_exists("g.bin")


def test_status_of_an_empty_list(sandbox: SandboxInfo) -> None:
    result = ossdesk("status", env=cli_env(sandbox))
    assert result.returncode == 0 and "empty" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_ctrl_c_pauses_and_resume_finishes(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "i.bin", 3 * MiB)
    env = cli_env(sandbox)
    child = spawn("upload", str(path), *dest(sandbox), "--part-size", "256KiB",
                  "--limit-rate", "512KiB", env=env)
    try:
        _wait_for_parts(sandbox, 2)
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, err
    assert "ossdesk resume" in err
    rows = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert rows[0]["state"] == "paused" and rows[0]["confirmed_bytes"] > 0
    no_creds = {k: v for k, v in env.items() if not k.startswith("OSS_")}
    refused = ossdesk("resume", env=no_creds)
    assert refused.returncode == 2 and "OSS_ACCESS_KEY_ID" in refused.stderr
    assert json_lines(ossdesk("status", "--json", env=env).stdout)[0]["state"] == "paused"
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stderr
    assert_uploaded(sandbox, "i.bin", path)


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows")
def test_a_second_ctrl_c_while_pausing_stops_at_once_and_resume_finishes(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """Ctrl-C, then Ctrl-C again while the first one pauses: the command ends at once with
    a message that says what is kept (no traceback), and `ossdesk resume` finishes."""
    path = write_random(tmp_path / "twice.bin", 3 * MiB)
    hold = tmp_path / "hold-pause"
    hold.write_bytes(b"")
    env = cli_env(sandbox, OSSDESK_HOLD_PAUSE=str(hold))
    child = spawn("upload", str(path), *dest(sandbox), "--part-size", "256KiB",
                  "--limit-rate", "512KiB", env=env)
    try:
        _wait_for_parts(sandbox, 2)
        child.send_signal(signal.SIGINT)
        assert child.stderr is not None
        seen = ""
        while "Pausing..." not in seen:
            line = child.stderr.readline()
            assert line, seen
            seen += line
        child.send_signal(signal.SIGINT)  # the pause is held: this lands while pausing
        _out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    err = seen + err
    assert child.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped at once" in err and "ossdesk resume" in err
    hold.unlink()
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stderr
    assert "uploaded and verified" in result.stdout
    assert_uploaded(sandbox, "twice.bin", path)


def test_a_second_process_is_refused(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "slow.bin", 2 * MiB)
    env = cli_env(sandbox)
    child = spawn("upload", str(path), *dest(sandbox), "--part-size", "256KiB",
                  "--limit-rate", "256KiB", env=env)
    try:
        _wait_for_parts(sandbox, 1)
        other = write_random(tmp_path / "other.bin", 10)
        second = ossdesk("upload", str(other), *dest(sandbox), env=env)
        assert second.returncode == 3
        assert "another ossdesk" in second.stderr
        # Reading the list meanwhile works.
        assert ossdesk("status", env=env).returncode == 0
    finally:
        child.kill()
        child.communicate()


def test_existing_skip_flag(sandbox: SandboxInfo, tmp_path: Path) -> None:
    same = write_random(tmp_path / "d" / "same.bin", 600 * KiB, seed=1)
    other = write_random(tmp_path / "d" / "other.bin", 1000, seed=2)
    bucket = sandbox.bucket_client()
    bucket.put_object("d/same.bin", same.read_bytes())
    bucket.put_object("d/other.bin", bytes(1000))
    env = cli_env(sandbox)
    result = ossdesk("upload", str(tmp_path / "d"), *dest(sandbox), "--part-size", "256KiB",
                     "--existing", "skip", env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"skipped +d/same\.bin .*already in OSS, identical", result.stdout)
    assert "2 of 2 files uploaded and verified" in result.stdout
    assert "1 of them skipped" in result.stdout
    assert_uploaded(sandbox, "d/other.bin", other)
    assert part_puts(sandbox) == []  # same.bin (3 parts' worth) was not sent
    rows = {r["key"]: r for r in json_lines(ossdesk("status", "--json", env=env).stdout)}
    assert (rows["d/same.bin"]["state"], rows["d/same.bin"]["skipped"]) == ("done", True)
    assert (rows["d/other.bin"]["state"], rows["d/other.bin"]["skipped"]) == ("done", False)
    assert "done (skipped)" in ossdesk("status", env=env).stdout
    # The default (and --existing overwrite) sends the file again.
    again = ossdesk("upload", str(same), *dest(sandbox), "--prefix", "d", "--part-size",
                    "256KiB", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[-1]["skipped"] == 0
    assert len({u for u, _, status in part_puts(sandbox) if status == 200}) == 1
    bad = ossdesk("upload", str(same), *dest(sandbox), "--existing", "ask", env=env)
    assert bad.returncode == 2 and "--existing" in bad.stderr


def test_status_after_a_kill_says_interrupted(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "k.bin", 3 * MiB)
    env = cli_env(sandbox)
    child = spawn("upload", str(path), *dest(sandbox), "--part-size", "256KiB",
                  "--limit-rate", "512KiB", env=env)
    try:
        _wait_for_parts(sandbox, 1)
        # While it runs, "running" is true.
        live = json_lines(ossdesk("status", "--json", env=env).stdout)
        assert [(r["state"], r["interrupted"]) for r in live] == [("running", False)]
        text = ossdesk("status", env=env).stdout
        assert "running" in text and "interrupted" not in text
    finally:
        child.kill()  # SIGKILL (TerminateProcess on Windows): no chance to record anything
        child.communicate(timeout=30)
    assert child.returncode == (-signal.SIGKILL if sys.platform != "win32" else 1)
    rows = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert [(r["state"], r["interrupted"]) for r in rows] == [("running", True)]
    text = ossdesk("status", env=env).stdout
    assert "interrupted" in text and "ossdesk resume" in text
    assert ossdesk("resume", env=env).returncode == 0
    assert_uploaded(sandbox, "k.bin", path)
    rows = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert [(r["state"], r["interrupted"]) for r in rows] == [("done", False)]


def _wait_for_parts(sb: SandboxInfo, n: int, timeout: float = 30,
                    child: subprocess.Popen[str] | None = None) -> None:
    """Until the server has confirmed ``n`` parts (reading its log), or the child ended."""
    deadline = time.monotonic() + timeout
    while sum(1 for (_, _, status) in part_puts(sb) if status == 200) < n:
        if child is not None and child.poll() is not None:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the upload did not start")
        time.sleep(0.02)


def _confirmed_parts(db: Path) -> set[tuple[str, int]]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT u.upload_id, p.number FROM parts p "
                                "JOIN uploads u ON u.id = p.upload"))
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """Kill ``ossdesk upload``/``resume`` with SIGKILL several times; resume finishes it all
    byte-exact and no part the store had confirmed is ever sent again."""
    seed = int(os.environ.get("OSSDESK_SOAK_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    files = [
        write_random(tmp_path / "src" / "big.bin", 6 * MiB + 1234),
        write_random(tmp_path / "src" / "exact.bin", 1 * MiB),
        write_random(tmp_path / "src" / "small.bin", 100),
    ]
    env = cli_env(sandbox)
    db = config.paths().database
    parallel = 4
    limits = ["--parallel", str(parallel), "--limit-rate", "3MiB"]
    command = ["upload", str(tmp_path / "src"), *dest(sandbox), "--part-size", "256KiB",
               *limits]
    snapshots: list[tuple[int, set[tuple[str, int]]]] = []
    for _ in range(4):
        before = sum(1 for p in part_puts(sandbox) if p[2] == 200)
        child = spawn(*command, env=env)
        try:
            # Once this run moves (a part confirmed by the server), kill it at a random moment.
            _wait_for_parts(sandbox, before + 1, child=child)
            time.sleep(rng.uniform(0.0, 0.6))
        finally:
            child.kill()
            child.communicate()
        if child.returncode == 0:
            break  # it finished before the kill
        snapshots.append((len(part_puts(sandbox)), _confirmed_parts(db)))
        command = ["resume", *limits]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, (seed, result.stderr)
    for path in files:
        assert_uploaded(sandbox, f"src/{path.name}", path)
    assert remote_uploads(sandbox) == []
    puts = part_puts(sandbox)
    for seen, confirmed in snapshots:
        resent = [p for p in puts[seen:] if (p[0], p[1]) in confirmed]
        assert resent == [], f"seed {seed}: confirmed parts were sent again: {resent}"
    # Bounded re-sending: per kill at most the parts in flight were sent twice.
    ok = [(u, n) for (u, n, status) in puts if status == 200]
    print(f"seed {seed}: {len(snapshots)} kills, {len(ok)} parts confirmed by the server, "
          f"{len(ok) - len(set(ok))} sent twice, confirmed parts in the store at each kill: "
          f"{[len(c) for _, c in snapshots]}")
    assert len(ok) - len(set(ok)) <= len(snapshots) * parallel, seed
    assert snapshots, "no kill landed during the upload"


def test_changed_source_between_runs_starts_over(sandbox: SandboxInfo, tmp_path: Path) -> None:
    path = write_random(tmp_path / "ch.bin", 2 * MiB)
    env = cli_env(sandbox)
    child = spawn("upload", str(path), *dest(sandbox), "--part-size", "256KiB",
                  "--limit-rate", "512KiB", env=env)
    try:
        _wait_for_parts(sandbox, 1)
    finally:
        child.kill()
        child.communicate()
    write_random(path, 1 * MiB + 5, seed=7)
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"changed since its upload began.*starts over", result.stdout)
    assert_uploaded(sandbox, "ch.bin", path)
    assert remote_uploads(sandbox) == []


@pytest.mark.parametrize("point", ["initiated", "id-saved", "part-sent:3", "part-saved:3",
                                   "completed"])
def test_crash_at_each_critical_point_then_resume(sandbox: SandboxInfo, tmp_path: Path,
                                                  point: str) -> None:
    """The process dies exactly between a server's answer and the store's record of it."""
    path = write_random(tmp_path / "crash.bin", 6 * 100 * KiB + 7)
    env = cli_env(sandbox, OSSDESK_CRASH_AT=point)
    first = ossdesk("upload", str(path), *dest(sandbox), "--part-size", "100KiB",
                    "--parallel", "1", env=env)
    assert first.returncode == 137, first.stderr
    confirmed = _confirmed_parts(config.paths().database)
    seen = len(part_puts(sandbox))
    del env["OSSDESK_CRASH_AT"]
    result = ossdesk("resume", env=env)
    assert result.returncode == 0, result.stderr
    assert_uploaded(sandbox, "crash.bin", path)
    if point == "initiated":
        # The upload begun before the crash cannot be told from another client's upload of
        # the key: it is left alone, and the user is told how to find and abort it.
        assert len(remote_uploads(sandbox)) == 1
        assert "was left alone" in result.stdout and "ossdesk uploads" in result.stdout
    else:
        assert remote_uploads(sandbox) == []
    later = part_puts(sandbox)[seen:]
    assert not [p for p in later if (p[0], p[1]) in confirmed]
    if point == "completed":
        assert later == []  # found complete on the server: nothing sent again
        assert "completed on the server just before" in result.stdout
    if point.startswith("part-sent"):
        # Parts 1-2 saved; part 3 confirmed by OSS but not saved: resume finds it on the
        # server, checks its MD5 against the file and keeps it. Parts 4-7 are sent.
        assert sorted(n for (_, n, _) in later) == [4, 5, 6, 7]


@pytest.mark.keyring
def test_upload_with_a_saved_profile(sandbox: SandboxInfo, tmp_path: Path,
                                     ossdesk_home: Path) -> None:
    """Endpoint, bucket, prefix and secret from a profile; the secret only in the keyring."""
    if not keyring_available():
        if os.environ.get("OSSDESK_REQUIRE_KEYRING") == "1":
            pytest.fail("no usable keyring backend, and OSSDESK_REQUIRE_KEYRING=1")
        pytest.skip("no usable keyring backend (run inside scripts/with-keyring)")
    profiles = ProfileStore()
    profiles.save(Profile(name="engine-test", endpoint=sandbox.endpoint, bucket=sandbox.bucket,
                          region=sandbox.region, prefix="from-profile/",
                          access_key_id=sandbox.access_key_id),
                  secret=sandbox.access_key_secret)
    try:
        path = write_random(tmp_path / "p.bin", 300 * KiB)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSS_")}
        result = ossdesk("upload", str(path), "--profile", "engine-test", "--part-size",
                         "100KiB", env=env)
        assert result.returncode == 0, result.stderr
        assert_uploaded(sandbox, "from-profile/p.bin", path)
        rows = json_lines(ossdesk("status", "--json", env=env).stdout)
        assert rows[0]["credentials"] == "engine-test"
        secret = sandbox.access_key_secret.encode()
        assert [f for f in ossdesk_home.rglob("*") if f.is_file() and secret in f.read_bytes()] \
            == []
    finally:
        profiles.delete("engine-test")


def test_a_cancelled_upload_is_listed_as_cancelled_and_never_resumed(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The window cancels an upload: the row stays as history. `ossdesk status` says so,
    `ossdesk resume` leaves it alone, and nothing counts it as unfinished."""
    from ossdesk.core.events import Progress
    from ossdesk.core.oss import Credentials
    from ossdesk.core.scheduler import Scheduler
    from ossdesk.core.store import State, Store
    from tests.integration.test_engine_upload import FAST_RETRY
    from tests.support.engine import Recorder, new_upload

    big = write_random(tmp_path / "given-up.bin", 2 * MiB)
    creds = Credentials(sandbox.access_key_id, sandbox.access_key_secret)
    scheduler = Scheduler(Store.open(), credentials=lambda _s: creds, part_size=256 * KiB,
                          parallel=1, rate=512 * KiB, retry=FAST_RETRY)
    rec = Recorder()
    scheduler.add_listener(rec)
    try:
        (upload,) = scheduler.add([new_upload(sandbox, big)])
        rec.wait_for(lambda e: isinstance(e, Progress) and e.confirmed_bytes > 0)
        scheduler.cancel([upload])
        rec.wait_for(lambda e: e.kind == "cancelled")
        assert scheduler.wait(10)
    finally:
        scheduler.close()
        scheduler.store.close()
    assert remote_uploads(sandbox) == []
    env = cli_env(sandbox)

    status = ossdesk("status", env=env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert re.match(rf"\s*{upload}\s+cancelled\s+0\.0%.*given-up\.bin$", lines[0]), lines
    assert lines[-1] == "1 cancelled", lines
    [row] = json_lines(ossdesk("status", "--json", env=env).stdout)
    assert row["state"] == "cancelled"

    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == (
        "Nothing to resume: every upload in the list is finished or cancelled.")
    small = write_random(tmp_path / "small.bin", 10 * KiB)
    uploaded = ossdesk("upload", str(small), *dest(sandbox), env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    assert "unfinished" not in uploaded.stderr, uploaded.stderr
    with Store.open(owner=False) as store:
        states = {r.source.name: r.state for r in store.rows()}
    assert states == {"given-up.bin": State.CANCELLED, "small.bin": State.DONE}
    assert not any(k == "given-up.bin" for k in _object_keys(sandbox))


def _object_keys(sb: SandboxInfo) -> list[str]:
    return [o.key for o in sb.bucket_client().list_objects().object_list]
