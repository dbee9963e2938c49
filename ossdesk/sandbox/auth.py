"""Request signature verification, mirroring how OSS (and the ``oss2`` SDK) sign requests.

Two schemes are understood, each in its header form and its pre-signed URL form:

- V1: ``Authorization: OSS <AccessKeyId>:<base64 HMAC-SHA1>``, or the query parameters
  ``OSSAccessKeyId``, ``Expires`` and ``Signature``.
- V4: ``Authorization: OSS4-HMAC-SHA256 Credential=<ak>/<yyyymmdd>/<region>/oss/aliyun_v4_request,
  Signature=<hex>[, AdditionalHeaders=<h1;h2>]``, or the ``x-oss-signature-version`` /
  ``x-oss-credential`` / ``x-oss-date`` / ``x-oss-expires`` / ``x-oss-signature`` query
  parameters.

The canonical forms below follow the SDK's byte for byte. A failed check raises
:class:`AuthError` carrying the OSS error code the server answers with.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_tz

MAX_SKEW_SECONDS = 15 * 60
INVALID_SIGNING_REGION = "Invalid signing region in Authorization header."

# Query parameters that are part of a V1 signature's canonical resource.
V1_SUBRESOURCES = frozenset(
    [
        "response-content-type", "response-content-language", "response-cache-control",
        "logging", "response-content-encoding", "acl", "uploadId", "uploads", "partNumber",
        "group", "link", "delete", "website", "location", "objectInfo", "objectMeta",
        "response-expires", "response-content-disposition", "cors", "lifecycle", "restore",
        "qos", "referer", "stat", "bucketInfo", "append", "position", "security-token",
        "live", "comp", "status", "vod", "startTime", "endTime", "x-oss-process", "symlink",
        "callback", "callback-var", "tagging", "encryption", "versions", "versioning",
        "versionId", "policy", "requestPayment", "x-oss-traffic-limit", "qosInfo",
        "asyncFetch", "x-oss-request-payer", "sequential", "inventory", "inventoryId",
        "continuation-token", "worm", "wormId", "wormExtend", "replication",
        "replicationLocation", "replicationProgress", "transferAcceleration", "cname",
        "metaQuery", "x-oss-ac-source-ip", "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id",
        "x-oss-ac-forward-allow", "resourceGroup", "style", "styleName",
        "x-oss-async-process", "regionList", "x-oss-write-get-object-response",
        "bucketArchiveDirectRead", "httpsConfig", "redundancyTransition",
        "x-oss-target-redundancy-type", "x-oss-redundancy-transition-taskid", "accessPoint",
        "accessPointPolicy", "publicAccessBlock", "x-oss-access-point-name",
        "requesterQosInfo", "qosRequester", "resourcePoolInfo", "resourcePool",
        "resourcePoolBuckets",
    ]
)
V4_DEFAULT_SIGNED = ("content-type", "content-md5")
_V4_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-~.")


class AuthError(Exception):
    """A request that OSS would refuse; ``code`` is the OSS error code, ``status`` the HTTP one."""

    def __init__(self, code: str, message: str, status: int = 403,
                 extra: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra: dict[str, str] = dict(extra or {})


def _signature_mismatch(extra: Mapping[str, str]) -> AuthError:
    return AuthError("SignatureDoesNotMatch",
                     "The request signature we calculated does not match the signature you "
                     "provided. Check your key and signing method.", extra=extra)


@dataclass
class Credentials:
    """What the sandbox accepts. Never printed by ``repr`` beyond the key id."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    expired_tokens: set[str] = field(default_factory=set, repr=False)


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that signatures cover."""

    method: str
    bucket: str | None
    key: str
    params: Sequence[tuple[str, str]]
    # lower-cased header name -> raw header value bytes as received
    headers: Mapping[str, bytes]


def _v4_encode(raw: str | bytes, keep_slash: bool) -> str:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    out = []
    for b in data:
        if b in _V4_SAFE or (keep_slash and b == 0x2F):
            out.append(chr(b))
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _header(req: SignedRequest, name: str) -> bytes:
    return req.headers.get(name, b"")


def _check_token(req: SignedRequest, creds: Credentials, token: str | None) -> None:
    if token is not None and token in creds.expired_tokens:
        raise AuthError("SecurityTokenExpired", "The security token you provided has expired.")
    if creds.security_token is None:
        if token:
            raise AuthError(
                "InvalidAccessKeyId",
                "The security token you provided is invalid: this server accepts no token.",
            )
        return
    if not token:
        raise AuthError(
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided needs a security token (x-oss-security-token).",
        )
    if not hmac.compare_digest(token.encode(), creds.security_token.encode()):
        raise AuthError("InvalidAccessKeyId", "The security token you provided is invalid.")


def _check_key_id(ak: str, creds: Credentials) -> None:
    if ak != creds.access_key_id:
        raise AuthError(
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
            extra={"OSSAccessKeyId": ak},
        )


def _http_date_to_epoch(value: str) -> float | None:
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    offset = parsed[9] or 0
    return float(calendar.timegm(parsed[:9]) - offset)


def _iso_basic_to_epoch(value: str) -> float | None:
    """``20250102T030405Z`` -> seconds since the epoch (None if malformed)."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not digits.isdigit():
        return None
    try:
        when = datetime(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
                        int(digits[8:10]), int(digits[10:12]), int(digits[12:14]), tzinfo=UTC)
    except ValueError:
        return None
    return when.timestamp()


