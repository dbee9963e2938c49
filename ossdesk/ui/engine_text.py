"""The engine's messages in the window's language.

The engine (Qt-free, shared with the CLI) writes its messages in English; its events carry
the error code and kind beside them. Here each message the engine can write is a template
with ``%1``, ``%2``... where its parameters go (a host, a file name, a profile, a server's
own words); the window matches the engine's text against the templates, asks the
translator for the template (context ``EngineText``) and puts the same parameters in.
Parameters that are themselves engine phrases (a hint, a retry's reason) are translated
the same way.

In English, or when a message is not known here, the text stays exactly as the engine
wrote it: the CLI prints the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache

from PySide6.QtCore import QCoreApplication

from ossdesk.ui.transfer_model import TransferRow

CONTEXT = "EngineText"


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:
    """A template for the translator, as it is (``pyside6-lupdate`` collects it)."""
    return text


# Every template is written exactly as the engine writes the message (ossdesk/core).
TEMPLATES: tuple[str, ...] = (
    # Credentials (core/oss.py, _classify_server and _credential_hints).
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The AccessKey secret does not match the AccessKey ID (the request signature was "
        "rejected). %1; for signature V4 also check the region.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "OSS does not know this AccessKey ID (or the key is disabled). %1"
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "OSS rejected the security token (STS): it is wrong, missing, or given where none is "
        "expected. %1",
    ),
    QT_TRANSLATE_NOOP("EngineText", "Enter the secret of the profile %1 again"),
    QT_TRANSLATE_NOOP("EngineText", "Enter the secret again"),
    QT_TRANSLATE_NOOP("EngineText", "Check OSS_ACCESS_KEY_SECRET in the environment"),
    QT_TRANSLATE_NOOP("EngineText", "Check the AccessKey ID in the profile %1."),
    QT_TRANSLATE_NOOP("EngineText", "Check the AccessKey ID."),
    QT_TRANSLATE_NOOP("EngineText", "Check OSS_ACCESS_KEY_ID in the environment."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "Check the STS token of the profile %1 (only temporary credentials have one), or get "
        "new temporary credentials.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "Check the STS token (only temporary credentials have one), or get new temporary "
        "credentials.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "Check OSS_SESSION_TOKEN in the environment: set it only for temporary credentials, "
        "together with the AccessKey pair it was issued with.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The temporary (STS) credentials have expired. Provide new credentials: uploads wait "
        "and go on from where they stopped.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "This bucket must be reached through the endpoint %1. Change the profile's endpoint "
        "(and region) to that one.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The request was signed for another region than the bucket's (OSS says: %1). Check "
        "the region (--region, or the account's region); the endpoint's name usually holds "
        "it, e.g. oss-cn-hangzhou -> cn-hangzhou.",
    ),
    # OSS error codes (core/oss.py, _CODE_MESSAGES).
    QT_TRANSLATE_NOOP(
        "EngineText",
        "These credentials are not allowed to do this in the bucket. Ask the bucket's owner "
        "for permission (a RAM policy), or use other credentials.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The bucket does not exist at this endpoint. Check the bucket name and the endpoint "
        "(region).",
    ),
    QT_TRANSLATE_NOOP("EngineText", "The bucket name is not valid. Check the bucket name."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "OSS does not accept this object name: it must be 1 to 1023 bytes of UTF-8 and must "
        "not start with '/' or '\\'. Rename the file or change the prefix.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The object name is longer than 1023 bytes. Use a shorter prefix or file name.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "This computer's clock differs from OSS's by more than 15 minutes. Correct the "
        "computer's date, time and time zone, then try again.",
    ),
    QT_TRANSLATE_NOOP("EngineText", "OSS rejected an argument of the request. OSS says: %1"),
    QT_TRANSLATE_NOOP("EngineText", "OSS rejected an argument of the request."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The object or part is larger than OSS accepts. OSS says: %1"
    ),
    QT_TRANSLATE_NOOP("EngineText", "The object or part is larger than OSS accepts."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "A part is smaller than the OSS minimum of 100 KiB (only the last part may be). "
        "Upload the file again.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "OSS does not have a part as recorded (missing, or a different ETag). Upload the file "
        "again.",
    ),
    QT_TRANSLATE_NOOP("EngineText", "The part list is not in ascending order."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The data OSS received does not match its checksum: the file may have changed while "
        "it was read. Upload it again.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "An object with this name already exists and the upload may not overwrite it.",
    ),
    QT_TRANSLATE_NOOP("EngineText", "OSS is temporarily unavailable."),
    QT_TRANSLATE_NOOP("EngineText", "OSS had an internal error."),
    QT_TRANSLATE_NOOP("EngineText", "OSS waited too long for data from this computer."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "OSS received less data than announced (the connection was cut)."
    ),
    QT_TRANSLATE_NOOP("EngineText", "OSS asks to slow down (too many requests)."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "OSS no longer knows this multipart upload (it was aborted, completed or expired).",
    ),
    QT_TRANSLATE_NOOP("EngineText", "The object does not exist."),
    QT_TRANSLATE_NOOP("EngineText", "OSS could not handle the request right now (HTTP %1)."),
    QT_TRANSLATE_NOOP("EngineText", "OSS refused the request (HTTP %1)."),
    QT_TRANSLATE_NOOP("EngineText", "OSS refused the request: %1"),
    # The network (core/oss.py, _classify_transport): messages and retry reasons.
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The HTTPS certificate of %1 is not trusted, so nothing was sent. Check the endpoint "
        "address; if your network inspects HTTPS traffic, its certificate authority must be "
        "installed on this computer.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 does not answer HTTPS. Check the endpoint address (https:// or http://, and the "
        "port).",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The address of %1 could not be looked up. Check the endpoint and the network "
        "connection.",
    ),
    QT_TRANSLATE_NOOP("EngineText", "cannot look up the address of %1"),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 does not speak OSS (its answer is not HTTP). Check the endpoint address and port.",
    ),
    QT_TRANSLATE_NOOP("EngineText", "%1 does not speak OSS (its answer is not HTTP)"),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 refused the connection (nothing listens there, or a firewall blocks it). Check "
        "the endpoint.",
    ),
    QT_TRANSLATE_NOOP("EngineText", "cannot connect to %1: connection refused"),
    QT_TRANSLATE_NOOP("EngineText", "Connecting to %1 timed out. Check the network connection."),
    QT_TRANSLATE_NOOP("EngineText", "cannot connect to %1: no answer in time"),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "Could not connect to %1 (%2). Check the network connection."
    ),
    QT_TRANSLATE_NOOP("EngineText", "%1 did not answer in time."),
    QT_TRANSLATE_NOOP("EngineText", "%1 did not answer in time"),
    QT_TRANSLATE_NOOP("EngineText", "The connection to %1 was lost."),
    QT_TRANSLATE_NOOP("EngineText", "the connection to %1 was lost"),
    QT_TRANSLATE_NOOP("EngineText", "The request to %1 could not be made: check the endpoint."),
    QT_TRANSLATE_NOOP("EngineText", "A network error occurred talking to %1."),
    QT_TRANSLATE_NOOP("EngineText", "network error talking to %1"),
    QT_TRANSLATE_NOOP("EngineText", "A local error stopped the transfer: %1."),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "An unexpected error stopped the request (%1). Please report it."
    ),
    QT_TRANSLATE_NOOP("EngineText", "OSS answered HTTP %1 (%2)"),
    QT_TRANSLATE_NOOP("EngineText", "OSS answered HTTP %1"),
    QT_TRANSLATE_NOOP("EngineText", "cannot connect to %1: %2"),
    # Notices (core/file_steps.py).
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 changed since its upload began, so it starts over (the parts already sent were "
        "discarded)",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "The unfinished upload of %1 is no longer on the server (it expired or was cleaned "
        "up), so it starts over",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 was touched since its upload began (its change time moved); the %2 already sent "
        "were read again and still match the file, so the upload goes on",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 changed since its upload began, before any part of it was sent; the upload goes "
        "on with the file as it is now",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "skipped: already in OSS, identical (%1: same size and CRC-64)"
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 changed while it was being uploaded (its change time moved); the whole file was "
        "read again and is exactly what was sent",
    ),
    # Composed by the engine around the messages above (core/file_steps.py, scheduler.py).
    QT_TRANSLATE_NOOP("EngineText", "%1 Tried %2 times."),
    QT_TRANSLATE_NOOP("EngineText", "%1 Tried 1 time."),
    QT_TRANSLATE_NOOP("EngineText", "%1 `ossdesk resume` tries it again."),
    QT_TRANSLATE_NOOP("EngineText", "%1 (trying again in %2 s)"),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "the credentials expired: give new ones and the upload goes on from where it stopped",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText", "%1 is gone: it was moved or deleted before it could be uploaded"
    ),
    QT_TRANSLATE_NOOP("EngineText", "%1 is gone; its unfinished upload was aborted on the server"),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 changed while it was being uploaded, so nothing was published; upload it again "
        "once it is no longer being written to",
    ),
    QT_TRANSLATE_NOOP("EngineText", "%1 can no longer be read: permission denied"),
    QT_TRANSLATE_NOOP("EngineText", "cannot read the file: %1"),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 keeps changing while it is uploaded; the object %2 may not match it: upload it "
        "again when it is not being written to",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "%1 was deleted or moved while it was being uploaded; the object %2 holds the file as "
        "it was read before that",
    ),
    QT_TRANSLATE_NOOP(
        "EngineText",
        "the CRC64 OSS reports for %1 (%2) does not match the file's (%3); the object must "
        "not be trusted: upload it again",
    ),
    QT_TRANSLATE_NOOP("EngineText", "OSS keeps losing parts of %1; try again later"),
    QT_TRANSLATE_NOOP("EngineText", "OSS keeps losing the upload of %1 (%2); try again later"),
    QT_TRANSLATE_NOOP("EngineText", "%1: %2, so it starts over"),
    QT_TRANSLATE_NOOP("EngineText", "%1 is %2, not a regular file, and is not uploaded"),
    QT_TRANSLATE_NOOP("EngineText", "a folder"),
    QT_TRANSLATE_NOOP("EngineText", "a device"),
    QT_TRANSLATE_NOOP("EngineText", "a pipe (FIFO)"),
    QT_TRANSLATE_NOOP("EngineText", "a socket"),
    QT_TRANSLATE_NOOP("EngineText", "a special file"),
)

# The kinds of ossdesk.core.oss.ErrorKind, as the row's details name them.
KIND_LABELS: dict[str, str] = {
    "retryable": QT_TRANSLATE_NOOP("EngineText", "temporary (tried again)"),
    "permanent": QT_TRANSLATE_NOOP("EngineText", "needs a change before trying again"),
    "credentials_expired": QT_TRANSLATE_NOOP("EngineText", "temporary credentials expired"),
    "no_such_upload": QT_TRANSLATE_NOOP("EngineText", "the multipart upload is gone"),
    "not_found": QT_TRANSLATE_NOOP("EngineText", "the object does not exist"),
    "source": QT_TRANSLATE_NOOP("EngineText", "the file on this computer"),
    "store": QT_TRANSLATE_NOOP("EngineText", "the upload list on this computer"),
}

_PLACEHOLDER = re.compile(r"%(\d)")


@dataclass(frozen=True)
class _Template:
    source: str
    pattern: re.Pattern[str]
    numbers: tuple[str, ...]  # the placeholder numbers, in the order they appear


@cache
def _templates() -> tuple[_Template, ...]:
    compiled = []
    for source in TEMPLATES:
        pieces = _PLACEHOLDER.split(source)
        regex = "".join(
            "(.+?)" if i % 2 else re.escape(piece) for i, piece in enumerate(pieces)
        )
        compiled.append(
            _Template(source, re.compile(regex + r"\Z", re.DOTALL), tuple(pieces[1::2]))
        )
    # The longest templates first: the most specific wording wins.
    return tuple(sorted(compiled, key=lambda t: -len(t.source)))


def engine_text(message: str, *, depth: int = 0) -> str:
    """``message`` (as the engine wrote it) in the window's language; unchanged in English
    or when the message is not one of the engine's known ones."""
    if not message or depth > 4:
        return message
    for template in _templates():
        match = template.pattern.match(message)
        if match is None:
            continue
        translated = QCoreApplication.translate(CONTEXT, template.source)
        if translated == template.source:
            return message
        values = {
            number: engine_text(value, depth=depth + 1)
            for number, value in zip(template.numbers, match.groups(), strict=True)
        }
        return _fill(translated, values)
    return message


def _fill(translated: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), translated)


def kind_text(kind: str) -> str:
    """An ErrorKind's value in words of the window's language (the value itself if not
    known)."""
    label = KIND_LABELS.get(kind)
    if label is None:
        return kind
    translated = QCoreApplication.translate(CONTEXT, label)
    return kind if translated == label else translated


def restored_row(row: TransferRow) -> TransferRow:
    """A row read back from the upload list after a restart, its error in the window's
    language (the list keeps the engine's words)."""
    if not row.error:
        return row
    text = engine_text(row.error)
    if text == row.error:
        return row
    return replace(row, error=text, error_detail=row.error_detail.replace(row.error, text, 1))
