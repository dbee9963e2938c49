"""One side of the comparison: an endpoint, its credentials, and the requests sent to it.

A :class:`Conn` records what each request got back as an :class:`Observation`: the HTTP status,
the OSS error ``Code`` and a few fields that every faithful server must answer alike (ETag and
CRC-64 of known bytes, lengths and ranges, listing keys and markers). Request ids, dates, host
names and opaque tokens are never recorded. Keys are written under a unique prefix, shown as
``~/`` in the table; upload ids are shown as ``U1``, ``U2``... in the order they were created.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import oss2
import oss2.auth
import oss2.http

__all__ = ["Conn", "Observation", "Target", "target_from_env"]

_ENV_PREFIX = "OSSDESK_CONF_"
# Response headers recorded on a 2xx answer when present (names compared lower-case).
RECORDED_HEADERS = (
    "etag",
    "x-oss-hash-crc64ecma",
    "content-length",
    "content-range",
    "x-oss-object-type",
)
_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")
_TIMEOUT = 60


@dataclass(frozen=True)
class Target:
    """Where one side is and how to sign for it."""

    name: str  # "A" or "B"
    endpoint: str
    bucket: str
    region: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def env_names(side: str) -> dict[str, str]:
    """The environment variables that configure side ``side`` ("A" or "B")."""
    base = f"{_ENV_PREFIX}{side.upper()}_"
    return {
        "key_id": base + "KEY_ID",
        "secret": base + "SECRET",
        "token": base + "TOKEN",
        "bucket": base + "BUCKET",
        "region": base + "REGION",
    }


def target_from_env(side: str, endpoint: str, env: Mapping[str, str] | None = None) -> Target:
    """A :class:`Target` for ``endpoint`` with the credentials of side ``side`` from ``env``."""
    env = os.environ if env is None else env
    names = env_names(side)
    missing = [names[k] for k in ("key_id", "secret", "bucket", "region") if not env.get(names[k])]
    if missing:
        raise ValueError(f"side {side.upper()}: set {', '.join(missing)}")
    return Target(
        name=side.upper(),
        endpoint=endpoint.rstrip("/"),
        bucket=env[names["bucket"]],
        region=env[names["region"]],
        access_key_id=env[names["key_id"]],
        access_key_secret=env[names["secret"]],
        security_token=env.get(names["token"]) or None,
    )


@dataclass(frozen=True)
class Observation:
    """What one request got back, as ordered ``name=value`` fields (``status`` first)."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, **fields: object) -> Observation:
        return cls(tuple((k, _text(v)) for k, v in fields.items()))

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.fields)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)


