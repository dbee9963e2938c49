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

# More of the engine's messages, in a context of their own (the window's other strings
# are edited in the catalogue at the same time).
MORE_CONTEXT = "EngineMessages"
MORE_TEMPLATES: tuple[str, ...] = (
    # The network and the requests (core/errors.py, core/transport.py, core/cleanup.py).
    QT_TRANSLATE_NOOP("EngineMessages", "the OSS endpoint"),
    QT_TRANSLATE_NOOP("EngineMessages", "the connection failed"),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "OSS could not be reached or did not accept it (%1, HTTP %2)"
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "OSS could not be reached or did not accept it (%1)"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The proxy address is not an http:// or https:// proxy (the only kinds ossdesk uses). "
        "Check HTTPS_PROXY / HTTP_PROXY / NO_PROXY.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The proxy %1 could not carry the request to %2 (%3). Check HTTPS_PROXY / HTTP_PROXY "
        "/ NO_PROXY.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The proxy %1 could not carry the request to %2. Check HTTPS_PROXY / HTTP_PROXY / "
        "NO_PROXY.",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "the proxy %1 could not carry the request (%2)"),
    QT_TRANSLATE_NOOP("EngineMessages", "the proxy %1 could not carry the request"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The proxy %1 refused the request: it wants a user name and password, or refused the "
        "ones given. Put them in the proxy address (http://USER:PASSWORD@HOST:PORT in "
        "HTTPS_PROXY / HTTP_PROXY).",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The HTTPS certificate of %1 is not trusted, so nothing was sent. Check the endpoint "
        "address; %2",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "if your network inspects HTTPS traffic, its certificate authority must be installed "
        "on this computer.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "if your network inspects HTTPS traffic, its certificate authority must be in the "
        "file REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "if your network inspects HTTPS traffic, name a file with its certificate authority "
        "in REQUESTS_CA_BUNDLE (this system's certificate store could not be used).",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "The request to %1 could not be made: %2."),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "the request's address holds a control character or a space"
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "the header %1 holds a line break"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 sent an answer that breaks HTTP (%2). Check the endpoint address and port; if "
        "they are right, tell the server's operator.",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "%1 sent an answer that breaks HTTP"),
    QT_TRANSLATE_NOOP("EngineMessages", "The request is not valid: %1"),
    QT_TRANSLATE_NOOP("EngineMessages", "Data arrived damaged (checksum mismatch)."),
    QT_TRANSLATE_NOOP("EngineMessages", "The request could not be made."),
    # Accounts and their connection test (core/oss.py).
    QT_TRANSLATE_NOOP(
        "EngineMessages", "The credentials could not be read (%1). Check the profile's secret."
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 is not an endpoint address. Write it like https://oss-cn-hangzhou.aliyuncs.com.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 uses plain http: the data and the request signatures would travel unencrypted. "
        "Use https://, or confirm that plain http is wanted.",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "The signature version must be v4 or v1."),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "Signature V4 needs the bucket's region (like cn-hangzhou), and it cannot be read "
        "from %1. Enter the region in the profile, or choose signature V1.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The bucket name %1 or the endpoint %2 is not valid. Bucket names are 3 to 63 "
        "lowercase letters, digits and hyphens.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The credentials are valid but may neither read the bucket's information nor list "
        "it. Uploads work only if the RAM policy allows oss:PutObject; ask the bucket's owner.",
    ),
    # A file's steps (core/file_steps.py, core/upload.py, core/plan.py, core/scheduler.py).
    QT_TRANSLATE_NOOP("EngineMessages", "paused"),
    QT_TRANSLATE_NOOP("EngineMessages", "%1 Tried %2 time."),
    QT_TRANSLATE_NOOP("EngineMessages", "part %1 of %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "unexpected error: %1: %2"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "OSS received %1 damaged on the way (its MD5 differed from the Content-MD5 sent) and "
        "refused it",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "OSS gave no CRC-64 for %1; it is sent again with its MD5"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "OSS gave no CRC-64 for %1, and its ETag (%2) is not the MD5 of the data sent (%3): "
        "the data cannot be verified",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "the CRC64 OSS reports for %1 (%2) does not match the data sent (%3)"
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1: its size changed while it was read (%2 bytes stated, more read); it is a special "
        "file (like those in /proc), not a regular one, and is not uploaded",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1: its size changed while it was read (%2 bytes stated, %3 read); it is a special "
        "file (like those in /proc), not a regular one, and is not uploaded",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "internal error: parts %1... do not cover the file"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "OSS answered the upload of %1 with an ETag that does not match the data, and the "
        "object does not match the file either: upload it again",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 unfinished multipart upload of %2 begun at %3 (when ossdesk was interrupted while "
        "starting this file, around %4) was left alone: it may be the upload this computer "
        "began before it stopped, or another client's. It stays on the server, billed, until "
        "aborted: %5 lists it and can abort it",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 unfinished multipart uploads of %2 begun at %3 (when ossdesk was interrupted while "
        "starting this file, around %4) were left alone: one may be the upload this computer "
        "began before it stopped, others may be another client's. They stay on the server, "
        "billed, until aborted: %5 lists them and can abort them",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "the upload was no longer on the server when it was completed"
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 changed while it was being uploaded, so it is sent again as it is now",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "not cancelled: its unfinished upload could not be aborted on the server (%1); cancel "
        "it again to abort it",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 is gone; its unfinished upload could not be aborted on the server (%2): %3 tries "
        "again, %4 aborts it and keeps it in the list as cancelled",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "%1 became shorter while it was read"),
    QT_TRANSLATE_NOOP("EngineMessages", "cannot read %1: %2"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "This file is %1; OSS stores objects of at most %2 (%3 parts of %4). Split the file "
        "into smaller pieces before uploading it.",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "The part size %1 is below the OSS minimum; %2 is used."),
    QT_TRANSLATE_NOOP("EngineMessages", "The part size %1 is above the OSS maximum; %2 is used."),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "With %1 parts this %2 file would need %3 parts, more than the OSS limit of %4; the "
        "part size is raised to %5.",
    ),
    # Object keys (core/upload.py, check_key).
    QT_TRANSLATE_NOOP("EngineMessages", "an object key cannot be empty"),
    QT_TRANSLATE_NOOP("EngineMessages", "the object key '%1' is not valid UTF-8"),
    QT_TRANSLATE_NOOP("EngineMessages", "the object key %1 is not in NFC form"),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "the object key %1 starts with %2, which OSS does not allow"
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "the object key for %1... is %2 bytes long; OSS allows at most %3 (UTF-8): use a "
        "shorter prefix or file name",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "the object key %1 contains a '.' or '..' segment"),
    QT_TRANSLATE_NOOP("EngineMessages", "the object key %1 contains control characters"),
    # The walk's problems (core/walk.py, core/watch.py).
    QT_TRANSLATE_NOOP("EngineMessages", "%1: no such file or folder"),
    QT_TRANSLATE_NOOP("EngineMessages", "%1: not a regular file or folder"),
    QT_TRANSLATE_NOOP("EngineMessages", "%1: not a regular file; skipped"),
    QT_TRANSLATE_NOOP("EngineMessages", "%1: cannot be read (%2)"),
    QT_TRANSLATE_NOOP("EngineMessages", "%1: cannot be listed (%2)"),
    QT_TRANSLATE_NOOP("EngineMessages", "%1: permission denied"),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "%1: a link back to a folder already included (a loop); skipped"
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1: the name is not valid UTF-8, which an object key and the upload list must be; "
        "rename it to upload it (left out)",
    ),
    # The upload list (core/store.py).
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "the folder of the upload list, %1, cannot be written (%2); ossdesk writes there even "
        "to read the list: make it writable, or set OSSDESK_HOME to a folder that is",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "the upload list could not be updated: its rows do not agree with each other",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "cannot create the folder for the upload list %1: %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "cannot lock the upload list %1: %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "cannot open the upload list %1: %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "the upload list %1 cannot be used: %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "the upload list is closed"),
    QT_TRANSLATE_NOOP("EngineMessages", "there is no upload list yet"),
    QT_TRANSLATE_NOOP("EngineMessages", "the upload list needs an update; run an upload first"),
    # Drops finished at start (ui/engine_adapter.py).
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "Finished adding %1, which was still being listed when ossdesk stopped: %2 more "
        "file(s) added.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "Finished adding %1, which was still being listed when ossdesk stopped: %2 more "
        "file(s) added; %3 item(s) skipped: %4.",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "%1 and %2 both go to %3; %4 is not added"),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "%1 file(s) of %2 were in the queue already: they continue there."
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1 file(s) of %2 were in the queue already: they stay there (uploads do not resume "
        "by themselves: Resume or Retry continues them).",
    ),
    # A file dropped again whose earlier upload was to be written otherwise
    # (commands/earlier.py, as the window's engine uses it).
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1: the unfinished upload of %2 in the list (row %3) was to be written with %4",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1: the unfinished upload of %2 in the list (row %3) was to be written with %4 (and "
        "the file changed since it began)",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "it is cancelled (its multipart upload is aborted on the server) and the file is "
        "uploaded from the start with this run's options",
    ),
    # The window's engine queues the file once the earlier row is cancelled (engine_adapter).
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "it is being cancelled (its multipart upload is being aborted on the server), then "
        "the file is uploaded from the start with this run's options",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1; it was cancelled (its multipart upload was aborted on the server) and the file "
        "is uploaded from the start with this run's options",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1; it was finished before it could be cancelled, and the file is uploaded again "
        "with this run's options",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "%1; it could not be aborted on the server (%2); %3 is not uploaded, so that the "
        "object is not written with the older options later: cancel that row, then add the "
        "file again",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "another account"),
    QT_TRANSLATE_NOOP("EngineMessages", "other metadata"),
    QT_TRANSLATE_NOOP("EngineMessages", "another storage class"),
    QT_TRANSLATE_NOOP("EngineMessages", "another Content-Type"),
    QT_TRANSLATE_NOOP("EngineMessages", "another ACL"),
    QT_TRANSLATE_NOOP("EngineMessages", "another Cache-Control"),
    QT_TRANSLATE_NOOP("EngineMessages", "another Content-Disposition"),
    QT_TRANSLATE_NOOP("EngineMessages", "other tags"),
    QT_TRANSLATE_NOOP("EngineMessages", "another server-side encryption"),
    QT_TRANSLATE_NOOP("EngineMessages", "another policy for an object already there"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The files of %1 could not all be added (%2); %3 were. They are added when ossdesk "
        "starts next time.",
    ),
    # A row's credentials, read as it starts (credentials.py).
    QT_TRANSLATE_NOOP("EngineMessages", "There is no profile named %1."),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "The profile %1 has no AccessKey ID. Edit the profile and enter one."
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "No AccessKey secret is stored for the profile %1. Edit the profile and enter the "
        "secret again.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "no credentials: set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (and "
        "OSS_SESSION_TOKEN for STS) in the environment, or use a saved profile",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "cannot get the secret of profile %1: %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "writing to the keyring failed: %1"),
    QT_TRANSLATE_NOOP("EngineMessages", "reading the keyring failed: %1"),
    QT_TRANSLATE_NOOP("EngineMessages", "the secret of profile %1 would be in the keyring: %2"),
    QT_TRANSLATE_NOOP("EngineMessages", "no keyring backend was found"),
    QT_TRANSLATE_NOOP(
        "EngineMessages", "the only keyring found (%1) stores secrets in a plain file"
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "the keyring could not be loaded: %1"),
    QT_TRANSLATE_NOOP("EngineMessages", "the keyring does not answer: %1"),
    # The engine cannot run (core/store.py, ui/engine_process.py).
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "another ossdesk is already uploading with this upload list; wait for it to finish "
        "(or pause it), then try again",
    ),
    QT_TRANSLATE_NOOP("EngineMessages", "The upload engine could not start: %1"),
    QT_TRANSLATE_NOOP("EngineMessages", "the upload engine has stopped"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The upload engine stopped unexpectedly (exit code %1). Uploads are paused where they "
        "were; open ossdesk again to continue them.",
    ),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "The upload engine stopped unexpectedly (exit code %1) (%2). Uploads are paused where "
        "they were; open ossdesk again to continue them.",
    ),
    # A file that starts over while its earlier upload cannot be aborted (core/file_steps.py,
    # core/file_multipart.py).
    QT_TRANSLATE_NOOP("EngineMessages", "%1 changed since its upload began, so it starts over"),
    QT_TRANSLATE_NOOP(
        "EngineMessages",
        "the earlier unfinished upload %1 of %2 could not be aborted: %3; its parts stay in the "
        "bucket, billed, until it is aborted (the bucket's unfinished uploads list it)",
    ),
    # The upload list read by the window (core/store_schema.py) and a plan that does not fit
    # its file (core/file_steps.py).
    QT_TRANSLATE_NOOP("EngineMessages", "there is no upload list of this version of ossdesk yet"),
    QT_TRANSLATE_NOOP("EngineMessages",
                      "the upload list was written by a newer version of ossdesk"),
    QT_TRANSLATE_NOOP("EngineMessages",
                      "internal error: the recorded parts of %1 do not fit the file: %2"),
    # The operating system's words for the commonest failures (a value in the messages).
    QT_TRANSLATE_NOOP("EngineMessages", "Permission denied"),
    QT_TRANSLATE_NOOP("EngineMessages", "No such file or directory"),
    QT_TRANSLATE_NOOP("EngineMessages", "Connection refused"),
    QT_TRANSLATE_NOOP("EngineMessages", "Connection reset by peer"),
    QT_TRANSLATE_NOOP("EngineMessages", "Network is unreachable"),
    QT_TRANSLATE_NOOP("EngineMessages", "No route to host"),
    QT_TRANSLATE_NOOP("EngineMessages", "No space left on device"),
    QT_TRANSLATE_NOOP("EngineMessages", "Read-only file system"),
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
    context: str
    source: str
    pattern: re.Pattern[str]
    numbers: tuple[str, ...]  # the placeholder numbers, in the order they appear