def _check_skew(when: float | None, now: float) -> None:
    if when is None:
        raise AuthError("AccessDenied", "The request date is missing or not valid.")
    if abs(now - when) > MAX_SKEW_SECONDS:
        raise AuthError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )


# ---------------------------------------------------------------- V1


def v1_string_to_sign(req: SignedRequest, date: bytes) -> bytes:
    oss_headers = sorted((k, v) for k, v in req.headers.items() if k.startswith("x-oss-"))
    headers_bytes = b"".join(k.encode() + b":" + v + b"\n" for k, v in oss_headers)
    sub = sorted((k, v) for k, v in req.params if k in V1_SUBRESOURCES)
    sub_str = ("?" + "&".join(k + "=" + v if v else k for k, v in sub)) if sub else ""
    resource = f"/{req.bucket}/{req.key}{sub_str}" if req.bucket else "/" + sub_str
    return b"\n".join(
        [
            req.method.encode(),
            _header(req, "content-md5"),
            _header(req, "content-type"),
            date,
            headers_bytes + resource.encode("utf-8"),
        ]
    )


def _v1_sign(secret: str, data: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), data, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _verify_v1_header(req: SignedRequest, creds: Credentials, auth: str, now: float) -> None:
    body = auth[4:].strip()
    ak, sep, signature = body.rpartition(":")
    if not sep:
        raise AuthError("AccessDenied", "The Authorization header is not valid.", status=400)
    _check_key_id(ak, creds)
    _check_token(req, creds, _header(req, "x-oss-security-token").decode("latin-1") or None)
    date = _header(req, "x-oss-date") or _header(req, "date")
    _check_skew(_http_date_to_epoch(date.decode("latin-1")), now)
    to_sign = v1_string_to_sign(req, date)
    if not hmac.compare_digest(_v1_sign(creds.access_key_secret, to_sign), signature):
        raise _signature_mismatch({"StringToSign": to_sign.decode("utf-8", "replace"),
                                   "OSSAccessKeyId": ak})


def _verify_v1_query(req: SignedRequest, creds: Credentials, q: Mapping[str, str],
                     now: float) -> None:
    ak = q.get("OSSAccessKeyId", "")
    _check_key_id(ak, creds)
    _check_token(req, creds, q.get("security-token"))
    expires = q.get("Expires", "")
    try:
        expires_at = int(expires)
    except ValueError:
        raise AuthError("AccessDenied", "The Expires parameter is not valid.") from None
    if now > expires_at:
        raise AuthError("AccessDenied", "Request has expired.",
                        extra={"Expires": expires})
    to_sign = v1_string_to_sign(req, expires.encode())
    if not hmac.compare_digest(_v1_sign(creds.access_key_secret, to_sign), q.get("Signature", "")):
        raise _signature_mismatch({"StringToSign": to_sign.decode("utf-8", "replace"),
                                   "OSSAccessKeyId": ak})


# ---------------------------------------------------------------- V4


def v4_canonical_request(req: SignedRequest, additional: Sequence[str], payload_hash: str,
                         skip_params: frozenset[str] = frozenset(), *,
                         empty_with_equals: bool = False) -> bytes:
    """The V4 canonical request. A parameter with an empty value is written as its name
    alone (``marker``, as oss2 and OSS's documentation do), or with ``empty_with_equals`` as
    ``marker=`` (as ali-oss signs it)."""
    uri = _v4_encode(f"/{req.bucket}/{req.key}" if req.bucket else "/", keep_slash=True)
    encoded = sorted(
        (_v4_encode(k, False), _v4_encode(v, False)) for k, v in req.params if k not in skip_params
    )
    query = "&".join(k + "=" + v if v or empty_with_equals else k for k, v in encoded)
    extra = set(additional)
    signed = sorted(
        (k, v) for k, v in req.headers.items()
        if k.startswith("x-oss-") or k in V4_DEFAULT_SIGNED or k in extra
    )
    headers_bytes = b"".join(k.encode() + b":" + v + b"\n" for k, v in signed)
    return (
        req.method.encode() + b"\n" + uri.encode() + b"\n" + query.encode() + b"\n"
        + headers_bytes + b"\n" + ";".join(sorted(additional)).encode() + b"\n"
        + payload_hash.encode()
    )


def _has_empty_value(req: SignedRequest) -> bool:
    return any(not v for _, v in req.params)


