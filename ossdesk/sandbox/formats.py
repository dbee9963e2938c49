"""How OSS writes things: XML documents, times, ETags, URL-encoded keys, number parameters,
and the CRC-64 it checks bodies with."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from urllib.parse import quote
from xml.sax.saxutils import escape

import anycrc

from ossdesk.sandbox.errors import OssError

CRC = anycrc.Model("CRC64-XZ")
_OWNER_ID = "1234567890123456"


def xml_doc(root: str, body: Iterable[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<' + root + ">" + "".join(body)
            + "</" + root + ">").encode("utf-8")


def el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def owner_xml() -> str:
    """The ``<Owner>`` every listing and ACL names (the sandbox has one account)."""
    return "<Owner>" + el("ID", _OWNER_ID) + el("DisplayName", _OWNER_ID) + "</Owner>"


# Control characters XML 1.0 forbids (even as character references), and the escape that
# carries them through the XML parser: _ESC + a private-use character per control
# character, _ESC itself doubled.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ue000]")
_ESC = "\ue000"
_ESCAPED = re.compile("\ue000(.)", re.DOTALL)


def escape_controls(text: str) -> str:
    return _XML_FORBIDDEN.sub(
        lambda m: _ESC * 2 if m.group() == _ESC else _ESC + chr(0xE100 + ord(m.group())), text)


def unescape_controls(text: str) -> str:
    return _ESCAPED.sub(
        lambda m: _ESC if m.group(1) == _ESC else chr(ord(m.group(1)) - 0xE100), text)


def iso_time(ts: float) -> str:
    # OSS always writes whole seconds with ".000Z" (and oss2 insists on it).
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def http_date(ts: float | None = None) -> str:
    return formatdate(ts, usegmt=True)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def key_encoder(params: dict[str, str]) -> Callable[[str], str]:
    enc = params.get("encoding-type", "")
    if enc == "url":
        return lambda s: quote(s, safe="/")
    return lambda s: s


def encoding_type(params: dict[str, str]) -> list[str]:
    """``<EncodingType>url</EncodingType>`` when the request asked for URL-encoded keys."""
    return [el("EncodingType", "url")] if params.get("encoding-type") == "url" else []


def int_param(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OssError(400, "InvalidArgument", f"{name} is not a number.",
                       ArgumentName=name, ArgumentValue=raw) from None
    if not lo <= value <= hi:
        raise OssError(400, "InvalidArgument", f"{name} must be between {lo} and {hi}.",
                       ArgumentName=name, ArgumentValue=raw)
    return value