@cache
def _templates() -> tuple[_Template, ...]:
    compiled = []
    every = [(CONTEXT, t) for t in TEMPLATES] + [(MORE_CONTEXT, t) for t in MORE_TEMPLATES]
    for context, source in every:
        pieces = _PLACEHOLDER.split(source)
        regex = "".join(
            "(.+?)" if i % 2 else re.escape(piece) for i, piece in enumerate(pieces)
        )
        compiled.append(
            _Template(context, source, re.compile(regex + r"\Z", re.DOTALL), tuple(pieces[1::2]))
        )
    # The longest templates first: the most specific wording wins.
    return tuple(sorted(compiled, key=lambda t: -len(t.source)))


def engine_text(message: str, *, depth: int = 0) -> str:
    """``message`` (as the engine wrote it) in the window's language; unchanged in English
    or when the message is not one of the engine's known ones."""
    return _translated(message, depth, lists=True, memo={})


# What a piece of one message was translated to (a piece is tried in many combinations).
_Memo = dict[tuple[str, bool], str]


def _translated(message: str, depth: int, *, lists: bool, memo: _Memo) -> str:
    if not message or depth > 4:
        return message
    known = memo.get((message, lists))
    if known is None:
        known = memo[(message, lists)] = _translate(message, depth, lists, memo)
    return known


