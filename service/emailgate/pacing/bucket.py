"""The token bucket as GCRA (virtual scheduling): one number of state, easy to keep in Redis.

A bucket of `capacity` tokens refilled every `interval` seconds lets through at most
`capacity + floor(W / interval)` calls in any window of W seconds. To hold "N in any window of
W" (ListCleanser's 200/60s) we choose `interval = (W + margin) / (N - capacity)`; for a minimum
gap (CleanMyList's 300 ms) capacity is 1 and `interval = gap + margin`.

`margin` covers what happens between a slot and the call's arrival at the provider: half of it
for the caller waking late (a call that starts later than that after its slot is given up, see
`Reservation.late`), half for jitter on the way (sending, the network). So the calls that do go
out keep the limit at the provider's end too, not only in our bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from emailgate.rate import Rate

WINDOW_MARGIN = 0.05  # seconds added to a window: loop lag and loopback jitter stay well below
GAP_SHARE = 0.05  # of a minimum gap added to it: 15 ms on CleanMyList's 300 ms
GAP_MARGIN = 0.015  # seconds, at least: scheduling jitter on a busy host is about that
BACKGROUND_RESERVE = 2  # slots a background (batch) reservation leaves for interactive checks


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """Capacity (burst) and refill interval of one bucket, and the lateness it tolerates."""

    capacity: int
    interval: float
    margin: float

    @classmethod
    def for_rate(cls, rate: Rate) -> BucketSpec:
        """At most `rate.count` calls in any window of `rate.period` seconds."""
        # A small burst (1 token in 40) absorbs simultaneous signups; the rest is spread evenly.
        capacity = max(1, rate.count // 40)
        if rate.count == 1:
            return cls(1, rate.period + WINDOW_MARGIN, WINDOW_MARGIN)
        return cls(capacity, (rate.period + WINDOW_MARGIN) / (rate.count - capacity), WINDOW_MARGIN)

    @classmethod
    def for_gap(cls, seconds: float) -> BucketSpec:
        """At least `seconds` between two calls."""
        margin = max(GAP_MARGIN, seconds * GAP_SHARE)
        return cls(1, seconds + margin, margin)

    @property
    def tolerance(self) -> float:
        """How far ahead of its theoretical time a call may go: the burst."""
        return (self.capacity - 1) * self.interval

    @property
    def reserve(self) -> int:
        """Slots kept for interactive checks: a background slot is taken only when this many
        stay ready after it. A one-slot bucket (a minimum gap) has no room for a reserve: there
        a job's call can delay a signup by at most one gap."""
        return min(BACKGROUND_RESERVE, self.capacity - 1)

    @property
    def spare_limit(self) -> float:
        """How far past now the TAT may stand for a background reservation to go."""
        return self.tolerance - self.reserve * self.interval

    def calls_per_second(self) -> float:
        """The sustained rate this bucket lets through."""
        return 1.0 / self.interval


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer of `reserve`: a slot `wait` seconds from now, or a refusal and why."""

    wait: float = 0.0
    refused: str | None = None
    """None when a slot was reserved; else `no_token` (not before the caller's deadline) or
    `paused` (the provider asked us to stop: 429, no credits, key refused)."""
    margin: float = 0.0

    @property
    def ok(self) -> bool:
        """A slot was reserved."""
        return self.refused is None

    def late(self, slept: float) -> bool:
        """The caller woke up too long after its slot to keep the limit: give the call up."""
        return slept > self.wait + self.margin / 2


NO_TOKEN = "no_token"  # noqa: S105 (a metric label, not a secret)
PAUSED = "paused"


class Gcra:
    """The bucket's arithmetic on any clock: TAT is the theoretical arrival time of the next
    call; a call may go at `TAT - tolerance`."""

    __slots__ = ("spec", "tat")

    def __init__(self, spec: BucketSpec) -> None:
        self.spec = spec
        self.tat = float("-inf")

    def reserve(self, now: float, max_wait: float) -> float | None:
        """Seconds until the reserved slot, or None (nothing reserved) past `max_wait`."""
        tat = max(self.tat, now)
        slot = tat - self.spec.tolerance
        wait = max(0.0, slot - now)
        if wait > max_wait:
            return None
        self.tat = tat + self.spec.interval
        return wait

    def reserve_spare(self, now: float) -> bool:
        """A background slot now, if the bucket keeps its reserve after it."""
        tat = max(self.tat, now)
        if tat > now + self.spec.spare_limit + 1e-9:  # float rounding of sums of intervals
            return False
        self.tat = tat + self.spec.interval
        return True
