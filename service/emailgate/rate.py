"""`N/Ws` rates, as settings and keys files write them (`200/60s`, `30/1m`, `5/1h`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h)\s*$")


class RateSyntaxError(ValueError):
    """A rate that is not of the form `N/Ws` (N calls per W seconds)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` events in any window of `period` seconds."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse `200/60s`, `30/1m`, `10/h` or `5/500ms`."""
        m = _RATE.match(text)
        if m is None:
            raise RateSyntaxError(f"{text!r} is not a rate like '200/60s'")
        count = int(m.group(1))
        period = float(m.group(2) or 1) * _UNITS[m.group(3)]
        if count < 1 or period <= 0:
            raise RateSyntaxError(f"{text!r}: count and period must be positive")
        return cls(count, period)

    @property
    def interval(self) -> float:
        """Seconds between two events at an even pace."""
        return self.period / self.count

    def divided(self, parts: int) -> Rate:
        """This rate shared by `parts` independent users (at least one event each)."""
        return Rate(max(1, self.count // max(1, parts)), self.period)

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"
