"""Names OSS cannot take are left out of a drop, as the command line leaves them out.

A folder holding a file with a control character in its name, a path too long for an object
key and (on Linux) a name that is not UTF-8 is dropped onto the window over the real engine
and a real sandbox server: only the good file reaches the bucket, and the window says which
files were left out and why, in English and in Chinese. A folder typed with a ``..`` segment
sends nothing."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from ossdesk.core.names import printable
from ossdesk.sandbox.server import SandboxServer
from ossdesk.ui.i18n import Translations
from ossdesk.ui.main_window import MainWindow
from ossdesk.ui.settings import Settings
from ossdesk.ui.transfer_model import TransferState
from tests.gui.test_engine_window import client, close_window, local_sandbox, open_window
from tests.gui.test_main_window import drop

__all__ = ["local_sandbox"]

LINUX = sys.platform.startswith("linux")
CJK = re.compile("[\u4e00-\u9fff]")


def _tree(root: Path) -> tuple[Path, dict[str, Path]]:
    """``root/names`` with one good file and the refused ones, by what is wrong."""
    folder = root / "names"
    folder.mkdir()
    (folder / "ok.txt").write_text("ok")
    refused = {"control": folder / "bell\x07.txt"}
    refused["control"].write_text("bell")
    deep = folder
    for level in range(5):  # five folders of 220 bytes: the key is over 1,023 bytes
        deep = deep / (chr(ord("a") + level) * 220)
    deep.mkdir(parents=True)
    refused["long"] = deep / "far.txt"
    refused["long"].write_text("far")
    if LINUX:
        raw = os.path.join(os.fsencode(folder), b"latin1-\xe9t\xe9.txt")
        with open(raw, "wb") as fh:
            fh.write(b"not utf-8")
        refused["utf8"] = Path(os.fsdecode(raw))
    return folder, refused


def _bucket_keys(server: SandboxServer) -> list[str]:
    with client(server) as oss:
        return sorted(info.key for info in oss.list_objects(""))


def _walked(window: MainWindow) -> bool:
    return not window.walk_jobs


@pytest.fixture
def chinese_after(qapp: QApplication, english: Translations) -> Iterator[Translations]:
    yield english
    english.install(qapp, "en")


def test_refused_names_never_reach_the_bucket_and_the_window_says_why(
        qtbot: QtBot, local_sandbox: SandboxServer, tmp_path: Path,
        chinese_after: Translations, qapp: QApplication) -> None:
    folder, refused = _tree(tmp_path)
    window, engine = open_window(qtbot, local_sandbox, Settings())
    try:
        drop(window, [folder])
        qtbot.waitUntil(lambda: _walked(window), timeout=20_000)
        qtbot.waitUntil(lambda: window.model.rowCount() >= 1 and all(
            r.state.finished or r.state is TransferState.FAILED for r in window.model.rows()),
            timeout=30_000)
        assert [r.key for r in window.model.rows()] == ["drop/names/ok.txt"]
        assert _bucket_keys(local_sandbox) == ["drop/names/ok.txt"]

        # Each refused file is named, with its reason, in the list of what was left out.
        texts = {Path(p.path): window.problem_text(p) for p in window.problems}
        assert set(texts) == set(refused.values())
        assert "control characters" in texts[refused["control"]]
        assert "\\x07" in texts[refused["control"]]  # shown escaped, never raw
        assert "1,023" in texts[refused["long"]] and "bytes" in texts[refused["long"]]
        if LINUX:
            assert "not valid UTF-8" in texts[refused["utf8"]]
        assert window.problems_button.isVisible()
        assert str(len(refused)) in window.problems_button.text()
        assert f"{len(refused)} items skipped" in window.statusBar().currentMessage()
        box = window.drops.problems_box()
        assert box.detailedText().splitlines() == [window.problem_text(p)
                                                   for p in window.problems]
        assert "names that OSS cannot take" in box.informativeText()
        box.deleteLater()

        # A folder typed with a ".." segment: nothing of the drop is sent.
        window.destination_bar.folder_edit.setText("up/../elsewhere")
        other = tmp_path / "y.txt"
        other.write_text("y")
        before = len(window.problems)
        drop(window, [other])
        qtbot.waitUntil(lambda: _walked(window) and len(window.problems) > before,
                        timeout=20_000)
        [dots] = window.problems[before:]
        assert Path(dots.path) == other
        assert "'..'" in window.problem_text(dots)
        assert window.model.rowCount() == 1
        assert _bucket_keys(local_sandbox) == ["drop/names/ok.txt"]

        # The same reasons in Chinese: every line is translated, the names kept.
        english = [window.problem_text(p) for p in window.problems]
        assert chinese_after.install(qapp, "zh_CN")
        for problem, in_english in zip(window.problems, english, strict=True):
            text = window.problem_text(problem)
            assert text != in_english and CJK.search(text), text
            assert text.startswith(printable(problem.path)), text
        box = window.drops.problems_box()
        assert CJK.search(box.informativeText()) and CJK.search(box.windowTitle())
        box.deleteLater()
    finally:
        close_window(qtbot, window, engine)
