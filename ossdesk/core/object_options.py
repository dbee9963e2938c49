"""How an object is written beyond its bytes: ACL, HTTP headers, tags, server-side encryption.

One :class:`ObjectOptions` travels with a request and each of its rows (stored as JSON in
the upload list), so a resume after a crash sends exactly what the first attempt sent.
Everything is checked by :meth:`ObjectOptions.checked` before anything is sent; a bad value
raises :class:`OptionError` whose text says what is wrong and what is accepted.

Where the headers go (OSS API reference, PutObject / InitiateMultipartUpload /
CompleteMultipartUpload):

- a single PutObject carries all of them;
- InitiateMultipartUpload carries Content-Type, Cache-Control, Content-Disposition,
  ``x-oss-meta-*``, ``x-oss-storage-class``, ``x-oss-tagging`` and the server-side
  encryption headers (:meth:`ObjectOptions.headers`);
- the object ACL (``x-oss-object-acl``) goes on CompleteMultipartUpload, the request that
  creates the object (:meth:`ObjectOptions.complete_headers`).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = ["ACLS", "ENCRYPTIONS", "MAX_TAGS", "ObjectOptions", "OptionError", "parse_tags",
           "tags_text"]

#: ``x-oss-object-acl`` values; "default" follows the bucket's ACL.
ACLS = ("default", "private", "public-read", "public-read-write")
#: ``x-oss-server-side-encryption`` values ossdesk offers (KMS may name a key id).
ENCRYPTIONS = ("AES256", "KMS")
#: OSS limits for object tags: at most 10, key 1..128 characters, value up to 256.
MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
# Characters OSS allows in tag keys and values besides letters and digits.
_TAG_CHARS = frozenset(" +-=._:/")


class OptionError(ValueError):
    """An object option that cannot be sent; ``str(exc)`` is a message for the user and
    ``field`` names the option (``acl``, ``tags``, ``encryption``, ``kms_key_id``,
    ``content_type``, ``cache_control``, ``content_disposition``, ``metadata``), so that a
    window can say it in its own language."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _check_tag_text(what: str, text: str, limit: int, *, empty: bool) -> None:
    if not text and not empty:
        raise OptionError(f"object tag {what} is empty", "tags")
    if len(text) > limit:
        raise OptionError(f"object tag {what} {text[:20]!r}... is longer than {limit} "
                          "characters", "tags")
    bad = sorted({c for c in text if not (c.isalnum() or c in _TAG_CHARS)})
    if bad:
        raise OptionError(f"object tag {what} {text!r} holds {''.join(bad)!r}: tags may hold "
                          "letters, digits, spaces and + - = . _ : /", "tags")


