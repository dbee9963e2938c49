from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ossdesk.core.store import Request
from ossdesk.core.upload import KeyFault
from ossdesk.core.walk import WalkProblem, walk_batches, walk_request
from ossdesk.ui.walker import Problem, ProblemKind, SourceFile, WalkJob, WalkSummary


def _run(qtbot: QtBot, roots: list[Path], **kw: object) -> tuple[
        list[SourceFile], list[Problem], WalkSummary]:
    """The window's walk of ``roots``, to its end: files, problems, summary."""
    job = WalkJob([str(r) for r in roots], **kw)  # type: ignore[arg-type]
    files: list[SourceFile] = []
    problems: list[Problem] = []
    job.batchReady.connect(files.extend)
    job.problemsFound.connect(problems.extend)
    with qtbot.waitSignal(job.finished, timeout=20_000) as done:
        job.start()
    summary = done.args[0]
    assert isinstance(summary, WalkSummary)
    return files, problems, summary


def test_big_folder_streams_in_batches(qtbot, tmp_path):
    root = tmp_path / "many"
    for d in range(30):
        sub = root / f"d{d:02d}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"f{f:03d}.txt").write_bytes(b"")
    # The worker hands over bounded batches (the GUI adds rows while the walk goes on)...
    sizes = [len(b.files) for b in walk_batches([root], "", batch_size=500)]
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


def test_a_batch_is_handed_over_when_the_injected_clock_says_it_is_old(tmp_path):
    for i in range(10):
        (tmp_path / f"{i}.txt").write_bytes(b"")
    ticks = iter(range(1000))
    sizes = [len(b.files) for b in walk_batches([tmp_path], "", batch_size=500,
                                                batch_seconds=2.5, clock=lambda: next(ticks))]
    # The clock moves one second per look: a batch is old on its third file.
    assert sizes == [3, 3, 3, 1]


def test_cancel_stops_the_walk(qtbot, tmp_path):
    for i in range(2000):
        (tmp_path / f"{i}.bin").write_bytes(b"")
    job = WalkJob([str(tmp_path)])
    job.cancel()
    with qtbot.waitSignal(job.finished, timeout=10_000) as done:
        job.start()
    assert done.args[0].cancelled
    assert done.args[0].files == 0
    # The core walk stops as soon as it is told to, between two entries.
    seen: list[int] = []
    stream = walk_batches([tmp_path], "", batch_size=1, cancel=lambda: len(seen) >= 5)
    for batch in stream:
        seen.append(len(batch.files))
    assert seen == [1] * 5


@pytest.mark.skipif(os.name != "posix", reason="symlinks and FIFOs are POSIX here")
def test_loops_duplicates_broken_links_and_special_files_are_reported(qtbot, tmp_path):
    top = tmp_path / "top"
    (top / "a").mkdir(parents=True)
    (top / "a" / "one.txt").write_text("1")
    (top / "a" / "up").symlink_to(top)  # loop
    (top / "again").symlink_to(top / "a")  # the same folder twice
    (top / "same.txt").symlink_to(top / "a" / "one.txt")  # one file under a second name
    (top / "dangling").symlink_to(tmp_path / "nowhere")
    (top / "self").symlink_to(top / "self")
    os.mkfifo(top / "pipe")
    files, found, _summary = _run(qtbot, [top, tmp_path / "missing"])
    problems = {(Path(p.path).name, p.kind) for p in found}
    # A linked file is uploaded under each of its names, as the command line does.
    assert [f.key for f in files] == ["top/a/one.txt", "top/same.txt"]
    assert problems == {("up", ProblemKind.LOOP), ("self", ProblemKind.LOOP),
                        ("again", ProblemKind.DUPLICATE), ("pipe", ProblemKind.SPECIAL),
                        ("missing", ProblemKind.MISSING), ("dangling", ProblemKind.UNREADABLE)}


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable_folder_is_reported(qtbot, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x").write_text("x")
    (tmp_path / "ok.txt").write_text("ok")
    locked.chmod(0)
    try:
        files, problems, _summary = _run(qtbot, [tmp_path])
    finally:
        locked.chmod(0o755)
    assert [f.key for f in files] == [f"{tmp_path.name}/ok.txt"]
    assert [p.kind for p in problems] == [ProblemKind.UNREADABLE]


def test_keys_are_nfc_and_files_in_the_queue_are_walked_too(qtbot, tmp_path):
    """The walk leaves out no file the queue has: the engine decides what to do with it."""
    decomposed = unicodedata.normalize("NFD", "café.txt")
    (tmp_path / decomposed).write_text("x")
    (tmp_path / "b.txt").write_text("y")
    files, problems, _summary = _run(qtbot, [tmp_path / decomposed, tmp_path / "b.txt"])
    assert [f.key for f in files] == ["café.txt", "b.txt"]
    assert unicodedata.is_normalized("NFC", files[0].key)
    assert problems == []


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="only Linux file systems take names that are not UTF-8")
def test_a_name_that_is_not_utf8_is_reported_and_the_rest_walked(qtbot, tmp_path):
    top = tmp_path / "mixed"
    top.mkdir()
    (top / "a.txt").write_text("a")
    (top / "zz.txt").write_text("z")
    with open(os.path.join(os.fsencode(top), b"z\xffbad.txt"), "wb") as fh:
        fh.write(b"bad")
    os.mkdir(os.path.join(os.fsencode(top), b"dir\xfe"))
    with open(os.path.join(os.fsencode(top), b"dir\xfe", b"in.txt"), "wb") as fh:
        fh.write(b"in")
    files, problems, _summary = _run(qtbot, [top])
    assert sorted(f.key for f in files) == ["mixed/a.txt", "mixed/zz.txt"]
    assert sorted(os.fsencode(p.path).rsplit(b"/", 1)[-1] for p in problems) == [
        b"dir\xfe", b"z\xffbad.txt"]
    assert {p.kind for p in problems} == {ProblemKind.BAD_NAME}


