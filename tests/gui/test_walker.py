from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import pytest

from ossdesk.ui.walker import ProblemKind, SourceFile, WalkJob, walk


def test_big_folder_streams_in_batches(qtbot, tmp_path):
    root = tmp_path / "many"
    for d in range(30):
        sub = root / f"d{d:02d}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"f{f:03d}.txt").write_bytes(b"")
    # The worker hands over bounded batches (the GUI adds rows while the walk goes on)...
    sizes = [len(b.files) for b in walk([root], batch_size=500)]
    assert sum(sizes) == 3000 and len(sizes) >= 6 and max(sizes) <= 500
    # ...and the job delivers them on the GUI thread before it reports the end.
    job = WalkJob([str(root)])
    batches: list[list[SourceFile]] = []
    order: list[str] = []
    job.batchReady.connect(batches.append)
    job.batchReady.connect(lambda _b: order.append("batch"))
    job.finished.connect(lambda _s: order.append("finished"))
    with qtbot.waitSignal(job.finished, timeout=20_000) as done:
        job.start()
    summary = done.args[0]
    files = [f for batch in batches for f in batch]
    assert summary.files == len(files) == 3000
    assert order[0] == "batch" and order[-1] == "finished"
    assert len({f.key for f in files}) == 3000
    assert files[0].key == "many/d00/f000.txt"
    assert not summary.cancelled


def test_cancel_stops_the_walk(qtbot, tmp_path):
    for i in range(2000):
        (tmp_path / f"{i}.bin").write_bytes(b"")
    job = WalkJob([str(tmp_path)])
    job.cancel()
    with qtbot.waitSignal(job.finished, timeout=10_000) as done:
        job.start()
    assert done.args[0].cancelled


@pytest.mark.skipif(os.name != "posix", reason="symlinks and FIFOs are POSIX here")
def test_loops_duplicates_broken_links_and_special_files_are_reported(tmp_path):
    top = tmp_path / "top"
    (top / "a").mkdir(parents=True)
    (top / "a" / "one.txt").write_text("1")
    (top / "a" / "up").symlink_to(top)  # loop
    (top / "again").symlink_to(top / "a")  # the same folder twice
    (top / "same.txt").symlink_to(top / "a" / "one.txt")  # the same file twice
    (top / "dangling").symlink_to(tmp_path / "nowhere")
    (top / "self").symlink_to(top / "self")
    os.mkfifo(top / "pipe")
    batches = list(walk([top, tmp_path / "missing"]))
    files = [f for b in batches for f in b.files]
    problems = {(Path(p.path).name, p.kind) for b in batches for p in b.problems}
    # A folder's own files come before its sub-folders, so the link is met first.
    assert [f.key for f in files] == ["top/same.txt"]
    assert ("up", ProblemKind.LOOP) in problems
    assert ("self", ProblemKind.LOOP) in problems
    assert ("pipe", ProblemKind.SPECIAL) in problems
    assert ("missing", ProblemKind.MISSING) in problems
    assert ("dangling", ProblemKind.UNREADABLE) in problems
    duplicates = {name for name, kind in problems if kind is ProblemKind.DUPLICATE}
    assert duplicates == {"again", "one.txt"}


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable_folder_is_reported(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x").write_text("x")
    (tmp_path / "ok.txt").write_text("ok")
    locked.chmod(0)
    try:
        batches = list(walk([tmp_path]))
    finally:
        locked.chmod(0o755)
    assert [f.key for b in batches for f in b.files] == [f"{tmp_path.name}/ok.txt"]
    assert [p.kind for b in batches for p in b.problems] == [ProblemKind.UNREADABLE]


def test_keys_are_nfc_and_queue_duplicates_are_skipped(tmp_path):
    decomposed = unicodedata.normalize("NFD", "café.txt")
    (tmp_path / decomposed).write_text("x")
    (tmp_path / "b.txt").write_text("y")
    already = frozenset({str(tmp_path / "b.txt")})
    batches = list(walk([tmp_path / decomposed, tmp_path / "b.txt"], skip_paths=already))
    assert [f.key for b in batches for f in b.files] == ["café.txt"]
    assert unicodedata.is_normalized("NFC", batches[0].files[0].key)
    assert [p.kind for b in batches for p in b.problems] == [ProblemKind.DUPLICATE]


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="only Linux file systems take names that are not UTF-8")
def test_a_name_that_is_not_utf8_is_reported_and_the_rest_walked(tmp_path):
    top = tmp_path / "mixed"
    top.mkdir()
    (top / "a.txt").write_text("a")
    (top / "zz.txt").write_text("z")
    with open(os.path.join(os.fsencode(top), b"z\xffbad.txt"), "wb") as fh:
        fh.write(b"bad")
    os.mkdir(os.path.join(os.fsencode(top), b"dir\xfe"))
    with open(os.path.join(os.fsencode(top), b"dir\xfe", b"in.txt"), "wb") as fh:
        fh.write(b"in")
    batches = list(walk([top]))
    assert sorted(f.key for b in batches for f in b.files) == ["mixed/a.txt", "mixed/zz.txt"]
    problems = [p for b in batches for p in b.problems]
    assert sorted(os.fsencode(p.path).rsplit(b"/", 1)[-1] for p in problems) == [
        b"dir\xfe", b"z\xffbad.txt"]
    assert {p.kind for p in problems} == {ProblemKind.BAD_NAME}
