"""Part-size planning inside the OSS limits, and the size / rate / duration units users type.

OSS multipart limits: 1..10,000 parts; every part but the last 100 KiB..5 GiB; so an object
is at most 10,000 x 5 GiB (48.8 TiB). A single PutObject carries at most 5 GiB.

Units: ``KiB``/``MiB``/``GiB``/``TiB`` and the single letters ``K``/``M``/``G``/``T`` are
powers of 1024; ``kB``/``MB``/``GB``/``TB`` are powers of 1000 (as disk makers print them).
For rates, a ``bit`` unit (``200Mbit``, ``200Mbit/s``, ``200Mbps``) is bits per second with
network (power-of-1000) prefixes unless an ``i`` makes them binary (``Mibit``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MAX_PUT_SIZE",
    "MIN_PART_SIZE",
    "PART_SECONDS",
    "START_PART_SIZE",
    "FileTooLarge",
    "GiB",
    "KiB",
    "MiB",
    "PartPlan",
    "TiB",
    "adaptive_part_size",
    "format_duration",
    "format_rate",
    "format_size",
    "grown_part_size",
    "parse_rate",
    "parse_size",
    "plan_parts",
    "recorded_plan",
    "use_single_put",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART_SIZE = 100 * KiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = MAX_PARTS * MAX_PART_SIZE
MAX_PUT_SIZE = 5 * GiB
DEFAULT_PART_SIZE = 8 * MiB
PART_SECONDS = 4.0
"""How long one part should take to send, so that OSS confirms one every few seconds."""
START_PART_SIZE = 2 * MiB
"""The part size of a new upload before any throughput was measured."""


class FileTooLarge(ValueError):
    """The file is larger than the largest object OSS can store."""


@dataclass(frozen=True)
class PartPlan:
    """How one file is cut into parts: every part has ``part_size`` bytes but the last.

    A plan that grew (:meth:`grow`) opens with ``head_parts`` parts of ``head_size`` bytes
    (the parts sent before the link's speed was known), and cuts the rest of the file into
    ``part_size`` parts. ``grows``: the rest may still be cut anew once the speed is known
    (a new upload whose rate was not known yet).
    """

    file_size: int
    part_size: int
    part_count: int
    notice: str | None = None
    """Set when the requested part size could not be used as is: says why, for the user."""
    head_parts: int = 0
    head_size: int = 0
    grows: bool = False

    def part(self, number: int) -> tuple[int, int]:
        """The ``(offset, length)`` of part ``number`` (1-based)."""
        if not 1 <= number <= self.part_count:
            raise IndexError(f"part {number} is outside 1..{self.part_count}")
        if number <= self.head_parts:
            return (number - 1) * self.head_size, self.head_size
        offset = self.head_parts * self.head_size + (number - self.head_parts - 1) * self.part_size
        return offset, min(self.part_size, self.file_size - offset)

    def parts(self) -> Iterator[tuple[int, int, int]]:
        """Every part as ``(number, offset, length)``, in order."""
        for number in range(1, self.part_count + 1):
            offset, length = self.part(number)
            yield number, offset, length

    def grow(self, head_parts: int, part_size: int) -> PartPlan:
        """This plan with its first ``head_parts`` parts kept and the rest of the file cut
        into ``part_size`` parts: raised (to a whole MiB) if the plan would otherwise need
        more than 10,000 parts, at most 5 GiB. Only a plan of equal parts grows, and only
        while some of the file is left after the head."""
        if self.head_parts:
            raise ValueError("this plan has grown already")
        if not 0 <= head_parts < self.part_count:
            raise ValueError(f"{head_parts} parts of {self.part_count} cannot open the plan")
        start = head_parts * self.part_size
        rest = self.file_size - start
        if rest <= 0:
            raise ValueError("nothing of the file is left after the head")
        size = max(MIN_PART_SIZE, min(part_size, MAX_PART_SIZE))
        room = MAX_PARTS - head_parts
        if _ceil_div(rest, size) > room:
            size = min(MAX_PART_SIZE, _ceil_div(_ceil_div(rest, room), MiB) * MiB)
        return PartPlan(file_size=self.file_size, part_size=size,
                        part_count=head_parts + _ceil_div(rest, size),
                        head_parts=head_parts, head_size=self.part_size)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plan_parts(file_size: int, part_size: int | None = None) -> PartPlan:
    """Plan the parts of a ``file_size``-byte file, honouring ``part_size`` when it is legal.

    A part size below 100 KiB is raised to 100 KiB and one above 5 GiB lowered to 5 GiB; if
    the file would need more than 10,000 parts, the part size grows (to a whole MiB) just
    enough. Each adjustment of a requested size is explained in :attr:`PartPlan.notice`
    (``part_size=None`` means the default, grown silently when needed). A 0-byte file is one
    empty part. A file over 48.8 TiB raises :class:`FileTooLarge`.
    """
    if file_size < 0:
        raise ValueError(f"a file size cannot be negative ({file_size})")
    if file_size > MAX_OBJECT_SIZE:
        raise FileTooLarge(
            f"This file is {format_size(file_size)}; OSS stores objects of at most "
            f"{format_size(MAX_OBJECT_SIZE)} ({MAX_PARTS:,} parts of {format_size(MAX_PART_SIZE)})."
            " Split the file into smaller pieces before uploading it."
        )
    notices: list[str] = []
    size = DEFAULT_PART_SIZE if part_size is None else part_size
    if size < MIN_PART_SIZE:
        notices.append(
            f"The part size {format_size(size)} is below the OSS minimum; "
            f"{format_size(MIN_PART_SIZE)} is used."
        )
        size = MIN_PART_SIZE
    elif size > MAX_PART_SIZE:
        notices.append(
            f"The part size {format_size(size)} is above the OSS maximum; "
            f"{format_size(MAX_PART_SIZE)} is used."
        )
        size = MAX_PART_SIZE
    if _ceil_div(file_size, size) > MAX_PARTS:
        grown = min(MAX_PART_SIZE, _ceil_div(_ceil_div(file_size, MAX_PARTS), MiB) * MiB)
        notices.append(
            f"With {format_size(size)} parts this {format_size(file_size)} file would need "
            f"{_ceil_div(file_size, size):,} parts, more than the OSS limit of {MAX_PARTS:,}; "
            f"the part size is raised to {format_size(grown)}."
        )
        size = grown
    count = max(1, _ceil_div(file_size, size))
    return PartPlan(
        file_size=file_size,
        part_size=size,
        part_count=count,
        # Growing the default is the planner's own choice, not a change to the user's wish.
        notice=" ".join(notices) if notices and part_size is not None else None,
    )


def adaptive_part_size(file_size: int, rate: float | None, parallel: int, *,
                       ceiling: int = DEFAULT_PART_SIZE,
                       seconds: float = PART_SECONDS) -> int:
    """The part size for a new upload so that one part takes about ``seconds`` to send.

    ``rate``: the measured (or limited) throughput in bytes per second shared by the
    ``parallel`` parts in flight; None or 0 when nothing is known yet, which gives
    :data:`START_PART_SIZE`. The size is rounded to 64 KiB, at least the OSS minimum and at most
    ``ceiling`` (the configured part size), and grows (to a whole MiB) when the file would
    need more than 10,000 parts.
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    ceiling = max(MIN_PART_SIZE, min(ceiling, MAX_PART_SIZE))
    if rate is None or not math.isfinite(rate) or rate <= 0:
        size = START_PART_SIZE
    else:
        size = round(rate / parallel * seconds / (64 * KiB)) * 64 * KiB
    size = max(MIN_PART_SIZE, min(size, ceiling))
    if _ceil_div(file_size, size) > MAX_PARTS:
        size = min(MAX_PART_SIZE, _ceil_div(_ceil_div(file_size, MAX_PARTS), MiB) * MiB)
    return size


def grown_part_size(sent: int, seconds: float, *, ceiling: int = DEFAULT_PART_SIZE,
                    part_seconds: float = PART_SECONDS) -> int:
    """The part size for the rest of an upload whose parts took ``seconds`` for every
    ``sent`` bytes (the time of its first parts, with the others in flight beside them):
    about ``part_seconds`` per part, rounded to 64 KiB, between the OSS minimum and
    ``ceiling`` (the configured part size). No time measured (0) is the ceiling."""
    ceiling = max(MIN_PART_SIZE, min(ceiling, MAX_PART_SIZE))
    if sent <= 0:
        raise ValueError("nothing was sent to measure")
    if seconds <= 0 or not math.isfinite(seconds):
        return ceiling
    size = round(sent / seconds * part_seconds / (64 * KiB)) * 64 * KiB
    return max(MIN_PART_SIZE, min(size, ceiling))


def recorded_plan(file_size: int, part_size: int, *, head_size: int | None = None,
                  head_parts: int | None = None) -> PartPlan:
    """The plan of an upload as its row records it: ``part_size`` parts; with ``head_size``
    (a new upload begun before the link's speed was known) ``head_size`` parts that may
    still grow (``head_parts`` None), or ``head_parts`` of them and then ``part_size`` ones.
    """
    if head_size is None:
        return plan_parts(file_size, part_size)
    plan = plan_parts(file_size, head_size)
    if head_parts is None:
        return replace(plan, grows=True)
    return plan.grow(head_parts, part_size)


def use_single_put(file_size: int, part_size: int) -> bool:
    """True when the file goes as one PutObject: it fits in one part and in one PUT."""
    return file_size <= part_size and file_size <= MAX_PUT_SIZE


# --- units ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z/]*)\s*$")

_BYTE_UNITS: dict[str, int] = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB, "t": TiB, "tib": TiB,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
}
_BIT_PREFIXES: dict[str, int] = {
    "": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
    "ki": KiB, "mi": MiB, "gi": GiB, "ti": TiB,
}
_UNLIMITED = frozenset({"0", "unlimited", "none", "off", "no", "inf"})