def _tree(root: Path) -> list[Path]:
    """Folders and files whose keys test every rule: nesting, NFD names, a prefix, names
    OSS refuses (control characters, too long, not UTF-8 on Linux), links."""
    top = root / "photos"
    (top / "2024" / "summer").mkdir(parents=True)
    (top / "2024" / "summer" / "beach.jpg").write_bytes(b"b")
    (top / "2024" / unicodedata.normalize("NFD", "été.txt")).write_text("e")
    (top / "tab\there.txt").write_text("t")
    (top / "line\nbreak.txt").write_text("n")
    deep = top
    for level in range(5):
        deep = deep / (chr(ord("k") + level) * 210)
    deep.mkdir(parents=True)
    (deep / "far.txt").write_text("f")
    (top / "empty").mkdir()
    alone = root / "alone.bin"
    alone.write_bytes(b"\0")
    if sys.platform.startswith("linux"):
        with open(os.path.join(os.fsencode(top), b"caf\xe9.txt"), "wb") as fh:
            fh.write(b"x")
    if os.name == "posix":
        (top / "link-to-2024").symlink_to(top / "2024")
        (top / "loop").symlink_to(top)
    return [top, alone]


@pytest.mark.parametrize("prefix", ["", "backup/phone", "/odd//prefix/", "up/../x"])
def test_the_window_and_the_command_line_walk_to_the_same_keys(
        qtbot: QtBot, tmp_path: Path, prefix: str) -> None:
    roots = _tree(tmp_path)
    files, problems, summary = _run(qtbot, roots, prefix=prefix)
    cli_problems: list[WalkProblem] = []
    request = Request(roots=tuple(roots), endpoint="http://127.0.0.1:1", bucket="b",
                      prefix=prefix)
    cli = list(walk_request(request, cli_problems.append))
    assert [(f.path, f.key, f.size) for f in files] == [
        (str(u.source), u.key, u.size) for u in cli]
    assert [(p.path, p.kind, p.fault) for p in problems] == [
        (str(p.path), p.kind, p.fault) for p in cli_problems]
    assert summary.files == len(cli) and summary.problems == len(cli_problems)
    refused = {Path(p.path).name: p.fault for p in problems if p.kind is ProblemKind.BAD_KEY}
    if prefix == "up/../x":
        assert not files and KeyFault.DOT_SEGMENT in set(refused.values())
    else:
        assert files and refused == {"tab\there.txt": KeyFault.CONTROL,
                                     "line\nbreak.txt": KeyFault.CONTROL,
                                     "far.txt": KeyFault.TOO_LONG}
