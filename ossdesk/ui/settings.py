"""The window's settings, kept as JSON in ``ossdesk.config.paths().settings_file``.

Secrets never go here (see :mod:`ossdesk.credentials`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ossdesk.config import load_json, paths, save_json

LANGUAGES = ("system", "en", "zh_CN")
MIB = 1024 * 1024


@dataclass
class Settings:
    files_at_once: int = 3
    parts_in_flight: int = 8
    part_size_mib: int = 0  # 0 = chosen per file
    bandwidth_limit_kib: int = 0  # KiB/s, 0 = unlimited
    auto_resume: bool = True
    language: str = "system"
    last_profile: str = ""
    last_folder: str = ""
    presign_expiry_seconds: int = 3600
    close_to_tray: bool = False
    reread_limit_gib: int = 0  # files above it are not read again before "done"; 0 = none
    sandbox_port: int = 0  # the window's own sandbox listens here; 0 = not chosen yet

    def normalised(self) -> Settings:
        """Clamp every value to what the engine and OSS accept."""
        return Settings(
            files_at_once=min(max(int(self.files_at_once), 1), 16),
            parts_in_flight=min(max(int(self.parts_in_flight), 1), 64),
            part_size_mib=max(min(int(self.part_size_mib), 5 * 1024), 0),
            bandwidth_limit_kib=max(int(self.bandwidth_limit_kib), 0),
            auto_resume=bool(self.auto_resume),
            language=self.language if self.language in LANGUAGES else "system",
            last_profile=str(self.last_profile),
            last_folder=str(self.last_folder),
            presign_expiry_seconds=min(max(int(self.presign_expiry_seconds), 60), 7 * 86_400),
            close_to_tray=bool(self.close_to_tray),
            reread_limit_gib=max(int(self.reread_limit_gib), 0),
            sandbox_port=min(max(int(self.sandbox_port), 0), 65535),
        )

    @property
    def part_size_bytes(self) -> int | None:
        return self.part_size_mib * MIB if self.part_size_mib > 0 else None

    @property
    def reread_limit_bytes(self) -> int | None:
        """None: every file is read again before it is called verified."""
        return self.reread_limit_gib * 1024 * MIB if self.reread_limit_gib > 0 else None

    @property
    def bandwidth_limit_bytes(self) -> int | None:
        return self.bandwidth_limit_kib * 1024 if self.bandwidth_limit_kib > 0 else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        defaults = cls()
        for name, value in data.items():
            if name not in known:
                continue
            default = getattr(defaults, name)
            if isinstance(default, bool):
                if isinstance(value, bool):
                    values[name] = value
            elif isinstance(default, int):
                if isinstance(value, int) and not isinstance(value, bool):
                    values[name] = value
            elif isinstance(value, str):
                values[name] = value
        return cls(**values).normalised()


_SECTION = "window"


def load_settings() -> Settings:
    data = load_json(paths().settings_file)
    section = data.get(_SECTION)
    return Settings.from_json(section if isinstance(section, dict) else {})


def save_settings(settings: Settings) -> None:
    """Write our section, keeping what other parts of ossdesk keep in the same file."""
    file = paths().settings_file
    data = load_json(file)
    data[_SECTION] = settings.normalised().to_json()
    save_json(file, data)
