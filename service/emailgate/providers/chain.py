"""The provider chain: ListCleanser, then CleanMyList, each paced, each within the deadline.

For each provider in order: paused (429, no credits, key refused)? skip · circuit open? skip ·
a slot from its pacer before the deadline? else skip · call with what is left of the budget ·
map the answer · an inconclusive `unknown` moves on while budget remains. A failed provider is
skipped to the next, never retried: inside a 1.5 s budget a retry only spends the next one's time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer
from emailgate.pacing.breaker import CircuitBreaker
from emailgate.providers.base import Provider
from emailgate.providers.credits import CreditsBook
from emailgate.providers.errors import (
    NoCredits,
    ProviderError,
    RateLimited,
    Unauthorized,
)
from emailgate.verify import local
from emailgate.verify.result import Address, Reason, State, Verdict
from emailgate.verify.seams import ChainOutcome

log = logging.getLogger("emailgate.providers")

MIN_CALL = 0.15  # seconds: less than this left is not worth a paid call
FINISH = 0.02  # seconds kept back to decide, cache and answer after the last call
FIRST_SHARE = 2 / 3  # of the budget for a provider when another one could still follow
NO_CREDITS_PAUSE = 3600.0  # seconds; lifted early when the credits poller sees credits again
UNAUTHORIZED_PAUSE = 900.0  # seconds; an operator must fix the key, then it is tried again


@dataclass
class Link:
    """One provider of the chain with its pacer and breaker."""

    provider: Provider
    pacer: Pacer
    breaker: CircuitBreaker

    @property
    def name(self) -> str:
        return self.provider.name


class Chain:
    """The VerdictSource of the pipeline when providers are configured."""

    def __init__(
        self,
        links: Sequence[Link],
        *,
        metrics: Metrics,
        credits: CreditsBook,
        clock: Clock = monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.links = list(links)
        self.metrics = metrics
        self.credits = credits
        self.clock = clock
        self.sleep = sleep
        self.out_of_credits: set[str] = set()

    async def verify(self, address: Address, deadline: float) -> ChainOutcome:
        """The first conclusive verdict before `deadline` (a reading of `clock`)."""
        inconclusive: Verdict | None = None
        why = Reason.UNAVAILABLE_PROVIDER
        for i, link in enumerate(self.links):
            left = deadline - FINISH - self.clock()
            if left < MIN_CALL:
                self._skip(link, "deadline")
                why = Reason.TIMEOUT
                continue
            if not link.breaker.allow():
                self._skip(link, "circuit_open")
                continue
            asked = self.clock()
            reservation = await link.pacer.reserve(left - MIN_CALL)
            if not reservation.ok:
                link.breaker.release()
                self._skip(link, reservation.refused or "no_token")
                continue
            if reservation.wait > 0:
                await self.sleep(reservation.wait)
            # Measured from the moment we asked, so a slow answer from Redis counts as lateness.
            if reservation.late(self.clock() - asked):
                # Going now could break the limit at the provider's end: give the slot up.
                link.breaker.release()
                self._skip(link, "no_token")
                continue
            budget = deadline - FINISH - self.clock()
            if i < len(self.links) - 1:
                budget = max(min(budget, MIN_CALL), budget * FIRST_SHARE)
            verdict = await self._call(link, address, budget)
            if verdict is None:
                continue
            if verdict.state is not State.UNKNOWN:
                return ChainOutcome(verdict)
            inconclusive = inconclusive or verdict
        if inconclusive is not None:
            # The provider could not tell either: fail open like the local verdict would.
            score = max(inconclusive.score, local.FAIL_OPEN_FLOOR)
            return ChainOutcome(dataclasses.replace(inconclusive, score=score))
        return ChainOutcome(None, why)

    async def _call(self, link: Link, address: Address, budget: float) -> Verdict | None:
        name = link.name
        start = self.clock()
        try:
            verdict = await link.provider.verify(address, budget)
        except ProviderError as e:
            self.metrics.provider_requests.labels(name, e.outcome).inc()
            await self._failed(link, e)
            return None
        finally:
            self.metrics.provider_duration.labels(name).observe(self.clock() - start)
        self.metrics.provider_requests.labels(name, "ok").inc()
        link.breaker.record_success()
        return verdict

    async def _failed(self, link: Link, error: ProviderError) -> None:
        name = link.name
        if isinstance(error, RateLimited):
            link.breaker.release()
            await self._pause(link, error.retry_after)
            log.warning(
                "provider rate-limited us; paused",
                extra={"event": "provider_429", "provider": name, "pause_s": error.retry_after},
            )
        elif isinstance(error, NoCredits):
            link.breaker.release()
            self.credits.set(name, 0)
            self.out_of_credits.add(name)
            await self._pause(link, NO_CREDITS_PAUSE)
            log.error(
                "provider has no credits left; not called until they come back",
                extra={"event": "provider_no_credits", "provider": name},
            )
        elif isinstance(error, Unauthorized):
            link.breaker.release()
            await self._pause(link, UNAUTHORIZED_PAUSE)
            log.error(
                "provider refused our API key; check its EMAILGATE_*_API_KEY",
                extra={"event": "provider_unauthorized", "provider": name,
                       "pause_s": UNAUTHORIZED_PAUSE},
            )  # fmt: skip
        else:
            link.breaker.record_failure()
            log.info(
                "provider call failed",
                extra={"event": "provider_error", "provider": name, "outcome": error.outcome},
            )

    async def _pause(self, link: Link, seconds: float) -> None:
        await link.pacer.pause(seconds)
        self.metrics.provider_paused.labels(link.name).set(1)

    def _skip(self, link: Link, why: str) -> None:
        self.metrics.provider_skips.labels(link.name, why).inc()

    async def credits_seen(self, name: str, credits: int) -> None:
        """A provider reported `credits`: lift its no-credits pause when they came back."""
        link = self.link(name)
        if link is None or credits <= 0 or name not in self.out_of_credits:
            return
        self.out_of_credits.discard(name)
        await link.pacer.resume()
        self.metrics.provider_paused.labels(name).set(0)
        log.warning(
            "provider credits are back; calling it again",
            extra={"event": "provider_credits_back", "provider": name, "credits": credits},
        )

    async def is_out_of_credits(self, name: str) -> bool:
        """Paused for lack of credits right now."""
        link = self.link(name)
        return (
            link is not None and name in self.out_of_credits and await link.pacer.paused_for() > 0
        )

    async def refresh_gauges(self) -> None:
        """Bring the paused gauge back to 0 once a pause is over (called by the poller)."""
        for link in self.links:
            paused = await link.pacer.paused_for() > 0
            self.metrics.provider_paused.labels(link.name).set(1 if paused else 0)

    def link(self, name: str) -> Link | None:
        """The link of provider `name`, if it is in the chain."""
        return next((link for link in self.links if link.name == name), None)
