"""The command line's output: the live view only where the terminal understands it."""

from __future__ import annotations

import io
import json
import threading

import pytest

from ossdesk.commands import Display, ansi_supported
from ossdesk.core.events import Cancelled, Done, Progress, Queued, Started


class Terminal(io.StringIO):
    """A text stream that says it is (or is not) a terminal; it has no console handle."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no file descriptor")


@pytest.mark.parametrize(("tty", "env", "platform", "expected"), [
    (False, {"TERM": "xterm-256color"}, "linux", False),  # a pipe or a file
    (True, {"TERM": "dumb"}, "linux", False),  # e.g. an editor's shell buffer
    (True, {"TERM": "xterm-256color"}, "linux", True),
    (True, {}, "darwin", True),
    (True, {"TERM": "dumb", "WT_SESSION": "1"}, "win32", False),
    (True, {"WT_SESSION": "0b1c"}, "win32", True),  # Windows Terminal
    (True, {"ConEmuANSI": "ON"}, "win32", True),
    (True, {"TERM": "xterm"}, "win32", True),  # mintty (Git Bash)
    (True, {"TERM_PROGRAM": "vscode"}, "win32", True),
    (True, {}, "win32", False),  # an old console whose VT mode cannot be switched on
])
def test_ansi_supported(tty: bool, env: dict[str, str], platform: str, expected: bool) -> None:
    assert ansi_supported(Terminal(tty), environ=env, platform=platform) is expected


def _events() -> list[object]:
    return [
        Queued(upload=1, source="/d/a.bin", key="a.bin", size=1000, bucket="b"),
        Started(upload=1, key="a.bin", size=1000, confirmed_bytes=0, resumed=False,
                multipart=False),
        Progress(upload=1, confirmed_bytes=500, sent_bytes=100, total=1000, speed=10.0,
                 eta=50.0),
        Done(upload=1, key="a.bin", size=1000, crc64=7, etag="E", seconds=1.0),
        Done(upload=2, key="b.bin", size=10, crc64=8, etag="F", seconds=0.0, skipped=True),
    ]


def test_a_dumb_terminal_gets_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    out = Terminal(tty=True)
    display = Display(stream=out, err_stream=io.StringIO())
    assert display.live is False
    display.start()
    for event in _events()[:4]:
        display(event)  # type: ignore[arg-type]
    display.stop()
    text = out.getvalue()
    assert "\x1b" not in text
    assert text.startswith("done     a.bin")


def test_a_real_terminal_gets_the_live_view(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Terminal(tty=True)
    display = Display(stream=out, err_stream=io.StringIO(), refresh=0.01)
    if not display.live:
        pytest.skip("only where the platform's terminal check passes (not Windows)")
    for event in _events()[:3]:
        display(event)  # type: ignore[arg-type]
    display._print("note")  # prints, then draws the bars
    display._print("again")  # moves the cursor up over the bars first
    assert "[##########" in out.getvalue() and "\x1b[2F\x1b[J" in out.getvalue()


def test_a_skipped_file_says_so() -> None:
    out = Terminal(tty=False)
    display = Display(stream=out, err_stream=io.StringIO())
    display(Queued(upload=2, source="/d/b.bin", key="b.bin", size=10, bucket="b"))
    display(_events()[4])  # type: ignore[arg-type]
    assert out.getvalue().startswith("skipped  b.bin")
    assert "already in OSS, identical" in out.getvalue()
    assert (display.done, display.skipped) == (1, 1)


def test_json_lines_from_many_threads_all_arrive_in_each_files_order() -> None:
    out = io.StringIO()
    display = Display(json_mode=True, stream=out, err_stream=io.StringIO())
    display.start()

    def one_file(upload: int) -> None:
        display(Queued(upload=upload, source=f"/d/{upload}", key=f"k{upload}", size=10,
                       bucket="b"))
        display(Started(upload=upload, key=f"k{upload}", size=10, confirmed_bytes=0,
                        resumed=False, multipart=False))
        display(Done(upload=upload, key=f"k{upload}", size=10, crc64=1, etag="E",
                     seconds=0.0))

    def files(first: int) -> None:
        for n in range(100):
            one_file(first + n)

    threads = [threading.Thread(target=files, args=(i * 100,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    display.stop()
    display.write_line('{"event": "summary"}')
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 8 * 100 * 3 + 1 and rows[-1] == {"event": "summary"}
    kinds: dict[int, list[str]] = {}
    for row in rows[:-1]:
        kinds.setdefault(row["upload"], []).append(row["event"])
    assert all(k == ["queued", "started", "done"] for k in kinds.values())
    assert display.done == 800


def test_live_totals_follow_the_events() -> None:
    out = Terminal(tty=True)
    display = Display(stream=out, err_stream=io.StringIO(), live=True)
    for i in range(1, 1001):
        display(Queued(upload=i, source=f"/d/{i}", key=f"f{i}", size=1000, bucket="b"))
    display(Started(upload=1, key="f1", size=1000, confirmed_bytes=0, resumed=False,
                    multipart=True))
    display(Progress(upload=1, confirmed_bytes=400, sent_bytes=100, total=1000, speed=100.0,
                     eta=6.0))
    display(Started(upload=2, key="f2", size=1000, confirmed_bytes=0, resumed=False,
                    multipart=False))
    display(Done(upload=2, key="f2", size=1000, crc64=1, etag="E", seconds=0.1))
    display(Cancelled(upload=3))
    last = out.getvalue().rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("1/999 files done, 997 queued, 1.37 KiB of 976 KiB, 100 B/s"), last
    assert "f1" in out.getvalue().rsplit("\x1b[", 1)[-1]  # the file moving is drawn


def test_retry_lines_at_most_one_per_file_every_few_seconds() -> None:
    """Many parts of one file retrying at once make one line, not a flood; a later retry is
    told again, and every retry reaches ``--json`` (the clock is the test's)."""
    from ossdesk.core.events import Retrying

    now = [100.0]

    def retry(upload: int, attempt: int) -> Retrying:
        return Retrying(upload=upload, reason="cannot connect to 127.0.0.1:9: connection "
                        "refused", code="ConnectionRefused", attempt=attempt, tries=10,
                        delay=4.0, at=0.0)

    out, err = io.StringIO(), io.StringIO()
    display = Display(stream=out, err_stream=err, live=False, clock=lambda: now[0])
    for upload, name in ((1, "big.bin"), (2, "other.bin")):
        display(Queued(upload=upload, source=f"/d/{name}", key=name, size=10, bucket="b"))
    display(retry(1, 2))
    display(retry(1, 2))  # another part of the same file, at the same moment
    display(retry(2, 2))
    now[0] += 4.9
    display(retry(1, 3))
    now[0] += 0.2
    display(retry(1, 3))
    assert err.getvalue().splitlines() == [
        "ossdesk: retrying big.bin in 4.0 s (attempt 2 of 10): cannot connect to "
        "127.0.0.1:9: connection refused",
        "ossdesk: retrying other.bin in 4.0 s (attempt 2 of 10): cannot connect to "
        "127.0.0.1:9: connection refused",
        "ossdesk: retrying big.bin in 4.0 s (attempt 3 of 10): cannot connect to "
        "127.0.0.1:9: connection refused",
    ]
    assert out.getvalue() == ""

    lines = io.StringIO()
    as_json = Display(json_mode=True, stream=lines, clock=lambda: now[0])
    as_json(retry(1, 2))
    as_json(retry(1, 2))
    events = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["retrying", "retrying"]
    assert events[0]["reason"].startswith("cannot connect") and events[0]["attempt"] == 2
