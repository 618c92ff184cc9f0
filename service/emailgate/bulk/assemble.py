"""Build the bulk providers from settings: clients on one session, pacers, credits polling.

Pacing (fleet-wide with Redis, else this replica's share of EMAILGATE_REPLICAS):

| bucket                | limit     | why                                                        |
|-----------------------|-----------|------------------------------------------------------------|
| `listcleanser-upload` | 6/60s     | ListCleanser: `POST /api/v1/batch`, 6 per minute           |
| `listcleanser-batch`  | 200/60s   | ListCleanser: `GET /api/v1/batch/{id}`, 200 per minute     |
| `listcleaner`         | 60/60s    | no published limit: one call a second is polite and ample  |
| `emailconsul`         | 60/60s    | the same                                                   |

The ListCleanser buckets are not the real-time `listcleanser` bucket: ListCleanser limits
each endpoint on its own, so a batch job never takes a slot a signup's verify needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiohttp
import redis.asyncio as aioredis

from emailgate.bulk.base import PausableBulkProvider
from emailgate.bulk.emailconsul import EmailConsul
from emailgate.bulk.listcleaner import Listcleaner
from emailgate.bulk.listcleanser import ListCleanserBatch
from emailgate.clock import Clock, monotonic
from emailgate.config import Settings
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.providers.credits import CreditsBook
from emailgate.providers.errors import ProviderError
from emailgate.providers.http import make_session
from emailgate.rate import Rate

log = logging.getLogger("emailgate.bulk")

RATES = {
    "listcleanser-upload": Rate(6, 60.0),
    "listcleanser-batch": Rate(200, 60.0),
    "listcleaner": Rate(60, 60.0),
    "emailconsul": Rate(60, 60.0),
}
CREDITS_EVERY = 300.0  # seconds: credits change slowly, and each poll is a request
CREDITS_WHILE_PAUSED = 60.0  # seconds: while paused, notice soon when credits come back


def rate_pacer(
    name: str,
    rate: Rate,
    *,
    replicas: int,
    metrics: Metrics,
    clock: Clock,
    redis: aioredis.Redis | None,
) -> Pacer:
    """`rate` for the fleet in Redis (this replica's share in-process when Redis is away)."""
    share = LocalPacer(BucketSpec.for_rate(rate.divided(replicas)), clock=clock)
    if redis is None:
        return share
    from emailgate.pacing.shared import RedisPacer

    return RedisPacer(redis, name, BucketSpec.for_rate(rate), fallback=share, metrics=metrics,
                      replicas=replicas, clock=clock)  # fmt: skip


@dataclass
class BulkRoster:
    """The configured bulk providers in EMAILGATE_BATCH_PROVIDERS order."""

    providers: Sequence[PausableBulkProvider]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers)

    def get(self, name: str) -> PausableBulkProvider | None:
        """The provider called `name`, if configured."""
        return next((p for p in self.providers if p.name == name), None)

    async def available(self) -> list[PausableBulkProvider]:
        """Those not paused right now, in order."""
        return [p for p in self.providers if await p.paused_for() <= 0]


def build_bulk(
    settings: Settings,
    session: aiohttp.ClientSession,
    *,
    metrics: Metrics,
    clock: Clock = monotonic,
    redis: aioredis.Redis | None = None,
) -> BulkRoster:
    """The clients of the active bulk providers, each with its pacers."""

    def pacer(name: str) -> Pacer:
        return rate_pacer(name, RATES[name], replicas=settings.replicas, metrics=metrics,
                          clock=clock, redis=redis)  # fmt: skip

    providers: list[PausableBulkProvider] = []
    for name in settings.active_batch_providers:
        if name == "listcleanser":
            assert settings.listcleanser_api_key is not None
            providers.append(ListCleanserBatch(
                session, settings.listcleanser_url, settings.listcleanser_api_key,
                results_pacer=pacer("listcleanser-batch"),
                upload_pacer=pacer("listcleanser-upload"), metrics=metrics, clock=clock,
            ))  # fmt: skip
        elif name == "listcleaner":
            assert settings.listcleaner_api_key is not None
            assert settings.listcleaner_user_email is not None
            providers.append(Listcleaner(
                session, settings.listcleaner_url, settings.listcleaner_user_email,
                settings.listcleaner_api_key, pacer=pacer("listcleaner"), metrics=metrics,
                clock=clock,
            ))  # fmt: skip
        else:
            assert settings.emailconsul_api_key is not None
            providers.append(EmailConsul(
                session, settings.emailconsul_url, settings.emailconsul_api_key,
                pacer=pacer("emailconsul"), metrics=metrics, clock=clock,
                webhook_url=settings.emailconsul_webhook_url,
                webhook_secret=settings.webhook_secret,
            ))  # fmt: skip
    metrics.prime_bulk(list(settings.active_batch_providers))
    return BulkRoster(providers)


@contextlib.asynccontextmanager
async def open_bulk(
    settings: Settings,
    *,
    metrics: Metrics,
    credits: CreditsBook,
    clock: Clock = monotonic,
    redis: aioredis.Redis | None = None,
    poll: bool = True,
) -> AsyncIterator[BulkRoster | None]:
    """The roster (None without any bulk provider) and its credits pollers.

    ListCleanser's credits are polled by the real-time chain when it is configured there.
    """
    if not settings.active_batch_providers:
        yield None
        return
    async with make_session() as session:
        roster = build_bulk(settings, session, metrics=metrics, clock=clock, redis=redis)
        polled = [
            p for p in roster.providers
            if poll and not (p.name == "listcleanser" and p.name in settings.active_providers)
        ]  # fmt: skip
        tasks = [
            asyncio.create_task(poll_credits(p, credits), name=f"bulk-credits:{p.name}")
            for p in polled
        ]
        try:
            yield roster
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def poll_credits(provider: PausableBulkProvider, book: CreditsBook) -> None:
    """Ask `provider` for its credits now and then, into the book (and its gauge)."""
    while True:
        with contextlib.suppress(ProviderError):
            count = await provider.credits()
            if count is None:
                return  # this provider cannot tell: nothing to poll
            book.set(provider.name, count)
        paused = await provider.paused_for() > 0
        await asyncio.sleep(CREDITS_WHILE_PAUSED if paused else CREDITS_EVERY)
