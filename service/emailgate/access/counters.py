"""Counting windows for client rate limits and credit budgets: in-process, or shared in Redis.

A window opens at a bucket's first hit and lasts the rate's period; at most `count` hits are
taken in it. This maps one to one onto the `RateLimit-Limit/Remaining/Reset` headers (what is
left, and when it comes back). Its known edge: a client that spends a whole window at its end
and the next at its start gets up to 2 x count in a short span; client limits are about abuse,
not exact pacing (the providers' own limits are paced separately, in any sliding window).

In Redis, one Lua script checks and counts atomically and the window's end is the key's TTL,
kept by Redis's clock, so replicas with skewed clocks agree. When Redis fails, counting falls
back to the process (each replica then limits on its own) and says so once in the log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import NamedTuple, Protocol

import redis.asyncio as aioredis

from emailgate.clock import Clock
from emailgate.lru import TtlLru
from emailgate.rate import Rate
from emailgate.redis_fallback import REDIS_ERRORS, RedisFallback

log = logging.getLogger("emailgate.access")

MAX_BUCKETS = 200_000
"""In-process bound: a flood from many addresses must not grow memory without limit."""


class Window(NamedTuple):
    """The state of one bucket after a hit (a tuple: made on every request, and a frozen
    dataclass costs a microsecond to make)."""

    allowed: bool
    limit: int
    remaining: int
    reset: float
    """Seconds until the window ends and the full count is back."""

    @property
    def reset_seconds(self) -> int:
        """`reset` rounded up to whole seconds, at least 1 (for headers)."""
        return max(1, math.ceil(self.reset))


class Counter(Protocol):
    """Takes hits from buckets named by opaque keys."""

    async def take(self, key: str, rate: Rate) -> Window:
        """Count one hit if the window has room; say what is left either way."""
        ...

    async def give_back(self, key: str) -> None:
        """Return one hit taken earlier (a reservation that was not used)."""
        ...


class MemoryCounter:
    """Windows in this process, on an injected clock."""

    def __init__(self, clock: Clock, *, max_buckets: int = MAX_BUCKETS) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        # key -> [count, ends_at], gone when the window ends; past the bound the least recently
        # hit bucket goes (its client starts afresh). The clock is read through `self.clock`,
        # which the app replaces with its own at start-up.
        self._windows: TtlLru[str, list[float]] = TtlLru(max_buckets, clock=lambda: self.clock())

    def __len__(self) -> int:
        return len(self._windows)

    async def take(self, key: str, rate: Rate) -> Window:
        return self.take_now(key, rate)

    def take_now(self, key: str, rate: Rate) -> Window:
        """`take` without awaiting (it never waits)."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            window = [0.0, now + rate.period]
            self._windows.put(key, window, rate.period)
        count, ends_at = int(window[0]), window[1]
        if count >= rate.count:
            return Window(False, rate.count, 0, ends_at - now)
        window[0] = count + 1
        return Window(True, rate.count, rate.count - count - 1, ends_at - now)

    async def give_back(self, key: str) -> None:
        window = self._windows.get(key)
        if window is not None and window[0] > 0 and window[1] > self.clock():
            window[0] -= 1


_TAKE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[2])
  return {1, 1, tonumber(ARGV[2])}
end
if n >= tonumber(ARGV[1]) then
  return {0, n, ttl}
end
return {1, redis.call('INCR', KEYS[1]), ttl}
"""

_GIVE_BACK = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""

RETRY_REDIS_AFTER_S = 5.0
"""After a Redis failure, count in-process this long before asking Redis again: a Redis that
hangs would otherwise cost every request its command timeout."""


class RedisCounter:
    """Windows shared by every replica through Redis; in-process while Redis fails."""

    def __init__(
        self,
        client: aioredis.Redis,
        fallback: MemoryCounter,
        *,
        prefix: str = "emailgate:v1:rl:",
        on_degraded: Callable[[bool], None] | None = None,
    ) -> None:
        self.client = client
        self.on_degraded = on_degraded
        """Told True when counting falls back to the process, False when Redis is back."""
        self.fallback = fallback
        self.prefix = prefix
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)
        self.switch = RedisFallback(
            retry_after=RETRY_REDIS_AFTER_S, clock=lambda: self.fallback.clock()
        )

    @property
    def degraded(self) -> bool:
        """True while counting in this process."""
        return self.switch.degraded

    async def take(self, key: str, rate: Rate) -> Window:
        if not self.switch.use_redis():
            return self.fallback.take_now(key, rate)
        period_ms = max(1, round(rate.period * 1000))
        try:
            allowed, count, ttl_ms = await self._take(
                keys=[self.prefix + key], args=[rate.count, period_ms]
            )
        except REDIS_ERRORS as e:
            self._degrade(e)
            return self.fallback.take_now(key, rate)
        self._recover()
        count = int(count)
        return Window(bool(allowed), rate.count, max(0, rate.count - count), int(ttl_ms) / 1000)

    async def give_back(self, key: str) -> None:
        if self.degraded:
            # Taken in-process (or lost with Redis): give it back there.
            await self.fallback.give_back(key)
            return
        try:
            await self._give_back(keys=[self.prefix + key], args=[])
        except REDIS_ERRORS as e:
            self._degrade(e)
            await self.fallback.give_back(key)

    def _degrade(self, error: BaseException) -> None:
        if self.switch.failed():
            if self.on_degraded is not None:
                self.on_degraded(True)
            log.warning(
                "client limits: Redis failed, counting in this process until it answers",
                extra={"event": "client_limits_degraded", "error": type(error).__name__},
            )

    def _recover(self) -> None:
        if self.switch.answered():
            if self.on_degraded is not None:
                self.on_degraded(False)
            log.info(
                "client limits: Redis answers again, counting shared",
                extra={"event": "client_limits_shared"},
            )
