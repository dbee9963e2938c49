"""The watch's rules (core/watch.py) on real files, with a clock the test moves."""

from __future__ import annotations

import os
from pathlib import Path

from ossdesk.core.sync import DEFAULT_EXCLUDES, KeyFilter
from ossdesk.core.walk import walk_folder
from ossdesk.core.watch import Change, FolderWatch, SettleTracker
from tests.support.clock import FakeClock


def _write(path: Path, data: bytes, mtime_ns: int) -> None:
    """Write ``data`` and give the file a distinct mtime (the clock of the file system is
    not the test's; what matters is that each write changes size or mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as fh:
        fh.write(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _watch(folder: Path, clock: FakeClock, *, settle: float = 3, rescan: float = 60,
           baseline: bool = True) -> FolderWatch:
    watch = FolderWatch(folder, "backup", KeyFilter((), DEFAULT_EXCLUDES), settle=settle,
                        rescan=rescan, clock=clock)
    if baseline:
        watch.set_baseline(walk_folder(folder, "backup", lambda p: None))
    return watch


def test_a_file_written_slowly_is_handed_out_only_after_its_quiet_time(tmp_path: Path) -> None:
    clock = FakeClock(1000)
    tracker = SettleTracker(3, clock)
    path = tmp_path / "render.mov"
    for i in range(4):  # a write every 2 s: never 3 s quiet
        _write(path, b"x" * 100, 10**18 + i)
        tracker.seen(path)
        assert tracker.due() == []
        clock.advance(2)
    assert tracker.due() == []  # 2 s after the last write
    clock.advance(0.9)
    assert tracker.due() == []
    clock.advance(0.1)  # 3 s after the last write
    [(ready, st)] = tracker.due()
    assert ready == path and st.st_size == 400
    assert tracker.due() == []  # handed out once


def test_a_change_the_notifications_missed_restarts_the_quiet_time(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = SettleTracker(3, clock)
    path = tmp_path / "a.bin"
    _write(path, b"1", 10**18)
    tracker.seen(path)
    clock.advance(2)
    _write(path, b"2", 10**18 + 1)  # no notification for this write
    clock.advance(1.5)
    assert tracker.due() == []  # seen changed at 3.5 s: quiet from there
    clock.advance(2.9)
    assert tracker.due() == []
    clock.advance(0.1)
    assert [p for p, _ in tracker.due()] == [path]


def test_a_file_still_open_for_writing_waits_for_its_close(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = SettleTracker(3, clock, open_limit=60)
    path = tmp_path / "export.csv"
    _write(path, b"rows", 10**18)
    tracker.seen(path, writing=True)
    clock.advance(10)
    assert tracker.due() == []  # steady, but its writer has not closed it
    tracker.closed(path)
    assert [p for p, _ in tracker.due()] == [path]
    # A close notification that never comes holds a file back at most open_limit seconds.
    _write(path, b"more", 10**18 + 1)
    tracker.seen(path, writing=True)
    clock.advance(59)
    assert tracker.due() == []
    clock.advance(1)
    assert [p for p, _ in tracker.due()] == [path]


def test_a_notification_for_an_unchanged_file_uploads_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = tmp_path / "in"
    _write(folder / "a.txt", b"hello", 10**18)
    watch = _watch(folder, clock)
    watch.notify(folder / "a.txt", Change.CHANGED)
    watch.step()
    clock.advance(5)
    assert watch.step().ready == []
    _write(folder / "a.txt", b"!", 10**18 + 5)
    watch.notify(folder / "a.txt", Change.CHANGED)
    watch.step()
    clock.advance(3)
    [found] = watch.step().ready
    assert (found.key, found.size) == ("backup/a.txt", 6)


def test_the_rescan_finds_what_no_notification_told(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = tmp_path / "in"
    folder.mkdir()
    watch = _watch(folder, clock, settle=3, rescan=60)
    _write(folder / "sub" / "new.bin", b"n" * 10, 10**18)
    _write(folder / "sub" / "draft.tmp", b"t", 10**18)  # left out by the default excludes
    clock.advance(59)
    step = watch.step()
    assert not step.rescanned and step.ready == []
    clock.advance(1)
    step = watch.step()
    assert step.rescanned and step.ready == []  # nominated now, quiet from now
    clock.advance(3)
    assert [f.key for f in watch.step().ready] == ["backup/sub/new.bin"]
    clock.advance(60)
    step = watch.step()
    assert step.rescanned and step.ready == [] and watch.settling == 0


def test_a_vanished_folder_is_reported_once_removes_nothing_and_comes_back(
        tmp_path: Path) -> None:
    clock = FakeClock()
    folder = tmp_path / "disk"
    _write(folder / "a.bin", b"a", 10**18)
    _write(folder / "b.bin", b"b", 10**18)
    watch = _watch(folder, clock, settle=3, rescan=60)
    away = tmp_path / "unplugged"
    folder.rename(away)
    watch.notify(folder / "a.bin", Change.REMOVED)
    step = watch.step()
    assert step.missing and not step.back
    for _ in range(5):
        clock.advance(60)
        step = watch.step()
        assert (step.missing, step.gone, step.ready) == (False, [], [])
    assert watch.missing
    away.rename(folder)
    _write(folder / "c.bin", b"c", 10**18)  # written while it was away
    step = watch.step()
    assert step.back and step.rescanned and step.gone == []
    clock.advance(3)
    step = watch.step()
    assert [f.key for f in step.ready] == ["backup/c.bin"] and step.gone == []


def test_a_file_removed_while_the_folder_is_there_is_gone_after_the_quiet_time(
        tmp_path: Path) -> None:
    clock = FakeClock()
    folder = tmp_path / "in"
    _write(folder / "keep.bin", b"k", 10**18)
    _write(folder / "old" / "x.bin", b"x", 10**18)
    watch = _watch(folder, clock, settle=3)
    (folder / "old" / "x.bin").unlink()
    (folder / "old").rmdir()
    watch.notify(folder / "old", Change.REMOVED)
    assert watch.step().gone == []
    clock.advance(3)
    assert watch.step().gone == ["backup/old/x.bin"]
    clock.advance(100)
    assert watch.step().gone == []  # said once


def test_a_file_saved_by_replacing_it_is_not_gone(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = tmp_path / "in"
    _write(folder / "doc.txt", b"v1", 10**18)
    watch = _watch(folder, clock, settle=3)
    # An editor's save: write a temporary file, then move it over the original.
    (folder / "doc.txt").unlink()
    watch.notify(folder / "doc.txt", Change.REMOVED)
    watch.step()
    _write(folder / ".doc.txt.swp", b"v2!", 10**18 + 1)
    (folder / ".doc.txt.swp").replace(folder / "doc.txt")
    watch.notify(folder / "doc.txt", Change.ARRIVED)
    clock.advance(1)
    assert watch.step().gone == []
    clock.advance(3)
    step = watch.step()
    assert step.gone == [] and [(f.key, f.size) for f in step.ready] == [("backup/doc.txt", 3)]


def test_a_file_moved_in_whole_waits_for_no_close_notification(tmp_path: Path) -> None:
    """Through the OS's real notifications: a file renamed into the folder brings no write
    and no close, so only its quiet time counts (not the lost-close limit)."""
    import time

    from ossdesk.core.watch import observe

    clock = FakeClock()
    folder = tmp_path / "in"
    folder.mkdir()
    watch = FolderWatch(folder, "", KeyFilter(), settle=3, rescan=3600, clock=clock)
    observer = observe(watch)
    try:
        _write(tmp_path / "outside.bin", b"whole", 10**18)
        (tmp_path / "outside.bin").rename(folder / "moved.bin")
        deadline = time.monotonic() + 10
        while not watch.settling and time.monotonic() < deadline:  # the notification lands
            watch.step()
            time.sleep(0.02)
        assert watch.settling == 1
        clock.advance(3)
        assert [f.key for f in watch.step().ready] == ["moved.bin"]
    finally:
        observer.stop()
        observer.join(5)
