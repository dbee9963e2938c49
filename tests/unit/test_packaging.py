"""The build helpers in packaging/: icons for Windows and macOS, the installer's version, the
smoke test's stderr rule. (The builds themselves run in packaging/build_linux.sh and CI.)"""

from __future__ import annotations

import importlib.util
import re
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PySide6.QtGui import QImageReader

ROOT = Path(__file__).resolve().parents[2]


def _load(relative: str) -> ModuleType:
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(path.stem, module)
    spec.loader.exec_module(module)
    return module


icons = _load("packaging/icons.py")
make_installer = _load("packaging/windows/make_installer.py")
smoke_test = _load("packaging/smoke_test.py")


def _png(size: int) -> bytes:
    """A PNG header claiming ``size`` x ``size`` pixels (enough for the containers)."""
    ihdr = struct.pack(">II", size, size) + b"\x08\x06\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


def test_ico_lists_each_size_with_its_png() -> None:
    pngs = {size: _png(size) for size in (16, 32, 256, 512)}

    data = icons.ico_bytes(pngs)

    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, 3)  # 512 px does not fit an ICO
    entries = [struct.unpack("<BBBBHHII", data[6 + 16 * i : 22 + 16 * i]) for i in range(count)]
    assert [e[0] for e in entries] == [16, 32, 0]  # 0 means 256
    for entry, size in zip(entries, (16, 32, 256), strict=True):
        length, offset = entry[6], entry[7]
        assert data[offset : offset + length] == pngs[size]


def test_icns_holds_normal_and_retina_types() -> None:
    pngs = {size: _png(size) for size in (16, 32, 64, 128, 256, 512)}

    data = icons.icns_bytes(pngs)

    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    kinds, at = [], 8
    while at < len(data):
        kinds.append(data[at : at + 4].decode())
        at += struct.unpack(">I", data[at + 4 : at + 8])[0]
    assert at == len(data)
    assert {"icp4", "ic07", "ic08", "ic09", "ic11", "ic13", "ic14"} <= set(kinds)
    assert "ic10" not in kinds  # no 1024 px source


def test_the_real_icons_make_containers_qt_can_read(tmp_path: Path, qapp: object) -> None:
    written = icons.write_icons(ROOT / "resources" / "icons", tmp_path)
    if written is None:
        pytest.skip("no PNG icons in resources/icons yet")
    for path in written:
        reader = QImageReader(str(path))
        assert reader.canRead(), path
        assert reader.imageCount() >= 3, path
        assert not reader.read().isNull(), path


def test_no_pngs_no_icons(tmp_path: Path) -> None:
    assert icons.write_icons(tmp_path, tmp_path / "out") is None


@pytest.mark.parametrize(
    ("version", "quad"),
    [
        ("0.1.0", "0.1.0.0"),
        ("1.2", "1.2.0.0"),
        ("2.0.0rc1", "2.0.0.0"),
        ("1.4.2+local.7", "1.4.2.0"),
    ],
)
def test_windows_version_resources_get_four_numbers(version: str, quad: str) -> None:
    assert make_installer.version_quad(version) == quad


def test_installer_version_is_pyproject_version() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert match is not None
    assert make_installer.project_version() == match.group(1)


def test_smoke_test_fails_on_any_stderr_line_not_allowed() -> None:
    allowed = [re.compile(r"^qt\.qpa\.fonts: ")]
    stderr = (
        "qt.qpa.fonts: Populating font family aliases took 120 ms\n"
        "\n"
        "Traceback (most recent call last):\n"
    )

    assert smoke_test.unexpected(stderr, allowed) == ["Traceback (most recent call last):"]
    assert smoke_test.unexpected("", allowed) == []
