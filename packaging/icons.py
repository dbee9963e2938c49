"""Windows .ico and macOS .icns from the PNG icons in resources/icons, in pure Python.

Both formats can hold PNG images as they are (ICO since Windows Vista, ICNS since macOS
10.7), so no image library is needed at build time. The PNGs are found by their real pixel
size (read from the PNG header), not by their file names.

    python packaging/icons.py resources/icons build/icons   # writes ossdesk.ico, ossdesk.icns
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# ICNS element types that hold PNG data: type -> pixel size.
_ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),  # 512@2x
    (b"ic11", 32),  # 16@2x
    (b"ic12", 64),  # 32@2x
    (b"ic13", 256),  # 128@2x
    (b"ic14", 512),  # 256@2x
)
_ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def square_pngs(folder: Path) -> dict[int, bytes]:
    """Every square PNG in ``folder``, by its size in pixels."""
    found: dict[int, bytes] = {}
    for path in sorted(folder.glob("*.png")):
        data = path.read_bytes()
        try:
            width, height = png_size(data)
        except ValueError:
            continue
        if width == height:
            found[width] = data
    return found


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO holding the PNGs of the sizes Windows uses (16..256 px)."""
    images = [(size, pngs[size]) for size in _ICO_SIZES if size in pngs]
    if not images:
        raise ValueError("no PNG of 16..256 px for the .ico")
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries, blobs = b"", b""
    for size, data in images:
        side = 0 if size == 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICNS holding the PNGs for every size and Retina scale that is available."""
    body = b""
    for kind, size in _ICNS_TYPES:
        if size in pngs:
            body += kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
    if not body:
        raise ValueError("no PNG of 16..1024 px for the .icns")
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icons(source: Path, target: Path, name: str = "ossdesk") -> tuple[Path, Path] | None:
    """Write ``name.ico`` and ``name.icns`` into ``target``; None if there is no PNG icon."""
    pngs = square_pngs(source)
    if not pngs:
        return None
    target.mkdir(parents=True, exist_ok=True)
    ico, icns = target / f"{name}.ico", target / f"{name}.icns"
    ico.write_bytes(ico_bytes(pngs))
    icns.write_bytes(icns_bytes(pngs))
    return ico, icns


if __name__ == "__main__":
    written = write_icons(Path(sys.argv[1]), Path(sys.argv[2]))
    if written is None:
        raise SystemExit(f"no square PNG icons in {sys.argv[1]}")
    for path in written:
        print(path)
