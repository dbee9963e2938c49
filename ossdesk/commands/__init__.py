"""The ``upload``, ``resume`` and ``status`` subcommands, and what they share.

Each module provides ``configure(parser)`` and ``run(args) -> int`` (see :mod:`ossdesk.cli`).
Exit codes: 0 every file verified; 1 some file failed or was skipped; 2 a usage or
credentials problem; 3 the upload list is busy or unusable; 130 interrupted (paused).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from ossdesk.core.events import (
    Cancelled,
    Done,
    Event,
    Failed,
    Notice,
    Paused,
    Progress,
    Queued,
    Started,
)
from ossdesk.core.plan import format_duration, format_rate, format_size, parse_rate
from ossdesk.core.store import State, Store, StoreBusy, StoreError

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Display",
    "add_limit_options",
    "ansi_supported",
    "error",
    "positive_int",
    "rate_value",
    "run_until_idle",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130


def error(message: str) -> None:
    """One clear line on stderr."""
    print(f"ossdesk: {message}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def rate_value(text: str) -> int:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=positive_int, default=None, metavar="N",
                        help="parts in flight across all files (default 8)")
    parser.add_argument("--small-parallel", type=positive_int, default=None, metavar="N",
                        help="requests in flight when the extra ones carry files of 1 MiB or "
                             "less (default 8 x --parallel, at most 64)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="files at once (default 3; small files may run beyond it)")
    parser.add_argument("--limit-rate", type=rate_value, default=None, metavar="RATE",
                        help="bandwidth limit for everything, e.g. 48MiB (per second), 200Mbit"
                             " or 0 for none")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line per event, for scripts")


def open_store() -> Store | int:
    """The upload list for this process, or an exit code after an error line."""
    try:
        store = Store.open()
    except StoreBusy as exc:
        error(str(exc))
        return EXIT_BUSY
    except StoreError as exc:
        error(str(exc))
        return EXIT_BUSY
    if store.notice:
        error(store.notice)
    return store


def _enable_windows_vt(stream: TextIO) -> bool:  # pragma: no cover - Windows only
    """Turn on VT processing for the console behind ``stream`` (Windows 10 and later);
    False on an older console, which shows escape sequences as text."""
    enable_vt = 0x0004  # ENABLE_VIRTUAL_TERMINAL_PROCESSING
    try:
        import ctypes  # Windows only
        import msvcrt

        handle = msvcrt.get_osfhandle(stream.fileno())  # type: ignore[attr-defined,unused-ignore]
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        mode = ctypes.c_uint32()
        if not kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
            return False
        if mode.value & enable_vt:
            return True
        return bool(kernel32.SetConsoleMode(handle, mode.value | enable_vt))
    except (ImportError, AttributeError, OSError, ValueError):
        return False


def ansi_supported(stream: TextIO, *, environ: Mapping[str, str] | None = None,
                   platform: str | None = None) -> bool:
    """Whether ``stream`` is a terminal that understands cursor movement (the live view).

    Not a terminal, or ``TERM=dumb``: no. On Windows a terminal that announces itself
    (Windows Terminal, ConEmu / ANSICON, mintty, VS Code) is fine; otherwise the console's
    VT mode is switched on, and without it the plain line output is used.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError, OSError):
        return False
    term = env.get("TERM", "")
    if term == "dumb":
        return False
    if platform != "win32":
        return True
    if env.get("WT_SESSION") or env.get("ANSICON") or env.get("ConEmuANSI") == "ON" \
            or env.get("TERM_PROGRAM") == "vscode" or term.startswith(("xterm", "cygwin")):
        return True
    return _enable_windows_vt(stream)


@dataclass
class _Line:
    name: str
    size: int
    state: str = "queued"
    confirmed: int = 0
    sent: int = 0
    speed: float = 0.0
    eta: float | None = None
    message: str = ""


