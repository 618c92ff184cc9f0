"""JSON log lines: the fast per-check writer and the logging formatter write the same shape."""

from __future__ import annotations

import asyncio
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
    """Same keys, same values but the time, with the request id, one line each; the fixed
    fields spliced in pre-serialised read back as the logging record's extra fields."""
    logger = logging.getLogger("emailgate.verify")
    token = logsetup.request_id.set("abc123")
    fixed = {"context": "signup", "state": "unknown", "cached": True, "odd": 'a"\\b'}
    try:
        logsetup.event(logger, "check", {"event": "check", "score": 60}, logsetup.Fixed(fixed))
        logger.info("check", extra={"event": "check", "score": 60, **fixed})
    finally:
        logsetup.request_id.reset(token)
    fast, slow = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert fast.keys() == slow.keys()
    assert {k: v for k, v in fast.items() if k != "ts"} == {
        k: v for k, v in slow.items() if k != "ts"
    }
    assert fast["ts"][:19] <= slow["ts"][:19] and fast["ts"].endswith("Z")
    assert fast["request_id"] == "abc123"
    assert fast["odd"] == 'a"\\b' and fast["cached"] is True


def test_event_honours_the_level(stream: io.StringIO) -> None:
    """At warning level the per-check line is not written."""
    logging.getLogger().setLevel(logging.WARNING)
    logsetup.event(logging.getLogger("emailgate.verify"), "check", {"event": "check"})
    assert stream.getvalue() == ""


def test_event_goes_through_logging_when_another_handler_listens(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """With a capturing handler installed (tests, an embedding app) records are still made."""
    fixed = logsetup.Fixed({"context": "signup"})
    with caplog.at_level(logging.INFO):
        logsetup.event(logging.getLogger("emailgate.verify"), "check", {"event": "check"}, fixed)
    assert [getattr(r, "event", None) for r in caplog.records] == ["check"]
    assert [getattr(r, "context", None) for r in caplog.records] == ["signup"]


class CountingStream(io.StringIO):
    """A stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_per_check_lines_are_written_together_and_in_order() -> None:
    """Three per-check lines: nothing is written at once, then the three in one write; a
    logging line after another check line is written after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = CountingStream()
    logsetup.setup("info", out)
    try:
        logger = logging.getLogger("emailgate.verify")
        for i in range(3):
            logsetup.event(logger, "check", {"event": "check", "n": i})
        assert out.getvalue() == ""
        await asyncio.sleep(logsetup.FLUSH_EVERY_S * 3)
        assert out.writes == 1
        logsetup.event(logger, "check", {"event": "check", "n": 3})
        logger.info("other", extra={"event": "other"})  # writes the pending check line first
        await asyncio.sleep(logsetup.FLUSH_EVERY_S * 3)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logsetup._Fast.handler = None
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["event"], x.get("n")) for x in lines] == [
        ("check", 0), ("check", 1), ("check", 2), ("check", 3), ("other", None),
    ]  # fmt: skip
