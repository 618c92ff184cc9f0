"""Build contact enrichment from settings: the Cleanlist.ai client on its own session, its
fixed-window pacer (in Redis for a fleet), and the key check at start-up.

The start-up log says whether enrichment is on: no key (off), the key refused (off), the key
accepted (on), or the provider not reachable to check it (on; jobs will tell).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis

from emailgate.clock import Clock, wall
from emailgate.config import Settings
from emailgate.enrich.cleanlist import CleanlistClient
from emailgate.metrics import EnrichMetrics, Metrics
from emailgate.pacing.base import Pacer
from emailgate.pacing.window import LocalWindowPacer, WindowSpec
from emailgate.providers.errors import ProviderError, Unauthorized
from emailgate.providers.http import make_session

log = logging.getLogger("emailgate.enrich")

KEY_CHECK_TIMEOUT = 5.0  # seconds: start-up must not wait long on a provider


@dataclass
class Enrichment:
    """What a running service holds for enrichment."""

    metrics: EnrichMetrics
    client: CleanlistClient | None = None
    """None when enrichment is off."""
    note: str = "enrichment: off (no EMAILGATE_CLEANLIST_API_KEY)"

    @property
    def enabled(self) -> bool:
        """Jobs can be sent to the provider."""
        return self.client is not None


def make_window_pacer(
    settings: Settings, *, metrics: Metrics, redis: aioredis.Redis | None, clock: Clock = wall
) -> Pacer:
    """Cleanlist.ai's fixed window: in Redis for the fleet, else this replica's share."""
    spec = WindowSpec.for_rate(settings.cleanlist_rate)
    if redis is not None:
        from emailgate.pacing.window_redis import RedisWindowPacer

        return RedisWindowPacer(redis, "cleanlist", spec, metrics=metrics,
                                replicas=settings.replicas, clock=clock)  # fmt: skip
    return LocalWindowPacer(spec.divided(settings.replicas), clock=clock)


@contextlib.asynccontextmanager
async def open_enrichment(
    settings: Settings,
    *,
    metrics: Metrics,
    redis: aioredis.Redis | None = None,
    clock: Clock = wall,
    check_key: bool = True,
) -> AsyncIterator[Enrichment]:
    """Enrichment as the settings configure it; the key is checked once here."""
    em = metrics.enrich
    if settings.cleanlist_api_key is None:
        yield Enrichment(em)
        return
    async with make_session() as session:
        pacer = make_window_pacer(settings, metrics=metrics, redis=redis, clock=clock)
        client = CleanlistClient(session, settings.cleanlist_url, settings.cleanlist_api_key,
                                 pacer, on_request=em.request)  # fmt: skip
        enrichment = Enrichment(em, client, "enrichment: on (Cleanlist.ai)")
        if check_key:
            await _check_key(enrichment, client)
        em.enabled.set(1 if enrichment.enabled else 0)
        yield enrichment


async def _check_key(enrichment: Enrichment, client: CleanlistClient) -> None:
    try:
        check = await client.validate_key(slot_wait=KEY_CHECK_TIMEOUT, timeout=KEY_CHECK_TIMEOUT)
    except Unauthorized:
        enrichment.client = None
        enrichment.note = "enrichment: off (Cleanlist.ai refused EMAILGATE_CLEANLIST_API_KEY)"
        log.warning("Cleanlist.ai refused the key: enrichment is off",
                    extra={"event": "enrich_key_refused"})  # fmt: skip
        return
    except ProviderError as e:
        enrichment.note = f"enrichment: on (Cleanlist.ai key not checked: {e.outcome})"
        return
    if not check.valid:
        enrichment.client = None
        enrichment.note = "enrichment: off (Cleanlist.ai says the key is not valid)"
        return
    enrichment.note = "enrichment: on (Cleanlist.ai key accepted)"
