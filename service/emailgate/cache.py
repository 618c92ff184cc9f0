"""The cache seam (stages 3 and 8): verdicts by keyed hash, on aiocache, failing open.

Everything aiocache-specific lives in this file so it could be swapped in one place. Guards for
aiocache 0.12's known gaps: the in-memory backend here is bounded (LRU, emailgate/lru.py) with
TTLs on an injected clock and no per-key timers; Redis uses our own client with a blocking
bounded pool (its default pool raises past 100 concurrent operations with redis-py 8); every
cache error is a miss, never a failed check; the 5 s per-call timeout wrapper is off on the
memory path.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiocache import RedisCache
from aiocache.base import BaseCache
from aiocache.serializers import BaseSerializer, NullSerializer

from emailgate.clock import Clock, monotonic
from emailgate.lru import TtlLru
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.verify.result import Address, Reason, Source, State, Verdict

log = logging.getLogger("emailgate.cache")

NAMESPACE = "emailgate:v1:verdict:"
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def ttl_for(verdict: Verdict) -> float | None:
    """How long a verdict stays true enough to reuse; None: do not cache it.

    Provider verdicts cost credits, so the conclusive ones are kept for days; `unknown` is kept
    for minutes so the providers are asked again soon. Local verdicts are cheap to redo, but
    the fail-open ones must not hide a provider's answer for long (docs/api.md "Fail-open").
    """
    if verdict.source is Source.SANDBOX:
        return None
    if verdict.source is not Source.LOCAL:
        return {
            State.DELIVERABLE: 7 * DAY,
            State.UNDELIVERABLE: 3 * DAY,
            State.RISKY: DAY,
            State.UNKNOWN: 10 * MINUTE,
        }[verdict.state]
    if verdict.reason is Reason.LOW_QUALITY:  # disposable: the lists don't change in a day
        return DAY
    if verdict.reason is Reason.INVALID_DOMAIN:
        return HOUR
    if verdict.reason is Reason.DNS_ERROR:
        return MINUTE
    return 5 * MINUTE  # local fail-open: unknown, timeout, unavailable_provider


class OrjsonSerializer(BaseSerializer):  # type: ignore[misc]
    """Verdicts as orjson bytes in Redis; anything unreadable loads as a miss."""

    DEFAULT_ENCODING = None  # bytes in and out

    def dumps(self, value: Any) -> bytes:
        data = value.to_dict() if isinstance(value, Verdict) else value
        return orjson.dumps(data)

    def loads(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None


class BoundedMemoryCache(BaseCache):  # type: ignore[misc]
    """aiocache backend: an LRU of at most `max_entries`, expiring lazily on `clock`."""

    NAME = "bounded-memory"

    def __init__(self, max_entries: int, *, clock: Clock = monotonic, **kwargs: Any) -> None:
        super().__init__(serializer=NullSerializer(), timeout=None, **kwargs)
        self.max_entries = max_entries
        self._data: TtlLru[str, Any] = TtlLru(max_entries, clock=clock)

    def __len__(self) -> int:
        return len(self._data)

    def peek(self, key: str) -> Any:
        """The live value under `key` (namespace included) or None; no await on the hot path."""
        return self._data.get(key)

    def put(self, key: str, value: Any, ttl: float | None) -> None:
        """Store `value`, evicting the least recently used entries past the bound."""
        self._data.put(key, value, ttl)

    async def _get(self, key: str, encoding: str | None = None, _conn: Any = None) -> Any:
        return self.peek(key)

    async def _gets(self, key: str, encoding: str | None = None, _conn: Any = None) -> Any:
        return self.peek(key)

    async def _multi_get(
        self, keys: list[str], encoding: str | None = None, _conn: Any = None
    ) -> Any:
        return [self.peek(k) for k in keys]

    async def _set(
        self,
        key: str,
        value: Any,
        ttl: float | None = None,
        _cas_token: Any = None,
        _conn: Any = None,
    ) -> bool:
        if _cas_token is not None and _cas_token != self.peek(key):
            return False
        self.put(key, value, ttl)
        return True

    async def _multi_set(self, pairs: Any, ttl: float | None = None, _conn: Any = None) -> bool:
        for key, value in pairs:
            self.put(key, value, ttl)
        return True

    async def _add(self, key: str, value: Any, ttl: float | None = None, _conn: Any = None) -> bool:
        if self.peek(key) is not None:
            raise ValueError(f"Key {key} already exists, use .set to update the value")
        self.put(key, value, ttl)
        return True

    async def _exists(self, key: str, _conn: Any = None) -> bool:
        return self.peek(key) is not None

    async def _expire(self, key: str, ttl: float, _conn: Any = None) -> bool:
        value = self.peek(key)
        if value is None:
            return False
        self.put(key, value, ttl)
        return True

    async def _delete(self, key: str, _conn: Any = None) -> int:
        return 1 if self._data.pop(key) is not None else 0

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        if namespace:
            for key in [k for k in self._data if k.startswith(namespace)]:
                self._data.pop(key)
        else:
            self._data.clear()
        return True

    async def _increment(self, key: str, delta: int, _conn: Any = None) -> int:
        value = int(self.peek(key) or 0) + delta
        self.put(key, value, None)
        return value

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("raw commands make no sense on this backend")

    async def _redlock_release(self, key: str, value: Any) -> int:
        if self.peek(key) == value:
            return await self._delete(key)
        return 0


class SharedRedisCache(RedisCache):  # type: ignore[misc]
    """aiocache's RedisCache on a client we own: one blocking pool for cache, pacing, limits."""

    def __init__(self, client: aioredis.Redis, *, timeout: float) -> None:
        super().__init__(serializer=OrjsonSerializer(), timeout=timeout)
        # RedisBackend keeps its client in `self.client` and touches Redis only through it;
        # the pool its constructor made is never connected.
        self.client = client

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        """The app closes the shared client, once, after everyone is done with it."""


