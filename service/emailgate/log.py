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
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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


def setup(level: str = "info", stream: IO[str] | None = None) -> None:
    """Route every `emailgate.*` logger (and aiohttp's) to JSON lines at `level`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print client addresses and query strings (addresses!).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