@dataclass
class Display:
    """Turns events into output: JSON lines, a live terminal view, or plain lines."""

    json_mode: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    err_stream: TextIO = field(default_factory=lambda: sys.stderr)
    live: bool | None = None
    refresh: float = 0.25
    lines: dict[int, _Line] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    paused: int = 0
    skipped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _drawn: int = 0
    _broken: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if self.live is None:
            self.live = not self.json_mode and ansi_supported(self.stream)

    # -- events ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if self.json_mode:
            self.write_line(json.dumps(event.to_dict(), ensure_ascii=False))
            self._track(event)
            return
        message = self._track(event)
        if message:
            self._print(message, error=isinstance(event, Failed | Paused))

    def _track(self, event: Event) -> str | None:
        upload = event.upload
        with self._lock:
            line = self.lines.get(upload) if upload is not None else None
            if isinstance(event, Queued):
                self.lines[event.upload or 0] = _Line(name=event.key, size=event.size)
                return None
            if line is None:
                return f"note: {event.message}" if isinstance(event, Notice) else None
            if isinstance(event, Started):
                line.state = "uploading"
                line.size = event.size
                line.confirmed = event.confirmed_bytes
                if event.resumed:
                    return (f"resuming {line.name}: {format_size(event.confirmed_bytes)} "
                            "already on the server")
            elif isinstance(event, Progress):
                line.confirmed, line.sent = event.confirmed_bytes, event.sent_bytes
                line.speed, line.eta, line.size = event.speed, event.eta, event.total
            elif isinstance(event, Done):
                line.state, line.confirmed, line.sent = "done", event.size, 0
                self.done += 1
                if event.skipped:
                    self.skipped += 1
                    return (f"skipped  {line.name}  {format_size(event.size)}  "
                            f"crc64 {event.crc64}  (already in OSS, identical)")
                return (f"done     {line.name}  {format_size(event.size)}  "
                        f"crc64 {event.crc64}  ({format_duration(event.seconds)})")
            elif isinstance(event, Failed):
                line.state, line.message = "failed", event.message
                self.failed += 1
                return f"{line.name} failed: {event.message}"
            elif isinstance(event, Paused):
                line.state, line.message = "paused", event.message
                self.paused += 1
                if event.reason not in ("user", "shutdown"):
                    return f"{line.name} paused: {event.message}"
            elif isinstance(event, Notice):
                if event.message.startswith("skipped:"):
                    return None  # the "skipped" line that follows says it
                return f"note     {line.name}: {event.message}"
            elif isinstance(event, Cancelled):
                self.lines.pop(upload or 0, None)
        return None

    # -- output ----------------------------------------------------------------------------

    def write_line(self, text: str) -> None:
        """Write one line; a closed pipe (``| head``) silences the output, not the upload."""
        with self._lock:
            if self._broken:
                return
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._broken = True

    def _print(self, message: str, *, error: bool = False) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                self._clear()
                if error:
                    self.stream.flush()
                    print(f"ossdesk: {message}", file=self.err_stream, flush=True)
                else:
                    self.stream.write(message + "\n")
                self._draw()
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._broken = True

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if not self.live:
            return
        width = max(40, shutil.get_terminal_size((100, 20)).columns - 1)
        active = [ln for ln in self.lines.values() if ln.state == "uploading"][:8]
        rows = [self._render(ln, width) for ln in active]
        total = sum(ln.size for ln in self.lines.values())
        moved = sum(ln.confirmed for ln in self.lines.values())
        speed = sum(ln.speed for ln in active)
        left = total - moved
        eta = format_duration(left / speed) if speed > 0 else "--"
        queued = sum(1 for ln in self.lines.values() if ln.state == "queued")
        rows.append(f"{self.done}/{len(self.lines)} files done, {queued} queued, "
                    f"{format_size(moved)} of {format_size(total)}, {format_rate(speed)}, "
                    f"{eta} left"[:width])
        self.stream.write("\n".join(rows) + "\n")
        self._drawn = len(rows)

    @staticmethod
    def _render(line: _Line, width: int) -> str:
        done = line.confirmed / line.size if line.size else 0.0
        sent = (line.confirmed + line.sent) / line.size if line.size else 0.0
        bar_width = 20
        full = int(done * bar_width)
        part = max(0, int(sent * bar_width) - full)
        bar = "#" * full + "+" * part + "." * (bar_width - full - part)
        eta = format_duration(line.eta) if line.eta is not None else "--"
        tail = (f" [{bar}] {done * 100:5.1f}% {format_rate(line.speed):>11} {eta:>12}")
        name_width = max(10, width - len(tail))
        name = line.name if len(line.name) <= name_width else "..." + line.name[-name_width + 3:]
        return f"{name:<{name_width}}{tail}"

    def start(self) -> None:
        if self.live and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ossdesk-display",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh):
            with self._lock:
                if self._broken:
                    return
                try:
                    self._clear()
                    self._draw()
                    self.stream.flush()
                except (BrokenPipeError, ValueError, OSError):
                    self._broken = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        with self._lock:
            if self._broken:
                return
            try:
                self._clear()
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._broken = True


def run_until_idle(scheduler: Any, display: Display, ids: Iterable[int],
                   on_interrupt: Callable[[], None] | None = None) -> int:
    """Wait for the queue to settle; Ctrl-C pauses everything cleanly. Returns an exit code."""
    targets = list(ids)
    display.start()
    try:
        while not scheduler.wait(0.2):
            pass
    except KeyboardInterrupt:
        display.stop()
        print("\nPausing...", file=sys.stderr, flush=True)
        scheduler.close(pause=True)
        if on_interrupt is not None:
            on_interrupt()
        error("paused; nothing was lost. Run `ossdesk resume` to continue.")
        return EXIT_INTERRUPTED
    display.stop()
    scheduler.close(pause=False)
    return summarize(scheduler.store, targets, display)


_SUMMARY_SLICE = 2000


def summarize(store: Store, ids: list[int], display: Display) -> int:
    # Read in slices: a run of 100,000 files must not hold 100,000 rows at once.
    found = done = skipped = failed = paused = total = 0
    paused_reason: str | None = None
    for start in range(0, len(ids), _SUMMARY_SLICE):
        for r in store.rows_for(ids[start:start + _SUMMARY_SLICE]):
            found += 1
            if r.state is State.DONE:
                done += 1
                total += r.size
                skipped += r.skipped
            elif r.state is State.FAILED:
                failed += 1
            elif r.state is State.PAUSED:
                if not paused:
                    paused_reason = r.reason
                paused += 1
    if display.json_mode:
        summary: dict[str, Any] = {"event": "summary", "done": done, "skipped": skipped,
                                   "failed": failed,
                                   "paused": paused, "bytes": total,
                                   "time": round(time.time(), 3)}
        display.write_line(json.dumps(summary))
    else:
        note = (f"; {skipped} of them skipped: already in OSS, identical" if skipped
                else "")
        display.write_line(f"{done} of {found} files uploaded and verified "
                           f"({format_size(total)}{note}).")
    if failed:
        error(f"{failed} file(s) failed; fix the cause and run `ossdesk resume` to try "
              "them again")
    if paused:
        error(f"{paused} file(s) paused ({paused_reason or 'paused'}); run "
              "`ossdesk resume` to continue")
    return EXIT_OK if done == found else EXIT_FAILED
