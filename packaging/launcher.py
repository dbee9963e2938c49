"""Entry point of the frozen ossdesk app (the PyInstaller spec's script).

Same as the ``ossdesk`` console script, with two fixes for how desktops start apps:

- a windowed Windows executable (``ossdeskw.exe``) has no console, so ``sys.stdout`` /
  ``sys.stderr`` are None there: give them a sink so that ``print`` and argparse's messages
  do not crash the app started from a shortcut;
- macOS may pass a process serial number (``-psn_0_12345``) to an app started from the
  Finder: it is not an option of ours, drop it.
"""

from __future__ import annotations

import os
import sys


def _ensure_streams() -> None:
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


def _drop_process_serial_number() -> None:
    if sys.platform == "darwin":
        sys.argv[1:] = [arg for arg in sys.argv[1:] if not arg.startswith("-psn_")]


if __name__ == "__main__":
    _ensure_streams()
    _drop_process_serial_number()
    from ossdesk.cli import main

    sys.exit(main())
