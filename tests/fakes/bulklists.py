"""What the three bulk fakes share: an uploaded list and the time its processing takes.

A list is processed in `processing_s + per_1000_s × n / 1000` seconds of real time from when
processing starts (upload, or EmailConsul's run); progress grows linearly meanwhile. A list can
be told to fail (`fail_lists` in each fake's settings: the next N lists fail half-way).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class FakeList:
    """One uploaded list at a bulk fake."""

    id: str
    emails: list[str]
    reference: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    """The uploaded CSV's rows (Listcleaner returns them with `reason` added)."""
    columns: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    started: float | None = None
    """When processing started (None: not yet, e.g. EmailConsul before its run)."""
    seconds: float = 0.0
    """How long processing takes once started."""
    fails: str | None = None
    """When set, the list fails half-way with this message."""
    charged: int = 0
    """Credits this list took."""
    extra: dict[str, Any] = field(default_factory=dict)

    def progress(self, now: float | None = None) -> float:
        """0.0–1.0 of processing done."""
        if self.started is None:
            return 0.0
        now = time.monotonic() if now is None else now
        if self.seconds <= 0:
            return 1.0
        return max(0.0, min(1.0, (now - self.started) / self.seconds))

    def done(self, now: float | None = None) -> bool:
        """Processed (and not failed)."""
        return self.fails is None and self.progress(now) >= 1.0

    def failed(self, now: float | None = None) -> bool:
        """Failed: half-way through processing when told to fail."""
        return self.fails is not None and self.progress(now) >= 0.5

    def finished_at(self) -> float | None:
        """Monotonic time processing ends (None before it starts)."""
        return None if self.started is None else self.started + self.seconds


def processing_seconds(count: int, base_s: float, per_1000_s: float) -> float:
    """Processing time of a list of `count` addresses."""
    return base_s + per_1000_s * count / 1000


def new_uid() -> str:
    """An id in Listcleaner's documented shape, `d53dec-bac2b5-34dfd1`."""
    return "-".join(secrets.token_hex(3) for _ in range(3))
