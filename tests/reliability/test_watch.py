"""``ossdesk watch DIR``: a real ``ossdesk`` child against the sandbox, real files, real
SIGINT.

Proven from the sandbox (its objects and access log) and the upload list, not from
ossdesk's own words: a file written slowly is uploaded once, whole, after its last write;
a file made while no watch ran is uploaded by the next one's first pass; Ctrl-C in the
middle of an upload leaves it paused and ``ossdesk resume`` finishes it; a folder that
vanishes deletes nothing (even with ``--delete``) and is watched again when it is back.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ossdesk import config
from tests.reliability.helpers import (
    KiB,
    MiB,
    assert_uploaded,
    cli_env,
    dest,
    object_keys,
    ossdesk,
    snapshot_store,
    spawn,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log

SETTLE = 2.0
RESCAN = 10.0


class _Child:
    def __init__(self, proc: subprocess.Popen[bytes], out: Path, err: Path) -> None:
        self.proc, self.out, self.err = proc, out, err

    def events(self) -> list[dict[str, Any]]:
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")
                and line.endswith("}")]

    def saw(self, event: str, **fields: Any) -> bool:
        return any(e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
                   for e in self.events())

    def wait_for(self, event: str, timeout: float = 60, **fields: Any) -> None:
        wait_until(lambda: self.saw(event, **fields) or self.proc.poll() is not None,
                   timeout, f"{event} {fields}")
        assert self.proc.poll() is None, self.err.read_text()

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(60)


@contextmanager
def _watch(sb: SandboxInfo, folder: Path, tmp_path: Path, *extra: str,
           name: str = "watch") -> Iterator[_Child]:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("w") as fo, err.open("w") as fe:
        proc = spawn(["watch", str(folder), *dest(sb), "--prefix", "backup", "--json",
                      "--settle", str(SETTLE), "--rescan", str(RESCAN), *extra],
                     cli_env(sb), fo, fe)
        try:
            yield _Child(proc, out, err)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _done_keys(child: _Child) -> list[str]:
    return [e["key"] for e in child.events() if e.get("event") == "done"]


def test_a_file_written_slowly_is_uploaded_once_whole_after_its_last_write(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "renders"
    write_random(folder / "old.bin", 10 * KiB)
    with _watch(sandbox, folder, tmp_path) as child:
        child.wait_for("watching")
        assert _done_keys(child) == ["backup/old.bin"]  # the first pass
        path = folder / "frames" / "take1.mov"
        path.parent.mkdir()
        chunk = 64 * KiB
        with path.open("wb") as fh:  # written in 8 steps, each well within the quiet time
            for i in range(8):
                fh.write(bytes([i]) * chunk)
                fh.flush()
                time.sleep(SETTLE / 8)
        # Bounded by the quiet time plus one rescan (and a margin for a loaded machine).
        child.wait_for("done", timeout=SETTLE + RESCAN + 30, key="backup/frames/take1.mov")
        code = child.interrupt()
    stderr = child.err.read_text()
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert_uploaded(sandbox, "backup/frames/take1.mov", path)
    # Never a partial version: one upload of the key, of the whole file.
    queued = [e for e in child.events() if e.get("event") == "changed"]
    assert [(e["key"], e["size"]) for e in queued] == [("backup/frames/take1.mov", 8 * chunk)]
    rows = [r for r in snapshot_store(config.paths().database).rows
            if r["key"] == "backup/frames/take1.mov"]
    assert [(r["size"], r["state"]) for r in rows] == [(8 * chunk, "done")]
    puts = [r for r in read_access_log(sandbox.log_path)
            if r["method"] == "PUT" and "take1.mov" in r["path"]]
    assert sum(r["received"] for r in puts) == 8 * chunk
    summary = [e for e in child.events() if e["event"] == "summary"][-1]
    assert (summary["done"], summary["failed"], summary["paused"]) == (1, 0, 0)
    assert f"stopped watching {folder}" in stderr


def test_a_file_made_while_no_watch_ran_is_uploaded_by_the_first_pass(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    write_random(folder / "a.bin", 1 * KiB)
    with _watch(sandbox, folder, tmp_path, name="first") as child:
        child.wait_for("watching")
        code = child.interrupt()
    assert code == 130
    assert "nothing had changed since the first pass" in child.err.read_text()
    write_random(folder / "made-meanwhile.bin", 3 * KiB)
    with _watch(sandbox, folder, tmp_path, name="second") as child:
        child.wait_for("watching")
        [plan] = [e for e in child.events() if e["event"] == "sync-plan"]
        assert (plan["upload"], plan["unchanged"]) == (1, 1)
        assert _done_keys(child) == ["backup/made-meanwhile.bin"]
        child.interrupt()
    assert_uploaded(sandbox, "backup/made-meanwhile.bin", folder / "made-meanwhile.bin")


def test_ctrl_c_during_an_upload_leaves_it_resumable(sandbox: SandboxInfo,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    with _watch(sandbox, folder, tmp_path, "--limit-rate", "512KiB",
                "--part-size", "256KiB") as child:
        child.wait_for("watching")
        path = write_random(tmp_path / "staging" / "big.bin", 4 * MiB)
        path.rename(folder / "big.bin")  # moved in whole
        wait_until(lambda: any(e["event"] == "progress" and e["confirmed_bytes"] > 0
                               for e in child.events()), 60, "a part confirmed")
        code = child.interrupt()
    stderr = child.err.read_text()
    assert code == 130, stderr
    summary = [e for e in child.events() if e["event"] == "summary"][-1]
    assert (summary["done"], summary["paused"]) == (0, 1), summary
    assert "1 file(s) paused" in stderr and "`ossdesk resume`" in stderr, stderr
    assert "nothing had changed" not in stderr
    [row] = snapshot_store(config.paths().database).rows
    assert row["state"] == "paused" and row["upload_id"], row
    resumed = ossdesk("resume", env=cli_env(sandbox))
    assert resumed.returncode == 0, resumed.stderr
    assert_uploaded(sandbox, "backup/big.bin", folder / "big.bin")


def test_a_vanished_folder_is_reported_deletes_nothing_and_is_watched_again(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    for name in ("a.bin", "b.bin", "sub/c.bin"):
        write_random(folder / name, 2 * KiB)
    with _watch(sandbox, folder, tmp_path, "--delete") as child:
        child.wait_for("watching")
        keys = object_keys(sandbox, "backup/")
        assert keys == ["backup/a.bin", "backup/b.bin", "backup/sub/c.bin"]
        away = tmp_path / "unplugged"
        folder.rename(away)
        child.wait_for("folder-missing", folder=str(folder))
        time.sleep(SETTLE * 2)  # several quiet times with the folder away
        assert object_keys(sandbox, "backup/") == keys
        away.rename(folder)
        child.wait_for("folder-back", folder=str(folder))
        write_random(folder / "sub" / "after.bin", 1 * KiB)
        child.wait_for("done", key="backup/sub/after.bin")
        # With the folder there, --delete does remove a file's object.
        (folder / "b.bin").unlink()
        child.wait_for("deleted", key="backup/b.bin")
        child.interrupt()
    assert object_keys(sandbox, "backup/") == ["backup/a.bin", "backup/sub/after.bin",
                                                "backup/sub/c.bin"]
    deletes = [r["path"] for r in read_access_log(sandbox.log_path) if r["method"] == "DELETE"]
    assert [unquote(p) for p in deletes] == [f"/{sandbox.bucket}/backup/b.bin"], deletes
    missing = [e for e in child.events() if e["event"] == "folder-missing"]
    assert len(missing) == 1


def test_a_file_whose_upload_failed_is_uploaded_again_in_its_place_when_it_changes(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The watch's upload of a file failed (its multipart upload left on the server); the
    file changes: that upload is cancelled (aborted) and the new version uploaded, never a
    second unfinished row beside the failed one."""
    assert sandbox.server is not None
    folder = tmp_path / "renders"
    folder.mkdir()
    db = config.paths().database
    sandbox.server.faults.fail(403, method="PUT", pattern=r"f\.bin\?.*partNumber=3\b",
                               code="AccessDenied", count=None)
    with _watch(sandbox, folder, tmp_path, "--part-size", "100KiB", "--parallel", "1") \
            as child:
        child.wait_for("watching")
        path = write_random(folder / "f.bin", 5 * 100 * KiB)
        wait_until(lambda: [r["state"] for r in snapshot_store(db).rows] == ["failed"],
                   SETTLE + RESCAN + 30, "the upload to fail")
        (failed,) = snapshot_store(db).rows
        assert failed["upload_id"]
        sandbox.server.faults.clear()
        write_random(path, 6 * 100 * KiB + 1, seed=5)
        child.wait_for("done", timeout=SETTLE + RESCAN + 30, key="backup/f.bin")
        code = child.interrupt()
    stderr = child.err.read_text()
    assert code == 130, stderr
    assert (f"backup/f.bin: the unfinished upload of {path} in the list (row {failed['id']}) "
            "was to be written with other metadata (and the file changed since it began); it "
            "was cancelled (its multipart upload was aborted on the server)") in stderr, stderr
    assert_uploaded(sandbox, "backup/f.bin", path)
    assert list(sandbox.bucket_client().list_multipart_uploads().upload_list) == []
    rows = snapshot_store(db).rows
    assert [(r["id"], r["state"]) for r in rows][:1] == [(failed["id"], "cancelled")]
    assert [r["state"] for r in rows] == ["cancelled", "done"], rows
    # The summary counts the file once, as uploaded (not the cancelled row beside it).
    summary = [e for e in child.events() if e.get("event") == "summary"][-1]
    assert (summary["files"], summary["done"], summary["failed"]) == (1, 1, 0), summary
