"""The long-lived parts of a running emailgate, built from settings, closed in reverse order.

The HTTP app owns one `Services` through its cleanup_ctx; `emailgate check` opens its own.
Every part can be passed in instead (tests pass fakes of the wire, never of our internals).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiocache.base import BaseCache
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from emailgate.bulk.assemble import BulkRoster, open_bulk
from emailgate.cache import BoundedMemoryCache, SharedRedisCache, VerdictCache
from emailgate.clock import Clock, monotonic
from emailgate.config import ACCOUNT_NAMES, Settings, redact_url
from emailgate.enrich.assemble import Enrichment, open_enrichment
from emailgate.hashkey import SharedHashKey, fetch_or_create, new_key
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.providers.assemble import open_chain
from emailgate.providers.chain import Chain
from emailgate.providers.credits import CreditsBook
from emailgate.redisguard import RedisMemoryGuard
from emailgate.verify.dns import DNS_MAX_ENTRIES, MXResolver
from emailgate.verify.domains import DomainLists
from emailgate.verify.pipeline import Verifier
from emailgate.verify.seams import DomainResolver, VerdictSource

log = logging.getLogger("emailgate.services")


@dataclass
class Services:
    """What a running service holds."""

    settings: Settings
    metrics: Metrics
    verifier: Verifier
    lists: DomainLists
    resolver: DomainResolver
    cache: VerdictCache
    redis: aioredis.Redis | None = None
    chain: VerdictSource | None = None
    notes: list[str] = field(default_factory=list)
    """Start-up facts worth one log line (embedded defaults in force, degraded parts)."""
    credits_book: CreditsBook | None = None
    bulk: BulkRoster | None = None
    """The bulk providers behind batch jobs, in EMAILGATE_BATCH_PROVIDERS order (None: none)."""
    enrichment: Enrichment | None = None
    """Contact enrichment (Cleanlist.ai); off without its key."""
    hash_key: SharedHashKey | None = None
    """The hash key shared through Redis, when EMAILGATE_HASH_KEY is not set."""
    memory_guard: RedisMemoryGuard | None = None
    """Keeps verdicts from filling Redis to eviction, when the cache is in Redis."""

    def credits(self) -> dict[str, int | None]:
        """The last known credits per provider (None until a provider told us)."""
        if self.credits_book is None:
            return dict.fromkeys(ACCOUNT_NAMES)
        return self.credits_book.snapshot()

    async def refresh_gauges(self) -> None:
        """Bring gauges that describe a state with an end (a provider's pause) up to date; the
        metrics endpoint calls this before each scrape, so a pause that is over reads 0."""
        if isinstance(self.chain, Chain):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.chain.refresh_gauges(), timeout=1.0)

    async def readiness(self) -> dict[str, tuple[bool, str]]:
        """Each readiness check: (ok, detail)."""
        checks: dict[str, tuple[bool, str]] = {
            "lists": (len(self.lists) > 0, f"{len(self.lists)} domains loaded"),
            "dns": self.verifier.trust.readiness(),
        }
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.ping(), timeout=0.5)
                checks["redis"] = (True, "reachable")
            except (aioredis.RedisError, OSError, TimeoutError) as e:
                checks["redis"] = (False, f"unreachable ({type(e).__name__})")
        if self.hash_key is not None:
            await self.hash_key.verify()
            checks["hash_key"] = self.hash_key.readiness()
        if self.memory_guard is not None:
            checks["cache"] = self.memory_guard.readiness()
        if isinstance(self.chain, Chain):
            degraded = [link.name for link in self.chain.links if link.pacer.degraded]
            if degraded:
                n = self.settings.replicas
                share = f"1/{n} of its rate" if n > 1 else "its full rate (EMAILGATE_REPLICAS=1)"
                checks["pacing"] = (
                    False,
                    f"degraded: Redis unreachable; {', '.join(degraded)} paced in this process "
                    f"at {share}; a minimum-gap provider is not called by a fleet; "
                    "answers keep flowing",
                )
            elif self.redis is not None:
                checks["pacing"] = (True, "shared in Redis across replicas")
            else:
                checks["pacing"] = (True, "in-process")
        return checks


def connect_redis(url: str, *, deadline: float) -> aioredis.Redis:
    """A client with a blocking, bounded pool and timeouts well inside the deadline."""
    # Waiting for a pooled connection, connecting and each command are all bounded: a slow or
    # dead Redis must cost a fraction of the deadline, then the caller fails open.
    op = max(0.05, min(0.25, deadline / 6))
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=op,
        socket_timeout=op,
        socket_connect_timeout=op,
        # redis-py retries 3 times by default; inside a 1.5 s budget a failure must fail fast.
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis(connection_pool=pool)


async def warm_pool(client: aioredis.Redis, connections: int = 16) -> bool:
    """Open some pooled connections now: opening dozens at once under the first burst of
    traffic costs a few milliseconds each, enough to push lookups past their timeout."""
    # One at a time, each held until all are open: opened all at once on a busy machine, the
    # handshakes queue behind each other and the later ones miss their connect timeout. Each
    # step is bounded by the client's own pool, connect and read timeouts.
    pool = client.connection_pool
    held: list[AbstractConnection] = []
    warm = False
    try:
        for _ in range(connections):
            # redis-py's deprecation wrapper leaves it untyped.
            held.append(conn := await pool.get_connection())  # type: ignore[no-untyped-call]
            await conn.send_command("PING")
            await conn.read_response()
        warm = True
    except (aioredis.RedisError, OSError, TimeoutError):
        pass
    finally:
        for conn in held:
            if not warm:  # a reply may still be on its way: never hand that one out
                await conn.disconnect()
            await pool.release(conn)
    return warm


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    clock: Clock = monotonic,
    resolver: DomainResolver | None = None,
    cache_backend: BaseCache | None = None,
    chain: VerdictSource | None = None,
    lists: DomainLists | None = None,
    bulk: BulkRoster | None = None,
) -> AsyncIterator[Services]:
    """Build every part from `settings` (or take the ones given) and close them on exit."""
    metrics = metrics or Metrics()
    notes: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        redis_client: aioredis.Redis | None = None
        if settings.redis_url is not None:
            redis_client = connect_redis(settings.redis_url.reveal(), deadline=settings.deadline)
            stack.push_async_callback(redis_client.aclose)
            reachable = await warm_pool(redis_client)
            state = "reachable" if reachable else "NOT reachable; failing open until it is"
            notes.append(f"redis: {redact_url(settings.redis_url.reveal())} {state}")

        hasher, shared_key = await _hasher(settings, redis_client, notes, metrics, clock)
        if shared_key is not None:
            await stack.enter_async_context(shared_key.watching())

        if resolver is None:
            # Domain answers are bounded too, never above the cache's own bound.
            dns_entries = min(DNS_MAX_ENTRIES, settings.cache_max_entries)
            resolver = MXResolver(settings.dns_servers, clock=clock, max_entries=dns_entries)
            if not settings.dns_servers:
                notes.append("dns: the system's name servers")
        stack.push_async_callback(resolver.close)

        if cache_backend is None:
            if redis_client is not None:
                cache_backend = SharedRedisCache(redis_client, timeout=0.15)
            else:
                cache_backend = BoundedMemoryCache(settings.cache_max_entries, clock=clock)
                notes.append(f"cache: in memory, at most {settings.cache_max_entries} entries")
        cache = VerdictCache(cache_backend, hasher=hasher, metrics=metrics)
        guard = None
        if redis_client is not None and isinstance(cache_backend, SharedRedisCache):
            guard = RedisMemoryGuard(redis_client, cache, metrics)
            await stack.enter_async_context(guard.watching())

        book = CreditsBook(settings.active_providers, metrics)
        if chain is None:
            chain = await stack.enter_async_context(
                open_chain(settings, metrics=metrics, credits=book, clock=clock, redis=redis_client)
            )
            if chain is None:
                notes.append("providers: none configured, local checks only")
            else:
                pacing = "shared in Redis" if redis_client is not None else "in-process"
                notes.append(f"providers: {', '.join(settings.active_providers)} (pacing {pacing})")
        if bulk is None:
            bulk = await stack.enter_async_context(
                open_bulk(settings, metrics=metrics, credits=book, clock=clock, redis=redis_client)
            )
            if bulk is not None:
                notes.append(f"bulk providers: {', '.join(bulk.names)}")
        enrichment = await stack.enter_async_context(
            open_enrichment(settings, metrics=metrics, redis=redis_client)
        )
        notes.append(enrichment.note)
        lists = lists or DomainLists()
        verifier = Verifier(
            lists=lists,
            resolver=resolver,
            cache=cache,
            metrics=metrics,
            hasher=hasher,
            thresholds=settings.thresholds,
            deadline=settings.deadline,
            chain=chain,
            clock=clock,
        )
        metrics.prime(list(settings.thresholds), list(settings.active_providers))
        services = Services(
            settings=settings,
            metrics=metrics,
            verifier=verifier,
            lists=lists,
            resolver=resolver,
            cache=cache,
            redis=redis_client,
            chain=chain,
            notes=notes,
            credits_book=book,
            bulk=bulk,
            enrichment=enrichment,
            hash_key=shared_key,
            memory_guard=guard,
        )
        # Checks in flight finish before their resources close (graceful shutdown).
        stack.push_async_callback(verifier.flight.wait_all)
        recheck = asyncio.create_task(verifier.trust.run(), name="dns-trust")
        stack.push_async_callback(_cancel, recheck)
        yield services


async def _hasher(
    settings: Settings,
    client: aioredis.Redis | None,
    notes: list[str],
    metrics: Metrics,
    clock: Clock,
) -> tuple[Hasher, SharedHashKey | None]:
    if settings.hash_key is not None:
        return Hasher(settings.hash_key.reveal().encode()), None
    if client is not None:
        # Redis down at start: a key of our own until it answers, then the fleet's.
        key = await fetch_or_create(client) or new_key()
        hasher = Hasher(key)
        notes.append(
            "hash key: shared through Redis and watched for splits "
            "(set EMAILGATE_HASH_KEY to choose it)"
        )
        return hasher, SharedHashKey(client, hasher, key, metrics=metrics, clock=clock)
    notes.append("hash key: random for this process (set EMAILGATE_HASH_KEY to share it)")
    return Hasher.random(), None


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
