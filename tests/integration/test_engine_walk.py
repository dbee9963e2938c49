"""From paths to object keys: folders, NFC names, loops, broken links, refused keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ossdesk.core.upload import check_key
from ossdesk.core.walk import WalkProblem, normalize_prefix, walk


def _walk(paths: list[Path], prefix: str | None) -> tuple[dict[str, Path], list[WalkProblem]]:
    problems: list[WalkProblem] = []
    found = {f.key: f.path for f in walk(paths, prefix, problems.append)}
    return found, problems


@pytest.mark.parametrize(("given", "expected"), [
    (None, ""), ("", ""), ("a", "a/"), ("a/b/", "a/b/"), ("/a", "a/"), ("a\\b", "a/b/"),
    ("cafe\u0301", "caf\u00e9/"), ("//double//x/", "double/x/"), ("/", ""),
])
def test_prefix_is_a_folder(given: str | None, expected: str) -> None:
    assert normalize_prefix(given) == expected


def test_folder_keys_keep_the_folder_name_and_relative_path(tmp_path: Path) -> None:
    root = tmp_path / "Album"
    (root / "2024" / "june").mkdir(parents=True)
    (root / "top.txt").write_text("1")
    (root / "2024" / "june" / "cafe\u0301 photo.jpg").write_text("2")  # NFD, with a space
    single = tmp_path / "single.bin"
    single.write_text("3")
    found, problems = _walk([root, single], "backup")
    assert problems == []
    assert sorted(found) == ["backup/Album/2024/june/caf\u00e9 photo.jpg",
                             "backup/Album/top.txt", "backup/single.bin"]
    assert found["backup/single.bin"] == single


def test_dot_means_the_folder_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "a.txt").write_text("x")
    monkeypatch.chdir(root)
    found, _ = _walk([Path(".")], None)
    assert list(found) == ["proj/a.txt"]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs as on POSIX")
def test_loops_and_broken_links_are_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.txt").write_text("x")
    (root / "sub" / "back").symlink_to(root)  # a loop
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(root / "fifo")
    found, problems = _walk([root, tmp_path / "missing"], None)
    assert list(found) == ["r/sub/f.txt"]
    messages = {p.path.name: p for p in problems}
    assert not messages["back"].skipped and "loop" in messages["back"].message
    assert messages["dangling"].skipped and "broken link" in messages["dangling"].message
    assert not messages["fifo"].skipped
    assert messages["missing"].skipped and "no such file" in messages["missing"].message


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks as on POSIX")
def test_a_loop_of_links_is_called_a_loop_not_a_broken_link(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "ok.txt").write_text("x")
    (root / "a").symlink_to("b")  # a -> b -> a: no target ever
    (root / "b").symlink_to("a")
    (root / "self").symlink_to("self")
    (root / "dangling").symlink_to("nowhere")
    found, problems = _walk([root, root / "self"], None)
    assert list(found) == ["r/ok.txt"]
    by_path = {(p.path.parent.name, p.path.name): p for p in problems}
    for name in ("a", "b", "self"):
        problem = by_path[("r", name)]
        assert problem.skipped
        assert "loop of links" in problem.message and "broken" not in problem.message
    assert len([p for p in problems if p.path.name == "self"]) == 2  # in the folder, and named
    assert all("loop of links" in p.message for p in problems if p.path.name == "self")
    assert "broken link" in by_path[("r", "dangling")].message
    assert "loop of links" not in by_path[("r", "dangling")].message


def test_keys_too_long_are_refused_before_upload(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / ("\u00e9" * 100 + ".txt")).write_text("x")  # 204 bytes of UTF-8
    (folder / "ok.txt").write_text("y")
    prefix = "p" * 820  # + "/d/" = 823 bytes: ok.txt fits in 1023, the long name does not
    found, problems = _walk([folder], prefix)
    assert list(found) == [f"{prefix}/d/ok.txt"]
    assert len(problems) == 1 and "1023" in problems[0].message
    assert problems[0].skipped


@pytest.mark.parametrize(("key", "ok"), [
    ("a/b.txt", True), ("/a", False), ("\\a", False), ("a/../b", False), ("a/./b", False),
    ("x" * 1023, True), ("x" * 1024, False), ("", False), ("cafe\u0301", False),
    ("tab\tname", False), ("emoji \U0001f600.txt", True),
])
def test_check_key(key: str, ok: bool) -> None:
    assert (check_key(key) is None) is ok