def _split(text: str, what: str, examples: str) -> tuple[Decimal, str]:
    match = _NUMBER.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a {what}: write a number and a unit, e.g. {examples}")
    try:
        number = Decimal(match.group(1).replace("_", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise ValueError(f"{text!r} is not a {what}: e.g. {examples}") from None
    return number, match.group(2)


def _to_int(number: Decimal, scale: int) -> int:
    return int((number * scale).to_integral_value())


def parse_size(text: str) -> int:
    """Bytes from ``"8MiB"``, ``"512KiB"``, ``"10MB"``, ``"1.5GiB"``, ``"8M"`` or ``"4096"``."""
    examples = "8MiB, 512KiB, 1.5GiB, 10MB or 4096 (bytes)"
    number, unit = _split(text, "size", examples)
    scale = _BYTE_UNITS.get(unit.lower())
    if scale is None:
        raise ValueError(f"{text!r}: unknown size unit {unit!r}; use e.g. {examples}")
    return _to_int(number, scale)


def parse_rate(text: str) -> int:
    """Bytes per second from ``"48MiB"``, ``"48MiB/s"``, ``"200Mbit"``, ``"200Mbps"``.

    ``"0"``, ``"unlimited"``, ``"none"`` and ``"off"`` mean no limit and give 0.
    """
    examples = "48MiB (per second), 48MiB/s, 200Mbit, 0 or unlimited"
    if text.strip().lower() in _UNLIMITED:
        return 0
    number, unit = _split(text, "rate", examples)
    for suffix in ("/second", "/sec", "/s"):
        if unit.lower().endswith(suffix):
            unit = unit[: -len(suffix)]
            break
    bits: str | None = None
    if unit.endswith("bps"):  # lower-case b: bits, as network speeds are written
        bits = unit[:-3]
    elif unit.lower().endswith(("bits", "bit")):
        bits = unit[: -4 if unit.lower().endswith("bits") else -3]
    elif unit.endswith("Bps"):
        unit = unit[:-3] + "B"
    if bits is not None:
        prefix = _BIT_PREFIXES.get(bits.lower())
        if prefix is None:
            raise ValueError(f"{text!r}: unknown rate unit; use e.g. {examples}")
        return _to_int(number * prefix, 1) // 8
    scale = _BYTE_UNITS.get(unit.lower())
    if scale is None:
        raise ValueError(f"{text!r}: unknown rate unit {unit!r}; use e.g. {examples}")
    return _to_int(number, scale)


_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _trim(value: float) -> str:
    if value < 10:
        text = f"{value:.2f}"
    elif value < 100:
        text = f"{value:.1f}"
    else:
        return f"{value:.0f}"
    return text.rstrip("0").rstrip(".")


def format_size(n: float) -> str:
    """A byte count for people: ``"512 B"``, ``"8 MiB"``, ``"1.5 GiB"``, ``"12.3 MiB"``.

    Binary multiples with their IEC names (KiB = 1024 B), at most three significant digits.
    A value never shows as 1000 or more of a unit: from 1000 of the smaller unit the next
    one is used (``1000 B`` is ``"0.98 KiB"``, ``1000 KiB`` is ``"0.98 MiB"``), so one
    column never holds both ``"1000 KiB"`` and ``"1 MiB"``. The window and the command
    line both print sizes and speeds with this function.
    """
    if not math.isfinite(n):
        return "--"
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    index = 0
    while index < len(_SIZE_UNITS) - 1 and round(value) >= 1000:
        value /= 1024
        index += 1
    if index == 0:
        return f"{sign}{value:.0f} B"
    return f"{sign}{_trim(value)} {_SIZE_UNITS[index]}"


def format_rate(bps: float) -> str:
    """A speed for people: ``"48 MiB/s"``; ``"--"`` when unknown (not a finite number)."""
    if not math.isfinite(bps):
        return "--"
    return f"{format_size(max(0.0, bps))}/s"


def format_duration(s: float) -> str:
    """A time span for people: ``"45 s"``, ``"3 min 05 s"``, ``"2 h 03 min"``, ``"3 d 04 h"``.

    A negative, infinite or NaN value (an unknown time left) gives ``"--"``.
    """
    if not math.isfinite(s) or s < 0:
        return "--"
    total = round(s)
    if total < 60:
        return f"{total} s"
    minutes, seconds = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"
