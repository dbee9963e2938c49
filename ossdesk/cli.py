"""The ``ossdesk`` command.

``ossdesk [--sandbox] [PATH...]`` opens the window (with PATHs queued); the subcommands
drive the same engine from a terminal. Each subcommand lives in its own module and is
imported only when used, so ``ossdesk --version`` and ``ossdesk status`` never load Qt.

A subcommand module provides ``configure(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ossdesk import __version__
from ossdesk.hardening import forbid_core_dumps

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "upload": ("ossdesk.commands.upload", "upload files and folders to a bucket"),
    "resume": ("ossdesk.commands.resume", "continue every unfinished upload"),
    "sync": ("ossdesk.commands.sync",
             "make a folder in a bucket hold what a local folder holds (one way)"),
    "watch": ("ossdesk.commands.watch",
              "sync a folder, then upload each file that appears or changes in it"),
    "status": ("ossdesk.commands.status", "list the queue and each upload's progress"),
    "cancel": ("ossdesk.commands.cancel",
               "cancel uploads in the list: abort them on the server; they stay as cancelled"),
    "uploads": ("ossdesk.commands.uploads",
                "list (and abort) the unfinished multipart uploads in a bucket"),
    "sandbox": ("ossdesk.sandbox.cli", "run a local OSS-compatible server to try ossdesk"),
    "selftest": ("ossdesk.selftest",
                 "check this installation (with --endpoint, against a real bucket too)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported and configured (all of
    them when None), so a subcommand or ``--version`` does not pay for the others."""
    parser = argparse.ArgumentParser(
        prog="ossdesk",
        description="Upload large files to Alibaba Cloud OSS, resumably and verified.",
    )
    parser.add_argument("--version", action="version", version=f"ossdesk {__version__}")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="open the window against a local sandbox server (no OSS account needed)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command is not None and name != command:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            sub_parser.set_defaults(_unavailable=name)
            continue
        module.configure(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def _display_available() -> bool:
    """Whether Qt can open a window here (only Linux/BSD desktops can lack one)."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _window_request(argv: Sequence[str]) -> tuple[bool, list[str]] | None:
    """``ossdesk [--sandbox] [PATH...]`` opens the window: return (sandbox, paths), or None
    when argv names a subcommand or asks for help/version (argparse handles those)."""
    sandbox = False
    paths: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--sandbox":
            sandbox = True
        elif arg == "--":
            paths.extend(argv[i + 1 :])
            break
        elif arg.startswith("-") or (not paths and arg in SUBCOMMANDS):
            return None
        else:
            paths.append(arg)
    return sandbox, paths


#: The hidden subcommand the window starts its engine process with (not in ``--help``).
ENGINE_COMMAND = "_engine"


#: Commands that upload: Ctrl-C pauses them, a second Ctrl-C stops them at once.
UPLOADING_COMMANDS = frozenset({"upload", "resume", "sync", "watch"})


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # a process of its own (not a call from a test): before any secret is
        forbid_core_dumps()  # read, so that a crash leaves it in no core file
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == [ENGINE_COMMAND]:
        from ossdesk import engine_host

        return engine_host.main()
    window = _window_request(args_list)
    if window is not None:
        sandbox, paths = window
        missing = [p for p in paths if not os.path.lexists(p)]
        if missing:
            print(
                f"ossdesk: '{missing[0]}' is neither a command nor an existing file or folder "
                f"(commands: {', '.join(SUBCOMMANDS)}; see ossdesk --help)",
                file=sys.stderr,
            )
            return 2
        if not _display_available():
            print(
                "ossdesk: no display to open the window on; use 'ossdesk upload' from a "
                "terminal, or run the window where a desktop session is available",
                file=sys.stderr,
            )
            return 2
        from ossdesk.ui import app

        return app.run([sys.argv[0], *args_list], sandbox=sandbox, paths=paths or None)
    command = next((arg for arg in args_list if not arg.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else "")
    args = parser.parse_args(args_list)
    if getattr(args, "_unavailable", None):
        print(f"ossdesk: '{args._unavailable}' is not available in this build", file=sys.stderr)
        return 2
    module = getattr(args, "_module", None)
    if module is None:
        parser.print_help()
        return 2
    if argv is None and command in UPLOADING_COMMANDS:
        # A process of its own: a second Ctrl-C while the first one pauses stops at once.
        from ossdesk.commands import second_interrupt_stops_at_once

        second_interrupt_stops_at_once()
    result: int = module.run(args)
    return result
