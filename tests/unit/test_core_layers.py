"""``ossdesk.core`` is the engine: it imports nothing of the layers above it.

The window, the command line and the keyring-backed profiles drive the engine; the engine
must load (and run, e.g. in the window's engine process or in another program) without
them. Checked in a fresh interpreter, so modules other tests already imported do not hide
an import.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import ossdesk.core

#: Modules (and their submodules) that nothing under ``ossdesk.core`` may load.
FORBIDDEN = ("PySide6", "ossdesk.ui", "ossdesk.credentials", "ossdesk.commands", "keyring")

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def core_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(ossdesk.core.__path__,
                                                              "ossdesk.core."))


def loaded_by(modules: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True,
                          text=True, timeout=120, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def forbidden(loaded: list[str]) -> list[str]:
    return [m for m in loaded
            if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_the_probe_sees_a_forbidden_import() -> None:
    assert "ossdesk.credentials" in forbidden(loaded_by(["ossdesk.credentials"]))
    assert "keyring" in forbidden(loaded_by(["ossdesk.credentials"]))


def test_core_imports_nothing_above_it() -> None:
    modules = core_modules()
    assert "ossdesk.core.scheduler" in modules and "ossdesk.core.throttle" in modules
    assert forbidden(loaded_by(modules)) == []
