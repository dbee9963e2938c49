"""Compile the Windows installer (ossdesk.nsi) with NSIS's makensis.

    python packaging/windows/make_installer.py           # dist/ossdesk -> dist/ossdesk-*-setup.exe
    python packaging/windows/make_installer.py --source DIR --out FILE [--fast]

On Windows, makensis comes from NSIS (preinstalled on GitHub's Windows runners; otherwise
https://nsis.sourceforge.io or `choco install nsis`); on Debian/Ubuntu from the ``nsis``
package, which builds the same installer (used here to check the script on Linux).
The version comes from pyproject.toml. Warnings are errors (-WX).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().with_name("ossdesk.nsi")
REQUIRED = ("ossdesk.exe", "ossdeskw.exe", "_internal")


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        version: str = tomllib.load(fh)["project"]["version"]
    return version


def version_quad(version: str) -> str:
    """``1.2.3rc1`` -> ``1.2.3.0``: Windows version resources hold four numbers."""
    numbers = re.findall(r"\d+", version.split("+", maxsplit=1)[0])[:3]
    return ".".join([*numbers, *["0"] * (4 - len(numbers))])


def find_makensis() -> str:
    found = shutil.which("makensis")
    if found:
        return found
    for base in (os.environ.get("PROGRAMFILES(X86)"), os.environ.get("PROGRAMFILES")):
        if base and (Path(base) / "NSIS" / "makensis.exe").is_file():
            return str(Path(base) / "NSIS" / "makensis.exe")
    raise SystemExit("makensis not found: install NSIS (Debian/Ubuntu: apt-get install nsis)")


def find_icon() -> Path | None:
    for candidate in (
        ROOT / "resources" / "icons" / "ossdesk.ico",
        ROOT / "build" / "pyinstaller" / "ossdesk" / "icons" / "ossdesk.ico",  # made by the spec
    ):
        if candidate.is_file():
            return candidate
    sys.path.insert(0, str(ROOT / "packaging"))
    from icons import write_icons  # the packaging folder is not a package

    written = write_icons(ROOT / "resources" / "icons", ROOT / "build" / "icons")
    return written[0] if written else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "dist" / "ossdesk",
                        help="the PyInstaller folder (default: dist/ossdesk)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the setup program to write "
                             "(default: dist/ossdesk-VERSION-windows-x86_64-setup.exe)")
    parser.add_argument("--makensis", default=None, help="path of makensis")
    parser.add_argument("--max-mb", type=float, default=None,
                        help="fail if the setup program is bigger than this (MB, 10^6 bytes)")
    parser.add_argument("--amd64", action="store_true",
                        help="a 64-bit setup program (to try it under Wine64); releases are x86")
    parser.add_argument("--fast", action="store_true",
                        help="zlib instead of solid LZMA: quicker and bigger, to check the script")
    args = parser.parse_args(argv)

    source = args.source.resolve()
    missing = [name for name in REQUIRED if not (source / name).exists()]
    if missing:
        raise SystemExit(f"{source} is not a Windows build of ossdesk: no {', '.join(missing)}")
    version = project_version()
    out = (args.out or ROOT / "dist" / f"ossdesk-{version}-windows-x86_64-setup.exe").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        args.makensis or find_makensis(),
        "-V2",
        "-WX",
        "-INPUTCHARSET", "UTF8",
        f"-DVERSION={version}",
        f"-DVERSION_QUAD={version_quad(version)}",
        f"-DSOURCE_DIR={source}",
        f"-DOUTFILE={out}",
    ]
    if args.fast:
        command.append("-DFAST_COMPRESSION")
    if args.amd64:
        command.append("-DTARGET_AMD64")
    sign = os.environ.get("OSSDESK_SIGN_COMMAND")  # e.g. signtool sign /fd sha256 ... "%1"
    if sign:
        command.append(f"-DSIGN_COMMAND={sign}")
    icon = find_icon()
    if icon is not None:
        command.append(f"-DICON={icon}")
    command.append(str(SCRIPT))
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)  # noqa: S603 - our own build command
    size_mb = out.stat().st_size / 1e6
    print(f"{out} ({size_mb:.1f} MB)")
    if args.max_mb is not None and size_mb > args.max_mb:
        print(f"the installer is {size_mb:.1f} MB, over the limit of {args.max_mb:g} MB",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
