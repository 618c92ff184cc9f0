"""JSON log lines on stderr, each with the request id of the request that caused it.

Addresses never reach a log line: the pipeline logs their keyed hash. Secret values are kept
in `config.Secret`, whose repr is redacted, so even a careless `%r` does not leak one.
"""

from __future__ import annotations

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


class _Fast:
    """The handler `setup` installed, for `event` to write to without building a LogRecord."""

    handler: logging.StreamHandler[IO[str]] | None = None
    second = -1
    prefix = ""


def event(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """One INFO line with `fields`, the same JSON as JsonFormatter writes, at a tenth of the cost.

    The per-check line is on the hot path (a cache hit costs a few hundred microseconds in
    all; logging's record, formatter and handler machinery cost 20 of them). Without `setup`
    (tests capturing records, an embedding application) it goes through logging as usual.
    """
    handler = _Fast.handler
    if handler is None or logging.getLogger().handlers != [handler]:
        logger.info(msg, extra=fields)
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
    data = orjson.dumps(line, default=repr, option=orjson.OPT_APPEND_NEWLINE).decode()
    handler.acquire()
    try:
        handler.stream.write(data)
    finally:
        handler.release()


def setup(level: str = "info", stream: IO[str] | None = None) -> None:
    """Route every `emailgate.*` logger (and aiohttp's) to JSON lines at `level`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    _Fast.handler = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print client addresses and query strings (addresses!).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