def _translate(message: str, depth: int, lists: bool, memo: _Memo) -> str:
    # A list of known messages joined by "; " (a walk's problems): each is translated on
    # its own, before a template's value swallows the ones before it.
    listed = _listed(message, depth, memo) if lists else None
    if listed is not None:
        return listed
    for template in _templates():
        match = template.pattern.match(message)
        if match is None:
            continue
        translated = QCoreApplication.translate(template.context, template.source)
        if translated == template.source:
            return message
        values = {
            number: _translated(value, depth + 1, lists=True, memo=memo)
            for number, value in zip(template.numbers, match.groups(), strict=True)
        }
        return _fill(translated, values)
    return _compound(message, depth, memo)


# How the engine joins its phrases, and how the translation joins them (a Chinese sentence
# ends with its own full stop; its clauses are joined by a full-width semicolon).
_SENTENCES = re.compile(r"(?<=\.) ")
_CLAUSES = re.compile(r"; ")
_ASIDE = re.compile(r"(.+) \(([^()]*)\)(\.?)", re.DOTALL)


def _listed(message: str, depth: int, memo: _Memo) -> str | None:
    if "; " not in message or len(message) > 4000:
        return None
    cuts = [m.start() for m in _CLAUSES.finditer(message)]
    joined = _segments(message, cuts, depth, memo) if len(cuts) <= 24 else None
    return None if joined is None else "\uff1b".join(joined)


