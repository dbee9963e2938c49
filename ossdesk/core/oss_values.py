"""What :mod:`ossdesk.core.oss` takes and gives as plain values: the credentials, the
endpoint (and the region read from its host name), the timeouts, and what the server
answers (a stored object or part, an object's details, an unfinished upload).

Re-exported by :mod:`ossdesk.core.oss`; nothing here imports ``oss2``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

from ossdesk.core.upload import parse_settings

__all__ = [
    "Credentials",
    "Endpoint",
    "ObjectInfo",
    "PutResult",
    "RemotePart",
    "RemoteUpload",
    "Timeouts",
    "region_from_host",
]


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token. Never printed whole."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


_REGION_HOST = re.compile(r"(?:^|\.)oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")
_NOT_REGIONS = frozenset({"accelerate", "accelerate-overseas"})


def region_from_host(host: str) -> str | None:
    """``"cn-hangzhou"`` from ``oss-cn-hangzhou[-internal].aliyuncs.com``; None otherwise."""
    match = _REGION_HOST.search(host.lower())
    if match is None or match.group(1) in _NOT_REGIONS:
        return None
    return match.group(1)


@dataclass(frozen=True)
class Endpoint:
    """Where a bucket lives. ``url`` without a scheme means ``https://``."""

    url: str
    bucket: str
    region: str | None = None
    signature: Literal["v4", "v1"] = "v4"

    def __post_init__(self) -> None:
        url = self.url.strip()
        if "://" not in url:
            url = "https://" + url
        scheme, _, rest = url.partition("://")
        url = f"{scheme.lower()}://{rest}"
        object.__setattr__(self, "url", url.rstrip("/"))
        object.__setattr__(self, "bucket", self.bucket.strip())
        if self.region is not None:
            object.__setattr__(self, "region", self.region.strip() or None)

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def effective_region(self) -> str | None:
        """The region given, or the one in an ``oss-<region>.aliyuncs.com`` host name."""
        return self.region or region_from_host(self.host)

    @property
    def is_loopback(self) -> bool:
        host = self.host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Timeouts:
    """How long a request may take, in seconds.

    ``connect``: to open the connection (and the TLS handshake); ``idle``: for any one send
    or receive to make progress; ``answer``: from the moment the request is written until
    the whole head of the answer is in, plus the body's length at ``rate`` bytes per second
    (what the system may still hold unsent on a slow link when the last write returns). A
    server that takes the request and never answers is cut after ``answer`` seconds (a
    small request), not after minutes.
    """

    connect: float = 10.0
    answer: float = 5.0
    idle: float = 60.0
    rate: float = 128 * 1024

    def answer_for(self, length: int) -> float:
        """The wait allowed for the answer to a request with a body of ``length`` bytes."""
        return self.answer + (length / self.rate if self.rate > 0 else 0.0)

    def quick(self) -> Timeouts:
        """Shorter waits for a check before anything is queued (at most 5 s to connect,
        3 s for the answer)."""
        return replace(self, connect=min(self.connect, 5.0), answer=min(self.answer, 3.0))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Timeouts:
        """The defaults, or what ``OSSDESK_TIMEOUTS`` sets: comma-separated ``connect=S``,
        ``answer=S``, ``idle=S``, ``rate=BYTES_PER_SECOND`` (e.g. ``connect=1,answer=1``)."""
        text = (os.environ if environ is None else environ).get("OSSDESK_TIMEOUTS", "")
        values = parse_settings(text, "OSSDESK_TIMEOUTS", ("connect", "answer", "idle", "rate"))
        return replace(cls(), **values)



@dataclass(frozen=True)
class PutResult:
    etag: str
    crc64: int | None
    """The server's ``x-oss-hash-crc64ecma`` of what it stored; None if it sent none."""


@dataclass(frozen=True)
class RemotePart:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    crc64: int | None
    content_type: str | None
    last_modified: int | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class RemoteUpload:
    key: str
    upload_id: str
    initiated: int | None

