"""Test-only fault injection for the sandbox server.

Every rule matches requests by HTTP method (``None`` = any) and a regular expression that is
searched in ``"<decoded path>?<raw query>"``, e.g. ``r"partNumber=3\\b"`` or
``r"^/sandbox/big\\.bin\\?"``. A rule fires for the next ``count`` matching requests
(``count=None``: forever) and is then dropped.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ossdesk.sandbox.formats import quote_etag

if TYPE_CHECKING:
    from ossdesk.sandbox.server import SandboxServer

KINDS = ("reset", "error", "delay", "corrupt", "drop")
#: What a "corrupt" rule damages: the answer's CRC-64 or ETag header, the answer without its
#: CRC-64 header (like the oss-emulator and some gateways), or the request body as received
#: (one byte flipped: damaged in flight, after the client computed its checksums).
CORRUPT_FIELDS = ("crc64", "etag", "omit-crc64", "body")


@dataclass
class Rule:
    kind: str
    method: str | None
    pattern: str
    count: int | None
    # kind-specific
    after_bytes: int = 0  # reset
    status: int = 503  # error
    code: str = ""  # error
    seconds: float = 0.0  # delay
    target: str = "crc64"  # corrupt: one of CORRUPT_FIELDS
    hits: int = 0
    _regex: re.Pattern[str] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._regex = re.compile(self.pattern)
        if self.method is not None:
            self.method = self.method.upper()

    def matches(self, method: str, target: str) -> bool:
        return (self.method is None or self.method == method) and bool(
            self._regex.search(target))

    def describe(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return data


@dataclass(frozen=True)
class Decision:
    """What to do to one request; filled from the rules that fired for it."""

    reset_after: int | None = None
    error: tuple[int, str] | None = None
    delay: float = 0.0
    corrupt: frozenset[str] = frozenset()
    drop_response: bool = False


class Faults:
    """The fault rules of one server (``server.faults``). All methods are thread-safe."""

    def __init__(self, server: SandboxServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._rules: list[Rule] = []

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def reset_after(self, nbytes: int, *, method: str | None = "PUT", pattern: str = "",
                    count: int | None = 1) -> Rule:
        """Reset the connection (TCP RST) after ``nbytes`` of a matching request's body."""
        return self._add(Rule("reset", method, pattern, count, after_bytes=nbytes))

    def fail(self, status: int = 503, *, method: str | None = None, pattern: str = "",
             count: int | None = 1, code: str = "") -> Rule:
        """Answer matching requests with ``status`` and an OSS error body (body discarded)."""
        if not code:
            code = {500: "InternalError", 503: "ServiceUnavailable"}.get(status, "InternalError")
        return self._add(Rule("error", method, pattern, count, status=status, code=code))

    def delay(self, seconds: float, *, method: str | None = None, pattern: str = "",
              count: int | None = 1) -> Rule:
        """Hold the response of matching requests for ``seconds`` (after handling them)."""
        return self._add(Rule("delay", method, pattern, count, seconds=seconds))

    def corrupt(self, field: str = "crc64", *, method: str | None = None, pattern: str = "",
                count: int | None = 1) -> Rule:
        """Send a wrong ``x-oss-hash-crc64ecma`` (``field="crc64"``) or ETag (``"etag"``),
        leave the CRC-64 header out (``"omit-crc64"``), or flip the first byte of the
        request body as it arrives (``"body"``)."""
        if field not in CORRUPT_FIELDS:
            raise ValueError(f"field must be one of {CORRUPT_FIELDS}")
        return self._add(Rule("corrupt", method, pattern, count, target=field))

    def omit_crc64(self, *, method: str | None = None, pattern: str = "",
                   count: int | None = None) -> Rule:
        """Answer matching requests without ``x-oss-hash-crc64ecma`` (a server that does not
        compute CRC-64, such as the oss-emulator). Forever by default."""
        return self.corrupt("omit-crc64", method=method, pattern=pattern, count=count)

    def damage_body(self, *, method: str | None = "PUT", pattern: str = "",
                    count: int | None = 1) -> Rule:
        """Flip the first byte of a matching request's body as the server receives it: the
        bytes stored differ from the bytes sent (a body damaged in flight)."""
        return self.corrupt("body", method=method, pattern=pattern, count=count)

    def drop_response(self, *, method: str | None = None, pattern: str = "",
                      count: int | None = 1) -> Rule:
        """Handle matching requests fully (the change is made), then reset the connection
        instead of answering: the client never learns that the request went through."""
        return self._add(Rule("drop", method, pattern, count))

    def forget_upload(self, upload_id: str) -> bool:
        """Drop an upload id and its parts now: its next use answers NoSuchUpload."""
        return self._server.store.delete_upload(upload_id)

    def forget_all_uploads(self) -> int:
        """Drop every in-progress multipart upload; returns how many there were."""
        n = 0
        for bucket in self._server.store.buckets():
            for up in self._server.store.list_uploads(bucket):
                n += self._server.store.delete_upload(up.upload_id)
        return n

    def expire_token(self) -> None:
        """The configured STS token expires: requests carrying it get SecurityTokenExpired."""
        self._server.expire_security_token()

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self._rules]

    def decide(self, method: str, target: str) -> Decision:
        """Consume one use of every rule matching this request and say what to do."""
        reset: int | None = None
        error: tuple[int, str] | None = None
        delay = 0.0
        corrupt: set[str] = set()
        drop = False
        with self._lock:
            if not self._rules:
                return Decision()
            for rule in list(self._rules):
                if not rule.matches(method, target):
                    continue
                if rule.kind == "reset":
                    if reset is not None:
                        continue
                    reset = rule.after_bytes
                elif rule.kind == "error":
                    if error is not None:
                        continue
                    error = (rule.status, rule.code)
                elif rule.kind == "delay":
                    delay += rule.seconds
                elif rule.kind == "drop":
                    drop = True
                else:
                    corrupt.add(rule.target)
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
        return Decision(reset, error, delay, frozenset(corrupt), drop)

    def apply_json(self, payload: dict[str, Any]) -> Any:
        """The HTTP control endpoint's entry: ``{"action": name, ...keyword arguments}``."""
        action = payload.pop("action", None)
        allowed: dict[str, Callable[..., Any]] = {
            "reset_after": self.reset_after, "fail": self.fail, "delay": self.delay,
            "corrupt": self.corrupt, "drop_response": self.drop_response,
            "omit_crc64": self.omit_crc64, "damage_body": self.damage_body,
            "forget_upload": self.forget_upload,
            "forget_all_uploads": self.forget_all_uploads, "expire_token": self.expire_token,
            "clear": self.clear, "rules": self.rules,
        }
        if action not in allowed:
            raise ValueError(f"unknown action {action!r}; one of {sorted(allowed)}")
        result = allowed[action](**payload)
        if isinstance(result, Rule):
            return result.describe()
        return result


def corrupt_headers(headers: list[tuple[str, str]],
                    fields: frozenset[str]) -> list[tuple[str, str]]:
    out = []
    for name, value in headers:
        low = name.lower()
        new = value
        if low == "x-oss-hash-crc64ecma" and "omit-crc64" in fields:
            continue
        if low == "x-oss-hash-crc64ecma" and "crc64" in fields:
            new = str((int(value) + 1) % 2**64)
        elif low == "etag" and "etag" in fields:
            inner = value.strip('"')
            new = quote_etag(("0" if inner[0] != "0" else "1") + inner[1:])
        out.append((name, new))
    return out


# ====================================================================== the sandbox
