"""File names and keys shown to people: never raw control characters, never a crash.

A file name can hold anything its file system allows: escape sequences that recolour or
clear a terminal, newlines that forge a second line of output, bidirectional overrides that
show ``txt.exe`` as ``exe.txt``, and (on Linux) bytes that are not UTF-8, which Python hands
out as lone surrogates (``\\udcff`` for the byte ``0xff``). :func:`printable` shows each of
them as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``, and ``\\xff`` for an undecodable
byte) and leaves every other character, accents, CJK and emoji included, as it is.
"""

from __future__ import annotations

import re

__all__ = ["is_utf8", "printable"]

# C0 controls, DEL, C1 controls; the bidi marks, embeddings, overrides and isolates; the
# line and paragraph separators; and lone surrogates (undecodable bytes, or broken text).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode hands it out
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control, bidi control and undecodable byte escaped."""
    return _UNSAFE.sub(_escape, text)


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (a name made of undecodable bytes cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
