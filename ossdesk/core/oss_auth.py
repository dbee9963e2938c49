"""How :class:`~ossdesk.core.oss.OssClient` signs its requests: an ``oss2`` credentials
provider that reads the caller's credentials (fixed, or a callable) for every request, and
oss2's signature V4 keeping its signing key between requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import oss2
import oss2.credentials

from ossdesk.core.errors import ErrorKind, OssError
from ossdesk.core.oss_values import Credentials

_P = ErrorKind.PERMANENT


class _Provider:
    """An ``oss2`` credentials provider reading our current credentials on every request."""

    def __init__(self, source: Credentials | Callable[[], Credentials]) -> None:
        self.source = source
        self.last: Credentials | None = source if isinstance(source, Credentials) else None

    def current(self) -> Credentials:
        source = self.source
        if isinstance(source, Credentials):
            creds = source
        else:
            try:
                creds = source()
            except OssError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the callable raised
                raise OssError(
                    _P,
                    "CredentialsUnavailable",
                    f"The credentials could not be read ({type(exc).__name__}). Check the "
                    "profile's secret.",
                ) from None
            if not isinstance(creds, Credentials):
                raise TypeError("the credentials callable must return Credentials")
        self.last = creds
        return creds

    def get_credentials(self) -> oss2.credentials.Credentials:
        creds = self.current()
        return oss2.credentials.Credentials(
            creds.access_key_id, creds.access_key_secret, creds.security_token or ""
        )


class _AuthV4(oss2.ProviderAuthV4):  # type: ignore[misc]
    """oss2's signature V4, keeping the signing key: oss2 derives it for every request
    (four HMAC-SHA256, from the secret, the date, the region and the product) though it
    changes only with them. The derivation stays oss2's; its result is kept for the few
    combinations in use (a new secret or a new day gets its own)."""

    def __init__(self, provider: Any) -> None:
        super().__init__(provider)
        self._keys: dict[tuple[str, str, str, str], bytes] = {}

    # oss2 calls its private ``__get_signing_key``, which Python names like this.
    def _ProviderAuthV4__get_signing_key(self, req: Any, credentials: Any,
                                         date_time: str) -> bytes:
        which = (credentials.get_access_key_secret(), date_time[:8],
                 str(getattr(req, "cloudbox_id", None) or req.region or ""),
                 str(getattr(req, "product", None)))
        key = self._keys.get(which)
        if key is None:
            key = bytes(super()._ProviderAuthV4__get_signing_key(req, credentials, date_time))
            if len(self._keys) >= 8:
                self._keys.clear()
            self._keys[which] = key
        return key