def _compound(message: str, depth: int, memo: _Memo) -> str:
    """A message the engine made by joining known phrases (a plan's notices, a path and
    what is wrong with it, a phrase and the file it concerns in brackets), translated
    phrase by phrase; the message itself when a phrase is not known."""
    if depth > 4 or len(message) > 4000:
        return message
    cuts = [m.start() for m in _SENTENCES.finditer(message)]
    if 0 < len(cuts) <= 24:
        joined = _segments(message, cuts, depth, memo)
        if joined is not None:
            return "".join(joined)
    aside = _ASIDE.fullmatch(message)
    if aside is not None:  # "Permission denied (/path)"
        head = _translated(aside.group(1), depth + 1, lists=True, memo=memo)
        if head != aside.group(1):
            return f"{head}\uff08{aside.group(2)}\uff09" + ("\u3002" if aside.group(3) else "")
    # "PATH: what is wrong": the path stays, the rest is a known phrase.
    for found in re.finditer(": ", message):
        rest = message[found.end():]
        text = _translated(rest, depth + 1, lists=True, memo=memo)
        if text != rest:
            return message[:found.start()] + "\uff1a" + text
    return message


def _segments(message: str, cuts: list[int], depth: int, memo: _Memo) -> list[str] | None:
    """``message`` cut at some of ``cuts`` (each a separator of two characters) into
    pieces that are each a known message, translated; None when it cannot be."""
    ends = [*cuts, len(message)]
    starts = [0, *(c + 2 if message[c] == ";" else c + 1 for c in cuts)]
    best: dict[int, list[str] | None] = {len(ends): []}
    for i in range(len(starts) - 1, -1, -1):
        best[i] = None
        for j in range(i, len(ends)):
            rest = best.get(j + 1)
            if rest is None:
                continue
            piece = message[starts[i]:ends[j]]
            text = _translated(piece, depth + 1, lists=False, memo=memo)
            if text != piece:
                best[i] = [text, *rest]
                break
    return best[0] if best[0] is not None and len(best[0]) > 1 else None


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
