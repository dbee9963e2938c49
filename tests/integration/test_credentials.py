"""Profiles and secrets against the real OS keyring (the Secret Service on Linux CI).

Run with a keyring: ``dbus-run-session -- bash scripts/with-keyring .venv/bin/pytest
tests/integration/test_credentials.py``. Without one, the keyring tests skip, unless
OSSDESK_REQUIRE_KEYRING=1 (scripts/test sets it), when they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from ossdesk.core.oss import Credentials, Endpoint
from ossdesk.credentials import (
    Profile,
    ProfileNotFound,
    ProfileStore,
    SecretMissing,
    credentials_from_env,
    keyring_available,
)

SECRET = "S3cr3t-" + uuid.uuid4().hex
TOKEN = "T0k3n-" + uuid.uuid4().hex


@pytest.fixture
def service() -> Iterator[str]:
    """A keyring service name of this test only; every entry under it is removed after."""
    if not keyring_available():
        if os.environ.get("OSSDESK_REQUIRE_KEYRING") == "1":
            pytest.fail("no usable keyring backend, and OSSDESK_REQUIRE_KEYRING=1")
        pytest.skip("no usable keyring backend (run inside scripts/with-keyring)")
    name = f"ossdesk-test-{uuid.uuid4().hex[:12]}"
    yield name
    for profile in ("work", "home", "renamed", "other"):
        for kind in ("secret", "token"):
            if keyring.get_password(name, f"{profile}/{kind}") is not None:
                keyring.delete_password(name, f"{profile}/{kind}")


def profile(name: str = "work", key_id: str = "LTAIwork") -> Profile:
    return Profile(name=name, endpoint="https://oss-cn-hangzhou.aliyuncs.com", bucket="my-bucket",
                   prefix="backups/", access_key_id=key_id)


def files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


@pytest.mark.keyring
def test_secret_and_token_go_to_the_keyring_only(service: str, ossdesk_home: Path) -> None:
    store = ProfileStore(service=service)
    store.save(profile(), secret=SECRET, security_token=TOKEN)
    assert store.path == ossdesk_home / "config" / "profiles.json"

    creds = store.credentials("work")
    assert creds == Credentials("LTAIwork", SECRET, TOKEN)
    assert keyring.get_password(service, "work/secret") == SECRET
    assert keyring.get_password(service, "work/token") == TOKEN

    saved = json.loads(store.path.read_text(encoding="utf-8"))
    assert saved["profiles"]["work"]["access_key_id"] == "LTAIwork"
    assert files_containing(ossdesk_home, SECRET) == []
    assert files_containing(ossdesk_home, TOKEN) == []
    for text in (repr(creds), str(creds), repr(store.get("work")), repr(store.list())):
        assert SECRET not in text
        assert TOKEN not in text


@pytest.mark.keyring
def test_profiles_round_trip_and_list(service: str) -> None:
    store = ProfileStore(service=service)
    home = Profile("home", "oss-cn-beijing.aliyuncs.com", "photos", region=None, prefix="p/",
                   signature="v1", access_key_id="LTAIhome")
    store.save(profile())
    store.save(home, secret="home-secret-value")
    assert [p.name for p in ProfileStore(service=service).list()] == ["home", "work"]
    assert store.get("home") == home
    assert store.get("nobody") is None
    endpoint = home.to_endpoint()
    assert endpoint == Endpoint("https://oss-cn-beijing.aliyuncs.com", "photos", None, "v1")
    assert endpoint.effective_region == "cn-beijing"
    with pytest.raises(SecretMissing, match="enter the secret"):
        store.credentials("work")
    with pytest.raises(ProfileNotFound):
        store.credentials("nobody")


@pytest.mark.keyring
def test_saving_without_secret_keeps_it_unless_key_id_changes(service: str) -> None:
    store = ProfileStore(service=service)
    store.save(profile(), secret=SECRET, security_token=TOKEN)
    edited = profile()
    edited.prefix = "other/"
    store.save(edited)
    assert store.credentials("work") == Credentials("LTAIwork", SECRET, TOKEN)
    # A new secret without a token: a long-term key, the old token goes.
    store.save(profile(), secret="second-secret")
    assert store.credentials("work") == Credentials("LTAIwork", "second-secret", None)
    assert keyring.get_password(service, "work/token") is None
    # Another key id: the stored secret belonged to the old one.
    store.save(profile(key_id="LTAIother"))
    assert keyring.get_password(service, "work/secret") is None
    with pytest.raises(SecretMissing):
        store.credentials("work")


@pytest.mark.keyring
def test_delete_removes_keyring_entries(service: str) -> None:
    store = ProfileStore(service=service)
    store.save(profile(), secret=SECRET, security_token=TOKEN)
    store.save(profile("other"), secret="other-secret")
    store.delete("work")
    assert store.get("work") is None
    assert keyring.get_password(service, "work/secret") is None
    assert keyring.get_password(service, "work/token") is None
    assert store.credentials("other").access_key_secret == "other-secret"
    store.delete("work")  # deleting twice is harmless


@pytest.mark.keyring
def test_rename_moves_secrets(service: str) -> None:
    store = ProfileStore(service=service)
    store.save(profile(), secret=SECRET, security_token=TOKEN)
    store.save(profile("other"))
    with pytest.raises(ValueError, match="exists"):
        store.rename("work", "other")
    store.rename("work", "renamed")
    assert store.get("work") is None
    assert store.credentials("renamed") == Credentials("LTAIwork", SECRET, TOKEN)
    assert keyring.get_password(service, "work/secret") is None
    with pytest.raises(ProfileNotFound):
        store.rename("work", "x")


@pytest.mark.keyring
def test_session_only_secret_stays_in_memory(service: str, ossdesk_home: Path) -> None:
    store = ProfileStore(service=service)
    store.save(profile(), secret=SECRET, security_token=TOKEN, session_only=True)
    assert keyring.get_password(service, "work/secret") is None
    assert ProfileStore(service=service).credentials("work") == Credentials(
        "LTAIwork", SECRET, TOKEN
    )
    assert files_containing(ossdesk_home, SECRET) == []
    store.delete("work")
    store.save(profile())
    with pytest.raises(SecretMissing):
        store.credentials("work")


@pytest.mark.keyring
def test_bad_input(service: str) -> None:
    store = ProfileStore(service=service)
    with pytest.raises(ValueError):
        store.save(profile(name="  "))
    with pytest.raises(ValueError):
        store.save(profile(), secret="   ")
    with pytest.raises(ValueError):
        store.save(profile(), security_token=TOKEN)
    nokey = profile(key_id="")
    store.save(nokey)
    with pytest.raises(SecretMissing, match="AccessKey ID"):
        store.credentials("work")


def test_corrupt_or_odd_profiles_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text("{not json", encoding="utf-8")
    store = ProfileStore(path)
    assert store.list() == []
    assert (tmp_path / "profiles.json.corrupt-1").exists()  # set aside, not lost
    path.write_text(json.dumps({"version": 1, "profiles": {
        "good": {"endpoint": "https://e", "bucket": "b1b"},
        "bad-signature": {"endpoint": "https://e", "bucket": "b1b", "signature": "v9"},
        "no-bucket": {"endpoint": "https://e"},
        "not-a-dict": 5,
    }}), encoding="utf-8")
    assert [p.name for p in store.list()] == ["good"]


def test_no_keyring_backend_in_a_child_process(tmp_path: Path) -> None:
    """With no usable backend (keyring's own fail backend, as on a Linux box without a
    Secret Service) storing a secret is refused with a clear message, and a session-only
    secret still works. The backend is forced so this also holds on macOS/Windows runners."""
    script = """
