"""GUI tests run offscreen; every test here is marked ``gui``."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from ossdesk.ui.i18n import Translations

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.gui)
            # The offscreen platform cannot pass size hints to a window manager it lacks,
            # nor raise a window that is brought forward.
            item.add_marker(
                pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints",
                                          r"This plugin does not support raise\(\)")
            )


@pytest.fixture(autouse=True)
def english(qapp):
    """The window as an English user sees it (plural forms come from ossdesk_en.qm)."""
    translations = Translations()
    assert translations.install(qapp, "en")
    yield translations
    translations.install(qapp, "en")
    for translator in translations._installed:
        qapp.removeTranslator(translator)


@pytest.fixture(autouse=True)
def thawed_collector():
    """The window freezes what is alive (ossdesk.ui.collector): let the collector see one
    test's leftovers again before the next test."""
    yield
    gc.unfreeze()
