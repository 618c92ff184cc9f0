"""Keeps verdicts from pushing Redis into eviction, so control state is never what goes.

One Redis holds verdicts (many, each worth keeping but cheap to lose) and control state: the
fleet's hash key, the providers' pacing buckets, client limits and credit budgets. With a
memory limit and an eviction policy such as `allkeys-lru`, Redis evicts keys by sampling,
whatever they hold, once `maxmemory` is reached: a pacing bucket or a budget window could be
the one that goes, and with it a provider's limit or a client's spent credits.

Verdicts are the only thing that grows with traffic. So every `PERIOD_S` seconds the guard
reads `INFO memory`; at `HIGH` of `maxmemory` new verdicts stop being written (their TTLs make
room), and at `LOW` they are written again. Redis then never reaches its limit through us,
and eviction never has to choose. Said in the log, /readyz and
`emailgate_cache_writes_paused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from emailgate.cache import VerdictCache
from emailgate.metrics import Metrics

log = logging.getLogger("emailgate.cache")

HIGH = 0.85  # of maxmemory: stop writing verdicts
LOW = 0.75  # of maxmemory: write them again
PERIOD_S = 2.0
_ERRORS = (aioredis.RedisError, OSError, TimeoutError)


class RedisMemoryGuard:
    """Pauses verdict writes while Redis is near its memory limit."""

    def __init__(self, client: aioredis.Redis, cache: VerdictCache, metrics: Metrics) -> None:
        self.client = client
        self.cache = cache
        self.metrics = metrics
        self.used = 0
        self.limit = 0
        self.policy = ""
        metrics.cache_writes_paused.set(0)

    async def check(self) -> None:
        """Read Redis's memory use and pause or resume verdict writes."""
        try:
            info = await self.client.info("memory")
        except _ERRORS:
            return  # Redis trouble is reported by the readiness check and the fallbacks
        self.used = int(info.get("used_memory", 0))
        self.limit = int(info.get("maxmemory", 0))
        self.policy = str(info.get("maxmemory_policy", ""))
        if self.limit <= 0:
            self._set(False)
            return
        share = self.used / self.limit
        if share >= HIGH:
            self._set(True)
        elif share <= LOW:
            self._set(False)

    def _set(self, paused: bool) -> None:
        if paused == self.cache.writes_paused:
            return
        self.cache.writes_paused = paused
        self.metrics.cache_writes_paused.set(1 if paused else 0)
        log.warning(
            "verdict cache writes paused: Redis is near its maxmemory, and eviction must not "
            "take control state (hash key, pacing, client limits)"
            if paused
            else "verdict cache writes resumed",
            extra={"event": "cache_writes_paused" if paused else "cache_writes_resumed",
                   "used_bytes": self.used, "maxmemory": self.limit, "policy": self.policy},
        )  # fmt: skip

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: ready either way (answers go on, uncached), but said."""
        if self.cache.writes_paused:
            share = self.used / self.limit if self.limit else 0.0
            return True, (
                f"verdict writes paused: Redis at {share:.0%} of maxmemory "
                f"({self.policy}); answers go on uncached until TTLs make room (raise maxmemory)"
            )
        return True, "verdict writes on"

    @contextlib.asynccontextmanager
    async def watching(self, period: float = PERIOD_S) -> AsyncIterator[None]:
        """Check now and every `period` seconds while the context is open."""
        await self.check()

        async def loop() -> None:
            while True:
                await asyncio.sleep(period)
                await self.check()

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
