"""Credits left at each provider: a book the chain and the poller write, `/api/v1/credits` reads.

ListCleanser has a credits endpoint, polled sparingly (every few minutes; every minute while it
is paused for lack of credits, so it is called again as soon as they come back). CleanMyList has
none: its `quota` arrives with each answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from emailgate.config import ACCOUNT_NAMES
from emailgate.metrics import Metrics
from emailgate.providers.base import Provider
from emailgate.providers.errors import ProviderError

log = logging.getLogger("emailgate.providers")

POLL_EVERY = 300.0  # seconds: credits change slowly, and each poll is a request to the provider
POLL_WHILE_EMPTY = 60.0  # seconds: while out of credits, notice soon when they come back
POLL_TIMEOUT = 5.0
LOW_CREDITS = 1000  # logged as a warning below this


class CreditsBook:
    """Last known credits per provider, mirrored in the `emailgate_provider_credits` gauge."""

    def __init__(self, providers: tuple[str, ...], metrics: Metrics) -> None:
        self._known: dict[str, int | None] = dict.fromkeys(ACCOUNT_NAMES)
        self._known.update(dict.fromkeys(providers))
        self._metrics = metrics

    def set(self, provider: str, credits: int) -> None:
        """Record what `provider` just told us."""
        before = self._known.get(provider)
        self._known[provider] = credits
        self._metrics.provider_credits.labels(provider).set(credits)
        if credits < LOW_CREDITS and (before is None or before >= LOW_CREDITS):
            log.warning(
                "provider credits are low",
                extra={"event": "credits_low", "provider": provider, "credits": credits},
            )

    def get(self, provider: str) -> int | None:
        """The last known credits of `provider` (None: not known yet)."""
        return self._known.get(provider)

    def snapshot(self) -> dict[str, int | None]:
        """Every provider's last known credits, for `/api/v1/credits`."""
        return dict(self._known)


async def poll_credits(
    provider: Provider,
    book: CreditsBook,
    *,
    is_empty: Callable[[], Awaitable[bool]],
    on_credits: Callable[[int], Awaitable[None]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Poll `provider.credits` forever: every POLL_EVERY, or POLL_WHILE_EMPTY while out."""
    while True:
        with contextlib.suppress(ProviderError):
            credits = await provider.credits(POLL_TIMEOUT)
            if credits is not None:
                book.set(provider.name, credits)
                await on_credits(credits)
        await sleep(POLL_WHILE_EMPTY if await is_empty() else POLL_EVERY)
