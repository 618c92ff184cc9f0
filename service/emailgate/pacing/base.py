"""What the provider chain needs from a pacer: the in-process one and the Redis one agree."""

from __future__ import annotations

from typing import Protocol

from emailgate.pacing.bucket import Reservation


class Pacer(Protocol):
    """Reserves call slots for one provider, and pauses it when the provider says stop."""

    @property
    def degraded(self) -> bool:
        """True while a shared pacer has fallen back to its in-process share."""
        ...

    async def reserve(self, max_wait: float, *, background: bool = False) -> Reservation:
        """A slot within `max_wait` seconds, or a refusal; never waits itself.

        `background` (batch jobs): a slot now or never, and only while the bucket keeps
        `BucketSpec.reserve` slots for interactive checks after it: jobs take what signups
        leave unused, and the limit holds for both together."""
        ...

    async def pause(self, seconds: float) -> None:
        """No slot for `seconds` from now."""
        ...

    async def resume(self) -> None:
        """Lift a pause early."""
        ...

    async def paused_for(self) -> float:
        """Seconds left of the current pause."""
        ...
