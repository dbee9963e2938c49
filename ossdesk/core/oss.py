"""The one module that talks to OSS (through ``oss2``): the client. Beside it, and
re-exported here: what its errors say (:mod:`ossdesk.core.errors`: ``OssError``,
``ErrorKind``, ``classify``), the values it takes and gives
(:mod:`ossdesk.core.oss_values`), its request bodies (:mod:`ossdesk.core.oss_body`) and
how it signs its requests (:mod:`ossdesk.core.oss_auth`).

Everything else in ossdesk sees plain dataclasses and :class:`OssError`, never an ``oss2``
or ``urllib3`` type. Choices made here, and why:

- ``oss2``'s own CRC check is off (``enable_crc=False``): the engine computes CRC-64 itself
  with ``anycrc`` (25x faster) and compares it with ``x-oss-hash-crc64ecma``.
- One HTTP stack: :mod:`ossdesk.core.transport` (urllib3, the system's trust store through
  truststore, proxies from the environment) carries every request oss2 builds.
- No silent retries: the transport sends nothing twice (but an idempotent request whose
  kept-alive connection the server had closed), and pages are fetched one request at a
  time, so the engine's backoff is the only retry loop and sees every failure.
- Request bodies are streamed with a ``Content-Length`` (never chunked, never read whole
  into memory); an exception raised by the body's ``read()`` comes out unchanged.
- Signature V4 by default (it needs the region), V1 selectable; STS tokens and refreshed
  credentials are re-read for every request.
- HTTPS certificates are always verified; plain HTTP is refused except for loopback unless
  the caller explicitly allows it.
- Error messages are built (in ``errors.py``) from the error code, HTTP status and request
  id, so a secret or token can never travel inside one; ``oss2``'s own logging (which prints request
  headers) is kept at WARNING.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import oss2
import oss2.exceptions
import oss2.models

from ossdesk import __version__
from ossdesk.core import transport
from ossdesk.core.errors import ErrorKind, OssError, classify
from ossdesk.core.oss_auth import _AuthV4, _Provider
from ossdesk.core.oss_body import Body, BodyTooShort, Readable, _Body
from ossdesk.core.oss_values import (
    Credentials,
    Endpoint,
    ObjectInfo,
    PutResult,
    RemotePart,
    RemoteUpload,
    Timeouts,
)
from ossdesk.core.oss_values import region_from_host as region_from_host  # noqa: PLC0414

__all__ = [
    "Body",
    "BodyTooShort",
    "Credentials",
    "Endpoint",
    "ErrorKind",
    "ObjectInfo",
    "OssClient",
    "OssError",
    "PutResult",
    "Readable",
    "RemotePart",
    "RemoteUpload",
    "Timeouts",
    "classify",
]

# oss2 logs full request headers (Authorization, security token) at DEBUG and error details
# (which can echo the string that was signed) at INFO: keep both out of every log.
logging.getLogger("oss2").setLevel(logging.WARNING)

_LIST_PAGE = 1000

_P = ErrorKind.PERMANENT


# --- the client ------------------------------------------------------------------------------


def _strip_etag(value: str | None) -> str:
    return (value or "").strip().strip('"')


def _crc_header(headers: Mapping[str, str]) -> int | None:
    value = headers.get("x-oss-hash-crc64ecma")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class OssClient:
    """One bucket at one endpoint. Thread-safe; share one client across transfers.

    Every method raises :class:`OssError` (never an ``oss2`` or ``urllib3`` exception),
    except that an exception raised by a request body's ``read()`` is re-raised unchanged.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials | Callable[[], Credentials],
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        timeouts: Timeouts | None = None,
        pool_size: int = 16,
        allow_insecure_http: bool = False,
        path_style: bool = False,
        source: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        #: Where the credentials come from ("environment" or a profile name), for messages.
        self.source = source
        where = endpoint.url
        if endpoint.scheme not in ("http", "https") or not endpoint.host:
            raise OssError(
                _P,
                "InvalidEndpoint",
                f"{where!r} is not an endpoint address. Write it like "
                "https://oss-cn-hangzhou.aliyuncs.com.",
            )
        if endpoint.scheme == "http" and not endpoint.is_loopback and not allow_insecure_http:
            raise OssError(
                _P,
                "InsecureEndpoint",
                f"{where} uses plain http: the data and the request signatures would travel "
                "unencrypted. Use https://, or confirm that plain http is wanted.",
            )
        if endpoint.signature not in ("v4", "v1"):
            raise OssError(_P, "InvalidSignature", "The signature version must be v4 or v1.")
        region = endpoint.effective_region
        if endpoint.signature == "v4" and not region:
            raise OssError(
                _P,
                "RegionRequired",
                f"Signature V4 needs the bucket's region (like cn-hangzhou), and it cannot be "
                f"read from {where}. Enter the region in the profile, or choose signature V1.",
            )
        #: Set once an answer with data came without ``x-oss-hash-crc64ecma`` (the
        #: oss-emulator, some gateways): from then on the engine sends Content-MD5 and
        #: verifies by MD5 instead, for this endpoint.
        self.crc_missing = False
        self._provider = _Provider(credentials)
        auth: Any = (
            _AuthV4(self._provider)
            if endpoint.signature == "v4"
            else oss2.ProviderAuth(self._provider)
        )
        session = transport.Session(where, pool_size=pool_size)
        if timeouts is not None:  # it sets all of them
            connect_timeout, read_timeout = timeouts.connect, timeouts.idle
        session.answer_for = (timeouts or Timeouts()).answer_for
        self._session = session
        self._where = endpoint.host + (f":{urlsplit(where).port}" if urlsplit(where).port else "")
        try:
            self._bucket = oss2.Bucket(
                auth,
                where,
                endpoint.bucket,
                session=session,
                connect_timeout=(connect_timeout, read_timeout),
                app_name=f"ossdesk/{__version__}",
                enable_crc=False,
                region=region,
                is_path_style=path_style,
            )
        except oss2.exceptions.ClientError:
            raise OssError(
                _P,
                "InvalidBucketName" if endpoint.bucket else "InvalidEndpoint",
                f"The bucket name {endpoint.bucket!r} or the endpoint {where!r} is not valid. "
                "Bucket names are 3 to 63 lowercase letters, digits and hyphens.",
            ) from None

    # -- plumbing

    def close(self) -> None:
        """Close the pooled connections (idempotent). A request after this opens new ones."""
        self._session.close()

    def __enter__(self) -> OssClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_credentials(self, credentials: Credentials) -> None:
        """Use these credentials from the next request on (e.g. a refreshed STS token)."""
        self._provider.source = credentials
        self._provider.last = credentials

    def _secrets(self) -> tuple[str, ...]:
        creds = self._provider.last
        if creds is None:
            return ()
        return tuple(s for s in (creds.access_key_secret, creds.security_token) if s)

    def _error(self, exc: Exception) -> OssError:
        return classify(exc, endpoint=self._where, secrets=self._secrets(), source=self.source,
                        trust=self._session.trust,
                        proxy=transport.proxy_shown(self._session.proxy))

    def _call(self, fn: Callable[[], Any], body: _Body | None = None) -> Any:
        try:
            return fn()
        except OssError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OssError
            if body is not None and body.error is not None:
                raise body.error from None
            raise self._error(exc) from None

    # -- uploads

    def put_object(
        self,
        key: str,
        body: Body,
        *,
        size: int,
        headers: Mapping[str, str] | None = None,
        content_md5: bytes | None = None,
    ) -> PutResult:
        """Store ``size`` bytes of ``body`` as ``key`` in one request. With ``content_md5``
        (the MD5 of the body) the server refuses a body that arrives otherwise."""
        data = _Body(body, size)
        sent = dict(headers or {})
        if content_md5 is not None:
            sent["Content-MD5"] = base64.b64encode(content_md5).decode("ascii")
        result = self._call(lambda: self._bucket.put_object(key, data, headers=sent), data)
        return self._result(result)

    def initiate_multipart(self, key: str, headers: Mapping[str, str] | None = None) -> str:
        """Start a multipart upload; returns its upload id."""
        result = self._call(
            lambda: self._bucket.init_multipart_upload(key, headers=dict(headers or {}))
        )
        return str(result.upload_id)

    def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        body: Body,
        *,
        size: int,
        content_md5: bytes | None = None,
    ) -> PutResult:
        """Send part ``number`` (1..10,000): ``size`` bytes read from ``body`` as they go.
        With ``content_md5`` (the MD5 of the part) the server refuses a damaged body."""
        data = _Body(body, size)
        headers = ({"Content-MD5": base64.b64encode(content_md5).decode("ascii")}
                   if content_md5 is not None else None)
        result = self._call(
            lambda: self._bucket.upload_part(key, upload_id, number, data, headers=headers),
            data)
        return self._result(result)

    def _result(self, result: Any) -> PutResult:
        if result.crc is None:
            self.crc_missing = True
        return PutResult(_strip_etag(result.etag), result.crc)

    def list_parts(self, key: str, upload_id: str) -> list[RemotePart]:
        """Every part OSS holds for this upload (all pages), in part order."""
        parts: list[RemotePart] = []
        marker = ""
        while True:
            page = self._call(
                functools.partial(
                    self._bucket.list_parts, key, upload_id, marker=marker, max_parts=_LIST_PAGE
                )
            )
            parts.extend(
                RemotePart(int(p.part_number), _strip_etag(p.etag), int(p.size or 0))
                for p in page.parts
            )
            if not page.is_truncated or not page.next_marker or page.next_marker == marker:
                return sorted(parts, key=lambda p: p.number)
            marker = str(page.next_marker)

    def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]],
        headers: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Assemble the object from ``(number, etag)`` pairs; ``crc64`` is the whole object's.
        ``headers``: what applies to the object made (``x-oss-object-acl``)."""
        infos = [oss2.models.PartInfo(number, etag) for number, etag in sorted(parts)]
        sent = dict(headers or {})
        result = self._call(
            lambda: self._bucket.complete_multipart_upload(key, upload_id, infos,
                                                           headers=sent or None)
        )
        return self._result(result)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Forget an upload and its parts on the server; an unknown upload id is fine."""
        try:
            self._call(lambda: self._bucket.abort_multipart_upload(key, upload_id))
        except OssError as exc:
            if exc.kind is not ErrorKind.NO_SUCH_UPLOAD:
                raise

    def delete_object(self, key: str) -> None:
        """Remove an object; one that is not there is fine (OSS answers 204 either way)."""
        self._call(lambda: self._bucket.delete_object(key))

    def list_multipart_uploads(self, prefix: str = "", *,
                               page_size: int | None = None) -> list[RemoteUpload]:
        """Every unfinished multipart upload under ``prefix`` (all pages of ``page_size``,
        default 1,000, the most OSS gives)."""
        uploads: list[RemoteUpload] = []
        key_marker = ""
        id_marker = ""
        while True:
            page = self._call(
                functools.partial(
                    self._bucket.list_multipart_uploads,
                    prefix=prefix,
                    key_marker=key_marker,
                    upload_id_marker=id_marker,
                    max_uploads=page_size or _LIST_PAGE,
                )
            )
            uploads.extend(
                RemoteUpload(str(u.key), str(u.upload_id), u.initiation_date)
                for u in page.upload_list
                if u.upload_id
            )
            next_key = str(page.next_key_marker or "")
            next_id = str(page.next_upload_id_marker or "")
            if not page.is_truncated or (next_key, next_id) == (key_marker, id_marker):
                return uploads
            key_marker, id_marker = next_key, next_id

    # -- objects

    def head_object(self, key: str) -> ObjectInfo | None:
        """The object's size, ETag, CRC-64, type, time and metadata; None if it is absent."""
        try:
            result = self._call(lambda: self._bucket.head_object(key))
        except OssError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        headers = result.headers
        metadata = {
            name.lower()[len("x-oss-meta-"):]: value
            for name, value in headers.items()
            if name.lower().startswith("x-oss-meta-")
        }
        return ObjectInfo(
            key=key,
            size=int(result.content_length or 0),
            etag=_strip_etag(result.etag),
            crc64=_crc_header(headers),
            content_type=result.content_type,
            last_modified=result.last_modified,
            metadata=metadata,
        )

    def existing_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` exist as objects. One listing (ListObjectsV2) of the key range
        the keys span under their common prefix, a page per 1,000 keys in that range, so
        a batch of a dropped folder costs a request or two, not one HEAD per file."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        first, last = wanted[0], wanted[-1]
        common = 0  # sorted: what the first and the last share, every key shares
        while common < min(len(first), len(last)) and first[common] == last[common]:
            common += 1
        prefix = first[:common]
        # Keys sort by code point (= UTF-8 byte order, as OSS sorts them): listing starts
        # just before the first key and stops after the last.
        after = first[:-1] if first != prefix else ""
        found: set[str] = set()
        want = set(wanted)
        token = ""
        while True:
            page = self._call(
                functools.partial(
                    self._bucket.list_objects_v2,
                    prefix=prefix,
                    continuation_token=token,
                    start_after="" if token else after,
                    max_keys=_LIST_PAGE,
                )
            )
            beyond = False
            for obj in page.object_list:
                key = str(obj.key)
                if key > last:
                    beyond = True
                    break
                if key in want:
                    found.add(key)
            next_token = str(page.next_continuation_token or "")
            if beyond or not page.is_truncated or not next_token or next_token == token:
                return found
            token = next_token

    def list_objects(self, prefix: str, *, page_size: int | None = None) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` in key order (UTF-8 byte order, as OSS lists),
        streamed: ListObjectsV2 pages of ``page_size`` (default 1,000) are fetched as the
        caller goes, so memory does not grow with the bucket. Size, ETag and time only (a
        listing carries no metadata and no CRC-64)."""
        token = ""
        while True:
            page = self._call(
                functools.partial(
                    self._bucket.list_objects_v2,
                    prefix=prefix,
                    continuation_token=token,
                    max_keys=page_size or _LIST_PAGE,
                )
            )
            for o in page.object_list:
                yield ObjectInfo(
                    key=str(o.key),
                    size=int(o.size or 0),
                    etag=_strip_etag(o.etag),
                    crc64=None,
                    content_type=None,
                    last_modified=o.last_modified,
                    metadata={},
                )
            next_token = str(page.next_continuation_token or "")
            if not page.is_truncated or not next_token or next_token == token:
                return
            token = next_token

    def list_folder(self, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
        """One level under ``prefix`` (ListObjectsV2, delimiter ``/``): sub-folder prefixes
        and objects. The folder's own marker object (key == prefix) is left out."""
        folders: list[str] = []
        objects: list[ObjectInfo] = []
        token = ""
        while True:
            page = self._call(
                functools.partial(
                    self._bucket.list_objects_v2,
                    prefix=prefix,
                    delimiter="/",
                    continuation_token=token,
                    max_keys=_LIST_PAGE,
                )
            )
            folders.extend(str(p) for p in page.prefix_list)
            objects.extend(
                ObjectInfo(
                    key=str(o.key),
                    size=int(o.size or 0),
                    etag=_strip_etag(o.etag),
                    crc64=None,
                    content_type=None,
                    last_modified=o.last_modified,
                    metadata={},
                )
                for o in page.object_list
                if o.key != prefix
            )
            next_token = str(page.next_continuation_token or "")
            if not page.is_truncated or not next_token or next_token == token:
                return folders, objects
            token = next_token

    def get_object_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's content, or the inclusive byte range ``(first, last)`` of it."""
        headers = {"x-oss-range-behavior": "standard"} if byte_range is not None else {}

        def fetch() -> bytes:
            result = self._bucket.get_object(key, byte_range=byte_range, headers=headers)
            return bytes(result.read())

        data: bytes = self._call(fetch)
        return data

    def presign_get(self, key: str, expires: int) -> str:
        """A URL anyone can use to download ``key`` for ``expires`` seconds.

        With STS credentials the URL carries the security token: it is a credential.
        """
        if expires <= 0:
            raise ValueError("expires must be a positive number of seconds")
        url: str = self._call(lambda: self._bucket.sign_url("GET", key, expires))
        return url

    def check_connection(self) -> None:
        """Prove that the endpoint, bucket and credentials work (GetBucketInfo).

        Raises :class:`OssError` with a verdict: unreachable endpoint, unknown key id,
        wrong secret, no such bucket, no permission, clock skew, certificate not trusted.
        Credentials allowed to list the bucket but not to read its info pass, and so does a
        server whose bucket info oss2 cannot parse if it lists the bucket.
        """
        try:
            self._call(self._bucket.get_bucket_info)
        except OssError as exc:
            # An answer oss2 cannot read (a server without StorageClass in its bucket info,
            # such as the oss-emulator) proves as little as AccessDenied: ask for a listing.
            if exc.code not in ("AccessDenied", "UnexpectedError"):
                raise
            try:
                self._call(lambda: self._bucket.list_objects_v2(max_keys=1))
            except OssError as second:
                if second.code != "AccessDenied":
                    raise
                raise OssError(
                    _P,
                    "AccessDenied",
                    "The credentials are valid but may neither read the bucket's information "
                    "nor list it. Uploads work only if the RAM policy allows oss:PutObject; "
                    "ask the bucket's owner.",
                    status=second.status,
                    request_id=second.request_id,
                ) from None
