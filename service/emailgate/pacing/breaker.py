"""A small circuit breaker per provider: stop calling one that is itself failing.

closed ──(provider-wide failure evidence)──▶ open ──(`cool_down` later)──▶ half-open: one probe
   ▲                                                                      │ success │ failure
   └──────────────────────────────────────────────────────────────────────┘         ▼ open again

Evidence, not a count of failures in a row: anyone can send addresses whose mail side stalls
(their own domain, a slow mail server), and a breaker that opens on any five timeouts lets
that one client switch provider verification off for every other caller. So the breaker
looks at the calls of the last `window` seconds and opens only when the failures

- number at least `threshold`,
- come from at least `min_domains` distinct mail domains (grouped by registered domain, so a
  wildcard zone of one attacker counts once), and
- are at least `failure_share` of all calls in the window (a provider that keeps answering
  other callers is not down).

A real outage fails every domain of every caller and meets all three at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from emailgate.clock import Clock, monotonic

FAILURES_TO_OPEN = 5
MIN_DOMAINS = 5
FAILURE_SHARE = 0.5
WINDOW = 60.0  # seconds of calls the evidence is taken from
COOL_DOWN = 30.0  # seconds: long enough to spare a struggling provider, short for an outage
MAX_EVENTS = 2048  # calls remembered at most: memory stays flat at any traffic


def domain_group(domain: str) -> str:
    """The registered domain of `domain` (ASCII), roughly: its last two labels, or three under
    a two-level public suffix such as `co.uk` (a short label under a country code)."""
    labels = domain.rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


class CircuitBreaker:
    """Closed, open or half-open; time comes from an injected clock."""

    def __init__(
        self,
        *,
        threshold: int = FAILURES_TO_OPEN,
        min_domains: int = MIN_DOMAINS,
        failure_share: float = FAILURE_SHARE,
        window: float = WINDOW,
        cool_down: float = COOL_DOWN,
        clock: Clock = monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.min_domains = min_domains
        self.failure_share = failure_share
        self.window = window
        self.cool_down = cool_down
        self.clock = clock
        self.on_change = on_change
        self.opened_at: float | None = None
        self.probing = False
        self._calls: deque[tuple[float, str | None]] = deque(maxlen=MAX_EVENTS)
        """(when, failed domain group or None for a success), oldest first."""

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

    def record_success(self, domain: str) -> None:
        """A call about `domain` answered as documented: close if open; else note it."""
        if self.opened_at is not None:
            self.opened_at = None
            self.probing = False
            self._calls.clear()
            if self.on_change is not None:
                self.on_change(False)
            return
        self._calls.append((self.clock(), None))

    def record_failure(self, domain: str) -> None:
        """A call about `domain` failed (timeout, 5xx, connection, junk): open on evidence."""
        now = self.clock()
        if self.opened_at is not None:
            if self.probing:  # the probe failed: the provider is still down
                self.opened_at = now
                self.probing = False
            return
        self._calls.append((now, domain_group(domain)))
        if self._provider_is_failing(now):
            self.opened_at = now
            self._calls.clear()
            if self.on_change is not None:
                self.on_change(True)

    def _provider_is_failing(self, now: float) -> bool:
        calls = self._calls
        while calls and calls[0][0] <= now - self.window:
            calls.popleft()
        failed = [group for _, group in calls if group is not None]
        return (
            len(failed) >= self.threshold
            and len(set(failed)) >= self.min_domains
            and len(failed) >= self.failure_share * len(calls)
        )
