"""Open the frozen app's real window on a private X server (Xvfb), look at it, close it.

    python packaging/gui_smoke.py dist/ossdesk/ossdesk --sandbox --screenshot dist/gui-smoke.png

``ossdesk selftest`` checks Qt on the offscreen plugin; this checks what users get on Linux:
the ``xcb`` platform plugin with its bundled X libraries, fonts, the icon and the first
window. It starts ``Xvfb`` on a free display, runs the command with its own ``OSSDESK_HOME``
(so no real data is touched), waits until the window has been up for ``--seconds``, saves a
screenshot (Qt from the Python running this script grabs the screen), then asks the app to
quit (SIGTERM). Exit 1 if the app died early or wrote unexpected lines on stderr; exit 3 if
it ran but no window appeared (the screen stayed one colour).
Linux only; needs ``xvfb`` (Debian package).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NO_WINDOW = 3  # exit code: the app ran quietly but no window appeared

# Lines Qt may print on a bare X server without a desktop session; none is the app's fault.
_BENIGN = [
    r"^QStandardPaths: XDG_RUNTIME_DIR not set",
    r"^qt\.qpa\.xcb: .*(XInput|xkb|XKB)",
    r"^qt\.qpa\.theme\.gnome",
]


# Where every X server on this machine puts its socket and lock (fixed by X11, not ours).
_X_SOCKETS = Path("/tmp/.X11-unix")  # noqa: S108
_X_LOCKS = Path("/tmp")  # noqa: S108


def _free_display() -> int:
    for number in range(90, 140):
        taken = (_X_SOCKETS / f"X{number}").exists() or (_X_LOCKS / f".X{number}-lock").exists()
        if not taken:
            return number
    raise SystemExit("no free X display number")


def _screenshot(display: str, out: Path) -> tuple[int, int, int]:
    """Save the screen; return its size and how many colours a thumbnail of it has."""
    code = (
        "import sys\n"
        "from PySide6.QtGui import QGuiApplication\n"
        "app = QGuiApplication(['grab', '-platform', 'xcb'])\n"
        "shot = app.primaryScreen().grabWindow(0)\n"
        "shot.save(sys.argv[1])\n"
        "small = shot.toImage().scaled(160, 100)\n"
        "w, h = small.width(), small.height()\n"
        "colors = {small.pixel(x, y) for x in range(w) for y in range(h)}\n"
        "print(shot.width(), shot.height(), len(colors))\n"
    )
    proc = subprocess.run(  # noqa: S603 - this Python, a fixed script
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DISPLAY": display},
        check=True,
    )
    width, height, colors = proc.stdout.split()[-3:]
    return int(width), int(height), int(colors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the app and its arguments")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the window stays up")
    parser.add_argument("--screenshot", type=Path,
                        default=Path(tempfile.gettempdir()) / "ossdesk-gui-smoke.png",
                        help="save the screen here (PNG)")
    parser.add_argument("--allow-stderr", action="append", default=[], metavar="REGEX")
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"]
    if not command:
        parser.error("give the command that opens the window")
    allowed = [re.compile(p) for p in _BENIGN + args.allow_stderr]

    display = f":{_free_display()}"
    xvfb = subprocess.Popen(  # noqa: S603
        ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    failures: list[str] = []
    try:
        for _ in range(100):
            if (_X_SOCKETS / f"X{display[1:]}").exists():
                break
            time.sleep(0.1)
        with tempfile.TemporaryDirectory(prefix="ossdesk-gui-smoke-") as home:
            env = {
                name: value
                for name, value in os.environ.items()
                if not name.startswith(("PYTHON", "QT_", "OSSDESK_", "OSS_", "WAYLAND"))
            }
            env.update(DISPLAY=display, OSSDESK_HOME=home, XDG_SESSION_TYPE="x11")
            err_path = Path(home) / "stderr.txt"
            with err_path.open("w", encoding="utf-8") as err:
                started = time.monotonic()
                app = subprocess.Popen(  # noqa: S603 - the app under test
                    command, stdout=subprocess.DEVNULL, stderr=err, env=env,
                    stdin=subprocess.DEVNULL,
                )
                time.sleep(args.seconds)
                alive = app.poll() is None
                if not alive:
                    failures.append(f"the app exited with {app.returncode} after "
                                    f"{time.monotonic() - started:.1f} s")
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                width, height, colors = _screenshot(display, args.screenshot)
                print(f"screenshot {args.screenshot} ({width}x{height}, {colors} colours)")
                no_window = colors <= 1
                if alive:
                    app.send_signal(signal.SIGTERM)
                    try:
                        app.wait(20)
                    except subprocess.TimeoutExpired:
                        app.kill()
                        app.wait()
                        failures.append("the app did not quit within 20 s of SIGTERM")
            stderr = err_path.read_text(encoding="utf-8", errors="replace")
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    unexpected = [
        line for line in stderr.splitlines()
        if line.strip() and not any(p.search(line) for p in allowed)
    ]
    if unexpected:
        failures.append("stderr:\n  " + "\n  ".join(unexpected[:40]))
    if failures:
        print("GUI SMOKE TEST FAILED: " + "\n".join(failures), file=sys.stderr)
        return 1
    if no_window:
        print("GUI SMOKE TEST: the app ran but drew no window (the screen is one colour)",
              file=sys.stderr)
        return NO_WINDOW
    print(f"window up for {args.seconds:.0f} s on {display}, nothing unexpected on stderr")
    return 0


if __name__ == "__main__":
    sys.exit(main())
