"""A verdict to and from plain values (the cache's format), generated from its fields."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from emailgate.verify.result import Reason, Source, State, Verdict

FULL = Verdict(
    state=State.RISKY,
    reason=Reason.LOW_DELIVERABILITY,
    score=40,
    source=Source.CLEANMYLIST,
    accept_all=True,
    disposable=True,
    free=True,
    role=True,
    possible_spamtrap=True,
    did_you_mean="jo@gmail.com",
    mx_record="mx.example.org",
    smtp_provider="Example Mail",
)


def test_every_field_survives_the_round_trip_through_json() -> None:
    """Each field, none at its default, comes back equal from orjson bytes."""
    assert all(
        getattr(FULL, f.name) != f.default
        for f in dataclasses.fields(Verdict)
        if f.default is not dataclasses.MISSING
    )
    assert Verdict.from_dict(orjson.loads(orjson.dumps(FULL.to_dict()))) == FULL


def test_plain_values_in_field_order() -> None:
    """Enums become their plain string values; the keys are the fields, in order."""
    data = FULL.to_dict()
    assert list(data) == [f.name for f in dataclasses.fields(Verdict)]
    assert type(data["state"]) is str and data["state"] == "risky"
    assert type(data["source"]) is str and data["source"] == "cleanmylist"


def test_missing_optional_fields_take_their_defaults() -> None:
    """An entry with only the required fields loads with every default."""
    data = {"state": "unknown", "reason": "timeout", "score": 40, "source": "local"}
    assert Verdict.from_dict(data) == Verdict(State.UNKNOWN, Reason.TIMEOUT, 40, Source.LOCAL)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"state": None}, ValueError),
        ({"state": "fine"}, ValueError),
        ({"score": 101}, ValueError),
        ({"score": "40"}, ValueError),
        ({"did_you_mean": 5}, TypeError),
        ({"mx_record": ["a"]}, TypeError),
    ],
)
def test_a_damaged_entry_is_refused(change: dict[str, object], error: type[Exception]) -> None:
    """A value of the wrong kind raises, so the cache reads it as a miss."""
    with pytest.raises(error):
        Verdict.from_dict(FULL.to_dict() | change)


def test_a_missing_required_field_is_refused() -> None:
    """No state: KeyError (a miss for the cache)."""
    data = FULL.to_dict()
    del data["state"]
    with pytest.raises(KeyError):
        Verdict.from_dict(data)
