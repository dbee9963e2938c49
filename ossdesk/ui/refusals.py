"""Why a file of a drop was left out, worded as the command line words it, translated.

The rules are :func:`ossdesk.core.upload.key_fault` (what OSS does not take as an object key)
and the window's "two sources for one key" check; this module only words them.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from ossdesk.core.upload import MAX_KEY_BYTES, KeyFault
from ossdesk.ui.walker import Problem, ProblemKind

__all__ = ["refusal_text"]


def _reason(problem: Problem) -> str:
    translate = QCoreApplication.translate
    key = f"“{problem.detail}”"
    if problem.kind is ProblemKind.COLLISION:
        text = translate("Refusals", "%1 and %2 both go to %3; %1 is not uploaded")
        return (text.replace("%1", problem.path).replace("%2", problem.other)
                .replace("%3", problem.detail))
    fault = problem.fault
    if fault is KeyFault.CONTROL:
        text = translate("Refusals", "the object key %1 contains control characters, which "
                                     "OSS does not take; rename the file to upload it")
    elif fault is KeyFault.DOT_SEGMENT:
        text = translate("Refusals", "the object key %1 contains a '.' or '..' segment, "
                                     "which OSS does not take; choose another folder in the "
                                     "bucket")
    elif fault is KeyFault.TOO_LONG:
        size = f"{len(problem.detail.encode('utf-8', 'surrogatepass')):,}"
        text = translate("Refusals", "the object key is %1 bytes long; OSS allows at most %2 "
                                     "(UTF-8): use a shorter folder or file name")
        return text.replace("%1", size).replace("%2", f"{MAX_KEY_BYTES:,}")
    elif fault is KeyFault.LEADING_SLASH:
        text = translate("Refusals", "the object key %1 starts with a slash, which OSS does "
                                     "not take; rename the file to upload it")
    elif fault is KeyFault.NOT_NFC:
        text = translate("Refusals", "the object key %1 is not in NFC form")
    elif fault is KeyFault.EMPTY:
        return translate("Refusals", "the object key would be empty")
    else:
        return translate("Refusals", "the name is not valid UTF-8; rename it to upload it")
    return text.replace("%1", key)


def refusal_text(problem: Problem) -> str:
    """``path: reason`` for a file left out because of its object key (raw: the caller
    makes it printable). The collision line names both files itself."""
    if problem.kind is ProblemKind.COLLISION:
        return _reason(problem)
    return f"{problem.path}: {_reason(problem)}"
