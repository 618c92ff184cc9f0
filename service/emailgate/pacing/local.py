"""The in-process pacer: one bucket and one pause, on an injected clock."""

from __future__ import annotations

from emailgate.clock import Clock, monotonic
from emailgate.pacing.bucket import NO_TOKEN, PAUSED, BucketSpec, Gcra, Reservation


class LocalPacer:
    """Paces the calls of this process only (one replica, or the fallback when Redis is down)."""

    def __init__(self, spec: BucketSpec, *, clock: Clock = monotonic, closed: bool = False) -> None:
        self.spec = spec
        self.clock = clock
        self.closed = closed
        """Refuse every slot: a fallback for a limit that cannot be split between replicas."""
        self._bucket = Gcra(spec)
        self._paused_until = float("-inf")

    @property
    def degraded(self) -> bool:
        """An in-process pacer is what it is: never degraded."""
        return False

    async def reserve(self, max_wait: float, *, background: bool = False) -> Reservation:
        """A slot within `max_wait` seconds, or a refusal (nothing reserved)."""
        return self.reserve_now(max_wait, background=background)

    def reserve_now(self, max_wait: float, *, background: bool = False) -> Reservation:
        """`reserve` without awaiting: the Redis pacer falls back on it."""
        now = self.clock()
        if now < self._paused_until:
            return Reservation(refused=PAUSED)
        if self.closed:
            return Reservation(refused=NO_TOKEN)
        if background:
            if not self._bucket.reserve_spare(now):
                return Reservation(refused=NO_TOKEN)
            return Reservation(wait=0.0, margin=self.spec.margin)
        wait = self._bucket.reserve(now, max_wait)
        if wait is None:
            return Reservation(refused=NO_TOKEN)
        return Reservation(wait=wait, margin=self.spec.margin)

    def hold(self, seconds: float) -> None:
        """No slot before `seconds` from now, and the bucket starts empty then (no burst)."""
        now = self.clock()
        self._bucket.tat = max(self._bucket.tat, now + seconds + self.spec.tolerance)

    async def pause(self, seconds: float) -> None:
        """No call for `seconds` (a 429's Retry-After, no credits, a refused key)."""
        self.pause_now(seconds)

    def pause_now(self, seconds: float) -> None:
        """`pause` without awaiting."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def resume(self) -> None:
        """Lift a pause early (credits came back)."""
        self._paused_until = float("-inf")

    async def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        return max(0.0, self._paused_until - self.clock())
