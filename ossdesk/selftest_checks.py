"""The checks of ``ossdesk selftest`` that look at this installation itself: its version,
the CRC-64 module, every module importing, TLS trust, the keyring, change notifications and
Qt (in a child process: the Qt probe, at the end); and what every check takes
(:class:`Context`) and raises (:class:`CheckFailed`).

The command that runs them is :mod:`ossdesk.selftest`; the checks that upload are in
:mod:`ossdesk.selftest_upload`. Nothing here imports Qt or the engine at module level.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ossdesk.core.oss import Credentials, Endpoint

_QT_PROBE_TIMEOUT = 120.0


class CheckFailed(Exception):
    """A check's verdict: the message says what is wrong, for the user."""


@dataclass(frozen=True)
class Remote:
    """A real bucket to check against (``--endpoint``), with the credentials to use."""

    endpoint: Endpoint
    credentials: Credentials
    source: str  # "the environment" or "profile NAME", for messages


@dataclass(frozen=True)
class Context:
    """What the checks share: the temporary folder, the upload's shape, the real bucket."""

    workdir: Path
    parts: int
    part_size: int
    remote: Remote | None = None


def _self_command(*args: str) -> list[str]:
    """The command line that runs this ossdesk again (a frozen app is its own interpreter)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "ossdesk", *args]


# --- the checks ----------------------------------------------------------------------------


def check_version(context: Context) -> str:
    import ossdesk

    version = ossdesk.__version__
    if "unknown" in version:
        raise CheckFailed(f"no package metadata for ossdesk (version {version!r})")
    how = "frozen" if getattr(sys, "frozen", False) else "from Python"
    return (
        f"ossdesk {version}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {how}"
    )


def check_crc64(context: Context) -> str:
    from ossdesk.core.checksum import combine_parts, crc64

    expected = 0x995DC9BBDF1939FA  # CRC-64/XZ of b"123456789", from the CRC catalogue
    got = crc64(b"123456789")
    if got != expected:
        raise CheckFailed(f"CRC-64 of the check string is {got:#x}, expected {expected:#x}")
    if combine_parts([(crc64(b"12345"), 5), (crc64(b"6789"), 4)]) != expected:
        raise CheckFailed("combining part CRCs does not give the whole CRC")
    return "CRC-64/XZ check value and part combination"


# Modules that must not be imported by the check: __main__ runs the command, and the window's
# modules load Qt (they are imported by the Qt probe instead, in its own process).
_NOT_IMPORTED = ("ossdesk.__main__",)
_QT_PACKAGES = ("ossdesk.ui",)


def _ossdesk_modules(*, qt: bool) -> list[str]:
    import ossdesk

    names: list[str] = []
    for info in pkgutil.walk_packages(ossdesk.__path__, prefix="ossdesk.", onerror=_raise):
        name = info.name
        if name in _NOT_IMPORTED or name.endswith(".__main__"):
            continue
        in_qt = any(name == pkg or name.startswith(pkg + ".") for pkg in _QT_PACKAGES)
        if in_qt == qt:
            names.append(name)
    return names


def _raise(name: str) -> None:
    raise CheckFailed(f"cannot list the modules of {name}")


def check_modules(context: Context) -> str:
    names = _ossdesk_modules(qt=False)
    broken: list[str] = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported, with every other broken module
            broken.append(f"{name} ({type(exc).__name__}: {exc})")
    if broken:
        raise CheckFailed("cannot import " + "; ".join(broken))
    if len(names) < 3:
        raise CheckFailed(f"only {len(names)} ossdesk modules found: this installation is partial")
    return f"{len(names)} modules of the engine, sandbox and command line import"


def check_tls(context: Context) -> str:
    """HTTPS to OSS is verified against this system's certificate store (truststore), and
    certifi's CA certificates, the fallback, are there and load."""
    import ssl

    import certifi  # the fallback where truststore cannot load

    try:
        import truststore
    except ImportError as exc:
        raise CheckFailed(f"truststore cannot be imported ({exc}): HTTPS would trust only "
                          "certifi's bundle, not this system's certificates") from None
    truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bundle = Path(certifi.where())
    if not bundle.is_file():
        raise CheckFailed(f"no CA certificates at {bundle}: HTTPS endpoints cannot be verified")
    tls = ssl.create_default_context(cafile=str(bundle))
    count = len(tls.get_ca_certs())
    if count < 50:
        raise CheckFailed(f"only {count} CA certificates in {bundle}")
    where = f"{bundle.parent.name}/{bundle.name}"
    return (f"the system's certificate store (truststore {truststore.__version__}); fallback "
            f"{count} CA certificates load ({where}), {ssl.OPENSSL_VERSION}")


def _native_keyring() -> tuple[str, str, list[str]]:
    """This platform's keyring backend: (module, class, modules it needs)."""
    if sys.platform == "win32":
        return "keyring.backends.Windows", "WinVaultKeyring", []
    if sys.platform == "darwin":
        return "keyring.backends.macOS", "Keyring", ["keyring.backends.macOS.api"]
    return "keyring.backends.SecretService", "Keyring", ["secretstorage", "jeepney"]


