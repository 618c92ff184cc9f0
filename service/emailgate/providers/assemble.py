"""Build the provider chain from settings: clients on one session, pacers, breakers, credits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis

from emailgate.clock import Clock, monotonic
from emailgate.config import Settings
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer
from emailgate.pacing.breaker import CircuitBreaker
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.providers.base import Provider
from emailgate.providers.chain import Chain, Link
from emailgate.providers.cleanmylist import CleanMyList
from emailgate.providers.credits import CreditsBook, poll_credits
from emailgate.providers.http import make_session
from emailgate.providers.listcleanser import ListCleanser
from emailgate.verify.result import Source

log = logging.getLogger("emailgate.providers")


def bucket_specs(settings: Settings, *, share: int = 1) -> dict[str, BucketSpec]:
    """Each provider's bucket; `share` > 1 gives one of that many replicas its part."""
    return {
        Source.LISTCLEANSER: BucketSpec.for_rate(settings.listcleanser_rate.divided(share)),
        Source.CLEANMYLIST: BucketSpec.for_gap(settings.cleanmylist_interval_ms / 1000 * share),
    }


def make_pacer(
    name: str,
    settings: Settings,
    *,
    metrics: Metrics,
    clock: Clock,
    redis: aioredis.Redis | None,
) -> Pacer:
    """Redis-backed when Redis is configured (fleet-wide limits), else in-process.

    Without Redis, each process paces alone: with EMAILGATE_REPLICAS > 1 it takes its share.
    """
    share = bucket_specs(settings, share=settings.replicas)[name]
    if redis is not None:
        from emailgate.pacing.shared import RedisPacer

        # A rate splits between replicas (each takes 1/N of it), a minimum gap does not: two
        # replicas pacing alone can call at the same instant. Without Redis to order them, a
        # gap-limited provider is not called by a fleet (it fails open to the next one).
        gap_limited = name == Source.CLEANMYLIST and settings.replicas > 1
        return RedisPacer(
            redis,
            name,
            bucket_specs(settings)[name],
            fallback=LocalPacer(share, clock=clock, closed=gap_limited),
            metrics=metrics,
            replicas=settings.replicas,
            clock=clock,
        )
    return LocalPacer(share, clock=clock)


@contextlib.asynccontextmanager
async def open_chain(
    settings: Settings,
    *,
    metrics: Metrics,
    credits: CreditsBook,
    clock: Clock = monotonic,
    redis: aioredis.Redis | None = None,
    poll: bool = True,
) -> AsyncIterator[Chain | None]:
    """The chain of the configured providers (None without any), and its credits poller."""
    names = settings.active_providers
    if not names:
        yield None
        return
    async with make_session() as session:
        chain = _build(settings, session, names, metrics=metrics, credits=credits, clock=clock,
                       redis=redis)  # fmt: skip
        pollers = [
            asyncio.create_task(_poll(link, credits), name=f"credits:{link.name}")
            for link in chain.links
            if poll and link.name == Source.LISTCLEANSER  # the one with a credits endpoint
        ]
        try:
            yield chain
        finally:
            for task in pollers:
                task.cancel()
            for task in pollers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _poll(link: Link, credits: CreditsBook) -> None:
    await poll_credits(
        link.provider, credits, is_empty=link.is_out_of_credits, on_credits=link.credits_seen
    )


def _build(
    settings: Settings,
    session: aiohttp.ClientSession,
    names: tuple[str, ...],
    *,
    metrics: Metrics,
    credits: CreditsBook,
    clock: Clock,
    redis: aioredis.Redis | None,
) -> Chain:
    links: list[Link] = []
    for name in names:
        provider: Provider
        if name == Source.LISTCLEANSER:
            assert settings.listcleanser_api_key is not None
            provider = ListCleanser(session, settings.listcleanser_url,
                                    settings.listcleanser_api_key)  # fmt: skip
        else:
            assert settings.cleanmylist_api_key is not None
            provider = CleanMyList(session, settings.cleanmylist_url,
                                   settings.cleanmylist_api_key)  # fmt: skip

        def on_change(is_open: bool, name: str = name) -> None:
            metrics.circuit_open.labels(name).set(1 if is_open else 0)
            log.warning(
                "circuit breaker opened" if is_open else "circuit breaker closed",
                extra={"event": "circuit_open" if is_open else "circuit_closed", "provider": name},
            )

        link = Link(
            provider,
            make_pacer(name, settings, metrics=metrics, clock=clock, redis=redis),
            CircuitBreaker(clock=clock, on_change=on_change),
            metrics=metrics,
            credits=credits,
        )
        if isinstance(provider, CleanMyList):
            provider.on_quota = link.quota_seen  # its answers carry the credits left
        links.append(link)
    return Chain(links, metrics=metrics, clock=clock)
