"""The verify answer's bytes, memoised around the duration, are what serialising RESULT gives."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from emailgate.verify.pipeline import CheckResult
from emailgate.verify.result import Decision, Reason, Source, State, Verdict

VERDICTS = st.builds(
    Verdict,
    state=st.sampled_from(State),
    reason=st.sampled_from(Reason),
    score=st.integers(0, 100),
    source=st.sampled_from(Source),
    accept_all=st.sampled_from([None, True, False]),
    did_you_mean=st.sampled_from([None, "x@gmail.com", "ñ@exämple.com"]),
    mx_record=st.sampled_from([None, "mx.example.com", 'we"ird\\mx\x00', "\x00duration\x00"]),
)
RESULTS = st.builds(
    CheckResult,
    email_address=st.sampled_from(["Alice@example.com", "ünï@bücher.de", 'q"u\\ote@x.io']),
    user=st.sampled_from(["Alice", "ünï", 'q"u\\ote']),
    domain=st.sampled_from(["example.com", "bücher.de"]),
    verdict=VERDICTS,
    decision=st.sampled_from(Decision),
    context=st.sampled_from(["signup", "checkout"]),
    threshold=st.integers(0, 100),
    cached=st.booleans(),
    duration=st.one_of(
        st.floats(0, 10, allow_nan=False), st.sampled_from([0.0, 1e-7, 1e-5, 0.1234565])
    ),
)


@given(RESULTS)
def test_the_answer_is_result_serialised(result: CheckResult) -> None:
    """Byte for byte the JSON of {"success": true, "data": RESULT}, for any values."""
    assert result.answer() == orjson.dumps({"success": True, "data": result.to_dict()})


def test_two_answers_differ_only_in_their_durations() -> None:
    """The memoised parts are reused; each answer carries its own duration."""
    verdict = Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 95, Source.LISTCLEANSER)
    first, second = (
        CheckResult("a@b.co", "a", "b.co", verdict, Decision.ACCEPT, "signup", 60, True, d)
        for d in (0.000123, 2.5e-05)
    )
    assert orjson.loads(first.answer())["data"]["duration"] == 0.000123
    assert orjson.loads(second.answer())["data"]["duration"] == 2.5e-05
