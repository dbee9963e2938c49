"""Verified means verified, without throwing work away: a paused or killed multipart upload
whose file only had its attributes changed (``chmod``, a new hard link, extended
attributes: its change time moves, its size, mtime and identity do not) goes on with the
parts already sent, once those parts' bytes are read again and match; a file whose content
was rewritten (same size, mtime put back) starts over, whichever of its parts changed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ossdesk.core.events import Done, Failed, Notice, Started
from ossdesk.core.plan import format_size
from tests.reliability.conftest import EngineFactory, new_upload
from tests.reliability.helpers import (
    KiB,
    assert_uploaded,
    cli_env,
    object_bytes,
    object_keys,
    ossdesk,
    part_puts,
    remote_uploads,
    upload_killed_after_parts,
    wait_until,
    write_random,
)
from tests.support.sandbox import SandboxInfo

P = 128 * KiB

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="the change time is the creation time there")


def _chmod_only(path: Path) -> None:
    """Another mode: the change time moves, nothing else does."""
    before = path.stat()
    path.chmod(0o600 if before.st_mode & 0o777 != 0o600 else 0o640)
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns


def _change_one_byte_keeping_mtime(path: Path, offset: int) -> bytes:
    """One byte at ``offset`` rewritten in place, the old modification time put back."""
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(offset)
        old = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([old[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (st.st_size, st.st_mtime_ns, st.st_ino)
    return path.read_bytes()


def _kill_after_parts(sandbox: SandboxInfo, path: Path, out: Path) -> tuple[str, set[int]]:
    """A real ``ossdesk upload`` SIGKILLed once three parts are confirmed: (its upload id,
    the parts confirmed when it died)."""
    snap = upload_killed_after_parts(sandbox, path, out, P)
    [row] = snap.rows
    assert row["state"] == "running" and row["upload_id"]
    return row["upload_id"], {number for _, number in snap.confirmed}


def test_chmod_after_sigkill_resumes_without_sending_parts_again(sandbox: SandboxInfo,
                                                                 tmp_path: Path) -> None:
    path = write_random(tmp_path / "a.bin", 16 * P + 5)
    upload_id, confirmed = _kill_after_parts(sandbox, path, tmp_path / "upload.out")
    _chmod_only(path)

    resumed = ossdesk("resume", env=cli_env(sandbox))
    said = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, said
    assert_uploaded(sandbox, "a.bin", path)
    sent = format_size(len(confirmed) * P)
    assert (f"a.bin was touched since its upload began (its change time moved); the {sent} "
            "already sent were read again and still match the file, so the upload goes "
            "on") in said, said
    assert "starts over" not in said, said
    # One upload throughout, and no confirmed part went twice.
    accepted = [p for p in part_puts(sandbox.log_path) if p.status == 200]
    assert {p.upload_id for p in accepted} == {upload_id}
    for number in confirmed:
        assert [p.number for p in accepted].count(number) == 1, number
    assert remote_uploads(sandbox) == []
    # The change time now recorded is the file's: a second resume has nothing to say.
    again = ossdesk("resume", env=cli_env(sandbox))
    assert "change time moved" not in again.stdout + again.stderr


def test_chmod_while_paused_keeps_the_parts(sandbox: SandboxInfo, engine: EngineFactory,
                                            tmp_path: Path) -> None:
    path = write_random(tmp_path / "p.bin", 6 * P + 9)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=1)
    [upload] = sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    sched.pause([upload])
    assert sched.wait(30)
    row = sched.store.get(upload)
    assert row is not None and row.upload_id is not None
    upload_id = row.upload_id
    kept = sched.store.parts(upload)
    assert 2 <= len(kept) < 7, kept
    _chmod_only(path)

    sched.resume([upload])
    assert sched.wait(60)
    assert not rec.of(Failed)
    [done] = rec.of(Done)
    assert done.size == path.stat().st_size
    assert_uploaded(sandbox, "p.bin", path)
    notices = [n.message for n in rec.of(Notice)]
    sent = format_size(len(kept) * P)
    assert (f"p.bin was touched since its upload began (its change time moved); the {sent} "
            "already sent were read again and still match the file, so the upload goes "
            "on") in notices, notices
    assert not [n for n in notices if "starts over" in n], notices
    resumed = [s for s in rec.of(Started) if s.resumed]
    assert [s.confirmed_bytes for s in resumed] == [len(kept) * P]
    accepted = [p for p in part_puts(sandbox.log_path) if p.status == 200]
    assert {p.upload_id for p in accepted} == {upload_id}
    for number in kept:  # each part kept was sent once
        assert [p.number for p in accepted].count(number) == 1, number
    assert {p.number for p in accepted} == set(range(1, 8))
    row = sched.store.get(upload)
    assert row is not None and row.fingerprint.ctime_ns == path.stat().st_ctime_ns


@pytest.mark.parametrize("which", ["first", "last"])
def test_one_sent_part_rewritten_after_sigkill_starts_over(sandbox: SandboxInfo,
                                                           tmp_path: Path,
                                                           which: str) -> None:
    path = write_random(tmp_path / "r.bin", 16 * P + 5)
    upload_id, confirmed = _kill_after_parts(sandbox, path, tmp_path / "upload.out")
    number = min(confirmed) if which == "first" else max(confirmed)
    now = _change_one_byte_keeping_mtime(path, (number - 1) * P + P // 2)

    resumed = ossdesk("resume", env=cli_env(sandbox))
    said = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, said
    assert object_bytes(sandbox, "r.bin")[0] == now
    assert_uploaded(sandbox, "r.bin", path)
    assert "r.bin changed since its upload began, so it starts over" in said, said
    assert "change time moved" not in said, said
    # A new upload from the first part; the old one was aborted, nothing of it published.
    accepted = [p for p in part_puts(sandbox.log_path) if p.status == 200]
    fresh = {p.upload_id for p in accepted} - {upload_id}
    assert len(fresh) == 1
    assert sorted(p.number for p in accepted if p.upload_id in fresh) == list(range(1, 18))
    assert remote_uploads(sandbox) == []


def test_chmod_during_the_upload_is_published_after_the_reread(sandbox: SandboxInfo,
                                                               engine: EngineFactory,
                                                               tmp_path: Path) -> None:
    path = write_random(tmp_path / "m.bin", 6 * P + 9)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=1)
    [upload] = sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    _chmod_only(path)
    assert sched.wait(60)
    assert not rec.of(Failed), [f.message for f in rec.of(Failed)]
    [done] = rec.of(Done)
    assert done.reread
    assert_uploaded(sandbox, "m.bin", path)
    notices = [n.message for n in rec.of(Notice)]
    assert ("m.bin changed while it was being uploaded (its change time moved); the whole "
            "file was read again and is exactly what was sent") in notices, notices
    accepted = [p for p in part_puts(sandbox.log_path) if p.status == 200]
    assert sorted(p.number for p in accepted) == list(range(1, 8))  # none sent twice
    row = sched.store.get(upload)
    assert row is not None and row.fingerprint.ctime_ns == path.stat().st_ctime_ns


def test_bytes_not_yet_sent_rewritten_during_the_upload_are_not_called_unchanged(
        sandbox: SandboxInfo, engine: EngineFactory, tmp_path: Path) -> None:
    """The last part rewritten in place (mtime put back) while part 3 is held: the object is
    the file as it is now, and no notice may claim the content did not change."""
    path = write_random(tmp_path / "u.bin", 6 * P + 9)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=1)
    sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    _change_one_byte_keeping_mtime(path, 6 * P + 4)  # in part 7, not read yet
    assert sched.wait(60)
    assert not rec.of(Failed), [f.message for f in rec.of(Failed)]
    assert rec.of(Done)
    assert_uploaded(sandbox, "u.bin", path)
    notices = [n.message for n in rec.of(Notice)]
    assert not [n for n in notices if "not its content" in n], notices
    assert ("u.bin changed while it was being uploaded (its change time moved); the whole "
            "file was read again and is exactly what was sent") in notices, notices


def test_chmod_during_the_upload_without_the_reread_publishes_nothing(
        sandbox: SandboxInfo, engine: EngineFactory, tmp_path: Path) -> None:
    """Above the re-read limit the change time is all there is: nothing is published."""
    path = write_random(tmp_path / "n.bin", 6 * P + 9)
    assert sandbox.server is not None
    hold = sandbox.server.faults.delay(1.0, method="PUT", pattern=r"partNumber=3\b", count=1)
    sched, rec = engine(part_size=P, parallel=1, reread_limit=0)
    sched.add([new_upload(sandbox, path)])
    wait_until(lambda: hold.hits > 0, 30, "part 3")
    _chmod_only(path)
    assert sched.wait(60)
    assert not rec.of(Done)
    [failed] = rec.of(Failed)
    assert failed.code == "SourceChanged", failed
    assert "nothing was published" in failed.message
    assert "n.bin" not in object_keys(sandbox)
    assert remote_uploads(sandbox) == []
