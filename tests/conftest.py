"""Shared fixtures: every test gets its own OSSDESK_HOME and no ambient OSS credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

_CREDENTIAL_ENV = ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN")


@pytest.fixture(autouse=True)
def ossdesk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Redirect every ossdesk path (database, settings, logs) into the test's tmp folder."""
    home = tmp_path / "ossdesk-home"
    monkeypatch.setenv("OSSDESK_HOME", str(home))
    for name in _CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    return home

from tests.support.sandbox import sandbox, sandbox_factory, sandbox_process  # noqa: E402, F401
