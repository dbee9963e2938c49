"""Process settings that keep the AccessKey secret and the STS token out of crash files.

:func:`forbid_core_dumps` runs first thing in every ``ossdesk`` process (the command line,
the window, its engine process ``ossdesk _engine``, the selftest, the sandbox): a crashed
upload must not leave a core file holding the secret.

* POSIX (Linux, macOS): ``RLIMIT_CORE`` soft and hard limits set to 0, so no core file is
  written, and no child started later can raise the limit again.
* Linux: also ``prctl(PR_SET_DUMPABLE, 0)``: no core even where ``core_pattern`` pipes
  cores to a collector that ignores the limit, and other processes of the same user can no
  longer read this one's memory (ptrace, ``/proc/PID/mem``). The price: ``/proc/PID/environ``
  and ``maps`` of an ossdesk process, and debuggers such as py-spy or gdb, need root.
  ossdesk itself never reads another process's ``/proc`` entries.
* Windows: nothing is changed. Windows Error Reporting keeps a full memory dump only where
  an administrator configured ``LocalDumps``; ``SetErrorMode`` would only hide the crash
  dialog, not stop a dump.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["forbid_core_dumps"]

_log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4


def forbid_core_dumps() -> list[str]:
    """Turn core dumps off for this process where the OS allows; returns what was done."""
    done: list[str] = []
    if sys.platform != "win32":
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            done.append("RLIMIT_CORE 0")
        except (ValueError, OSError) as exc:
            _log.warning("core dumps could not be turned off: %s", exc)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0:
                done.append("PR_SET_DUMPABLE 0")
            else:
                _log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            _log.warning("prctl is not available: %s", exc)
    return done
