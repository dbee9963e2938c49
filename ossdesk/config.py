"""Where ossdesk keeps its files, and its settings.

Every path comes from here. ``OSSDESK_HOME`` (an environment variable) moves all of them
under one folder, which is what tests, portable installs and side-by-side profiles use.
Secrets are never written by this module: see :mod:`ossdesk.credentials`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from ossdesk import APP_AUTHOR, APP_NAME

HOME_ENV = "OSSDESK_HOME"


@dataclass(frozen=True)
class Paths:
    """The folders ossdesk writes to. Nothing is created until :meth:`ensure` is called."""

    data_dir: Path
    config_dir: Path
    log_dir: Path
    cache_dir: Path

    @property
    def database(self) -> Path:
        """The SQLite checkpoint and queue store."""
        return self.data_dir / "ossdesk.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def sandbox_root(self) -> Path:
        """Default storage of ``ossdesk sandbox``."""
        return self.data_dir / "sandbox"

    def ensure(self) -> Paths:
        for folder in (self.data_dir, self.config_dir, self.log_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def paths() -> Paths:
    """The current paths; reads ``OSSDESK_HOME`` on every call so tests can redirect it."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(
            data_dir=root / "data",
            config_dir=root / "config",
            log_dir=root / "logs",
            cache_dir=root / "cache",
        )
    return Paths(
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)),
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)),
    )


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON object file; a missing file is an empty object.

    A file that is not valid JSON is set aside (renamed to ``*.corrupt-N``) so the user's
    next save does not silently overwrite the evidence, and an empty object is returned.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        set_aside(path)
        return {}
    return value if isinstance(value, dict) else {}


def save_json(path: Path, value: dict[str, Any]) -> None:
    """Write a JSON object atomically (temp file + replace) so a crash never leaves half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_aside(path: Path) -> Path:
    """Rename a damaged file out of the way (never delete it) and return its new name."""
    n = 1
    while True:
        target = path.with_name(f"{path.name}.corrupt-{n}")
        if not target.exists():
            path.rename(target)
            return target
        n += 1
