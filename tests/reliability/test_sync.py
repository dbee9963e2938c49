"""``ossdesk sync DIR``: a real ``ossdesk`` child against the sandbox, real files.

What is proven from the sandbox's access log and listing, not from ossdesk's own words: a
dry run sends nothing; a second sync sends no body; ``--delete`` removes only what the
folder lacks under the prefix (never ``backup2/`` for ``--prefix backup``); an interrupted
sync (SIGKILL) is finished by ``ossdesk resume``.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from ossdesk import config
from ossdesk.core.oss import Credentials, Endpoint, OssClient
from ossdesk.core.sync import MTIME_META
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    dest,
    json_lines,
    object_keys,
    ossdesk,
    part_puts,
    remote_uploads,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log


def _folder(root: Path) -> Path:
    """A folder with files to sync and files the default and given excludes leave out."""
    folder = root / "photos"
    write_random(folder / "a.jpg", 10 * KiB + 1)
    write_random(folder / "sub" / "b.raw", 300 * KiB + 3)
    write_random(folder / "sub" / "deeper" / "c.txt", 0)
    write_random(folder / ".DS_Store", 100)
    write_random(folder / "sub" / "draft.tmp", 100)
    write_random(folder / "cache" / "x.bin", 100)  # --exclude cache
    write_random(folder / "notes.bak", 100)  # --exclude-from
    return folder


SYNCED = ("a.jpg", "sub/b.raw", "sub/deeper/c.txt")


def _requests(sb: SandboxInfo, since: int) -> list[dict[str, Any]]:
    """The object requests (not the sandbox's control calls) logged after line ``since``."""
    return [r for r in read_access_log(sb.log_path)[since:] if not r["path"].startswith("/-/")]


def _writes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["method"] in ("PUT", "POST", "DELETE")]


def _sync(sb: SandboxInfo, folder: Path, env: dict[str, str], *extra: str) -> Any:
    excludes = folder.parent / "excludes.txt"
    excludes.write_text("# backups of notes\n*.bak\n", encoding="utf-8")
    return ossdesk("sync", str(folder), *dest(sb), "--prefix", "backup", "--exclude", "cache",
                   "--exclude-from", str(excludes), *extra, env=env)


