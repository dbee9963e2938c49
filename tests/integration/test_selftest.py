"""``ossdesk selftest``: what the release builds run against every frozen app.

Here it runs from the source tree: once in-process (readable failures) and once as a child
process (the smoke test's rule: exit 0 and nothing at all on stderr).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ossdesk import selftest
from ossdesk.cli import main

CHECK_NAMES = [name for name, _ in selftest.CHECKS]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder where the self-test makes its temporary folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_every_check_passes_and_nothing_is_left_behind(
    capsys: pytest.CaptureFixture[str], private_tmp: Path, ossdesk_home: Path
) -> None:
    before = dict(os.environ)

    code = main(["selftest"])

    out, err = capsys.readouterr()
    assert code == 0, out
    assert err == ""
    lines = _lines(out)
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", name] for name in CHECK_NAMES]
    assert lines[-1].startswith(f"selftest passed: {len(CHECK_NAMES)} checks")
    upload_line = next(line for line in lines if line.split()[1] == "upload")
    assert "3 parts" in upload_line
    assert "verified" in upload_line
    # Its temporary folder is gone, the user's ossdesk folder was never created, and the
    # environment (OSSDESK_HOME, proxies, credentials) is as it was.
    assert list(private_tmp.iterdir()) == []
    assert not ossdesk_home.exists()
    assert dict(os.environ) == before


@pytest.mark.slow
def test_as_a_command_it_exits_0_with_nothing_on_stderr(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path), TEMP=str(tmp_path), TMP=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)  # the self-test must not need it
    proc = subprocess.run(
        [sys.executable, "-m", "ossdesk", "selftest"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert _lines(proc.stdout)[-1].startswith("selftest passed")
    assert list(tmp_path.iterdir()) == []


def test_a_single_put_when_one_part_is_asked(
    capsys: pytest.CaptureFixture[str], private_tmp: Path
) -> None:
    code = main(["selftest", "--only", "upload", "--parts", "1"])

    out, _ = capsys.readouterr()
    assert code == 0, out
    assert "1 PUT" in out


def test_more_smaller_parts(capsys: pytest.CaptureFixture[str], private_tmp: Path) -> None:
    code = main(["selftest", "--only", "upload", "--parts", "5", "--part-size", "100KiB"])

    out, _ = capsys.readouterr()
    assert code == 0, out
    assert "5 parts" in out


def test_a_failing_check_fails_the_command_and_the_others_still_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    def broken(context: selftest.Context) -> str:
        raise RuntimeError("the bundle lost a module")

    checks = [(name, broken if name == "crc64" else fn) for name, fn in selftest.CHECKS]
    monkeypatch.setattr(selftest, "CHECKS", checks)

    code = main(["selftest", "--only", "version", "--only", "crc64", "--only", "modules"])

    out, err = capsys.readouterr()
    assert code == 1
    assert err == ""
    lines = _lines(out)
    assert lines[0].split()[:2] == ["ok", "version"]
    assert lines[1].split()[:2] == ["FAIL", "crc64"]
    assert "RuntimeError: the bundle lost a module" in lines[1]
    assert lines[2].split()[:2] == ["ok", "modules"]
    assert lines[3].startswith("selftest FAILED: crc64")


def test_keep_leaves_the_folder_and_says_where(
    capsys: pytest.CaptureFixture[str], private_tmp: Path
) -> None:
    code = main(["selftest", "--only", "upload", "--keep"])

    out, _ = capsys.readouterr()
    assert code == 0, out
    kept = Path(_lines(out)[0].removeprefix("temporary folder: "))
    assert kept.parent == private_tmp
    assert (kept / "selftest.bin").is_file()


def test_run_checks_reports_each_result_as_it_comes() -> None:
    seen: list[str] = []
    context = selftest.Context(workdir=Path(), parts=3, part_size=256 * 1024)

    results = selftest.run_checks(
        context, ["version", "crc64"], report=lambda result: seen.append(result.name)
    )

    assert seen == ["version", "crc64"]
    assert all(result.ok for result in results)


@pytest.mark.parametrize("value", ["99KiB", "0", "lots"])
def test_part_size_below_the_oss_minimum_is_refused(value: str) -> None:
    parser = argparse.ArgumentParser()
    selftest.configure(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--part-size", value])


def test_the_qt_probe_is_not_a_visible_option() -> None:
    parser = argparse.ArgumentParser()
    selftest.configure(parser)
    assert "--probe" not in parser.format_help()
