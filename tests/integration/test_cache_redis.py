"""The cache seam on a real Redis: orjson values, TTLs, no address in keys, fail-open."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from emailgate.cache import SharedRedisCache, VerdictCache
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.services import connect_redis, warm_pool
from emailgate.verify.result import Address, Reason, Source, State, Verdict
from tests.conftest import RedisServer

ADDRESS = Address("jane@example.com", "jane", "example.com", "example.com")
GOOD = Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 95, Source.LISTCLEANSER, mx_record="mx")


def make(url: str, op_timeout: float = 0.15) -> tuple[VerdictCache, aioredis.Redis]:
    client = connect_redis(url, deadline=1.5)
    cache = VerdictCache(
        SharedRedisCache(client, timeout=op_timeout),
        hasher=Hasher(b"k" * 32),
        metrics=Metrics(),
        op_timeout=op_timeout,
    )
    return cache, client


async def test_round_trip_with_ttl_and_hashed_key(redis_url: str) -> None:
    """A verdict comes back equal; the key holds no address; the TTL follows the policy."""
    cache, client = make(redis_url)
    try:
        key = cache.key(ADDRESS)
        await cache.set(key, GOOD)
        assert await cache.get(key, budget=1) == GOOD
        keys = [k.decode() for k in await client.keys("*")]
        assert keys == [key]
        assert "jane" not in key and "example" not in key
        ttl = await client.ttl(key)
        assert 7 * 86400 - 5 <= ttl <= 7 * 86400
        raw = await client.get(key)
        assert raw is not None and raw.startswith(b'{"state":"deliverable"')  # orjson
    finally:
        await client.aclose()


async def test_damaged_entry_is_a_miss(redis_url: str) -> None:
    """Anything unreadable under a key counts as a miss, not an error."""
    cache, client = make(redis_url)
    try:
        await client.set(cache.key(ADDRESS), b"not json")
        assert await cache.get(cache.key(ADDRESS), budget=1) is None
        await client.set(cache.key(ADDRESS), b'{"state":"bogus"}')
        assert await cache.get(cache.key(ADDRESS), budget=1) is None
    finally:
        await client.aclose()


async def test_redis_down_fails_open_fast(redis_url: str, redis_server: RedisServer) -> None:
    """With Redis stopped, get is a quick miss and set is a no-op; errors are counted."""
    cache, client = make(redis_url)
    try:
        redis_server.stop()
        start = time.monotonic()
        assert await cache.get(cache.key(ADDRESS), budget=1) is None
        await cache.set(cache.key(ADDRESS), GOOD)
        assert time.monotonic() - start < 1.0
        errors = cache.metrics.registry.get_sample_value(
            "emailgate_cache_errors_total", {"op": "get"}
        )
        assert errors == 1
    finally:
        redis_server.start()
        await client.aclose()


async def test_a_burst_on_a_cold_pool_fails_open(redis_url: str) -> None:
    """500 lookups at once on a pool with no connection yet: no exception, hits or misses."""
    cache, client = make(redis_url)
    try:
        await cache.set("k", GOOD)
        results = await asyncio.gather(*(cache.get("k", budget=1) for _ in range(500)))
        assert set(results) <= {GOOD, None}
    finally:
        await client.aclose()


async def test_many_concurrent_operations_wait_for_the_warm_bounded_pool(redis_url: str) -> None:
    """Once warmed, 300 concurrent lookups on 64 connections queue for the pool and all hit
    (aiocache's default pool would raise "Too many connections" instead)."""
    # Generous timeouts (per operation, waiting for a pooled connection, on the socket): what is
    # under test is queueing, not latency, and a busy machine stretches every round trip.
    cache, client = make(redis_url, op_timeout=5.0)
    pool = client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    pool.timeout = 5.0
    pool.connection_kwargs.update(socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        assert await warm_pool(client, 64)
        await cache.set("k", GOOD)
        results = await asyncio.gather(*(cache.get("k", budget=10) for _ in range(300)))
        assert results == [GOOD] * 300
        assert pool.max_connections == 64
    finally:
        await client.aclose()
