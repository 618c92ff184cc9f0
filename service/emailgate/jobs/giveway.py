"""Signups first on the event loop: job work that shares it with interactive checks
(EMAILGATE_JOB_WORKER=inline: reading an upload, a job's steps) waits while any check is being
answered, so a signup's next step is not queued behind a job's. The wait is bounded: a
steady stream of signups slows a job down but cannot stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

GIVE_WAY_S = 0.05  # longest a step waits for the checks in flight
GIVE_WAY_POLL = 0.002  # seconds between looks while it waits


async def give_way(
    busy: Callable[[], int], sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Return once `busy()` is 0 (checks in flight), or after GIVE_WAY_S."""
    for _ in range(round(GIVE_WAY_S / GIVE_WAY_POLL)):
        if not busy():
            return
        await sleep(GIVE_WAY_POLL)
