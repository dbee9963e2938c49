"""Names: each file either uploads to the key a user expects, or is refused with a message
naming it before any of its bytes is sent (the sandbox's access log is the witness)."""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.reliability.helpers import (
    cli_env,
    dest,
    object_keys,
    ossdesk,
    write_random,
)
from tests.support.sandbox import SandboxInfo, read_access_log


def _sent_keys(sb: SandboxInfo) -> set[str]:
    """Object keys that any PUT or POST (a body or an upload) was addressed to."""
    prefix = f"/{sb.bucket}/"
    return {unquote(r["path"])[len(prefix):] for r in read_access_log(sb.log_path)
            if r["method"] in ("PUT", "POST") and r["path"].startswith(prefix)}


def _component_names(total: int, last: str) -> list[str]:
    """Folder names (each <= 200 UTF-8 bytes) so that 'a/b/.../last' is ``total`` bytes."""
    names: list[str] = []
    left = total - len(last.encode())
    while left > 0:
        take = min(200, left - 1)  # one byte for the "/"
        if take <= 0:
            raise ValueError("cannot reach that length")
        # "é" is two bytes: mix in multi-byte characters, pad with ASCII.
        word = "é" * (take // 4) + "x" * (take - 2 * (take // 4))
        assert len(word.encode()) == take
        names.append(word)
        left -= take + 1
    return [*names, last]


def test_names_upload_to_the_expected_key_or_are_refused_before_sending(
        sandbox: SandboxInfo, tmp_path: Path) -> None:
    root = tmp_path / "Names"
    expected: dict[str, str] = {}  # key -> file (relative)
    refused: list[str] = []

    def put(rel: str) -> Path:
        return write_random(root / rel, 3)

    for name in ["caf\u00e9.txt",  # NFC
                 "re\u0301sume\u0301.txt",  # NFD, as macOS hands it out
                 "\U0001f4f7 photo \U0001f389.jpg",  # emoji and spaces
                 "  two  spaces  .txt",
                 "\u4e2d\u6587 \u6587\u4ef6.txt",
                 "100% #1 & more?.txt"]:
        put(name)
        expected["Names/" + unicodedata.normalize("NFC", name)] = name
    # A key of exactly 1023 UTF-8 bytes uploads; one byte more is refused.
    at_limit = _component_names(1023 - len("Names/"), "end.bin")
    put("/".join(at_limit))
    expected["Names/" + "/".join(at_limit)] = "/".join(at_limit)
    over = _component_names(1024 - len("Names/"), "end2.bin")
    put("/".join(over))
    refused.append("Names/" + "/".join(over))
    assert len(refused[0].encode()) == 1024
    assert max(len(k.encode()) for k in expected) == 1023
    # Control characters cannot be in a key.
    put("bell\u0007.txt")
    refused.append("Names/bell\u0007.txt")

    result = ossdesk("upload", str(root), *dest(sandbox), env=cli_env(sandbox), timeout=120)
    assert result.returncode == 1, result.stderr  # some were refused
    assert "Traceback" not in result.stderr
    keys = object_keys(sandbox)
    assert sorted(expected) == keys
    sent = _sent_keys(sandbox)
    for key in refused:
        assert key not in sent
    # Each refusal is one line naming the file, saying why.
    assert "1024 bytes long; OSS allows at most 1023" in result.stderr
    assert "end2.bin" in result.stderr
    assert "control characters" in result.stderr


@pytest.mark.parametrize(("prefix", "key"), [
    ("/lead/slash", "lead/slash/x.bin"),
    ("\\win\\style\\", "win/style/x.bin"),
    ("//double//", "double/x.bin"),
    ("a/../b", None),
    ("./here", None),
])
def test_prefixes_with_slashes_backslashes_and_dots(sandbox: SandboxInfo, tmp_path: Path,
                                                    prefix: str, key: str | None) -> None:
    """A prefix is a folder: separators of either kind, leading ones dropped; '.' and '..'
    either refused before sending or resolved to a clean key."""
    path = write_random(tmp_path / "x.bin", 5)
    result = ossdesk("upload", str(path), *dest(sandbox), "--prefix", prefix,
                     env=cli_env(sandbox))
    assert "Traceback" not in result.stderr
    sent = _sent_keys(sandbox)
    if key is not None:
        assert result.returncode == 0, (prefix, result.stderr)
        assert object_keys(sandbox) == [key]
    elif result.returncode == 0:
        [made] = sent
        segments = made.split("/")
        assert "" not in segments and "." not in segments and ".." not in segments, made
    else:
        assert sent == set(), sent
        assert "x.bin" in result.stderr, result.stderr
    assert all(not k.startswith(("/", "\\")) for k in object_keys(sandbox))


def test_dotted_and_backslashed_file_paths(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """``dir/../x.bin`` is x.bin; a Linux file whose name holds a backslash keeps it (it is
    a character of the name there) or is refused; never a key starting with a separator."""
    (tmp_path / "dir").mkdir()
    write_random(tmp_path / "x.bin", 5)
    back = write_random(tmp_path / "a\\b.txt", 5)
    lead = write_random(tmp_path / "\\lead.txt", 5)
    result = ossdesk("upload", str(tmp_path / "dir" / ".." / "x.bin"), str(back), str(lead),
                     *dest(sandbox), env=cli_env(sandbox))
    assert "Traceback" not in result.stderr
    keys = object_keys(sandbox)
    assert "x.bin" in keys
    assert "a\\b.txt" in keys or ("a\\b.txt" not in _sent_keys(sandbox)
                                  and "a\\b.txt" in result.stderr)
    # A key may not start with a backslash: refused before sending.
    assert "\\lead.txt" not in keys
    assert "\\lead.txt" not in _sent_keys(sandbox)
    assert "lead.txt" in result.stderr
    assert result.returncode == 1


_linux_bytes_names = pytest.mark.skipif(
    sys.platform != "linux", reason="only Linux file systems take names that are not UTF-8")
_BAD = b"z\xffbad.txt"


def _bad_name_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    write_random(folder / "a.txt", 5)
    write_random(folder / "zz.txt", 5)
    with open(os.path.join(os.fsencode(folder), _BAD), "wb") as fh:
        fh.write(b"bad name\n")
    return folder


@_linux_bytes_names
def test_a_name_that_is_not_utf8_is_left_out_with_one_line(sandbox: SandboxInfo,
                                                           tmp_path: Path) -> None:
    folder = _bad_name_folder(tmp_path)
    result = ossdesk("upload", str(folder), *dest(sandbox), env=cli_env(sandbox))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if "UTF-8" in ln]
    assert "z\\xffbad.txt" in line  # the byte, escaped
    assert object_keys(sandbox) == ["mixed/a.txt", "mixed/zz.txt"]
    assert all("bad" not in key for key in _sent_keys(sandbox))
    # The list and the machine-readable output survive it.
    status = ossdesk("status", env=cli_env(sandbox))
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert ossdesk("status", "--json", env=cli_env(sandbox)).returncode == 0


@_linux_bytes_names
def test_a_name_that_is_not_utf8_on_the_command_line(sandbox: SandboxInfo,
                                                     tmp_path: Path) -> None:
    folder = _bad_name_folder(tmp_path)
    bad = os.fsdecode(os.path.join(os.fsencode(folder), _BAD))  # as Python hands out argv
    # Also a good name inside a folder whose name is not UTF-8: its path cannot be kept.
    odd_dir = os.path.join(os.fsencode(tmp_path), b"dir\xfe")
    os.mkdir(odd_dir)
    with open(os.path.join(odd_dir, b"inner.txt"), "wb") as fh:
        fh.write(b"inner\n")
    inner = os.fsdecode(os.path.join(odd_dir, b"inner.txt"))
    result = ossdesk("upload", str(folder / "a.txt"), bad, inner, str(folder / "zz.txt"),
                     "--json", *dest(sandbox), env=cli_env(sandbox))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert len([ln for ln in result.stderr.splitlines() if "UTF-8" in ln]) == 2
    assert "dir\\xfe" in result.stderr
    assert object_keys(sandbox) == ["a.txt", "zz.txt"]
    events = [json.loads(line) for line in result.stdout.splitlines()]  # exact JSON
    assert {e["key"] for e in events if e["event"] == "done"} == {"a.txt", "zz.txt"}


@_linux_bytes_names
def test_a_prefix_that_is_not_utf8_is_a_usage_error(sandbox: SandboxInfo,
                                                    tmp_path: Path) -> None:
    path = write_random(tmp_path / "x.bin", 5)
    result = ossdesk("upload", str(path), "--prefix", os.fsdecode(b"in\xffbox/"),
                     *dest(sandbox), env=cli_env(sandbox))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "--prefix" in result.stderr and "UTF-8" in result.stderr
    assert "in\\xffbox" in result.stderr
    assert _sent_keys(sandbox) == set()


def test_names_reach_the_terminal_escaped(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """An escape sequence, a newline or a bidi override in a name is shown escaped, in the
    "done" lines, the refusals, ``status``; ``--json`` stays exact JSON with the real name."""
    folder = tmp_path / "odd"
    flipped = "photo\u202egpj.exe"  # shows as "photoexe.jpg" when printed raw
    write_random(folder / flipped, 5)
    write_random(folder / "red\x1b[31m.txt", 5)
    write_random(folder / "two\nlines.txt", 5)
    result = ossdesk("upload", str(folder), *dest(sandbox), env=cli_env(sandbox))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr  # the two with C0 controls are refused
    for text in (result.stdout, result.stderr):
        assert "\x1b" not in text and "\u202e" not in text
    assert "done     odd/photo\\u202egpj.exe" in result.stdout
    assert "red\\x1b[31m.txt" in result.stderr
    assert "two\\nlines.txt" in result.stderr
    assert len(result.stderr.splitlines()) == 3  # two refusals and the count, one line each
    assert object_keys(sandbox) == ["odd/" + flipped]
    status = ossdesk("status", env=cli_env(sandbox))
    assert "odd/photo\\u202egpj.exe" in status.stdout and "\u202e" not in status.stdout
    rows = [json.loads(line) for line in
            ossdesk("status", "--json", env=cli_env(sandbox)).stdout.splitlines()]
    assert [r["key"] for r in rows] == ["odd/" + flipped]