class VerdictCache:
    """Verdicts by the keyed hash of the normalised address; every failure is a miss."""

    def __init__(
        self,
        backend: BaseCache,
        *,
        hasher: Hasher,
        metrics: Metrics,
        op_timeout: float = 0.15,
    ) -> None:
        self.backend = backend
        self.hasher = hasher
        self.metrics = metrics
        self.op_timeout = op_timeout
        self._memory = backend if isinstance(backend, BoundedMemoryCache) else None
        self._errors_logged = 0
        self.writes_paused = False
        """Set by the Redis memory guard (redisguard.py) while Redis is near its limit."""

    def key(self, address: Address) -> str:
        """ASCII case variants of one address share an entry (a repeat should not spend
        credits); no other variant does (`Address.identity`)."""
        return NAMESPACE + self.hasher.hash(address.identity)

    @property
    def in_process(self) -> bool:
        """Whether the verdicts are in this process: `get_now` reads them without awaiting."""
        return self._memory is not None

    def get_now(self, key: str) -> Verdict | None:
        """`get` from the in-process cache (`in_process`), without a coroutine to await."""
        assert self._memory is not None
        verdict = self._load(self._memory.peek(key))
        self.metrics.cache_lookup(hit=verdict is not None)
        return verdict

    async def get(self, key: str, *, budget: float) -> Verdict | None:
        """The cached verdict, or None on a miss, an error or a damaged entry."""
        if self._memory is not None:
            return self.get_now(key)
        else:
            try:
                value = await self.backend.get(
                    key, timeout=min(self.op_timeout, max(budget, 0.001))
                )
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except BaseException as e:  # any cache failure is a miss
                self._failed("get", e)
                value = None
            else:
                self.metrics.redis_part("cache", degraded=False)
        verdict = self._load(value)
        self.metrics.cache_lookup(hit=verdict is not None)
        return verdict

    async def set(self, key: str, verdict: Verdict) -> None:
        """Store `verdict` for as long as its state and source allow."""
        ttl = ttl_for(verdict)
        if ttl is None:
            return
        if self._memory is not None:
            self._memory.put(key, verdict, ttl)
            return
        if self.writes_paused:
            return
        try:
            await self.backend.set(key, verdict, ttl=ttl, timeout=self.op_timeout)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except BaseException as e:
            self._failed("set", e)
        else:
            self.metrics.redis_part("cache", degraded=False)

    def _load(self, value: Any) -> Verdict | None:
        if value is None or isinstance(value, Verdict):
            return value
        try:
            return Verdict.from_dict(value)
        except (KeyError, ValueError, TypeError):
            return None

    def _failed(self, op: str, error: BaseException) -> None:
        self.metrics.cache_error(op)
        self.metrics.redis_part("cache", degraded=True)
        # Loud enough to notice, quiet enough not to flood the log during an outage.
        self._errors_logged += 1
        if self._errors_logged <= 5 or self._errors_logged % 1000 == 0:
            log.warning(
                "cache %s failed, answering without the cache",
                op,
                extra={"error": type(error).__name__, "count": self._errors_logged},
            )
