"""The fleet's hash key, kept in Redis when EMAILGATE_HASH_KEY is not set, and watched.

Cache keys and client-limit keys are keyed hashes: replicas share a cache and limits only
while they hash with the same key. Without EMAILGATE_HASH_KEY the first replica writes a
random key to Redis and the others read it. That key can vanish: Redis restarts empty (no
persistence) or evicts it (`allkeys-lru`). A replica starting then would write a new one,
and the fleet would split silently: each half with its own cache and its own client limits.

So every replica checks the key in Redis every `WATCH_S` seconds (and on each /readyz):

- missing: it writes its own back (SET NX), so the running fleet keeps its key;
- different from its own: a split. It says so (a warning, `emailgate_hash_key_splits_total`,
  the /readyz detail) and adopts the key in Redis: the fleet converges on one key within
  one period, whichever replica wrote first.

Reading the key every few seconds also keeps it recently used, so an LRU eviction of
verdicts reaches it last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher

log = logging.getLogger("emailgate.hashkey")

REDIS_KEY = "emailgate:v1:hash-key"
WATCH_S = 2.0
_ERRORS = (aioredis.RedisError, OSError, TimeoutError)


def new_key() -> bytes:
    """A fresh random key, as written to Redis (64 hex characters)."""
    return secrets.token_hex(32).encode()


async def fetch_or_create(client: aioredis.Redis) -> bytes | None:
    """The fleet's key from Redis, created by whichever replica asks first; None if Redis
    does not answer."""
    try:
        await client.set(REDIS_KEY, new_key(), nx=True)
        value = await client.get(REDIS_KEY)
    except _ERRORS:
        return None
    if isinstance(value, str):
        return value.encode()
    return value or None


class SharedHashKey:
    """Keeps this replica's hasher on the key the fleet shares through Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        hasher: Hasher,
        key: bytes,
        *,
        metrics: Metrics,
        clock: Clock = monotonic,
    ) -> None:
        self.client = client
        self.hasher = hasher
        self.key = key
        self.metrics = metrics
        self.clock = clock
        self.splits = 0
        self.restored = 0
        self.last_split_at: float | None = None
        self._lock = asyncio.Lock()
        metrics.hash_key_splits.inc(0)

    async def verify(self) -> bool | None:
        """Compare with Redis, restore or adopt; True when in agreement, None if unreachable."""
        async with self._lock:
            try:
                value = await self.client.get(REDIS_KEY)
                if value is None:
                    # Evicted, or Redis restarted empty: put the fleet's key back, unless a
                    # replica starting meanwhile already wrote its own (then that one wins).
                    if await self.client.set(REDIS_KEY, self.key, nx=True):
                        self.restored += 1
                        log.warning(
                            "the shared hash key was missing from Redis; restored",
                            extra={"event": "hash_key_restored",
                                   "fingerprint": self.hasher.fingerprint()},
                        )  # fmt: skip
                        return True
                    value = await self.client.get(REDIS_KEY)
            except _ERRORS:
                return None
            if value is None:
                return None
            value = value.encode() if isinstance(value, str) else value
            if value == self.key:
                return True
            self._adopt(value)
            return True

    def _adopt(self, value: bytes) -> None:
        ours = self.hasher.fingerprint()
        self.hasher.rekey(value)
        self.key = value
        self.splits += 1
        self.last_split_at = self.clock()
        self.metrics.hash_key_splits.inc()
        log.warning(
            "hash key split: Redis holds another key than this replica used (Redis restarted "
            "empty or evicted it); adopting the one in Redis so replicas share cache and limits "
            "again (set EMAILGATE_HASH_KEY to rule this out)",
            extra={"event": "hash_key_split", "was": ours, "now": self.hasher.fingerprint()},
        )

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: always ready (a split is healed at once), but said."""
        detail = f"shared through Redis (fingerprint {self.hasher.fingerprint()})"
        if self.splits:
            ago = self.clock() - (self.last_split_at or 0.0)
            detail += (
                f"; {self.splits} split(s) detected and healed, the last {ago:.0f} s ago: "
                "set EMAILGATE_HASH_KEY to rule them out"
            )
        if self.restored:
            detail += f"; restored in Redis {self.restored} time(s) after it went missing"
        return True, detail

    @contextlib.asynccontextmanager
    async def watching(self, period: float = WATCH_S) -> AsyncIterator[None]:
        """Verify every `period` seconds while the context is open."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(period)
                await self.verify()

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
