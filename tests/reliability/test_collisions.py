"""Two sources, one key: the later source is refused, naming both, before any of its bytes is
sent; never two "done" for one key in one run. Real ``ossdesk upload`` children against the
sandbox; the bucket and the sandbox's access log are the witnesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ossdesk.core.oss import Endpoint
from ossdesk.core.store import NewUpload, State, Store
from tests.reliability.helpers import cli_env, dest, object_bytes, object_keys, ossdesk
from tests.support.sandbox import SandboxInfo


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _done_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("done ")]


def _collision_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "both go to" in line]


def test_two_files_of_one_name_into_one_prefix(sandbox: SandboxInfo, tmp_path: Path) -> None:
    first = _write(tmp_path / "dup" / "a" / "report.txt", "from a\n")
    later = _write(tmp_path / "dup" / "b" / "report.txt", "from b\n")
    result = ossdesk("upload", str(first), str(later), "--prefix", "dup/", *dest(sandbox),
                     env=cli_env(sandbox))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = _collision_lines(result.stderr)
    assert str(first) in line and str(later) in line and "dup/report.txt" in line
    assert "not uploaded" in line
    assert len(_done_lines(result.stdout)) == 1
    assert "1 of 1 files uploaded and verified" in result.stdout
    assert object_keys(sandbox) == ["dup/report.txt"]
    assert object_bytes(sandbox, "dup/report.txt")[0] == b"from a\n"  # the first one, always


def test_two_folders_of_one_name(sandbox: SandboxInfo, tmp_path: Path) -> None:
    _write(tmp_path / "x" / "data" / "same.txt", "x\n")
    _write(tmp_path / "x" / "data" / "only-x.txt", "x only\n")
    _write(tmp_path / "y" / "data" / "same.txt", "y\n")
    _write(tmp_path / "y" / "data" / "only-y.txt", "y only\n")
    result = ossdesk("upload", str(tmp_path / "x" / "data"), str(tmp_path / "y" / "data"),
                     *dest(sandbox), env=cli_env(sandbox))
    assert result.returncode == 1, result.stderr
    [line] = _collision_lines(result.stderr)
    assert str(tmp_path / "y" / "data" / "same.txt") in line
    assert str(tmp_path / "x" / "data" / "same.txt") in line
    assert object_keys(sandbox) == ["data/only-x.txt", "data/only-y.txt", "data/same.txt"]
    assert object_bytes(sandbox, "data/same.txt")[0] == b"x\n"
    assert len(_done_lines(result.stdout)) == 3


def test_nfc_and_nfd_spellings_in_one_folder(sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "names"
    nfc = _write(folder / "caf\u00e9.txt", "nfc\n")
    nfd = _write(folder / "cafe\u0301.txt", "nfd\n")
    if len(list(folder.iterdir())) != 2:
        pytest.skip("this file system folds the two spellings into one name")
    result = ossdesk("upload", str(folder), *dest(sandbox), env=cli_env(sandbox))
    assert result.returncode == 1, result.stderr
    [line] = _collision_lines(result.stderr)
    assert "names/caf\u00e9.txt" in line
    assert object_keys(sandbox) == ["names/caf\u00e9.txt"]
    # Walked in name order: the NFD spelling ("e" + accent) sorts first, every time.
    first, later = sorted([nfc, nfd], key=lambda p: p.name)
    assert object_bytes(sandbox, "names/caf\u00e9.txt")[0] == first.read_bytes()
    assert line.index(str(later)) < line.index(str(first))  # "LATER and FIRST both go to"
    assert len(_done_lines(result.stdout)) == 1


def test_on_collision_skip_says_so_and_exits_zero(sandbox: SandboxInfo,
                                                  tmp_path: Path) -> None:
    first = _write(tmp_path / "a" / "r.txt", "a\n")
    later = _write(tmp_path / "b" / "r.txt", "b\n")
    result = ossdesk("upload", str(first), str(later), "--on-collision", "skip",
                     *dest(sandbox), env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    [line] = _collision_lines(result.stderr)
    assert str(first) in line and str(later) in line
    assert object_keys(sandbox) == ["r.txt"]
    assert object_bytes(sandbox, "r.txt")[0] == b"a\n"


def _queue_row(sandbox: SandboxInfo, source: Path, key: str, state: State) -> None:
    """An upload left by an earlier run, as the store keeps it."""
    where = Endpoint(sandbox.endpoint, sandbox.bucket, sandbox.region, "v4")
    with Store.open() as store:
        [row] = store.add([NewUpload(source=source, size=source.stat().st_size,
                                     mtime_ns=source.stat().st_mtime_ns, key=key,
                                     endpoint=where.url, bucket=sandbox.bucket,
                                     region=sandbox.region)])
        if state is not State.QUEUED:
            store.set_state(row, state, reason="user" if state is State.PAUSED else None)


@pytest.mark.parametrize("state", [State.PAUSED, State.FAILED, State.QUEUED])
def test_an_unfinished_row_of_another_source_is_a_collision(
        sandbox: SandboxInfo, tmp_path: Path, state: State) -> None:
    earlier = _write(tmp_path / "old" / "r.txt", "old\n")
    _queue_row(sandbox, earlier, "r.txt", state)
    later = _write(tmp_path / "new" / "r.txt", "new\n")
    result = ossdesk("upload", str(later), *dest(sandbox), env=cli_env(sandbox))
    assert result.returncode == 1, result.stderr
    [line] = _collision_lines(result.stderr)
    assert str(earlier) in line and str(later) in line and "r.txt" in line
    assert object_keys(sandbox) == []
    with Store.open() as store:
        assert [r.source for r in store.rows()] == [earlier]


def test_the_same_source_again_and_a_done_row_are_no_collision(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    # Queued again from the same file: uploaded, as before.
    same = _write(tmp_path / "same" / "s.txt", "same\n")
    _queue_row(sandbox, same, "s.txt", State.PAUSED)
    result = ossdesk("upload", str(same), *dest(sandbox), env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    assert _collision_lines(result.stderr) == []
    assert object_keys(sandbox) == ["s.txt"]
    # A key uploaded by an earlier run from another file: replaced, as asked.
    old = _write(tmp_path / "one" / "k.txt", "one\n")
    assert ossdesk("upload", str(old), *dest(sandbox), env=cli_env(sandbox)).returncode == 0
    new = _write(tmp_path / "two" / "k.txt", "two\n")
    result = ossdesk("upload", str(new), *dest(sandbox), env=cli_env(sandbox))
    assert result.returncode == 0, result.stderr
    assert _collision_lines(result.stderr) == []
    assert object_bytes(sandbox, "k.txt")[0] == b"two\n"
