"""Every message the engine can send to the window reads in Chinese in the Chinese window.

The messages are read from the engine's source (tests/gui/engine_messages.py), so a new one
fails here until it has a template and a translation. What may stay in Latin letters:
names, paths, keys, codes, numbers, commands and environment variables, and the text a
server returned, inside a Chinese sentence that says whose words they are.
"""

from __future__ import annotations

import re
from typing import Any

import oss2.exceptions
import pytest

from ossdesk.core import errors
from ossdesk.ui.engine_text import engine_text
from tests.gui.engine_messages import VALUE, engine_messages

# Words that stay as they are in the Chinese window: product and protocol names, codes.
_NAMES = (
    r"OSS|AccessKey|ID|Secret|STS|HTTPS?|CRC-?64|Content-MD5|MD5|ETag|RAM|V[14]|v[14]|[KMGT]iB"
    r"|UTF-8|NFC|FIFO|Endpoint|Bucket|ossdesk|oss2|oss:PutObject|(?:oss-)?cn-hangzhou|--region|/proc"
)
_ALLOWED = re.compile(
    "|".join((
        re.escape(VALUE),
        r"`[^`]*`",  # a command to run
        r"https?://\S*",
        r"\b[A-Z][A-Z0-9_]*_[A-Z0-9_]+\b",  # an environment variable
        r"USER:PASSWORD@HOST:PORT",
        rf"(?<![A-Za-z])(?:{_NAMES})(?![A-Za-z])",
    ))
)


def english_words(text: str) -> list[str]:
    """The English words left in ``text`` once names, codes and values are taken out."""
    return re.findall(r"[A-Za-z]{2,}", _ALLOWED.sub(" ", text))


@pytest.fixture
def chinese(qapp, english):
    assert english.install(qapp, "zh_CN")
    return english


def _samples() -> list[tuple[str, str]]:
    found = [(s.where, s.text) for s in engine_messages()]
    found += [(f"errors._CODE_MESSAGES[{code!r}]", message)
              for code, (_, message) in errors._CODE_MESSAGES.items()]
    found.append(("errors._EXPIRED_MESSAGE", errors._EXPIRED_MESSAGE))
    return found


def test_the_engines_messages_are_found():
    """The reading of the source finds the messages the window has shown in English."""
    texts = {text for _, text in _samples()}
    assert len(texts) > 100
    assert ("Finished adding 'x', which was still being listed when ossdesk stopped: 'x' more "
            "file(s) added; 'x' item(s) skipped: 'x'.") in texts
    assert "'x': no such file or folder" in texts
    assert "cannot connect to 'x': connection refused" in texts
    # A conditional message gives one sample per consistent choice, not per combination.
    left = [t for t in texts if "unfinished multipart upload" in t and "left alone" in t]
    assert len(left) == 2, left


def test_every_engine_message_reads_in_chinese(qapp, chinese):
    english = []
    for where, text in _samples():
        shown = engine_text(text)
        words = english_words(shown)
        if words:
            english.append(f"{where}: {text!r} -> {shown!r} ({' '.join(words)})")
    assert not english, f"{len(english)} messages keep English:\n" + "\n".join(english)


