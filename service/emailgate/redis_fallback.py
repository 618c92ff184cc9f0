"""The one Redis-or-in-process switch: shared state lives in Redis, and while Redis fails a
replica carries on in its own process, asking Redis again after a while. The pacer
(pacing/shared.py) and the client counters (access/counters.py) both use it."""

from __future__ import annotations

import redis.asyncio as aioredis

from emailgate.clock import Clock

REDIS_ERRORS = (aioredis.RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is away, slow or refuses: a switch, never a 500."""


class RedisFallback:
    """Whether to ask Redis now. After a failure the in-process fallback serves for
    `retry_after` seconds on `clock`, then Redis is asked again; `failed` and `answered` say
    when the state switches, so the caller logs and counts each switch once."""

    def __init__(self, *, retry_after: float, clock: Clock) -> None:
        self.retry_after = retry_after
        self.clock = clock
        self.degraded = False
        self._retry_at = float("-inf")

    def use_redis(self) -> bool:
        """False while degraded and the retry time has not come."""
        return not self.degraded or self.clock() >= self._retry_at

    def failed(self) -> bool:
        """Redis just failed: use the fallback for a while. True when this is the switch."""
        self._retry_at = self.clock() + self.retry_after
        switched = not self.degraded
        self.degraded = True
        return switched

    def answered(self) -> bool:
        """Redis just answered. True when this ends a degraded stretch."""
        switched = self.degraded
        self.degraded = False
        return switched