def check_keyring(context: Context) -> str:
    from importlib.metadata import entry_points

    import keyring

    registered = sorted(ep.name for ep in entry_points(group="keyring.backends"))
    if not registered:
        raise CheckFailed("keyring's backends are not registered (its package metadata is missing)")
    module_name, class_name, needs = _native_keyring()
    for name in (module_name, *needs):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise CheckFailed(f"cannot import {name}: {exc}") from None
    backend_class = getattr(importlib.import_module(module_name), class_name)
    try:
        priority = backend_class.priority
        usable = f"usable (priority {priority})"
    except Exception as exc:  # noqa: BLE001 - keyring says "not usable here" by raising
        if sys.platform in ("win32", "darwin"):
            # On these platforms the native backend always works unless a part is missing.
            raise CheckFailed(f"{module_name} is not usable: {exc}") from None
        # On Linux it depends on a running Secret Service (a desktop session), not on us.
        usable = f"not reachable here ({exc})"
    chosen = keyring.get_keyring()
    return (
        f"{len(registered)} backends registered; {module_name} {usable}; "
        f"in use: {type(chosen).__module__}.{type(chosen).__qualname__}"
    )


def check_qt(context: Context) -> str:
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # the probe asks for "offscreen" itself
    try:
        proc = subprocess.run(  # noqa: S603 - runs this same program
            _self_command("selftest", "--probe", "qt"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=_QT_PROBE_TIMEOUT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"Qt did not start within {_QT_PROBE_TIMEOUT:.0f} s") from None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        why = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-6:]
        raise CheckFailed(f"Qt probe exited with {proc.returncode}: " + " | ".join(why))
    return lines[-1]


def check_watch(context: Context) -> str:
    """The system's change notifications (watchdog's observer for this platform) arrive."""
    from ossdesk.core.sync import KeyFilter
    from ossdesk.core.watch import FolderWatch, observe

    folder = context.workdir / "watched"
    folder.mkdir()
    watch = FolderWatch(folder, "", KeyFilter(), settle=1.0, rescan=3600.0, clock=time.monotonic)
    observer = observe(watch)
    try:
        (folder / "new.txt").write_bytes(b"watched")
        deadline = time.monotonic() + 10
        while not watch.settling and time.monotonic() < deadline:
            watch.step()
            time.sleep(0.05)
    finally:
        observer.stop()
        observer.join(5)
    name = type(observer).__name__
    if not watch.settling:
        raise CheckFailed(f"{name} reported no change within 10 s; `ossdesk watch` would "
                          "find changes only by its rescans")
    return f"{name} reports changes"


# --- the Qt probe (child process) ----------------------------------------------------------


def _qt_probe() -> int:
    """Start Qt offscreen, paint, build a widget, import the window's modules; print one line."""
    from PySide6.QtCore import qVersion
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication(["ossdesk", "-platform", "offscreen"])
    platform_name = app.platformName()
    if platform_name != "offscreen":
        print(f"Qt started on the {platform_name!r} platform, not 'offscreen'", file=sys.stderr)
        return 1
    image = QImage(96, 24, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    painter.setPen(QColor(0, 0, 0))
    painter.drawText(2, 18, "ossdesk")
    painter.end()
    label = QLabel("ossdesk")
    label.adjustSize()
    style = app.style().name()
    window_modules = _ossdesk_modules(qt=True)
    for name in window_modules:
        importlib.import_module(name)
    try:
        resources = _probe_resources()
    except CheckFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"Qt {qVersion()} on 'offscreen', style {style}, "
        f"{len(window_modules)} window modules import, {resources}",
        flush=True,
    )
    return 0


def _probe_resources() -> str:
    """The window's icons decode (PNG built in, SVG through its plugin); its .qm files load."""
    from PySide6.QtCore import QLibraryInfo, QTranslator
    from PySide6.QtGui import QImage

    try:
        from ossdesk.ui.i18n import resources_dir
    except ImportError:
        return "no window resources in this build"
    root = resources_dir()
    icons = sorted(p for p in (root / "icons").glob("*") if p.suffix in {".png", ".svg", ".ico"})
    if not icons:
        raise CheckFailed(f"no icons in {root / 'icons'}")
    broken = [p.name for p in icons if QImage(str(p)).isNull()]
    if broken:
        raise CheckFailed(f"Qt cannot read the icons {', '.join(broken)}")
    catalogs = sorted((root / "translations").glob("*.qm"))
    unreadable = [p.name for p in catalogs if not QTranslator().load(str(p))]
    if unreadable:
        raise CheckFailed(f"Qt cannot load the translations {', '.join(unreadable)}")
    # Qt's own strings (file dialogs, standard buttons) for every language the app ships.
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    languages = sorted({p.stem.removeprefix("ossdesk_") for p in catalogs
                        if p.stem.startswith("ossdesk_")} - {"en"})
    missing = [lang for lang in languages if not QTranslator().load(f"qtbase_{lang}", qt_dir)]
    if missing:
        raise CheckFailed(f"Qt's own translations are missing for {', '.join(missing)} "
                          f"(qtbase_*.qm in {qt_dir})")
    return (f"{len(icons)} icons and {len(catalogs)} translations load, "
            f"Qt's own for {', '.join(languages) or 'no other language'}")