def test_a_dry_run_changes_nothing(sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    env = cli_env(sandbox)
    before = len(read_access_log(sandbox.log_path))
    result = _sync(sandbox, folder, env, "--dry-run", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    events = json_lines(result.stdout)
    [plan] = [e for e in events if e["event"] == "sync-plan"]
    sizes = {k: (folder / k).stat().st_size for k in SYNCED}
    assert (plan["upload"], plan["upload_bytes"], plan["delete"], plan["excluded"]) == \
        (3, sum(sizes.values()), 0, 4)
    would = {e["key"]: e["size"] for e in events if e["event"] == "would-upload"}
    assert would == {f"backup/{k}": s for k, s in sizes.items()}
    assert _writes(_requests(sandbox, before)) == []
    assert object_keys(sandbox) == []
    assert snapshot_store(config.paths().database).rows == []  # nothing queued either

    text = _sync(sandbox, folder, env, "--dry-run")
    assert text.returncode == 0
    assert "3 to upload" in text.stdout and "would upload  backup/sub/b.raw" in text.stdout
    assert "dry run: nothing was uploaded or deleted." in text.stdout


def test_sync_uploads_all_but_the_excluded_and_a_second_sync_sends_nothing(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    env = cli_env(sandbox)
    first = _sync(sandbox, folder, env, "--part-size", "100KiB")
    assert first.returncode == 0, first.stdout + first.stderr
    assert object_keys(sandbox) == sorted(f"backup/{k}" for k in SYNCED)
    for key in SYNCED:
        assert_uploaded(sandbox, f"backup/{key}", folder / key)
        head = sandbox.bucket_client().head_object(f"backup/{key}")
        assert head.headers[f"x-oss-meta-{MTIME_META}"] == str((folder / key).stat().st_mtime_ns)

    before = len(read_access_log(sandbox.log_path))
    second = _sync(sandbox, folder, env, "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    requests = _requests(sandbox, before)
    assert _writes(requests) == []  # no PUT, no POST, no DELETE
    assert [r for r in requests if r["method"] == "HEAD"] == []  # the upload list says so
    events = json_lines(second.stdout)
    assert sorted(e["key"] for e in events if e["event"] == "unchanged") == \
        sorted(f"backup/{k}" for k in SYNCED)

    # Without the upload list (another computer, or the list cleared): one HEAD each shows
    # the object's recorded mtime is the file's; still no body sent and no file read.
    shutil.rmtree(config.paths().database.parent)
    before = len(read_access_log(sandbox.log_path))
    third = _sync(sandbox, folder, env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "nothing to upload: 3 file(s) unchanged." in third.stdout
    requests = _requests(sandbox, before)
    assert _writes(requests) == []
    assert len([r for r in requests if r["method"] == "HEAD"]) == 3


def test_one_changed_and_one_deleted_file_with_delete_spares_everything_outside_the_prefix(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    env = cli_env(sandbox)
    assert _sync(sandbox, folder, env).returncode == 0
    other = sandbox.bucket_client()
    for key in ("backup2/x", "other.txt", "backupx", "backup/.DS_Store", "backup/cache/y"):
        other.put_object(key, b"not ossdesk's to delete")
    write_random(folder / "a.jpg", 12 * KiB, seed=1)  # changed
    (folder / "sub" / "deeper" / "c.txt").unlink()  # deleted

    before = len(read_access_log(sandbox.log_path))
    result = _sync(sandbox, folder, env, "--delete")
    assert result.returncode == 0, result.stdout + result.stderr
    writes = _writes(_requests(sandbox, before))
    assert [(r["method"], r["path"]) for r in writes] == [
        ("DELETE", "/sandbox/backup%2Fsub%2Fdeeper%2Fc.txt"),
        ("PUT", "/sandbox/backup%2Fa.jpg"),
    ]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sync ") and "1 to upload" in lines[0] and \
        "1 to delete" in lines[0]
    assert "deleted  backup/sub/deeper/c.txt  0 B" in lines
    assert_uploaded(sandbox, "backup/a.jpg", folder / "a.jpg")
    assert object_keys(sandbox) == ["backup/.DS_Store", "backup/a.jpg", "backup/cache/y",
                                    "backup/sub/b.raw", "backup2/x", "backupx", "other.txt"]


def test_a_same_size_object_nothing_shows_identical_is_uploaded_and_checksum_compares(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    same = write_random(folder / "same.bin", 5 * KiB)
    other = write_random(folder / "other.bin", 5 * KiB)
    client = sandbox.bucket_client()
    client.put_object("backup/same.bin", same.read_bytes())  # identical, not by ossdesk
    client.put_object("backup/other.bin", bytes(5 * KiB))  # same size, other bytes
    env = cli_env(sandbox)

    checked = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup",
                      "--checksum", "--dry-run", "--json", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    events = json_lines(checked.stdout)
    assert [e["key"] for e in events if e["event"] == "unchanged"] == ["backup/same.bin"]
    assert [(e["key"], e["reason"]) for e in events if e["event"] == "would-upload"] == \
        [("backup/other.bin", "changed")]

    plain = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup", "--dry-run",
                    "--json", env=env)
    assert sorted((e["key"], e["reason"]) for e in json_lines(plain.stdout)
                  if e["event"] == "would-upload") == [("backup/other.bin", "unproven"),
                                                       ("backup/same.bin", "unproven")]
    result = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup",
                     "--checksum", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_uploaded(sandbox, "backup/other.bin", other)


def test_a_sync_killed_mid_upload_is_finished_by_resume(sandbox: SandboxInfo,
                                                        tmp_path: Path) -> None:
    assert sandbox.server is not None
    folder = tmp_path / "big"
    files = [write_random(folder / f"f{i}.bin", 4 * 100 * KiB + i) for i in range(3)]
    env = cli_env(sandbox)
    hold = sandbox.server.faults.delay(5.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    out = tmp_path / "sync.out"
    with out.open("w") as fh:
        child = spawn(["sync", str(folder), *dest(sandbox), "--prefix", "backup",
                       "--part-size", "100KiB", "--parallel", "1", "--jobs", "1"], env, fh)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 3")
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
    rows = snapshot_store(config.paths().database).rows
    assert len(rows) == 3 and all(r["state"] != "done" for r in rows), out.read_text()

    # Sync again before resume: the unfinished rows are continued by this sync, not queued
    # a second time, and the parts OSS confirmed are not sent again.
    kept = snapshot_store(config.paths().database).confirmed
    again = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 file(s) had an unfinished upload in the list: continued as part of this run, " \
        "not queued again" in again.stderr, again.stderr
    assert "3 of 3 files uploaded and verified" in again.stdout, again.stdout
    rows = snapshot_store(config.paths().database).rows
    assert [r["state"] for r in rows] == ["done"] * 3, rows
    sent = [(p.upload_id, p.number) for p in part_puts(sandbox.log_path) if p.status == 200]
    assert kept and all(sent.count(part) == 1 for part in kept), sent
    for path in files:
        assert_uploaded(sandbox, f"backup/{path.name}", path)
    assert remote_uploads(sandbox) == []

    resumed = ossdesk("resume", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Nothing to resume" in resumed.stdout
    before = len(read_access_log(sandbox.log_path))
    again = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to upload: 3 file(s) unchanged." in again.stdout
    assert _writes(_requests(sandbox, before)) == []


def test_a_file_changed_since_a_killed_sync_is_uploaded_anew_and_its_old_upload_aborted(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The object of a sync carries the file's mtime: an unfinished upload of an older
    version would write an old one, so it is cancelled (aborted on the server) and the file
    uploaded from the start, in one row of its own; never two unfinished rows."""
    assert sandbox.server is not None
    folder = tmp_path / "big"
    path = write_random(folder / "f.bin", 8 * 100 * KiB)
    env = cli_env(sandbox)
    hold = sandbox.server.faults.delay(5.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    with (tmp_path / "sync.out").open("w") as fh:
        child = spawn(["sync", str(folder), *dest(sandbox), "--prefix", "backup",
                       "--part-size", "100KiB", "--parallel", "1"], env, fh)
        try:
            wait_until(lambda: hold.hits > 0 or child.poll() is not None, 60, "part 3")
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
    (first,) = snapshot_store(config.paths().database).rows
    assert first["state"] == "running" and first["upload_id"]
    write_random(path, 5 * 100 * KiB + 1, seed=3)

    again = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (f"backup/f.bin: the unfinished upload of {path} in the list (row {first['id']}) "
            "was to be written with other metadata (and the file changed since it began); it "
            "was cancelled (its multipart upload was aborted on the server) and the file is "
            "uploaded from the start with this run's options") in again.stderr, again.stderr
    assert_uploaded(sandbox, "backup/f.bin", path)
    head = sandbox.bucket_client().head_object("backup/f.bin")
    assert head.headers[f"x-oss-meta-{MTIME_META}"] == str(path.stat().st_mtime_ns)
    assert remote_uploads(sandbox) == []
    rows = snapshot_store(config.paths().database).rows
    assert rows[0]["id"] == first["id"]
    assert [r["state"] for r in rows] == ["cancelled", "done"], rows


def test_an_unreadable_entry_keeps_its_object_with_delete(sandbox: SandboxInfo,
                                                           tmp_path: Path) -> None:
    """A file the walk cannot read (here a link whose target is gone) is still in the
    folder: its object is not deleted, and the run says the entry was not synced."""
    folder = tmp_path / "linked"
    target = write_random(tmp_path / "elsewhere" / "t.bin", 1000)
    folder.mkdir()
    (folder / "link.bin").symlink_to(target)
    write_random(folder / "plain.bin", 10)
    env = cli_env(sandbox)
    first = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    target.unlink()
    result = ossdesk("sync", str(folder), *dest(sandbox), "--prefix", "backup", "--delete",
                     env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "link.bin: cannot be read (a broken link: what it points to does not exist)" in \
        result.stderr
    assert "0 to delete" in result.stdout
    assert object_keys(sandbox) == ["backup/link.bin", "backup/plain.bin"]


def test_the_listing_streams_every_page(sandbox: SandboxInfo) -> None:
    bucket = sandbox.bucket_client()
    keys = [*(f"p/{i:02d}" for i in range(7)), "p/\u00e9", "p/z/deep"]
    for key in [*keys, "p2/x", "q"]:
        bucket.put_object(key, key.encode())
    where = Endpoint(sandbox.endpoint, sandbox.bucket, sandbox.region, "v4")
    with OssClient(where, Credentials(sandbox.access_key_id,
                                      sandbox.access_key_secret)) as client:
        listed = client.list_objects("p/", page_size=2)
        first = next(listed)
        assert first.key == "p/00" and first.size == 4
        assert [first.key, *(o.key for o in listed)] == sorted(keys)
