"""A small circuit breaker per provider: stop hammering one that keeps failing.

closed ──(`threshold` failures in a row)──▶ open ──(`cool_down` later)──▶ half-open: one probe
   ▲                                                                      │ success │ failure
   └──────────────────────────────────────────────────────────────────────┘         ▼ open again
"""

from __future__ import annotations

from collections.abc import Callable

from emailgate.clock import Clock, monotonic

FAILURES_TO_OPEN = 5
COOL_DOWN = 30.0  # seconds: long enough to spare a struggling provider, short for an outage


class CircuitBreaker:
    """Closed, open or half-open; time comes from an injected clock."""

    def __init__(
        self,
        *,
        threshold: int = FAILURES_TO_OPEN,
        cool_down: float = COOL_DOWN,
        clock: Clock = monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cool_down = cool_down
        self.clock = clock
        self.on_change = on_change
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False

    @property
    def state(self) -> str:
        """`closed`, `open` or `half-open`."""
        if self.opened_at is None:
            return "closed"
        if self.probing or self.clock() - self.opened_at >= self.cool_down:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go now? In half-open, only one caller (the probe) gets a yes."""
        if self.opened_at is None:
            return True
        if self.probing or self.clock() - self.opened_at < self.cool_down:
            return False
        self.probing = True
        return True

    def release(self) -> None:
        """The caller that was allowed did not call after all (no token, paused): free the probe."""
        self.probing = False

    def record_success(self) -> None:
        """A call answered as documented: close."""
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.probing = False
        if was_open and self.on_change is not None:
            self.on_change(False)

    def record_failure(self) -> None:
        """A call failed (timeout, 5xx, connection, junk): count it; open at the threshold."""
        self.failures += 1
        if self.probing or (self.opened_at is None and self.failures >= self.threshold):
            was_open = self.opened_at is not None
            self.opened_at = self.clock()
            self.probing = False
            if not was_open and self.on_change is not None:
                self.on_change(True)
