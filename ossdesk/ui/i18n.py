"""Languages: English in the source, Simplified Chinese from ``resources/translations``.

The ``.ts`` files are Qt Linguist sources (``pyside6-lupdate`` extracts every ``tr()`` /
``QCoreApplication.translate()`` string); the compiled ``.qm`` files ship next to them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

SUPPORTED = ("en", "zh_CN")


def resources_dir() -> Path:
    """The ``resources`` folder: beside the package in a source tree, or in a frozen app."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def translations_dir() -> Path:
    return resources_dir() / "translations"


def choose_language(setting: str, system_locale: QLocale | None = None) -> str:
    """``"system"`` follows the OS locale (any Chinese locale but zh_TW/zh_HK -> zh_CN)."""
    if setting in SUPPORTED:
        return setting
    locale = system_locale if system_locale is not None else QLocale.system()
    name = locale.name()
    if locale.language() == QLocale.Language.Chinese and name not in ("zh_TW", "zh_HK"):
        return "zh_CN"
    return "en"


class Translations:
    """The translators installed on the application (so they can be swapped)."""

    def __init__(self) -> None:
        self._installed: list[QTranslator] = []
        self.language = "en"

    def install(self, app: QCoreApplication, language: str) -> bool:
        """Install ``language``; True if it loaded. English loads only its plural forms
        ("1 file", "2 files") from ``ossdesk_en.qm``."""
        for translator in self._installed:
            app.removeTranslator(translator)
        self._installed.clear()
        self.language = "en"
        # What Qt formats with the default locale (and the file types its file dialog names)
        # in the window's language too; English keeps the system's own conventions.
        QLocale.setDefault(QLocale(language) if language != "en" else QLocale.system())
        ours = QTranslator(app)
        if not ours.load(f"ossdesk_{language}", str(translations_dir())):
            return language == "en"
        app.installTranslator(ours)
        self._installed.append(ours)
        if language == "en":
            return True
        # Qt's own strings (standard buttons, file dialogs), when Qt ships them.
        qt_base = QTranslator(app)
        qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
        if qt_base.load(f"qtbase_{language}", qt_dir) or qt_base.load(f"qt_{language}", qt_dir):
            app.installTranslator(qt_base)
            self._installed.append(qt_base)
        # Qt's strings that Qt's own catalogue lacks (e.g. the file dialog's "&Look in:").
        supplement = QTranslator(app)
        if supplement.load(f"qt_supplement_{language}", str(translations_dir())):
            app.installTranslator(supplement)
            self._installed.append(supplement)
        self.language = language
        return True
