"""The engine's side of the window/engine boundary: a request is served only if it is one
of ``REQUESTS``, of the kind asked (answered or not), and every field holds its declared
type; anything else is refused with a message naming the request and the field."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ossdesk.ui import engine_types as rq
from ossdesk.ui.engine_types import Destination, SourceFile, TransferRow, refusal
from ossdesk.ui.settings import Settings


def _row() -> TransferRow:
    return TransferRow(id=1, name="a", source_path="/tmp/a", size=1, destination="oss://b/a")


def _file(n: int) -> SourceFile:
    return SourceFile(path=f"/data/f{n}", key=f"f{n}", size=n, mtime_ns=n)


def _destination() -> Destination:
    return Destination(profile="p", endpoint="http://127.0.0.1:1", bucket="b")


def _ill_typed(kind: type, **values: object) -> object:
    """A request as a hand-built pipe frame can carry it: its fields set as they are,
    past ``__post_init__`` (as unpickling sets them)."""
    request: Any = object.__new__(kind)
    for name, value in values.items():
        object.__setattr__(request, name, value)
    return request


WELL_TYPED: list[tuple[object, bool]] = [
    (rq.Enqueue([_file(1), _file(2)], _destination(), existing="skip", drop=3), False),
    (rq.Enqueue([], _destination()), False),
    (rq.BeginDrop(1, ["/data"], _destination()), False),
    (rq.EndDrop(1), False),
    (rq.Pause([1, "2"]), False),
    (rq.Move([1], top=True), False),
    (rq.ClearFinished(), False),
    (rq.CredentialsChanged("p"), False),
    (rq.ApplySettings(Settings()), False),
    (rq.FindExisting([_file(1)], _destination()), True),
    (rq.ObjectUrl(_row()), True),
    (rq.Details(_row()), True),
    (rq.PresignedUrl(_row(), 600), True),
    (rq.WaitIdle(), True),
    (rq.WaitIdle(5), True),  # an int where a float is declared is a number all the same
    (rq.WaitIdle(2.5), True),
]


@pytest.mark.parametrize(("request_", "answered"), WELL_TYPED,
                         ids=[type(r).__name__ for r, _ in WELL_TYPED])
def test_well_typed_requests_are_served(request_: object, answered: bool) -> None:
    assert refusal(request_, answered=answered) is None


def test_a_request_of_the_other_kind_or_no_request_at_all_is_refused() -> None:
    assert refusal(rq.Pause([1]), answered=True) == \
        "a Pause is not a request the engine answers"
    assert refusal(rq.WaitIdle(), answered=False) == \
        "a WaitIdle is not a request the engine takes without an answer"
    assert refusal(_row(), answered=False) == \
        "a TransferRow is not a request the engine takes without an answer"
    assert refusal("Pause", answered=True) == "a str is not a request the engine answers"


ILL_TYPED: list[tuple[object, bool, str]] = [
    (rq.ObjectUrl(cast(Any, "oss://b/k")), True, "ObjectUrl.row is not a TransferRow"),
    (rq.PresignedUrl(_row(), cast(Any, "600")), True,
     "PresignedUrl.expires_seconds is not a int"),
    (rq.PresignedUrl(_row(), cast(Any, 600.0)), True,
     "PresignedUrl.expires_seconds is not a int"),
    (rq.WaitIdle(cast(Any, "5")), True, "WaitIdle.seconds is not a float | None"),
    (rq.EndDrop(cast(Any, None)), False, "EndDrop.drop is not a int"),
    (rq.CredentialsChanged(cast(Any, b"p")), False, "CredentialsChanged.profile is not a str"),
    (rq.ApplySettings(cast(Any, {"parallel": 4})), False,
     "ApplySettings.settings is not a Settings"),
    (rq.Enqueue([_file(1)], cast(Any, "oss://b/")), False,
     "Enqueue.destination is not a Destination"),
    (rq.Enqueue([_file(1)], _destination(), existing=cast(Any, None)), False,
     "Enqueue.existing is not a str"),
    (rq.Enqueue([_file(1)], _destination(), drop=cast(Any, "3")), False,
     "Enqueue.drop is not a int | None"),
    # An item of a sequence that is not of its type: the first one, one in the middle, and
    # the last one.
    (rq.Enqueue([cast(Any, "/data/f0"), _file(1)], _destination()), False,
     "Enqueue.files is not a collections.abc.Sequence[ossdesk.ui.engine_types.SourceFile]"),
    (rq.Enqueue([_file(0), cast(Any, "/data/f1"), _file(2)], _destination()), False,
     "Enqueue.files is not a collections.abc.Sequence[ossdesk.ui.engine_types.SourceFile]"),
    (rq.FindExisting([_file(n) for n in range(1000)] + [cast(Any, ("/x", "x", 1, 1))],
                     _destination()), True,
     "FindExisting.files is not a collections.abc.Sequence[ossdesk.ui.engine_types.SourceFile]"),
    # Fields set past __post_init__, as a hand-built frame carries them.
    (_ill_typed(rq.Pause, ids=(1, 2.5)), False,
     "Pause.ids is not a collections.abc.Sequence[int | str]"),
    (_ill_typed(rq.Enqueue, files=None, destination=_destination(), existing="overwrite",
                drop=None), False,
     "Enqueue.files is not a collections.abc.Sequence[ossdesk.ui.engine_types.SourceFile]"),
    (_ill_typed(rq.Move, ids=7, top=True), False,
     "Move.ids is not a collections.abc.Sequence[int | str]"),
    (_ill_typed(rq.Move, ids=(1,), top="yes"), False, "Move.top is not a bool"),
]


@pytest.mark.parametrize(("request_", "answered", "message"), ILL_TYPED,
                         ids=[m for _, _, m in ILL_TYPED])
def test_a_field_not_of_its_declared_type_is_refused_naming_it(
        request_: object, answered: bool, message: str) -> None:
    assert refusal(request_, answered=answered) == message
