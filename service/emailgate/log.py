"""JSON log lines on stderr, each with the request id of the request that caused it.

Addresses never reach a log line: the pipeline logs their keyed hash. Secret values are kept
in `config.Secret`, whose repr is redacted, so even a careless `%r` does not leak one.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
from typing import IO, Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# LogRecord attributes that are not user fields (everything else in __dict__ came via `extra`).
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            line["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=repr).decode()


def _timestamp(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


FLUSH_EVERY_S = 0.01
"""How long a per-check line may wait to be written with the lines after it."""
FLUSH_LINES = 512
"""A batch this long is written at once."""


class BatchedStreamHandler(logging.StreamHandler[IO[str]]):
    """A StreamHandler that also takes the per-check lines `event` batches: they are written
    together, FLUSH_EVERY_S after the first of them (one write for many requests instead of
    one each), and before any other line, so the log keeps its order. A process killed
    outright (SIGKILL) loses at most that much of them; any orderly exit writes them."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.pending: list[str] = []

    def add(self, line: str) -> None:
        """Queue `line` for the batch; written at once outside an event loop."""
        if not self.pending:
            try:
                asyncio.get_running_loop().call_later(FLUSH_EVERY_S, self.flush_pending)
            except RuntimeError:  # no loop: nothing will come back to flush
                self.write_now(line)
                return
        self.pending.append(line)
        if len(self.pending) >= FLUSH_LINES:
            self.flush_pending()  # the timer then finds nothing, or the next batch's start

    def flush_pending(self) -> None:
        """Write the queued lines, if any."""
        if self.pending:
            lines, self.pending = self.pending, []
            self.write_now("".join(lines))

    def write_now(self, text: str) -> None:
        self.acquire()
        try:
            self.stream.write(text)
            self.stream.flush()
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        self.flush_pending()
        super().emit(record)

    def flush(self) -> None:
        self.flush_pending()
        super().flush()


class _Fast:
    """The handler `setup` installed, for `event` to write to without building a LogRecord."""

    handler: BatchedStreamHandler | None = None
    second = -1
    prefix = ""


class Fixed:
    """Fields that many lines repeat (a check's context and verdict), serialised once."""

    __slots__ = ("fields", "json")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.json = orjson.dumps(fields, default=repr).decode()[1:-1]
        """The fields as JSON members, without the braces."""


NOTHING_FIXED = Fixed({})


def event(
    logger: logging.Logger, msg: str, fields: dict[str, Any], fixed: Fixed = NOTHING_FIXED
) -> None:
    """One INFO line with `fields` and `fixed`'s, the same JSON as JsonFormatter writes, at a
    tenth of the cost.

    The per-check line is on the hot path (a cache hit costs well under a hundred
    microseconds in all; logging's record, formatter and handler machinery would cost 20 of
    them, a write per line as many again). The line is built here, its repeated fields
    spliced in already serialised, and written with the others of its batch. Without
    `setup` (tests capturing records, an embedding application) it goes through logging as
    usual.
    """
    handler = _Fast.handler
    handlers = logging.root.handlers
    if handler is None or len(handlers) != 1 or handlers[0] is not handler:
        logger.info(msg, extra={**fields, **fixed.fields})
        return
    if not logger.isEnabledFor(logging.INFO):
        return
    now = time.time()
    second = int(now)
    if second != _Fast.second:  # strftime once a second, not once a line
        _Fast.second, _Fast.prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    line: dict[str, Any] = {
        "ts": f"{_Fast.prefix}.{int(now % 1 * 1000):03d}Z",
        "level": "info",
        "logger": logger.name,
        "msg": msg,
    }
    rid = request_id.get()
    if rid is not None:
        line["request_id"] = rid
    line.update(fields)
    head = orjson.dumps(line, default=repr).decode()
    handler.add(f"{head[:-1]},{fixed.json}}}\n" if fixed.json else head + "\n")


def setup(level: str = "info", stream: IO[str] | None = None) -> None:
    """Route every `emailgate.*` logger (and aiohttp's) to JSON lines at `level`."""
    handler = BatchedStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    _Fast.handler = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print client addresses and query strings (addresses!).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