class Conn:
    """Sends the cases' requests to one :class:`Target` and records the answers."""

    def __init__(self, target: Target, run_id: str) -> None:
        self.target = target
        self.prefix = f"ossdesk-conformance/{run_id}/"
        self.rows: list[tuple[str, Observation]] = []
        self._case = ""
        self._uploads: dict[str, str] = {}
        self._session = oss2.Session()

    # -- recording ------------------------------------------------------------------------

    @contextlib.contextmanager
    def case(self, name: str) -> Iterator[None]:
        self._case = name
        try:
            yield
        finally:
            self._case = ""

    def record(self, label: str, observation: Observation) -> Observation:
        self.rows.append((f"{self._case}: {label}" if self._case else label, observation))
        return observation

    def key(self, name: str) -> str:
        """The object key of ``name`` under this run's prefix."""
        return self.prefix + name

    def rel(self, key: str) -> str:
        """``key`` as shown in the table: this run's prefix is ``~/``."""
        return "~/" + key[len(self.prefix):] if key.startswith(self.prefix) else key

    def upload_token(self, upload_id: str | None) -> str:
        """A stable stand-in for an (opaque, server-made) upload id."""
        if not upload_id:
            return "-"
        return self._uploads.setdefault(upload_id, f"U{len(self._uploads) + 1}")

    # -- clients --------------------------------------------------------------------------

    def auth(self, signature: str = "v4", *, key_id: str | None = None,
             secret: str | None = None) -> Any:
        t = self.target
        key_id = key_id or t.access_key_id
        secret = secret or t.access_key_secret
        if t.security_token:
            version = oss2.AUTH_VERSION_4 if signature == "v4" else oss2.AUTH_VERSION_1
            return oss2.StsAuth(key_id, secret, t.security_token, auth_version=version)
        return oss2.AuthV4(key_id, secret) if signature == "v4" else oss2.Auth(key_id, secret)

    def bucket(self, signature: str = "v4", *, auth: Any = None, region: str | None = None) -> Any:
        """An unmodified ``oss2.Bucket``; client-side CRC checks off, so the server's own
        answers are what is recorded."""
        return oss2.Bucket(auth or self.auth(signature), self.target.endpoint, self.target.bucket,
                           region=region or self.target.region, enable_crc=False,
                           session=self._session, connect_timeout=_TIMEOUT)

    def close(self) -> None:
        self._session.session.close()

    # -- sending --------------------------------------------------------------------------

    def call(self, label: str, fn: Callable[[], Any],
             extract: Callable[[Any], dict[str, object]] | None = None) -> Any:
        """Run one oss2 call; record its status (and ``extract``'s fields) or its error."""
        try:
            result = fn()
        except oss2.exceptions.OssError as exc:
            self.record(label, Observation.of(status=exc.status, code=exc.code or "-"))
            return None
        fields: dict[str, object] = {"status": getattr(result, "status", 200)}
        headers = getattr(result, "headers", None)
        if headers is not None:
            fields.update(_headers_of(headers, length=False))
        if extract is not None:
            fields.update(extract(result))
        self.record(label, Observation.of(**fields))
        return result

    def raw(self, label: str, method: str, key: str = "", *, params: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, data: bytes = b"", signature: str = "v4",
            auth: Any = None, region: str | None = None, sign: bool = True,
            body: bool = False, signed_ago: float = 0.0) -> Observation:
        """Send one signed request as oss2 would and record the raw answer.

        ``body=True`` also records the CRC-64 of a 2xx body (a ranged GET, say);
        ``signed_ago`` signs it that many seconds in the past (V4: its x-oss-date)."""
        bucket = self.bucket(signature, auth=auth, region=region)
        req = oss2.http.Request(method, bucket._make_url(self.target.bucket, key), data=data,
                                params=dict(params or {}), headers=dict(headers or {}),
                                region=region or self.target.region, product=bucket.product)
        if sign:
            with _clock_set_back(signed_ago):
                bucket.auth._sign_request(req, self.target.bucket, key)
        return self.record(label, self._send(req, body=body, length=bool(key)))

    def fetch_url(self, label: str, url: str, method: str = "GET") -> Observation:
        """Send a request to a (pre-signed) URL as a browser would: no Authorization."""
        req = oss2.http.Request(method, url)
        return self.record(label, self._send(req, body=False, length=True))

    def _send(self, req: Any, *, body: bool, length: bool) -> Observation:
        resp = self._session.do_request(req, timeout=_TIMEOUT)
        try:
            content = resp.read() if req.method != "HEAD" else b""
        finally:
            resp.response.close()
        fields: dict[str, object] = {"status": resp.status}
        if resp.status // 100 == 2:
            fields.update(_headers_of(resp.headers, length=length))
            if body:
                from ossdesk.core.checksum import crc64

                fields["body-crc64"] = crc64(content)
        elif resp.status >= 400:
            match = _CODE_RE.search(content)
            fields["code"] = match.group(1).decode() if match else "-"
        return Observation.of(**fields)

    # -- pre-signed URLs ------------------------------------------------------------------

    def sign_url(self, signature: str, key: str, expires: int, *, region: str | None = None,
                 signed_ago: float = 0.0) -> str:
        """A pre-signed GET URL; ``signed_ago`` seconds in the past (an expired link)."""
        bucket = self.bucket(signature, region=region)
        with _clock_set_back(signed_ago):
            url: str = bucket.sign_url("GET", key, expires)
        return url

    # -- clean-up -------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove everything this run left under its prefix (objects and uploads)."""
        bucket = self.bucket()
        removed = 0
        for upload in oss2.MultipartUploadIterator(bucket, prefix=self.prefix):
            with contextlib.suppress(oss2.exceptions.NoSuchUpload):
                bucket.abort_multipart_upload(upload.key, upload.upload_id)
            removed += 1
        keys = [obj.key for obj in oss2.ObjectIterator(bucket, prefix=self.prefix)]
        for start in range(0, len(keys), 1000):
            bucket.batch_delete_objects(keys[start:start + 1000])
        return removed + len(keys)


def _headers_of(headers: Mapping[str, str], *, length: bool) -> dict[str, object]:
    """The recorded headers; ``length=False`` leaves out Content-Length (an XML answer's
    length depends on the server's formatting, an object's does not)."""
    lower = {k.lower(): v for k, v in headers.items()}
    return {name: lower[name] for name in RECORDED_HEADERS
            if name in lower and (length or name != "content-length")}


@contextlib.contextmanager
def _clock_set_back(seconds: float) -> Iterator[None]:
    """oss2 signs URLs with the current time; set its clock back to make an old link."""
    if not seconds:
        yield
        return
    real_time = oss2.auth.time
    real_datetime = oss2.auth.datetime

    class _PastTime:
        @staticmethod
        def time() -> float:
            return float(real_time.time()) - seconds

    class _PastDatetime(_dt.datetime):
        @classmethod
        def utcnow(cls) -> _PastDatetime:
            past = _dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=seconds)
            return cls(past.year, past.month, past.day, past.hour, past.minute, past.second)

    oss2.auth.time = _PastTime
    oss2.auth.datetime = _PastDatetime
    try:
        yield
    finally:
        oss2.auth.time = real_time
        oss2.auth.datetime = real_datetime


def new_run_id() -> str:
    """Unique per run: a UTC timestamp (sorts, tells a leftover's age) and random hex."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)