def parse_tags(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v&k2=v2`` (URL-encoded, as ``x-oss-tagging`` carries it, or plain) as pairs."""
    pairs: list[tuple[str, str]] = []
    text = text.strip()
    if not text:
        return ()
    for item in text.split("&"):
        name, sep, value = item.partition("=")
        if not sep:
            raise OptionError(f"object tag {item!r}: write KEY=VALUE (several joined by &)",
                              "tags")
        pairs.append((urllib.parse.unquote(name.strip()),
                      urllib.parse.unquote(value.strip())))
    return tuple(pairs)


def tags_text(tags: tuple[tuple[str, str], ...]) -> str:
    """The ``x-oss-tagging`` value: URL-encoded ``k=v`` joined by ``&``."""
    return "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}"
                    for k, v in tags)


def _header_value(name: str, value: str, field: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise OptionError(f"{name}: a line break or NUL cannot be sent in a header", field)
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise OptionError(f"{name} {value!r}: only Latin-1 characters can be sent in this "
                          "header (encode a file name as filename*=UTF-8''...)",
                          field) from None


@dataclass(frozen=True)
class ObjectOptions:
    """What an object is written with besides its bytes, storage class and metadata."""

    acl: str | None = None
    content_type: str | None = None  # None: from the file name
    cache_control: str | None = None
    content_disposition: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    encryption: str | None = None  # "AES256" or "KMS"
    kms_key_id: str | None = None

    @property
    def empty(self) -> bool:
        return self == ObjectOptions()

    def checked(self) -> ObjectOptions:
        """The options with empty strings as None, or :class:`OptionError`."""
        acl = (self.acl or "").strip() or None
        if acl is not None and acl not in ACLS:
            raise OptionError(f"object ACL {acl!r} is not one OSS knows: use "
                              + ", ".join(ACLS), "acl")
        encryption = (self.encryption or "").strip() or None
        if encryption is not None:
            upper = encryption.upper()
            if upper not in ENCRYPTIONS:
                raise OptionError(f"server-side encryption {encryption!r} is not one OSS "
                                  "knows: use AES256 or KMS", "encryption")
            encryption = upper
        key_id = (self.kms_key_id or "").strip() or None
        if key_id is not None and encryption != "KMS":
            raise OptionError("a KMS key id is used only with KMS encryption "
                              "(choose KMS, or leave the key id out)", "kms_key_id")
        if len(self.tags) > MAX_TAGS:
            raise OptionError(f"{len(self.tags)} object tags: OSS takes at most {MAX_TAGS}",
                              "tags")
        seen: set[str] = set()
        for key, value in self.tags:
            _check_tag_text("key", key, MAX_TAG_KEY, empty=False)
            _check_tag_text("value", value, MAX_TAG_VALUE, empty=True)
            if key in seen:
                raise OptionError(f"object tag key {key!r} is given twice", "tags")
            seen.add(key)
        values: dict[str, str | None] = {
            "Content-Type": (self.content_type or "").strip() or None,
            "Cache-Control": (self.cache_control or "").strip() or None,
            "Content-Disposition": (self.content_disposition or "").strip() or None,
            "KMS key id": key_id,
        }
        fields = ("content_type", "cache_control", "content_disposition", "kms_key_id")
        for (name, given), field in zip(values.items(), fields, strict=True):
            if given is not None:
                _header_value(name, given, field)
        return ObjectOptions(acl=acl, content_type=values["Content-Type"],
                             cache_control=values["Cache-Control"],
                             content_disposition=values["Content-Disposition"],
                             tags=tuple(self.tags), encryption=encryption, kms_key_id=key_id)

    def headers(self) -> dict[str, str]:
        """Headers for InitiateMultipartUpload and PutObject (Content-Type only when given;
        the ACL is in :meth:`complete_headers`)."""
        headers: dict[str, str] = {}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        if self.cache_control:
            headers["Cache-Control"] = self.cache_control
        if self.content_disposition:
            headers["Content-Disposition"] = self.content_disposition
        if self.tags:
            headers["x-oss-tagging"] = tags_text(self.tags)
        if self.encryption:
            headers["x-oss-server-side-encryption"] = self.encryption
        if self.kms_key_id:
            headers["x-oss-server-side-encryption-key-id"] = self.kms_key_id
        return headers

    def complete_headers(self) -> dict[str, str]:
        """Headers for the request that creates the object of a multipart upload."""
        return {"x-oss-object-acl": self.acl} if self.acl else {}

    def to_json(self) -> str | None:
        """What the upload list stores (None for no options)."""
        if self.empty:
            return None
        data: dict[str, Any] = {k: v for k, v in (
            ("acl", self.acl), ("content_type", self.content_type),
            ("cache_control", self.cache_control),
            ("content_disposition", self.content_disposition),
            ("encryption", self.encryption), ("kms_key_id", self.kms_key_id)) if v}
        if self.tags:
            data["tags"] = [list(pair) for pair in self.tags]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> ObjectOptions:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(acl=data.get("acl"), content_type=data.get("content_type"),
                   cache_control=data.get("cache_control"),
                   content_disposition=data.get("content_disposition"),
                   tags=tuple((str(k), str(v)) for k, v in data.get("tags", ())),
                   encryption=data.get("encryption"), kms_key_id=data.get("kms_key_id"))
