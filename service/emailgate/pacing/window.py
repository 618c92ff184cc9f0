"""A fixed-window pacer: at most `limit` calls in each clock-aligned window of `window` seconds.

Some providers (Cleanlist.ai: 60 requests per fixed 60-second window) count per clock minute
rather than in a sliding window. A token bucket would hold their limit too, but spread the
calls evenly; counting per window instead lets each window's whole allowance go at its start,
so a job that needs 20 requests sends them at once instead of over 20 seconds.

Windows are aligned to the wall clock (epoch seconds), as the provider's are. A slot is only
given inside `[start + edge, end - edge]`: the edges absorb a call's transit and a small skew
between our clock and the provider's, so a call counted in our window k also lands in the
provider's window k. The count per window is unchanged by the edges; only the time a burst
starts moves by `edge`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emailgate.clock import Clock, wall
from emailgate.pacing.bucket import NO_TOKEN, PAUSED, Reservation
from emailgate.rate import Rate

MAX_EDGE = 0.5  # seconds: transit plus NTP-grade skew stay well below on a real provider
EDGE_SHARE = 1 / 40  # of a (shortened, test) window, when that is less than MAX_EDGE


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """`limit` calls per fixed window of `window` seconds, slots kept `edge` from both ends."""

    limit: int
    window: float
    edge: float

    @classmethod
    def for_rate(cls, rate: Rate) -> WindowSpec:
        """`rate.count` calls per clock-aligned window of `rate.period` seconds."""
        return cls(rate.count, rate.period, min(MAX_EDGE, rate.period * EDGE_SHARE))

    def divided(self, parts: int) -> WindowSpec:
        """This allowance shared by `parts` replicas that cannot talk (0 calls if too few)."""
        return WindowSpec(self.limit // max(1, parts), self.window, self.edge)

    def index(self, now: float) -> int:
        """The window `now` (epoch seconds) falls in."""
        return math.floor(now / self.window)


class FixedWindow:
    """The arithmetic on any clock: a count per window index, future windows included (a
    reservation may be for a later window when this one is full)."""

    __slots__ = ("counts", "spec")

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.counts: dict[int, int] = {}

    def reserve(self, now: float, max_wait: float) -> float | None:
        """Seconds until the reserved slot, or None (nothing reserved) past `max_wait`."""
        spec = self.spec
        if spec.limit <= 0:
            return None
        current = spec.index(now)
        k = current
        while True:
            start = k * spec.window
            earliest = max(now, start + spec.edge)
            if earliest - now > max_wait:
                return None
            if earliest <= start + spec.window - spec.edge and self.counts.get(k, 0) < spec.limit:
                self.counts[k] = self.counts.get(k, 0) + 1
                for old in [i for i in self.counts if i < current]:
                    del self.counts[old]
                return earliest - now
            k += 1

    def used(self, now: float) -> int:
        """Calls reserved in the window `now` falls in."""
        return self.counts.get(self.spec.index(now), 0)

    def fill(self, now: float) -> None:
        """Count the window `now` falls in as full (its use elsewhere is unknown)."""
        k = self.spec.index(now)
        self.counts[k] = max(self.counts.get(k, 0), self.spec.limit)


class LocalWindowPacer:
    """Fixed-window pacing of this process only (one replica, or the fallback without Redis).

    Implements the `Pacer` protocol; `clock` is a wall clock (window edges are clock times).
    """

    def __init__(self, spec: WindowSpec, *, clock: Clock = wall) -> None:
        self.spec = spec
        self.clock = clock
        self._window = FixedWindow(spec)
        self._paused_until = float("-inf")

    @property
    def degraded(self) -> bool:
        """An in-process pacer is what it is: never degraded."""
        return False

    async def reserve(self, max_wait: float, *, background: bool = False) -> Reservation:
        """A slot within `max_wait` seconds, or a refusal (nothing reserved). Every caller of
        an enrichment provider is a job, so `background` changes nothing here."""
        return self.reserve_now(max_wait)

    def reserve_now(self, max_wait: float) -> Reservation:
        """`reserve` without awaiting: the Redis pacer falls back on it."""
        now = self.clock()
        if now < self._paused_until:
            return Reservation(refused=PAUSED)
        wait = self._window.reserve(now, max_wait)
        if wait is None:
            return Reservation(refused=NO_TOKEN)
        return Reservation(wait=wait, margin=self.spec.edge)

    def used(self) -> int:
        """Calls reserved in the current window."""
        return self._window.used(self.clock())

    def skip_current_window(self) -> None:
        """No more slots in the current window: others may have spent it (a fallback switch)."""
        self._window.fill(self.clock())

    async def pause(self, seconds: float) -> None:
        """No call for `seconds` (a 429's Retry-After, no credits, a refused key)."""
        self.pause_now(seconds)

    def pause_now(self, seconds: float) -> None:
        """`pause` without awaiting."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def resume(self) -> None:
        """Lift a pause early."""
        self._paused_until = float("-inf")

    async def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        return max(0.0, self._paused_until - self.clock())