import sys
from ossdesk.credentials import *
assert not keyring_available()
store = ProfileStore()
p = Profile("work", "https://oss-cn-hangzhou.aliyuncs.com", "my-bucket", access_key_id="AK")
try:
    store.save(p, secret="child-secret")
except KeyringUnavailable as exc:
    print("REFUSED:", exc)
else:
    sys.exit("stored without a keyring")
assert store.get("work") is None
store.save(p, secret="child-secret", session_only=True)
assert store.credentials("work").access_key_secret == "child-secret"
print("SESSION OK")
"""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBUS_", "GNOME_KEYRING", "XDG_RUNTIME_DIR"))}
    env["OSSDESK_HOME"] = str(tmp_path / "home")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "REFUSED: No system keyring is available" in result.stdout
    assert "OSS_ACCESS_KEY_ID" in result.stdout  # says what to do
    assert "SESSION OK" in result.stdout
    assert files_containing(tmp_path / "home", "child-secret") == []


def test_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert credentials_from_env() is None
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "LTAIenv")
    assert credentials_from_env() is None  # a key id alone is not credentials
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "env-secret")
    assert credentials_from_env() == Credentials("LTAIenv", "env-secret", None)
    monkeypatch.setenv("OSS_SESSION_TOKEN", "env-token")
    creds = credentials_from_env()
    assert creds == Credentials("LTAIenv", "env-secret", "env-token")
    assert "env-secret" not in repr(creds)
    assert "env-token" not in repr(creds)
