"""The one Redis-or-in-process switch: shared state lives in Redis, and while Redis fails a
replica carries on in its own process, asking Redis again after a while. The pacers
(pacing/shared.py, pacing/window_redis.py, on `RedisWithFallback`) and the client counters
(access/counters.py) use it."""

from __future__ import annotations

import math
from collections.abc import Awaitable
from typing import Any, Protocol

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


class LocalPause(Protocol):
    """The pause of an in-process fallback pacer."""

    def pause_now(self, seconds: float) -> None: ...

    async def resume(self) -> None: ...

    async def paused_for(self) -> float: ...


# KEYS: pause flag. ARGV: milliseconds. Keeps the longer of the current and the new pause.
PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


class RedisWithFallback:
    """What the Redis pacers share: a fleet-wide pause flag in Redis (kept locally too), and
    the switch to the in-process fallback on any Redis error and back once Redis answers.

    Subclasses say what a switch means to them in `_on_degraded` and `_on_recovered`, each
    called once per switch."""

    def __init__(
        self,
        client: aioredis.Redis,
        pause_key: str,
        local: LocalPause,
        *,
        retry_after: float,
        clock: Clock,
    ) -> None:
        self.client = client
        self.pause_key = pause_key
        self.local = local
        self.switch = RedisFallback(retry_after=retry_after, clock=clock)
        self._pause_script = client.register_script(PAUSE)

    @property
    def degraded(self) -> bool:
        """True while this replica falls back to its in-process share."""
        return self.switch.degraded

    async def pause(self, seconds: float) -> None:
        """Nothing for `seconds`, for the whole fleet (and locally, should Redis go away)."""
        self.local.pause_now(seconds)
        ms = max(1, math.ceil(seconds * 1000))
        await self._try(self._pause_script(keys=[self.pause_key], args=[ms]))

    async def resume(self) -> None:
        """Lift a pause early."""
        await self.local.resume()
        await self._try(self.client.delete(self.pause_key))

    async def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        if not self.degraded:
            left = await self._try(self.client.pttl(self.pause_key))
            if isinstance(left, int):
                return max(0.0, left / 1000)
        return await self.local.paused_for()

    async def _try(self, op: Awaitable[Any]) -> Any:
        try:
            result = await op
        except REDIS_ERRORS as e:
            self._fail(e)
            return None
        self._recovered()
        return result

    def _fail(self, error: BaseException) -> None:
        if self.switch.failed():
            self._on_degraded(error)

    def _recovered(self) -> None:
        if self.switch.answered():
            self._on_recovered()

    def _on_degraded(self, error: BaseException) -> None:
        """Redis just became unreachable."""

    def _on_recovered(self) -> None:
        """Redis just answered again."""