def _v4_signature(secret: str, date_time: str, scope: str, region: str,
                  canonical: bytes) -> tuple[str, str]:
    string_to_sign = (
        "OSS4-HMAC-SHA256\n" + date_time + "\n" + scope + "\n"
        + hashlib.sha256(canonical).hexdigest()
    )
    key = hmac.new(("aliyun_v4" + secret).encode(), date_time[:8].encode(), hashlib.sha256).digest()
    key = hmac.new(key, region.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"oss", hashlib.sha256).digest()
    key = hmac.new(key, b"aliyun_v4_request", hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest(), string_to_sign


def _parse_credential(credential: str, creds: Credentials, region: str) -> str:
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request":
        raise AuthError("AccessDenied", "The Credential of the V4 signature is not valid.",
                        status=400)
    _check_key_id(parts[0], creds)
    if parts[2] != region:
        # OSS's answer to a V4 request scoped to another region (an empty one included):
        # 400 InvalidArgument with this message (EC 0002-00000226), before the signature.
        raise AuthError("InvalidArgument", INVALID_SIGNING_REGION, status=400)
    return "/".join(parts[1:])


def _verify_v4_header(req: SignedRequest, creds: Credentials, auth: str, region: str,
                      now: float) -> None:
    fields: dict[str, str] = {}
    for item in auth[len("OSS4-HMAC-SHA256"):].split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields[name] = value
    if "Credential" not in fields or "Signature" not in fields:
        raise AuthError("AccessDenied", "The Authorization header is not valid.", status=400)
    scope = _parse_credential(fields["Credential"], creds, region)
    _check_token(req, creds, _header(req, "x-oss-security-token").decode("latin-1") or None)
    date_time = _header(req, "x-oss-date").decode("latin-1")
    _check_skew(_iso_basic_to_epoch(date_time), now)
    additional = [h for h in fields.get("AdditionalHeaders", "").lower().split(";") if h]
    payload = _header(req, "x-oss-content-sha256").decode("latin-1") or "UNSIGNED-PAYLOAD"
    canonical = v4_canonical_request(req, additional, payload)
    expected, sts = _v4_signature(creds.access_key_secret, date_time, scope, region, canonical)
    if not hmac.compare_digest(expected, fields["Signature"]) and _has_empty_value(req):
        canonical = v4_canonical_request(req, additional, payload, empty_with_equals=True)
        expected, sts = _v4_signature(creds.access_key_secret, date_time, scope, region,
                                      canonical)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise _signature_mismatch({"StringToSign": sts,
                                   "CanonicalRequest": canonical.decode("utf-8", "replace")})


def _verify_v4_query(req: SignedRequest, creds: Credentials, q: Mapping[str, str], region: str,
                     now: float) -> None:
    scope = _parse_credential(q.get("x-oss-credential", ""), creds, region)
    _check_token(req, creds, q.get("x-oss-security-token"))
    date_time = q.get("x-oss-date", "")
    signed_at = _iso_basic_to_epoch(date_time)
    if signed_at is None:
        raise AuthError("AccessDenied", "The x-oss-date parameter is not valid.")
    try:
        expires = int(q.get("x-oss-expires", ""))
    except ValueError:
        raise AuthError("AccessDenied", "The x-oss-expires parameter is not valid.") from None
    if now > signed_at + expires:
        raise AuthError("AccessDenied", "Request has expired.")
    additional = [h for h in q.get("x-oss-additional-headers", "").lower().split(";") if h]
    skip = frozenset({"x-oss-signature"})
    canonical = v4_canonical_request(req, additional, "UNSIGNED-PAYLOAD", skip_params=skip)
    expected, sts = _v4_signature(creds.access_key_secret, date_time, scope, region, canonical)
    if not hmac.compare_digest(expected, q.get("x-oss-signature", "")) and \
            _has_empty_value(req):
        canonical = v4_canonical_request(req, additional, "UNSIGNED-PAYLOAD", skip_params=skip,
                                         empty_with_equals=True)
        expected, sts = _v4_signature(creds.access_key_secret, date_time, scope, region,
                                      canonical)
    if not hmac.compare_digest(expected, q.get("x-oss-signature", "")):
        raise _signature_mismatch({"StringToSign": sts})


def verify(req: SignedRequest, creds: Credentials, region: str, now: float | None = None) -> None:
    """Raise :class:`AuthError` unless ``req`` is signed as OSS requires."""
    now = time.time() if now is None else now
    auth = _header(req, "authorization").decode("latin-1").strip()
    if auth.startswith("OSS4-HMAC-SHA256"):
        _verify_v4_header(req, creds, auth, region, now)
        return
    if auth.startswith("OSS "):
        _verify_v1_header(req, creds, auth, now)
        return
    if auth:
        raise AuthError("AccessDenied", "The Authorization header is not a supported scheme "
                        "(use signature V1 or V4).", status=400)
    q = dict(req.params)
    if q.get("x-oss-signature-version") == "OSS4-HMAC-SHA256":
        _verify_v4_query(req, creds, q, region, now)
        return
    if "Signature" in q:
        _verify_v1_query(req, creds, q, now)
        return
    raise AuthError("AccessDenied", "You have no right to access this object because of "
                    "bucket acl.")
