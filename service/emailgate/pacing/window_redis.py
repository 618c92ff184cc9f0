"""The fixed-window pacer in Redis: one count per window for the whole fleet, on Redis's clock.

One Lua script reads Redis's `TIME`, finds the first window (this one or a later one) with room
whose slot is within the caller's `max_wait`, and counts the call there, atomically. Counts live
in one hash per provider (field = window index), pruned as windows end.

When Redis cannot be reached, each replica falls back to an in-process window at the limit
divided by EMAILGATE_REPLICAS, and skips the rest of the current window (the fleet may have
spent it). When Redis answers again, the calls this replica made in the current window while
degraded are added to Redis's count of that window, so the window's total still holds.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from emailgate.clock import Clock, wall
from emailgate.metrics import Metrics
from emailgate.pacing.bucket import NO_TOKEN, PAUSED, Reservation
from emailgate.pacing.window import LocalWindowPacer, WindowSpec
from emailgate.redis_fallback import REDIS_ERRORS, RedisWithFallback

log = logging.getLogger("emailgate.pacing")

RETRY_REDIS = 1.0  # seconds between attempts to reach Redis again while degraded

# KEYS: window counts (hash), pause flag. ARGV: limit, window, edge, max wait (microseconds but
# the limit), then the calls made elsewhere in window ARGV[6] to add first (ARGV[5], usually 0).
# Returns {status, microseconds}: {0, wait} reserved · {1, pause left} paused · {2, wait} too late.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local edge = tonumber(ARGV[3])
local maxw = tonumber(ARGV[4])
local current = math.floor(now / w)
local extra = tonumber(ARGV[5])
if extra > 0 and tonumber(ARGV[6]) >= current then
  redis.call('HINCRBY', KEYS[1], ARGV[6], extra)
end
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {1, paused * 1000} end
if limit <= 0 then return {2, 0} end
local k = current
while true do
  local start = k * w
  local earliest = math.max(now, start + edge)
  if earliest - now > maxw then return {2, earliest - now} end
  local field = string.format('%d', k)
  local used = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if earliest <= start + w - edge and used < limit then
    redis.call('HINCRBY', KEYS[1], field, 1)
    for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
      if tonumber(f) < current then redis.call('HDEL', KEYS[1], f) end
    end
    local keep = math.ceil((start + w - now) / 1000) + 60000
    if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
    return {0, earliest - now}
  end
  k = k + 1
end
"""


class RedisWindowPacer(RedisWithFallback):
    """Fleet-wide fixed-window pacing in Redis, with an in-process fallback at this replica's
    share. Implements the `Pacer` protocol."""

    def __init__(
        self,
        client: aioredis.Redis,
        provider: str,
        spec: WindowSpec,
        *,
        metrics: Metrics,
        replicas: int = 1,
        clock: Clock = wall,
        fallback: LocalWindowPacer | None = None,
    ) -> None:
        self.fallback = fallback or LocalWindowPacer(spec.divided(replicas), clock=clock)
        base = f"emailgate:v1:window:{{{provider}}}"  # one hash tag: both keys on one shard
        self.keys = [f"{base}:counts", f"{base}:pause"]
        super().__init__(client, self.keys[1], self.fallback, retry_after=RETRY_REDIS,
                         clock=clock)  # fmt: skip
        self.provider = provider
        self.spec = spec
        self.metrics = metrics
        self.clock = clock
        self._reserve = client.register_script(RESERVE)
        self._owed: tuple[int, int] | None = None
        """(window index, calls) made in-process while degraded, not yet counted in Redis."""

    def __repr__(self) -> str:
        return f"RedisWindowPacer({self.provider!r}, degraded={self.degraded})"

    async def reserve(self, max_wait: float, *, background: bool = False) -> Reservation:
        """A slot within `max_wait` seconds, or a refusal (nothing reserved); `background` as
        for the in-process window."""
        if not self.switch.use_redis():
            return self._reserve_locally(max_wait)
        window, owed = self._owed or (0, 0)
        args = [self.spec.limit, _us(self.spec.window), _us(self.spec.edge), _us(max_wait),
                owed, window]  # fmt: skip
        try:
            status, micros = await self._reserve(keys=self.keys, args=args)
        except REDIS_ERRORS as e:
            self._fail(e)
            return self._reserve_locally(max_wait)
        self._owed = None  # the script has added them, whatever it answered
        self._recovered()
        if status == 1:
            return Reservation(refused=PAUSED)
        if status == 2:
            return Reservation(refused=NO_TOKEN)
        return Reservation(wait=int(micros) / 1e6, margin=self.spec.edge)

    def _reserve_locally(self, max_wait: float) -> Reservation:
        reservation = self.fallback.reserve_now(max_wait)
        if reservation.ok:
            # Only calls in the current window can matter to Redis's count once it is back.
            k = self.spec.index(self.clock() + reservation.wait)
            window, owed = self._owed or (k, 0)
            self._owed = (k, owed + 1 if window == k else 1)
        return reservation

    def _on_degraded(self, error: BaseException) -> None:
        self.fallback.skip_current_window()
        self.metrics.redis_part(f"pacing:{self.provider}", degraded=True)
        log.warning(
            "Redis unreachable: fixed-window pacing falls back to this replica's share",
            extra={"event": "pacing_degraded", "provider": self.provider,
                   "error": type(error).__name__},
        )  # fmt: skip

    def _on_recovered(self) -> None:
        self.metrics.redis_part(f"pacing:{self.provider}", degraded=False)
        log.warning(
            "Redis reachable again: fixed-window pacing shared across the fleet",
            extra={"event": "pacing_recovered", "provider": self.provider},
        )


def _us(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))
