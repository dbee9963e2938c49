"""The ``ossdesk`` dispatcher: which invocations open the window and which run a command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ossdesk import __version__, cli


def test_version_needs_no_subcommand_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ossdesk {__version__}"


def test_version_does_not_import_the_engine_or_qt() -> None:
    code = (
        "import sys; from ossdesk import cli\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('oss2', 'PySide6', 'ossdesk.core.scheduler')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_a_typo_is_not_taken_for_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["uplaod", "x.bin"]) == 2
    err = capsys.readouterr().err
    assert "'uplaod' is neither a command nor an existing file or folder" in err


def test_paths_without_a_display_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if sys.platform in ("win32", "darwin"):
        pytest.skip("Windows and macOS always have a display")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main([str(tmp_path)]) == 2
    assert "no display" in capsys.readouterr().err


def test_window_request_parsing() -> None:
    assert cli._window_request([]) == (False, [])
    assert cli._window_request(["--sandbox", "a", "b"]) == (True, ["a", "b"])
    assert cli._window_request(["--", "--odd-name"]) == (False, ["--odd-name"])
    assert cli._window_request(["status"]) is None
    assert cli._window_request(["--version"]) is None
    # a file that happens to be called like a command, after another path, is a path
    assert cli._window_request(["a", "status"]) == (False, ["a", "status"])
