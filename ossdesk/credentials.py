"""Connection profiles, and where their secrets live.

A profile (endpoint, bucket, region, prefix, signature version, AccessKey ID) is stored in
``profiles.json`` in the config folder. Its AccessKey secret and STS security token are
never written to any file: they go to the operating system's keyring (Windows Credential
Manager, macOS Keychain, the Secret Service on Linux) under the service ``"ossdesk"``, or,
on a machine with no usable keyring, they are kept in memory for this session only.

Environment variables (``OSS_ACCESS_KEY_ID``, ``OSS_ACCESS_KEY_SECRET``,
``OSS_SESSION_TOKEN``) are the other source of credentials, for scripts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import keyring
import keyring.errors

from ossdesk.config import load_json, paths, save_json
from ossdesk.core.oss import Credentials, Endpoint
from ossdesk.core.store import ENVIRONMENT
from ossdesk.core.upload import UploadError

__all__ = [
    "SERVICE",
    "KeyringUnavailable",
    "Profile",
    "ProfileNotFound",
    "ProfileStore",
    "SecretMissing",
    "credentials_from_env",
    "default_credentials",
    "keyring_available",
]

log = logging.getLogger(__name__)

SERVICE = "ossdesk"
"""The keyring service name under which secrets are stored."""

_FILE_VERSION = 1
_SECRET = "secret"  # noqa: S105 - the name of a keyring entry
_TOKEN = "token"  # noqa: S105 - the name of a keyring entry

# Secrets given with session_only=True: (service, profile, kind) -> value. Process-wide, so
# every ProfileStore of this process sees them; gone when the process ends.
_session: dict[tuple[str, str, str], str] = {}
_session_lock = threading.Lock()


class KeyringUnavailable(Exception):
    """No usable keyring backend: secrets cannot be stored safely on this machine."""

    def __init__(self, detail: str = "") -> None:
        message = (
            "No system keyring is available to store the secret safely"
            + (f" ({detail})" if detail else "")
            + ". On Linux, install and unlock a Secret Service keyring (GNOME Keyring or "
            "KWallet) in your desktop session; or keep the secret for this session only; or "
            "set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET in the environment."
        )
        super().__init__(message)


class SecretMissing(LookupError):
    """A profile has no stored secret (or no AccessKey ID)."""


class ProfileNotFound(LookupError):
    """No profile has this name."""


@dataclass
class Profile:
    """Where to upload and as whom; the secret is not part of it."""

    name: str
    endpoint: str
    bucket: str
    region: str | None = None
    prefix: str = ""
    signature: Literal["v4", "v1"] = "v4"
    access_key_id: str = ""

    def to_endpoint(self) -> Endpoint:
        return Endpoint(self.endpoint, self.bucket, self.region or None, self.signature)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        signature = data.get("signature", "v4")
        if signature not in ("v4", "v1"):
            raise ValueError(f"unknown signature version {signature!r}")
        region = data.get("region")
        return cls(
            name=str(data["name"]),
            endpoint=str(data["endpoint"]),
            bucket=str(data["bucket"]),
            region=str(region) if region else None,
            prefix=str(data.get("prefix", "")),
            signature=signature,
            access_key_id=str(data.get("access_key_id", "")),
        )


def _usable_backend() -> tuple[Any | None, str]:
    """The keyring backend if it is a real one that answers, else ``(None, why)``."""
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a broken keyring installation is "unavailable"
        return None, f"the keyring could not be loaded: {type(exc).__name__}"
    module = type(backend).__module__
    name = type(backend).__name__
    if module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null"):
        return None, "no keyring backend was found"
    if module.startswith("keyrings.alt") or "plaintext" in name.lower():
        return None, f"the only keyring found ({name}) stores secrets in a plain file"
    if module.startswith("keyring.backends.chainer") and not getattr(backend, "backends", []):
        return None, "no keyring backend was found"
    try:
        backend.get_password(SERVICE, "availability-check")
    except Exception as exc:  # noqa: BLE001 - locked, no D-Bus session, access refused...
        return None, f"the keyring does not answer: {type(exc).__name__}"
    return backend, ""


def keyring_available() -> bool:
    """True when a real keyring backend (not the fail or a plain-file one) answers."""
    return _usable_backend()[0] is not None


def credentials_from_env() -> Credentials | None:
    """Credentials from OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET (/ OSS_SESSION_TOKEN)."""
    key_id = os.environ.get("OSS_ACCESS_KEY_ID", "").strip()
    secret = os.environ.get("OSS_ACCESS_KEY_SECRET", "").strip()
    if not key_id or not secret:
        return None
    token = os.environ.get("OSS_SESSION_TOKEN", "").strip() or None
    return Credentials(key_id, secret, token)


class ProfileStore:
    """The saved profiles (``profiles.json``) and their secrets (keyring or session)."""

    def __init__(self, path: Path | None = None, *, service: str = SERVICE) -> None:
        self.path = path if path is not None else paths().config_dir / "profiles.json"
        self.service = service
        self._lock = threading.RLock()

    # -- the file

    def _load(self) -> dict[str, Profile]:
        data = load_json(self.path)
        raw = data.get("profiles", {})
        profiles: dict[str, Profile] = {}
        if not isinstance(raw, dict):
            return profiles
        for name, entry in raw.items():
            if not isinstance(entry, dict):
                continue
            try:
                profile = Profile.from_json({**entry, "name": name})
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("ignoring the unreadable profile %r in %s: %s", name, self.path, exc)
                continue
            profiles[name] = profile
        return profiles

    def _write(self, profiles: dict[str, Profile]) -> None:
        entries = {}
        for name, profile in profiles.items():
            entry = profile.to_json()
            del entry["name"]
            entries[name] = entry
        save_json(self.path, {"version": _FILE_VERSION, "profiles": entries})

    def list(self) -> list[Profile]:
        with self._lock:
            return sorted(self._load().values(), key=lambda p: p.name.casefold())

    def get(self, name: str) -> Profile | None:
        with self._lock:
            return self._load().get(name)

    # -- secrets

    def _user(self, name: str, kind: str) -> str:
        return f"{name}/{kind}"

    def _backend(self) -> Any:
        backend, why = _usable_backend()
        if backend is None:
            raise KeyringUnavailable(why)
        return backend

    def _keyring_set(self, name: str, kind: str, value: str | None) -> None:
        backend = self._backend()
        user = self._user(name, kind)
        try:
            if value is None:
                self._keyring_delete(backend, user)
            else:
                backend.set_password(self.service, user, value)
        except Exception as exc:  # noqa: BLE001 - backends raise their own error types
            raise KeyringUnavailable(
                f"writing to the keyring failed: {type(exc).__name__}"
            ) from None

    def _keyring_delete(self, backend: Any, user: str) -> None:
        try:
            if backend.get_password(self.service, user) is not None:
                backend.delete_password(self.service, user)
        except keyring.errors.PasswordDeleteError:
            pass

    def _forget(self, name: str) -> None:
        """Remove every stored secret of ``name`` (session and keyring, when there is one)."""
        with _session_lock:
            for kind in (_SECRET, _TOKEN):
                _session.pop((self.service, name, kind), None)
        backend, _ = _usable_backend()
        if backend is None:
            return
        for kind in (_SECRET, _TOKEN):
            try:
                self._keyring_delete(backend, self._user(name, kind))
            except Exception as exc:  # noqa: BLE001 - backends raise their own error types
                log.warning("could not remove a keyring entry of profile %r: %s", name,
                            type(exc).__name__)

    def _read(self, name: str) -> tuple[str | None, str | None, bool]:
        """``(secret, token, from_session)`` of ``name``; the session wins over the keyring."""
        with _session_lock:
            secret = _session.get((self.service, name, _SECRET))
            token = _session.get((self.service, name, _TOKEN))
        if secret is not None:
            return secret, token, True
        backend = self._backend()
        try:
            secret = backend.get_password(self.service, self._user(name, _SECRET))
            token = backend.get_password(self.service, self._user(name, _TOKEN))
        except Exception as exc:  # noqa: BLE001 - backends raise their own error types
            raise KeyringUnavailable(
                f"reading the keyring failed: {type(exc).__name__}"
            ) from None
        return (
            str(secret) if secret is not None else None,
            str(token) if token is not None else None,
            False,
        )

    def has_secret(self, name: str) -> bool:
        """True when a secret is stored for ``name`` (in the session or the keyring)."""
        try:
            return self._read(name)[0] is not None
        except KeyringUnavailable:
            return False

    # -- changes

    def save(
        self,
        profile: Profile,
        *,
        secret: str | None = None,
        security_token: str | None = None,
        session_only: bool = False,
    ) -> None:
        """Save (add or replace) ``profile``; ``secret``/``security_token`` go to the keyring.

        Without a ``secret`` the stored one is kept, unless the AccessKey ID changed (a
        secret belongs to its key id, so it is then forgotten). A new ``secret`` replaces the
        stored token by ``security_token`` (None: no token). ``session_only`` keeps them in
        memory until the program ends, for a machine with no keyring.
        Raises :class:`KeyringUnavailable` when a secret must be stored and no keyring works.
        """
        name = profile.name.strip()
        if not name:
            raise ValueError("a profile needs a name")
        if profile.signature not in ("v4", "v1"):
            raise ValueError(f"unknown signature version {profile.signature!r}")
        if secret is not None and not secret.strip():
            raise ValueError("the AccessKey secret cannot be empty")
        if security_token is not None and secret is None:
            raise ValueError("a security token is saved together with its AccessKey secret")
        profile.name = name
        with self._lock:
            profiles = self._load()
            old = profiles.get(name)
            if secret is not None:
                token = security_token.strip() if security_token else None
                if session_only:
                    self._forget(name)
                    with _session_lock:
                        _session[(self.service, name, _SECRET)] = secret.strip()
                        if token:
                            _session[(self.service, name, _TOKEN)] = token
                else:
                    self._keyring_set(name, _SECRET, secret.strip())
                    self._keyring_set(name, _TOKEN, token)
                    with _session_lock:
                        _session.pop((self.service, name, _SECRET), None)
                        _session.pop((self.service, name, _TOKEN), None)
            elif old is not None and old.access_key_id != profile.access_key_id:
                self._forget(name)
            profiles[name] = profile
            self._write(profiles)

    def delete(self, name: str) -> None:
        """Remove the profile and its secrets (keyring entries included)."""
        with self._lock:
            profiles = self._load()
            self._forget(name)
            if profiles.pop(name, None) is not None:
                self._write(profiles)

    def rename(self, old: str, new: str) -> None:
        """Give a profile a new name, moving its secrets along."""
        new = new.strip()
        if not new:
            raise ValueError("a profile needs a name")
        with self._lock:
            profiles = self._load()
            if old not in profiles:
                raise ProfileNotFound(f"There is no profile named {old!r}.")
            if new == old:
                return
            if new in profiles:
                raise ValueError(f"A profile named {new!r} exists already.")
            secret: str | None = None
            token: str | None = None
            in_session = False
            with contextlib.suppress(KeyringUnavailable):
                secret, token, in_session = self._read(old)
            profile = profiles.pop(old)
            profile.name = new
            if secret is not None:
                if in_session:
                    with _session_lock:
                        _session[(self.service, new, _SECRET)] = secret
                        if token:
                            _session[(self.service, new, _TOKEN)] = token
                else:
                    self._keyring_set(new, _SECRET, secret)
                    self._keyring_set(new, _TOKEN, token)
            self._forget(old)
            profiles[new] = profile
            self._write(profiles)

    def credentials(self, name: str) -> Credentials:
        """The profile's AccessKey ID with its stored secret (and token)."""
        profile = self.get(name)
        if profile is None:
            raise ProfileNotFound(f"There is no profile named {name!r}.")
        if not profile.access_key_id:
            raise SecretMissing(
                f"The profile {name!r} has no AccessKey ID. Edit the profile and enter one."
            )
        try:
            secret, token, _ = self._read(name)
        except KeyringUnavailable as exc:
            raise KeyringUnavailable(
                f"the secret of profile {name!r} would be in the keyring: {exc}"
            ) from None
        if secret is None:
            raise SecretMissing(
                f"No AccessKey secret is stored for the profile {name!r}. Edit the profile and "
                "enter the secret again."
            )
        return Credentials(profile.access_key_id, secret, token)


def default_credentials(source: str) -> Credentials:
    """Credentials for a row's ``credentials`` field: a profile name or ``environment``."""
    if source == ENVIRONMENT:
        creds = credentials_from_env()
        if creds is None:
            raise UploadError(
                "no credentials: set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (and "
                "OSS_SESSION_TOKEN for STS) in the environment, or use a saved profile",
                code="NoCredentials", kind="credentials")
        return creds
    try:
        return ProfileStore().credentials(source)
    except (LookupError, KeyringUnavailable) as exc:
        raise UploadError(str(exc), code="NoCredentials", kind="credentials") from exc
    except Exception as exc:  # keyring backends raise anything
        raise UploadError(f"cannot get the secret of profile {source!r}: "
                          f"{type(exc).__name__}", code="NoCredentials",
                          kind="credentials") from exc
