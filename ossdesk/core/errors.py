"""What went wrong with an OSS request, in the user's words: :class:`ErrorKind`,
:class:`OssError` and :func:`classify`, which turns any exception from ``oss2`` or the
transport into an :class:`OssError` with a message that says what to do.

Messages are built from the error code, HTTP status and request id, so a secret or token
can never travel inside one; text taken from a server's answer has the secrets masked.
"""

from __future__ import annotations

import enum
import http.client
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import oss2.exceptions
import urllib3.exceptions

from ossdesk.core import transport

__all__ = ["ErrorKind", "OssError", "classify"]


class ErrorKind(enum.Enum):
    RETRYABLE = "retryable"
    """Try again later (with backoff): network trouble, timeouts, 5xx, throttling."""
    PERMANENT = "permanent"
    """Trying again will not help until the user changes something."""
    CREDENTIALS_EXPIRED = "credentials_expired"
    """The STS token expired: wait for new credentials, then go on."""
    NO_SUCH_UPLOAD = "no_such_upload"
    """The multipart upload id is gone (aborted, expired or completed)."""
    NOT_FOUND = "not_found"
    """The object does not exist."""


class OssError(Exception):
    """Any failure of an OSS request, classified, with a message for the user.

    ``message`` says what happened and what to do; ``str()`` adds the error code, HTTP
    status and request id (what OSS support asks for). Neither ever holds a secret.
    """

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.reason = reason or (
            f"OSS answered HTTP {status}" + (f" ({code})" if code else "")
            if status is not None else message)
        """What failed, in a few words (a retry line: "cannot connect to HOST: refused")."""

    @property
    def retryable(self) -> bool:
        return self.kind is ErrorKind.RETRYABLE

    def __str__(self) -> str:
        extra = [self.code] if self.code else []
        if self.status is not None:
            extra.append(f"HTTP {self.status}")
        if self.request_id:
            extra.append(f"request id {self.request_id}")
        return f"{self.message} [{', '.join(extra)}]" if extra else self.message

    def __repr__(self) -> str:
        return (
            f"OssError({self.kind.name}, code={self.code!r}, status={self.status!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )


# --- classification --------------------------------------------------------------------------

_R, _P = ErrorKind.RETRYABLE, ErrorKind.PERMANENT
_DIGEST_MISMATCH = (
    _P,
    "The data OSS received does not match its checksum: the file may have changed while it "
    "was read. Upload it again.",
)
_SLOW_DOWN = (_R, "OSS asks to slow down (too many requests).")

_CODE_MESSAGES: dict[str, tuple[ErrorKind, str]] = {
    "AccessDenied": (
        _P,
        "These credentials are not allowed to do this in the bucket. Ask the bucket's owner "
        "for permission (a RAM policy), or use other credentials.",
    ),
    "NoSuchBucket": (
        _P,
        "The bucket does not exist at this endpoint. Check the bucket name and the endpoint "
        "(region).",
    ),
    "InvalidBucketName": (_P, "The bucket name is not valid. Check the bucket name."),
    "InvalidObjectName": (
        _P,
        "OSS does not accept this object name: it must be 1 to 1023 bytes of UTF-8 and must "
        "not start with '/' or '\\'. Rename the file or change the prefix.",
    ),
    "KeyTooLong": (
        _P,
        "The object name is longer than 1023 bytes. Use a shorter prefix or file name.",
    ),
    "RequestTimeTooSkewed": (
        _P,
        "This computer's clock differs from OSS's by more than 15 minutes. Correct the "
        "computer's date, time and time zone, then try again.",
    ),
    "InvalidArgument": (_P, "OSS rejected an argument of the request."),
    "EntityTooLarge": (_P, "The object or part is larger than OSS accepts."),
    "EntityTooSmall": (
        _P,
        "A part is smaller than the OSS minimum of 100 KiB (only the last part may be). "
        "Upload the file again.",
    ),
    "InvalidPart": (
        _P,
        "OSS does not have a part as recorded (missing, or a different ETag). Upload the "
        "file again.",
    ),
    "InvalidPartOrder": (_P, "The part list is not in ascending order."),
    "InvalidDigest": _DIGEST_MISMATCH,
    "BadDigest": _DIGEST_MISMATCH,
    "FileAlreadyExists": (
        _P,
        "An object with this name already exists and the upload may not overwrite it.",
    ),
    "ServiceUnavailable": (_R, "OSS is temporarily unavailable."),
    "InternalError": (_R, "OSS had an internal error."),
    "RequestTimeout": (
        _R,
        "OSS waited too long for data from this computer.",
    ),
    "IncompleteBody": (
        _R,
        "OSS received less data than announced (the connection was cut).",
    ),
    "SlowDown": _SLOW_DOWN,
    "TooManyRequests": _SLOW_DOWN,
}

_EXPIRED_MESSAGE = (
    "The temporary (STS) credentials have expired. Provide new credentials: uploads wait "
    "and go on from where they stopped."
)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _server_message(details: Mapping[str, Any], secrets: Iterable[str]) -> str:
    raw = details.get("Message") or ""
    text = _scrub(" ".join(str(raw).split()), secrets)
    return text[:300]


_ENVIRONMENT = "environment"  # the credentials source of OSS_ACCESS_KEY_ID & co (store.py)


def _credential_hints(source: str | None) -> tuple[str, str, str]:
    """Where to fix the AccessKey ID, the secret and the STS token, for credentials from
    ``source`` (``"environment"``, a profile name, or None: not known)."""
    if source == _ENVIRONMENT:
        return ("Check OSS_ACCESS_KEY_ID in the environment.",
                "Check OSS_ACCESS_KEY_SECRET in the environment",
                "Check OSS_SESSION_TOKEN in the environment: set it only for temporary "
                "credentials, together with the AccessKey pair it was issued with.")
    if source:
        return (f"Check the AccessKey ID in the profile {source!r}.",
                f"Enter the secret of the profile {source!r} again",
                f"Check the STS token of the profile {source!r} (only temporary credentials "
                "have one), or get new temporary credentials.")
    return ("Check the AccessKey ID.", "Enter the secret again",
            "Check the STS token (only temporary credentials have one), or get new "
            "temporary credentials.")


def _classify_server(exc: oss2.exceptions.OssError, secrets: Sequence[str],
                     source: str | None = None) -> OssError:
    status = int(exc.status)
    details: Mapping[str, Any] = exc.details or {}
    code = str(details.get("Code") or "")
    request_id = str(exc.request_id or "") or None

    def make(kind: ErrorKind, message: str, code: str = code) -> OssError:
        return OssError(kind, code, message, status=status, request_id=request_id)

    server_text = _server_message(details, secrets)
    if code == "SecurityTokenExpired" or (
        code in ("InvalidSecurityToken", "InvalidAccessKeyId", "AccessDenied")
        and "expire" in server_text.lower()
    ):
        return make(ErrorKind.CREDENTIALS_EXPIRED, _EXPIRED_MESSAGE)
    key_hint, secret_hint, token_hint = _credential_hints(source)
    if code == "InvalidSecurityToken" or (
            code == "InvalidAccessKeyId" and "security token" in server_text.lower()):
        return make(_P, "OSS rejected the security token (STS): it is wrong, missing, or "
                        f"given where none is expected. {token_hint}")
    if code == "InvalidAccessKeyId":
        return make(_P, "OSS does not know this AccessKey ID (or the key is disabled). "
                        f"{key_hint}")
    if code == "SignatureDoesNotMatch":
        return make(_P, "The AccessKey secret does not match the AccessKey ID (the request "
                        f"signature was rejected). {secret_hint}; for signature V4 also check "
                        "the region.")
    if code == "InvalidArgument" and "signing region" in server_text.lower():
        return make(_P, "The request was signed for another region than the bucket's (OSS "
                        f"says: {server_text}). Check the region (--region, or the account's "
                        "region); the endpoint's name usually holds it, e.g. "
                        "oss-cn-hangzhou -> cn-hangzhou.")
    if code == "NoSuchUpload":
        return make(
            ErrorKind.NO_SUCH_UPLOAD,
            "OSS no longer knows this multipart upload (it was aborted, completed or expired).",
        )
    if code == "NoSuchKey" or (status == 404 and not code):
        return make(ErrorKind.NOT_FOUND, "The object does not exist.", code or "NoSuchKey")
    if code == "AccessDenied" and details.get("Endpoint"):
        endpoint = _scrub(str(details.get("Endpoint")), secrets)[:200]
        return make(
            _P,
            f"This bucket must be reached through the endpoint {endpoint}. Change the "
            "profile's endpoint (and region) to that one.",
        )
    if code in _CODE_MESSAGES:
        kind, message = _CODE_MESSAGES[code]
        if kind is _P and code in ("InvalidArgument", "EntityTooLarge") and server_text:
            message = f"{message} OSS says: {server_text}"
        return make(kind, message)
    if code.startswith("Throttl") or status in (429, 408) or status >= 500:
        return make(
            _R,
            f"OSS could not handle the request right now (HTTP {status}).",
            code or f"HTTP{status}",
        )
    if status == 403 and not code:
        return make(_P, _CODE_MESSAGES["AccessDenied"][1], "AccessDenied")
    message = "OSS refused the request"
    message += f": {server_text}" if server_text else f" (HTTP {status})."
    return make(_P, message, code or f"HTTP{status}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every exception it wraps (causes, contexts, urllib3 reasons)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend(arg for arg in item.args if isinstance(arg, BaseException))
        for attr in ("reason", "exception", "__cause__", "__context__"):
            value = getattr(item, attr, None)
            if isinstance(value, BaseException):
                todo.append(value)


_PROXY_HINT = "Check HTTPS_PROXY / HTTP_PROXY / NO_PROXY."
_PROXY_407 = (
    "The proxy {proxy} refused the request: it wants a user name and password, or refused "
    "the ones given. Put them in the proxy address (http://USER:PASSWORD@HOST:PORT in "
    "HTTPS_PROXY / HTTP_PROXY).")


def _trust_hint(trust: str | None) -> str:
    """Where the certificate authority that vouches for a server must be."""
    if trust == "bundle":
        return ("if your network inspects HTTPS traffic, its certificate authority must be in "
                "the file REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names.")
    if trust == "certifi":
        return ("if your network inspects HTTPS traffic, name a file with its certificate "
                "authority in REQUESTS_CA_BUNDLE (this system's certificate store could not "
                "be used).")
    return ("if your network inspects HTTPS traffic, its certificate authority must be "
            "installed on this computer.")


def _classify_transport(exc: BaseException, where: str, trust: str | None = None,
                        proxy: str | None = None) -> OssError:
    chain = list(_chain(exc))
    texts = " ".join(str(e) for e in chain if isinstance(e, ssl.SSLError))

    def any_of(*types: type[BaseException]) -> bool:
        return any(isinstance(e, types) for e in chain)

    for item in chain:
        if isinstance(item, transport.BadTarget):
            return OssError(_P, "InvalidRequest",
                            f"The request to {where} could not be made: {item}.")
    if any_of(urllib3.exceptions.ProxySchemeUnknown):
        return OssError(
            _P, "ProxyNotSupported",
            "The proxy address is not an http:// or https:// proxy (the only kinds ossdesk "
            f"uses). {_PROXY_HINT}")
    if proxy and any_of(urllib3.exceptions.ProxyError):
        if re.search(r"\b40[17]\b", " ".join(str(e) for e in chain)):
            return OssError(_P, "ProxyAuthenticationRequired", _PROXY_407.format(proxy=proxy))
        detail = next((e.strerror for e in chain if isinstance(e, OSError) and e.strerror),
                      None)
        reason = f"the proxy {proxy} could not carry the request" + (
            f" ({detail})" if detail else "")
        return OssError(
            _R, "ProxyFailed",
            f"The proxy {proxy} could not carry the request to {where}"
            + (f" ({detail})" if detail else "") + f". {_PROXY_HINT}",
            reason=reason)
    if any_of(ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in texts:
        return OssError(
            _P,
            "CertificateNotTrusted",
            f"The HTTPS certificate of {where} is not trusted, so nothing was sent. Check the "
            f"endpoint address; {_trust_hint(trust)}",
        )
    if "WRONG_VERSION_NUMBER" in texts or "wrong version number" in texts:
        return OssError(
            _P,
            "NotHttps",
            f"{where} does not answer HTTPS. Check the endpoint address (https:// or http://, "
            "and the port).",
        )
    if any_of(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return OssError(
            _R,
            "NameResolutionFailed",
            f"The address of {where} could not be looked up. Check the endpoint and the "
            "network connection.",
            reason=f"cannot look up the address of {where}",
        )
    if any(isinstance(e, http.client.BadStatusLine | http.client.LineTooLong)
           and not isinstance(e, http.client.RemoteDisconnected) for e in chain):
        return OssError(
            _P,
            "NotOss",
            f"{where} does not speak OSS (its answer is not HTTP). Check the endpoint address "
            "and port.",
            reason=f"{where} does not speak OSS (its answer is not HTTP)",
        )
    for item in chain:
        if isinstance(item, transport.BadAnswer | urllib3.exceptions.InvalidHeader):
            return OssError(
                _P,
                "BadAnswer",
                f"{where} sent an answer that breaks HTTP ({item}). Check the endpoint "
                "address and port; if they are right, tell the server's operator.",
                reason=f"{where} sent an answer that breaks HTTP",
            )
    if any_of(ConnectionRefusedError):
        return OssError(
            _R,
            "ConnectionRefused",
            f"{where} refused the connection (nothing listens there, or a firewall blocks it). "
            "Check the endpoint.",
            reason=f"cannot connect to {where}: connection refused",
        )
    # urllib3's NewConnectionError (refused, unreachable) is a ConnectTimeoutError too.
    if any(isinstance(e, urllib3.exceptions.ConnectTimeoutError)
           and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return OssError(
            _R,
            "ConnectTimeout",
            f"Connecting to {where} timed out. Check the network connection.",
            reason=f"cannot connect to {where}: no answer in time",
        )
    for item in chain:
        if isinstance(item, urllib3.exceptions.NewConnectionError):
            reason = next((e.strerror for e in chain if isinstance(e, OSError) and e.strerror),
                          None) or "the connection failed"
            return OssError(
                _R,
                "ConnectFailed",
                f"Could not connect to {where} ({reason}). Check the network connection.",
                reason=f"cannot connect to {where}: {reason}",
            )
    if any_of(urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout):
        return OssError(
            _R, "Timeout", f"{where} did not answer in time.",
            reason=f"{where} did not answer in time",
        )
    if any_of(
        ConnectionError,
        http.client.HTTPException,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.IncompleteRead,
        ssl.SSLError,
    ):
        return OssError(
            _R,
            "ConnectionLost",
            f"The connection to {where} was lost.",
            reason=f"the connection to {where} was lost",
        )
    if any_of(urllib3.exceptions.LocationValueError):
        return OssError(
            _P, "InvalidRequest", f"The request to {where} could not be made: check the endpoint."
        )
    if any_of(urllib3.exceptions.HTTPError):
        return OssError(
            _R,
            "NetworkError",
            f"A network error occurred talking to {where}.",
            reason=f"network error talking to {where}",
        )
    for item in chain:
        if isinstance(item, OSError):
            reason = item.strerror or type(item).__name__
            name = f" ({item.filename})" if item.filename else ""
            return OssError(
                _P, "LocalError", f"A local error stopped the transfer: {reason}{name}."
            )
    return OssError(
        _P,
        "UnexpectedError",
        f"An unexpected error stopped the request ({type(exc).__name__}). Please report it.",
    )


def classify(
    exc: BaseException, *, endpoint: str | None = None, secrets: Iterable[str] = (),
    source: str | None = None, trust: str | None = None, proxy: str | None = None,
) -> OssError:
    """Turn any exception from an OSS request into an :class:`OssError`.

    ``endpoint`` names the server in network messages; any of ``secrets`` found in text
    taken from a server response is masked. ``trust`` (what the TLS context trusts:
    ``"system"``, ``"bundle"`` or ``"certifi"``) and ``proxy`` (the proxy's address without
    its password) make the certificate and proxy messages say where to look.
    """
    if isinstance(exc, OssError):
        return exc
    secrets = tuple(s for s in secrets if s)
    where = endpoint or "the OSS endpoint"
    if isinstance(exc, oss2.exceptions.RequestError):
        return _classify_transport(exc.exception, where, trust, proxy)
    if isinstance(exc, oss2.exceptions.ClientError):
        body = str(exc.body or "").removeprefix("ClientError: ")
        return OssError(
            _P, "InvalidRequest", f"The request is not valid: {_scrub(body, secrets)[:300]}"
        )
    if isinstance(exc, oss2.exceptions.InconsistentError):
        return OssError(
            _R,
            "InconsistentData",
            "Data arrived damaged (checksum mismatch).",
            request_id=str(exc.request_id or "") or None,
        )
    if isinstance(exc, oss2.exceptions.OssError) and int(exc.status) in (401, 407) and proxy:
        # OSS refuses with 403; a 401 or 407 is the proxy's (tinyproxy answers a wrong
        # password with 401).
        return OssError(_P, "ProxyAuthenticationRequired", _PROXY_407.format(proxy=proxy),
                        status=int(exc.status))
    if isinstance(exc, oss2.exceptions.OssError) and int(exc.status) > 0:
        return _classify_server(exc, secrets, source)
    if isinstance(exc, oss2.exceptions.OssError):
        return OssError(_P, "ClientError", "The request could not be made.")
    return _classify_transport(exc, where, trust, proxy)
