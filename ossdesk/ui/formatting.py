"""Human-readable sizes, speeds and durations for the window (translated)."""

from __future__ import annotations

import math

from PySide6.QtCore import QCoreApplication

from ossdesk.core import plan


def format_size(num_bytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: the command line's :func:`ossdesk.core.plan.format_size`
    (binary multiples, IEC names, three significant digits), so the window and the command
    line count alike. The unit symbols stay as they are in every language."""
    return plan.format_size(max(num_bytes, 0))


def format_speed(bytes_per_second: float) -> str:
    """``"1.5 MiB/s"`` (zh_CN: ``"1.5 MiB/秒"``); empty when nothing moves."""
    if bytes_per_second <= 0 or not math.isfinite(bytes_per_second):
        return ""
    text = QCoreApplication.translate("Format", "%1/s")
    return text.replace("%1", plan.format_size(bytes_per_second))


def format_duration(seconds: float | None) -> str:
    """Remaining time: ``"45 s"``, ``"3 min 20 s"``, ``"2 h 5 min"``, ``"3 d 4 h"``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = QCoreApplication.translate("Format", "%1 d %2 h")
        return text.replace("%1", str(days)).replace("%2", str(hours))
    if hours:
        text = QCoreApplication.translate("Format", "%1 h %2 min")
        return text.replace("%1", str(hours)).replace("%2", str(minutes))
    if minutes:
        text = QCoreApplication.translate("Format", "%1 min %2 s")
        return text.replace("%1", str(minutes)).replace("%2", str(secs))
    return QCoreApplication.translate("Format", "%1 s").replace("%1", str(secs))


def percent(done: int, total: int) -> int:
    """Whole percent, never 100 before the last byte (a 99.6 % upload is not done)."""
    if total <= 0:
        return 100 if done >= total else 0
    if done >= total:
        return 100
    return min(99, (done * 100) // total)
