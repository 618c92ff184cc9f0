"""What the three bulk clients share: their Wire, how often they poll, their pause.

Each client (ListCleanser batch, Listcleaner, EmailConsul) is a `BulkClient` with its own
endpoints; the Wire's tuning (metrics, clock, sleep, timeouts) is passed through unchanged as
`WireSettings`, so a client's constructor names only what is its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypedDict, Unpack

import aiohttp

from emailgate.bulk.base import BulkState, BulkStatus, PollPlan
from emailgate.bulk.wire import Wire
from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer


class WireSettings(TypedDict, total=False):
    """The Wire's tuning, as every client takes it (all optional)."""

    metrics: Metrics | None
    clock: Clock
    sleep: Callable[[float], Awaitable[None]]
    request_timeout: float
    transfer_timeout: float


class BulkClient:
    """The part of a bulk client that is not about its provider's API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        name: str,
        *,
        pacer: Pacer,
        poll_every: float,
        **wire: Unpack[WireSettings],
    ) -> None:
        self.wire = Wire(session, name, pacer=pacer, **wire)
        self.poll_every = poll_every
        """The longest wait between two polls of a list (PollPlan polls sooner near its end)."""
        self.plan = PollPlan(clock=wire.get("clock", monotonic))

    def working(self, list_id: str, progress: float) -> BulkStatus:
        """The list is still being cleaned: poll again when the plan says."""
        return BulkStatus(BulkState.WORKING, progress,
                          self.plan.wait(list_id, progress, self.poll_every))  # fmt: skip

    def done(self, list_id: str) -> BulkStatus:
        """The list is done: forget its timing."""
        self.plan.restart(list_id)
        return BulkStatus(BulkState.DONE, 1.0, 0.0)

    async def counted(self, credits: int) -> int:
        """Credits read from the provider: any left lifts a pause for want of them."""
        if credits > 0:
            await self.wire.resume_if_out_of_credits()
        return credits

    async def paused_for(self) -> float:
        """Seconds before this provider takes lists again (0: now)."""
        return await self.wire.paused_for()
