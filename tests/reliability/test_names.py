"""Names: each file either uploads to the key a user expects, or is refused with a message
naming it before any of its bytes is sent (the sandbox's access log is the witness)."""

from __future__ import annotations

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
