"""The ``upload``, ``resume`` and ``status`` subcommands, and what they share.

Each module provides ``configure(parser)`` and ``run(args) -> int`` (see :mod:`ossdesk.cli`).
Exit codes: 0 every file verified; 1 some file failed or was skipped; 2 a usage or
credentials problem; 3 the upload list is busy or unusable; 130 interrupted (paused).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
    Retrying,
    Started,
)
from ossdesk.core.names import is_utf8, printable
from ossdesk.core.plan import format_duration, format_rate, format_size, parse_rate, parse_size
from ossdesk.core.store import NewUpload, Request, State, Store, StoreBusy, StoreError
from ossdesk.core.walk import FoundFile, WalkProblem, walk_request

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Display",
    "Listing",
    "add_limit_options",
    "ansi_supported",
    "error",
    "json_line",
    "positive_int",
    "rate_value",
    "run_until_idle",
    "unfinished_walks",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130


def error(message: str) -> None:
    """One clear line on stderr (controls in names shown escaped, see :func:`printable`)."""
    print(f"ossdesk: {printable(message)}", file=sys.stderr, flush=True)


def json_line(data: Mapping[str, Any]) -> str:
    """``data`` as one line of exact JSON. Text is kept as it is (controls are escaped by
    JSON itself); a name holding bytes that are not UTF-8 makes the whole line ASCII, where
    each such byte is ``\\udcXX`` (Python's surrogate escape of byte XX)."""
    text = json.dumps(data, ensure_ascii=False)
    return text if is_utf8(text) else json.dumps(data)


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


def size_value(text: str) -> int:
    try:
        return parse_size(text)
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
    parser.add_argument("--no-reread-above", type=size_value, default=None, metavar="SIZE",
                        dest="reread_limit",
                        help="do not read files larger than SIZE again before calling them "
                             "done (default: every file is read again and its CRC-64 compared "
                             "with what was sent). Faster for huge files on slow disks, but a "
                             "change that keeps the file's size, times and identity goes "
                             "unnoticed")
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
    """Turns events into output: JSON lines, a live terminal view, or plain lines.

    Between :meth:`start` and :meth:`stop` the engine's threads only queue their events:
    one display thread formats and writes them in batches (one write per batch), so
    uploads never wait for the terminal or for each other. Before :meth:`start`, events
    are written as they come. The totals of the live view are kept as events arrive, so a
    redraw costs the same for 10 files or 100,000.
    """

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
    _thread: threading.Thread | None = None
    _queue: queue.SimpleQueue[Event | None] = field(default_factory=queue.SimpleQueue)
    _total: int = 0  # bytes of every file shown
    _moved: int = 0  # confirmed bytes of every file shown
    _waiting: int = 0  # files queued
    _uploading: dict[int, _Line] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    #: At most one retry line per file in this many seconds (``--json`` gets every event).
    retry_every: float = 5.0
    _retry_shown: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.live is None:
            self.live = not self.json_mode and ansi_supported(self.stream)

    # -- events ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if self._thread is not None:
            self._queue.put(event)
        else:
            self._handle([event], draw=True)

    def _handle(self, events: list[Event], *, draw: bool) -> None:
        with self._lock:
            if self.json_mode:
                text = "".join(json_line(e.to_dict()) + "\n" for e in events)
                for event in events:
                    self._track(event)
                self._write(text)
                return
            messages = [(m, isinstance(e, Failed | Paused | Retrying))
                        for e in events if (m := self._track(e))]
            if messages or draw:  # the live view goes back under what was printed
                self._output(messages, draw=draw or bool(messages))

    def _set(self, line: _Line, *, state: str | None = None, size: int | None = None,
             confirmed: int | None = None) -> None:
        """Change a line, keeping the totals. With the lock held."""
        if size is not None:
            self._total += size - line.size
            line.size = size
        if confirmed is not None:
            self._moved += confirmed - line.confirmed
            line.confirmed = confirmed
        if state is not None and state != line.state:
            self._waiting += (state == "queued") - (line.state == "queued")
            line.state = state

    def _track(self, event: Event) -> str | None:
        """Record the event; the message to print for it, if any. With the lock held."""
        upload = event.upload
        line = self.lines.get(upload) if upload is not None else None
        if isinstance(event, Queued):
            if line is not None:
                self._forget(event.upload or 0)
            self.lines[event.upload or 0] = _Line(name=printable(event.key), size=event.size)
            self._total += event.size
            self._waiting += 1
            return None
        if line is None:
            return f"note: {event.message}" if isinstance(event, Notice) else None
        if isinstance(event, Started):
            self._set(line, state="uploading", size=event.size, confirmed=event.confirmed_bytes)
            self._uploading[upload or 0] = line
            if event.resumed:
                return (f"resuming {line.name}: {format_size(event.confirmed_bytes)} "
                        "already on the server")
        elif isinstance(event, Progress):
            self._set(line, size=event.total, confirmed=event.confirmed_bytes)
            line.sent, line.speed, line.eta = event.sent_bytes, event.speed, event.eta
        elif isinstance(event, Done):
            self._set(line, state="done", confirmed=event.size)
            line.sent = 0
            self._uploading.pop(upload or 0, None)
            self.done += 1
            if event.skipped:
                self.skipped += 1
                return (f"skipped  {line.name}  {format_size(event.size)}  "
                        f"crc64 {event.crc64}  (already in OSS, identical)")
            unread = "" if event.reread else \
                "; verified against the bytes sent, the file was not read again"
            return (f"done     {line.name}  {format_size(event.size)}  "
                    f"crc64 {event.crc64}  ({format_duration(event.seconds)}{unread})  "
                    f"verified ({event.verified_by})")
        elif isinstance(event, Failed):
            self._set(line, state="failed")
            line.message = event.message
            self._uploading.pop(upload or 0, None)
            self.failed += 1
            return f"{line.name} failed: {event.message}"
        elif isinstance(event, Paused):
            self._set(line, state="paused")
            line.message = event.message
            self._uploading.pop(upload or 0, None)
            self.paused += 1
            if event.reason not in ("user", "shutdown"):
                return f"{line.name} paused: {event.message}"
        elif isinstance(event, Retrying):
            now = self.clock()
            shown = self._retry_shown.get(upload or 0)
            if shown is not None and now - shown < self.retry_every:
                return None
            self._retry_shown[upload or 0] = now
            delay = (f"{event.delay:.1f} s" if event.delay < 10
                     else format_duration(event.delay))
            return (f"retrying {line.name} in {delay} (attempt {event.attempt} of "
                    f"{event.tries}): {event.reason}")
        elif isinstance(event, Notice):
            if event.message.startswith("skipped:"):
                return None  # the "skipped" line that follows says it
            return f"note     {line.name}: {event.message}"
        elif isinstance(event, Cancelled):
            self._forget(upload or 0)
        return None

    def _forget(self, upload: int) -> None:
        self._retry_shown.pop(upload, None)
        line = self.lines.pop(upload, None)
        if line is not None:
            self._set(line, state="gone", size=0, confirmed=0)
            self._uploading.pop(upload, None)

    # -- output ----------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        """With the lock held; a closed pipe (``| head``) silences the output, not the
        upload."""
        if self._broken or not text:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._broken = True

    def write_line(self, text: str) -> None:
        """Write one line (after every event handed over so far, once stopped)."""
        with self._lock:
            self._write(text + "\n")

    def _print(self, message: str, *, error: bool = False) -> None:
        with self._lock:
            self._output([(message, error)], draw=True)

    def _output(self, messages: list[tuple[str, bool]], *, draw: bool) -> None:
        """Print messages above the live view, then draw it again. With the lock held."""
        if self._broken:
            return
        try:
            self._clear()
            out = [m for m, error in messages if not error]
            errors = [m for m, error in messages if error]
            if out:
                self.stream.write("\n".join(printable(m) for m in out) + "\n")
            if errors:
                self.stream.flush()
                self.err_stream.write("".join(f"ossdesk: {printable(m)}\n" for m in errors))
                self.err_stream.flush()
            if draw:
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
        active = list(itertools.islice(self._uploading.values(), 8))
        rows = [self._render(ln, width) for ln in active]
        speed = sum(ln.speed for ln in self._uploading.values())
        left = self._total - self._moved
        eta = format_duration(left / speed) if speed > 0 else "--"
        rows.append(f"{self.done}/{len(self.lines)} files done, {self._waiting} queued, "
                    f"{format_size(self._moved)} of {format_size(self._total)}, "
                    f"{format_rate(speed)}, {eta} left"[:width])
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
        """From now on, events are written by the display thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ossdesk-display",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        next_draw = time.monotonic() + self.refresh
        while True:
            wait = max(0.0, next_draw - time.monotonic()) if self.live else None
            try:
                batch = [self._queue.get(timeout=wait)]
            except queue.Empty:
                batch = []
            while True:  # whatever else is there: one write for all of it
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            end = None in batch
            events = [e for e in batch if e is not None]
            now = time.monotonic()
            draw = bool(self.live) and now >= next_draw
            if events or draw:
                self._handle(events, draw=draw)
            if draw:
                next_draw = now + self.refresh
            if end:
                return

    def stop(self) -> None:
        """Write every event handed over so far, then take the live view off the screen."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(10)
        leftover: list[Event] = []  # handed over while the thread was being stopped
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftover.append(item)
        if leftover:
            self._handle(leftover, draw=False)
        with self._lock:
            if self._broken:
                return
            try:
                self._clear()
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._broken = True


#: Tests only: while the file named by ``OSSDESK_HOLD_PAUSE`` exists, a Ctrl-C's pause waits
#: before it begins (so that a second Ctrl-C surely lands while pausing). Unset in normal use.
HOLD_PAUSE_ENV = "OSSDESK_HOLD_PAUSE"

STOPPED_AT_ONCE = (
    "\nossdesk: stopped at once (Ctrl-C twice). An upload under way keeps the parts OSS had "
    "confirmed (parts on their way are sent again): `ossdesk resume` continues it.\n"
)


def second_interrupt_stops_at_once() -> None:
    """Ctrl-C once: the command pauses its uploads cleanly (Python's KeyboardInterrupt, as
    usual). Ctrl-C again while it does: the process ends at once, as a kill would end it,
    which the upload list survives (a part counts only once it is stored as confirmed, and
    ``ossdesk resume`` continues the rows left running). Main thread of a process of its
    own only (installs a signal handler)."""
    interrupted = False

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            raise KeyboardInterrupt
        try:
            os.write(2, STOPPED_AT_ONCE.encode())
        finally:
            os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, on_interrupt)


def _hold_pause() -> None:
    hold = os.environ.get(HOLD_PAUSE_ENV)
    while hold and os.path.exists(hold):
        time.sleep(0.05)


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
        print("\nPausing... (Ctrl-C again stops at once)", file=sys.stderr, flush=True)
        _hold_pause()
        scheduler.close(pause=True)
        if on_interrupt is not None:
            on_interrupt()
        error("paused; nothing was lost. Run `ossdesk resume` to continue.")
        return EXIT_INTERRUPTED
    display.stop()
    scheduler.close(pause=False)
    return summarize(scheduler.store, targets, display)


#: Files queued per store transaction while a walk goes on.
LISTING_BATCH = 500
#: Tests only: while the file named by ``OSSDESK_HOLD_LISTING`` exists, a walk waits after
#: each batch it queued (so that Ctrl-C or a kill surely lands in the middle of a listing).
#: Unset in normal use.
HOLD_LISTING_ENV = "OSSDESK_HOLD_LISTING"


def _hold_listing() -> None:
    hold = os.environ.get(HOLD_LISTING_ENV)
    while hold and os.path.exists(hold):
        time.sleep(0.05)


@dataclass
class Listing:
    """One request's walk, queued in batches while the uploads already run.

    :meth:`run` marks the request finished only after its last file is queued; if it is
    stopped before (Ctrl-C, a full disk), :meth:`stopped` says so, naming the root being
    listed, and `ossdesk resume` walks the request again (files queued already are not
    added twice).
    """

    scheduler: Any
    request: Request
    on_problem: Callable[[WalkProblem], None]
    #: A later file of the walk for a key already produced (left out, reported).
    on_collision: Callable[[FoundFile, Path], None] | None = None
    #: Each batch before it is queued: the files to keep.
    keep: Callable[[list[NewUpload]], list[NewUpload]] | None = None
    #: Then: ``(files to queue as new rows, earlier rows of the same files to continue)``
    #: (:meth:`ossdesk.commands.earlier.EarlierUploads.sort`).
    earlier: Callable[[list[NewUpload]], tuple[list[NewUpload], list[int]]] | None = None
    root: Path | None = None
    ids: list[int] = field(default_factory=list)

    def _at(self, root: Path) -> None:
        self.root = root

    def run(self) -> list[int]:
        assert self.request.id is not None
        stream = walk_request(self.request, self.on_problem, self._at, self.on_collision)
        while batch := list(itertools.islice(stream, LISTING_BATCH)):
            if self.keep is not None:
                batch = self.keep(batch)
            if self.earlier is not None:
                batch, again = self.earlier(batch)
                if again:
                    self.ids.extend(self.scheduler.resume(again))
            if batch:
                self.ids.extend(self.scheduler.add(batch, request=self.request))
            _hold_listing()
        self.scheduler.store.finish_request(self.request.id)
        return self.ids

    def stopped(self) -> str:
        """The message for a walk that stopped before its end."""
        where = self.root if self.root is not None else self.request.roots[0]
        try:
            queued = self.scheduler.store.queued_by(self.request.id)
        except StoreError:
            queued = len(self.ids)
        return (f"stopped while listing {printable(str(where))}: {queued} of the files found "
                "so far are queued; `ossdesk resume` finishes listing and uploads the rest")


def unfinished_walks(store: Store) -> list[str]:
    """One line per request whose walk has not finished (empty when none)."""
    return [f"walk of {', '.join(printable(str(r)) for r in req.roots)} not finished: "
            f"{req.queued} files queued so far; `ossdesk resume` finishes it"
            for req in store.unfinished_requests()]


_SUMMARY_SLICE = 2000
#: Failures that trying again cannot mend: the file itself cannot be an object as it is
#: (a special file such as those in /proc, or larger than OSS allows).
_NOT_SENDABLE = frozenset({"NotAFile", "FileTooLarge"})


def summarize(store: Store, ids: list[int], display: Display) -> int:
    # Read in slices: a run of 100,000 files must not hold 100,000 rows at once.
    found = done = skipped = failed = unsendable = paused = total = 0
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
                unsendable += r.error_code in _NOT_SENDABLE
            elif r.state is State.PAUSED:
                if not paused:
                    paused_reason = r.reason
                paused += 1
    # Files not listed yet are not in ``ids``: "N of N" must not read as "all of it".
    walks = unfinished_walks(store)
    if display.json_mode:
        summary: dict[str, Any] = {"event": "summary", "files": found, "done": done,
                                   "skipped": skipped,
                                   "failed": failed,
                                   "paused": paused, "bytes": total,
                                   "unfinished_walks": len(walks),
                                   "time": round(time.time(), 3)}
        display.write_line(json.dumps(summary))
    else:
        note = (f"; {skipped} of them skipped: already in OSS, identical" if skipped
                else "")
        queued = " queued so far" if walks else ""
        display.write_line(f"{done} of {found} files{queued} uploaded and verified "
                           f"({format_size(total)}{note}).")
    for line in walks:
        error(line)
    if unsendable:
        error(f"{unsendable} file(s) cannot be uploaded as they are (see above); "
              "`ossdesk cancel --failed` cancels them (they stay in the list as cancelled)")
    if failed > unsendable:
        error(f"{failed - unsendable} file(s) failed; fix the cause and run `ossdesk resume` "
              "to try them again")
    if paused:
        error(f"{paused} file(s) paused ({paused_reason or 'paused'}); run "
              "`ossdesk resume` to continue")
    return EXIT_OK if done == found and not walks else EXIT_FAILED
