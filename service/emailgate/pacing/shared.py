"""The Redis pacer: one bucket per provider for the whole fleet, kept in Redis.

One Lua script reads Redis's own clock (`TIME`), so replica clocks do not matter, and reserves a
slot atomically, or nothing at all when the slot would come after the caller's deadline.

When Redis cannot be reached, each replica falls back to its in-process bucket at the rate
divided by EMAILGATE_REPLICAS, and says so (`degraded`, `/readyz`, a metric). At each switch the
new bucket first holds back for a few intervals plus one deadline: the calls the other side
already let through in the current window are then covered, and the limit holds across the
switch too (see `switch_hold`).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.pacing.bucket import NO_TOKEN, PAUSED, BucketSpec, Reservation
from emailgate.pacing.local import LocalPacer
from emailgate.redis_fallback import REDIS_ERRORS, RedisWithFallback

log = logging.getLogger("emailgate.pacing")

RETRY_REDIS = 1.0  # seconds between attempts to reach Redis again while degraded
MAX_WAIT_BOUND = 5.0  # seconds: no caller waits longer than its deadline; bounds the switch hold

# KEYS: bucket TAT, pause flag. ARGV: interval, tolerance, max wait, hold, spare limit (all
# microseconds; a spare limit of -1 is an interactive call, else a background one that goes now
# or never, and only while the TAT stands at most that far ahead: the reserve stays for signups).
# Returns {status, microseconds}: {0, wait} reserved · {1, pause left} paused · {2, wait} too late.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {1, paused * 1000} end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local hold = tonumber(ARGV[4])
if hold > 0 and tat < now + hold + tolerance then tat = now + hold + tolerance end
local spare = tonumber(ARGV[5])
if spare >= 0 and tat > now + spare then return {2, tat - now} end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then
  if hold > 0 then redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', 3600000) end
  return {2, wait}
end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 60000)
return {0, wait}
"""


def switch_hold(spec: BucketSpec, replicas: int) -> float:
    """Seconds a bucket waits after a switch between Redis and in-process pacing.

    The other side let through at most `capacity + L / interval` calls in any stretch L, and
    could have reserved slots up to one deadline ahead; each of `replicas` fallback buckets
    adds one call at its start. Holding back that many intervals keeps the window's total.
    """
    return (spec.capacity + replicas + 1) * spec.interval + MAX_WAIT_BOUND


class RedisPacer(RedisWithFallback):
    """Fleet-wide pacing in Redis, with an in-process fallback at this replica's share."""

    def __init__(
        self,
        client: aioredis.Redis,
        provider: str,
        spec: BucketSpec,
        *,
        fallback: LocalPacer,
        metrics: Metrics,
        replicas: int = 1,
        clock: Clock = monotonic,
    ) -> None:
        base = f"emailgate:v1:pace:{{{provider}}}"  # one hash tag: both keys on one shard
        self.keys = [f"{base}:tat", f"{base}:pause"]
        super().__init__(client, self.keys[1], fallback, retry_after=RETRY_REDIS, clock=clock)
        self.provider = provider
        self.spec = spec
        self.fallback = fallback
        self.metrics = metrics
        self.clock = clock
        self.hold = switch_hold(spec, replicas)
        self._reserve = client.register_script(RESERVE)
        self._hold_on_return = False

    def __repr__(self) -> str:
        return f"RedisPacer({self.provider!r}, degraded={self.degraded})"

    async def reserve(self, max_wait: float, *, background: bool = False) -> Reservation:
        if not self.switch.use_redis():
            return self.fallback.reserve_now(max_wait, background=background)
        hold = self.hold if self._hold_on_return else 0.0
        try:
            status, micros = await self._reserve(
                keys=self.keys,
                args=[
                    _us(self.spec.interval),
                    _us(self.spec.tolerance),
                    _us(0.0 if background else max_wait),
                    _us(hold),
                    _us(self.spec.spare_limit) if background else -1,
                ],
            )
        except REDIS_ERRORS as e:
            self._fail(e)
            return self.fallback.reserve_now(max_wait, background=background)
        self._hold_on_return = False  # the script has applied it, whatever it answered
        self._recovered()
        if status == 1:
            return Reservation(refused=PAUSED)
        if status == 2:
            return Reservation(refused=NO_TOKEN)
        return Reservation(wait=int(micros) / 1e6, margin=self.spec.margin)

    def _on_degraded(self, error: BaseException) -> None:
        self._hold_on_return = True
        self.fallback.hold(self.hold)
        self.metrics.redis_part(f"pacing:{self.provider}", degraded=True)
        log.warning(
            "Redis unreachable: pacing falls back to this replica's share",
            extra={"event": "pacing_degraded", "provider": self.provider,
                   "error": type(error).__name__, "hold_s": round(self.hold, 3)},
        )  # fmt: skip

    def _on_recovered(self) -> None:
        self.metrics.redis_part(f"pacing:{self.provider}", degraded=False)
        log.warning(
            "Redis reachable again: pacing shared across the fleet",
            extra={"event": "pacing_recovered", "provider": self.provider},
        )


def _us(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))