def _server_error(code: str, message: str, status: int = 400) -> oss2.exceptions.OssError:
    return oss2.exceptions.make_exception(_Answer(status, (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>{message}</Message><RequestId>5F0000</RequestId></Error>").encode()))


class _Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.headers = {"x-oss-request-id": "5F0000"}
        self._body = body
        self.request_id = "5F0000"

    def read(self, amt: int | None = None) -> bytes:
        return self._body


@pytest.mark.parametrize("code", ["InvalidArgument", "EntityTooLarge", "SomethingNew"])
def test_the_servers_own_words_are_shown_as_the_servers(qapp, chinese, code):
    said = "The value of the header is not valid"
    error = errors.classify(_server_error(code, said))
    shown = engine_text(error.message)
    assert said in shown  # what OSS said is kept as it said it...
    before, _, after = shown.partition(said)
    assert re.search("OSS 的原话\uff1a\u201c$", before), shown  # ... named as its words
    assert after.startswith("\u201d"), shown
    assert not english_words(before + after), shown


def test_walk_problems_listed_after_a_finished_walk_read_in_chinese(qapp, chinese):
    """The adapter lists the problems of a walk finished at start, joined by '; '."""
    message = ("Finished adding /home/u/photos, which was still being listed when ossdesk "
               "stopped: 3 more file(s) added; 2 item(s) skipped: /home/u/photos/a and "
               "/home/u/photos/A both go to photos/a; /home/u/photos/A is not added; "
               "/home/u/photos/fifo: not a regular file; skipped.")
    shown = engine_text(message)
    assert not english_words(_PATHS.sub(" ", shown)), shown
    assert "/home/u/photos/a \u548c /home/u/photos/A" in shown, shown  # "A and B", in order
    assert "/home/u/photos/fifo\uff1a" in shown, shown


_PATHS = re.compile(r"[\w.]*/[\w./]*")


@pytest.mark.parametrize("message", [
    # A value the engine puts in a message is one of its phrases, or the system's words.
    "A local error stopped the transfer: Permission denied (/home/u/a.bin).",
    "The connection to the OSS endpoint was lost.",
    "OSS gave no CRC-64 for part 3 of a/b.bin; it is sent again with its MD5",
    "/home/u/bad: the object key 'a/\x01' contains control characters",
    # Two notices of the plan, one after the other.
    "The part size 64 KiB is below the OSS minimum; 100 KiB is used. With 100 KiB parts this "
    "2 GiB file would need 20,972 parts, more than the OSS limit of 10,000; the part size is "
    "raised to 1 MiB.",
])
def test_messages_made_of_phrases_read_in_chinese(qapp, chinese, message):
    shown = engine_text(message)
    assert not english_words(_PATHS.sub(" ", shown)), shown


def test_in_english_a_message_made_of_phrases_stays_as_it_is(qapp):
    message = ("Finished adding /p, which was still being listed when ossdesk stopped: 1 more "
               "file(s) added; 1 item(s) skipped: /p/f: not a regular file; skipped.")
    assert engine_text(message) == message


@pytest.mark.parametrize("kind", ["in-process", "process"])
def test_an_upload_list_held_by_another_ossdesk_is_said_in_chinese(qtbot, chinese, tmp_path,
                                                                   kind):
    """Another ossdesk holds the upload list: the window cannot start its engine and says
    why, in Chinese (the message box and the status bar)."""
    from ossdesk.core.store import Store
    from tests.gui.test_engine_text import open_window

    holder = Store.open()  # this process owns the list, as a running `ossdesk upload` would
    try:
        window, engine = open_window(qtbot, "http://127.0.0.1:9", "secret", kind)
        try:
            qtbot.waitUntil(lambda: bool(window.engine_error), timeout=30_000)
            shown = window.engine_error
            assert "ossdesk" in shown
            assert not english_words(shown), shown
            assert not english_words(window.statusBar().currentMessage())
        finally:
            close_window_quietly(qtbot, window, engine)
    finally:
        holder.close()


def close_window_quietly(qtbot: Any, window: Any, engine: Any) -> None:
    from tests.gui.test_engine_window import close_window

    close_window(qtbot, window, engine)


@pytest.fixture
def sandbox(tmp_path):
    from ossdesk.sandbox.server import SandboxServer

    server = SandboxServer(tmp_path / "sandbox-root", port=0).start()
    yield server
    server.stop()


def _wrong_secret(profile: str) -> Any:
    from ossdesk.core.oss import Credentials
    from ossdesk.sandbox.server import DEFAULT_ACCESS_KEY_ID

    return Credentials(DEFAULT_ACCESS_KEY_ID, "a-mistyped-secret")


def _destination(sandbox: Any) -> Any:
    from ossdesk.sandbox.server import DEFAULT_BUCKET, DEFAULT_REGION
    from ossdesk.ui.engine_types import Destination

    return Destination(profile="sandbox", endpoint=sandbox.endpoint, bucket=DEFAULT_BUCKET,
                       region=DEFAULT_REGION)


def test_the_bucket_browser_says_why_it_cannot_list_in_chinese(qtbot, chinese, sandbox):
    from ossdesk.ui.dialogs.folder_browser import FolderBrowserDialog

    dialog = FolderBrowserDialog(_wrong_secret, _destination(sandbox))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: "Secret" in dialog.status.text(), timeout=20_000)
    assert not english_words(dialog.status.text()), dialog.status.text()


def test_the_unfinished_uploads_dialog_says_why_it_cannot_list_in_chinese(qtbot, chinese,
                                                                           sandbox):
    from ossdesk.ui.dialogs.unfinished_uploads import UnfinishedUploadsDialog

    dialog = UnfinishedUploadsDialog(_wrong_secret, _destination(sandbox), None)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.loaded, timeout=20_000)
    assert "Secret" in dialog.status.text(), dialog.status.text()
    assert not english_words(dialog.status.text()), dialog.status.text()


def test_a_watched_folders_error_reads_in_chinese(qtbot, chinese, tmp_path):
    """A watched folder whose files could not be queued (the upload list failed) shows the
    list's own words in its state, in Chinese."""
    from ossdesk.core.store import Store, StoreError
    from ossdesk.ui.watched import WatchedFolderModel, WatchState
    from tests.gui.test_watched_folders import _bare_window, _spec

    store = Store.open()
    store.close()
    with pytest.raises(StoreError) as failure:
        store.rows()  # a real failure of the list, with its real words
    folder = tmp_path / "renders"
    folder.mkdir()
    window = _bare_window(qtbot)
    assert window.watched.add(_spec(folder)) is not None
    [entry] = window.watched.panel.model.manager.entries
    entry.state, entry.error = WatchState.ERROR, str(failure.value)
    model = window.watched.panel.model
    shown = model.data(model.index(0, WatchedFolderModel.STATE))
    assert shown.startswith("\u9519\u8bef"), shown  # "错误"
    assert not english_words(shown), shown


@pytest.mark.parametrize("kind", ["in-process", "process"])
def test_a_failed_check_for_existing_objects_reads_in_chinese(qtbot, chinese, tmp_path, kind):
    """The drop's check for objects already in the bucket cannot reach the endpoint: the
    warning says why in Chinese (the files are queued anyway)."""
    from tests.gui.test_engine_text import closed_port, open_window
    from tests.gui.test_engine_window import close_window

    (tmp_path / "a.txt").write_text("a")
    window, engine = open_window(qtbot, f"http://127.0.0.1:{closed_port()}", "secret", kind)
    warnings: list[str] = []
    window.statusBar().messageChanged.connect(warnings.append)
    try:
        window.add_paths([str(tmp_path / "a.txt")])
        qtbot.waitUntil(lambda: any("\u65e0\u6cd5\u68c0\u67e5" in w for w in warnings),
                        timeout=30_000)  # "无法检查"
        for warning in (w for w in warnings if "\u65e0\u6cd5\u68c0\u67e5" in w):
            assert not english_words(_PATHS.sub(" ", warning)), warning
    finally:
        close_window(qtbot, window, engine)


def test_an_earlier_upload_replaced_by_a_drop_reads_in_chinese(qapp, chinese):
    """A file dropped again with other options: the engine cancels its earlier upload."""
    message = ("drop/x.bin: the unfinished upload of /home/u/x.bin in the list (row 3) was to "
               "be written with another storage class; it is cancelled (its multipart upload "
               "is aborted on the server) and the file is uploaded from the start with this "
               "run's options")
    shown = engine_text(message)
    assert not english_words(_PATHS.sub(" ", shown)), shown
    assert "另一种存储类型" in shown and "/home/u/x.bin" in shown, shown
