"""Names shown to people: controls, bidi controls and undecodable bytes escaped, the rest
kept; JSON lines stay exact JSON."""

from __future__ import annotations

import json
import os

from ossdesk.commands import json_line
from ossdesk.core.names import is_utf8, printable


def test_controls_bidi_and_undecodable_bytes_are_escaped() -> None:
    assert printable("evil\x1b[31mred\n.txt") == "evil\\x1b[31mred\\n.txt"
    assert printable("a\tb\rc\x7fd\x85e") == "a\\tb\\rc\\x7fd\\x85e"
    assert printable("photo\u202egpj.exe") == "photo\\u202egpj.exe"
    assert printable("\u2066x\u2069\u200f\u2028") == "\\u2066x\\u2069\\u200f\\u2028"
    assert printable(os.fsdecode(b"z\xffbad.txt")) == "z\\xffbad.txt"


def test_ordinary_names_are_kept_as_they_are() -> None:
    for name in ["café.txt", "中文 文件.txt", "\U0001f468\u200d\U0001f469 family.jpg",
                 "C:\\Users\\me\\a.txt", "100% #1 & more?.txt"]:
        assert printable(name) == name
        assert printable(printable(name)) == name


def test_json_lines_are_exact_json_even_with_undecodable_bytes() -> None:
    plain = {"key": "café\x1b.txt"}
    assert json.loads(json_line(plain)) == plain
    assert "café" in json_line(plain)  # not escaped needlessly
    odd = {"source": os.fsdecode(b"/data/z\xffbad.txt")}
    line = json_line(odd)
    assert is_utf8(line)
    assert "\\udcff" in line
    assert os.fsencode(json.loads(line)["source"]) == b"/data/z\xffbad.txt"
