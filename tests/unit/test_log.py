"""JSON log lines: the fast per-check writer and the logging formatter write the same shape."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from emailgate import log as logsetup


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging set up as `emailgate serve` does, into a string; restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    logsetup.setup("info", out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    logsetup._Fast.handler = None


def test_event_writes_what_the_formatter_writes(stream: io.StringIO) -> None:
    """Same keys, same values but the time, with the request id, one line each."""
    logger = logging.getLogger("emailgate.verify")
    token = logsetup.request_id.set("abc123")
    try:
        logsetup.event(logger, "check", {"event": "check", "score": 60})
        logger.info("check", extra={"event": "check", "score": 60})
    finally:
        logsetup.request_id.reset(token)
    fast, slow = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert fast.keys() == slow.keys()
    assert {k: v for k, v in fast.items() if k != "ts"} == {
        k: v for k, v in slow.items() if k != "ts"
    }
    assert fast["ts"][:19] <= slow["ts"][:19] and fast["ts"].endswith("Z")
    assert fast["request_id"] == "abc123"


def test_event_honours_the_level(stream: io.StringIO) -> None:
    """At warning level the per-check line is not written."""
    logging.getLogger().setLevel(logging.WARNING)
    logsetup.event(logging.getLogger("emailgate.verify"), "check", {"event": "check"})
    assert stream.getvalue() == ""


def test_event_goes_through_logging_when_another_handler_listens(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """With a capturing handler installed (tests, an embedding app) records are still made."""
    with caplog.at_level(logging.INFO):
        logsetup.event(logging.getLogger("emailgate.verify"), "check", {"event": "check"})
    assert [getattr(r, "event", None) for r in caplog.records] == ["check"]
