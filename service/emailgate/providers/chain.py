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
import traceback
from collections.abc import Awaitable, Callable, Sequence

from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer
from emailgate.pacing.breaker import CircuitBreaker
from emailgate.providers.base import Provider
from emailgate.providers.credits import CreditsBook
from emailgate.providers.errors import (
    NoCredits,
    ProviderError,
    ProviderUnavailable,
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


class Link:
    """One provider of the chain and everything that is its own state: its pacer and breaker,
    its pauses (429, no credits, key refused) with the `emailgate_provider_paused` gauge, and
    whether it is out of credits (with its entry in the credits book)."""

    def __init__(
        self,
        provider: Provider,
        pacer: Pacer,
        breaker: CircuitBreaker,
        *,
        metrics: Metrics,
        credits: CreditsBook,
    ) -> None:
        self.provider = provider
        self.pacer = pacer
        self.breaker = breaker
        self.metrics = metrics
        self.credits = credits
        self.out_of_credits = False
        self._background: set[asyncio.Task[None]] = set()  # the loop keeps weak references

    @property
    def name(self) -> str:
        return self.provider.name

    async def pause(self, seconds: float) -> None:
        """Call this provider again in `seconds` at the earliest (fleet-wide with Redis)."""
        await self.pacer.pause(seconds)
        self.metrics.provider_paused.labels(self.name).set(1)

    async def ran_out(self, seconds: float) -> None:
        """The provider said it has no credits left: paused until they come back."""
        self.credits.set(self.name, 0)
        self.out_of_credits = True
        await self.pause(seconds)

    async def credits_seen(self, credits: int) -> None:
        """The provider reported `credits`: lift its no-credits pause when they came back."""
        if credits <= 0 or not self.out_of_credits:
            return
        self.out_of_credits = False
        await self.pacer.resume()
        self.metrics.provider_paused.labels(self.name).set(0)
        log.warning(
            "provider credits are back; calling it again",
            extra={"event": "provider_credits_back", "provider": self.name, "credits": credits},
        )

    def quota_seen(self, credits: int) -> None:
        """An answer carried the credits left (CleanMyList's `quota`): book them, and lift the
        no-credits pause out of the request path's way (lifting it may touch Redis)."""
        self.credits.set(self.name, credits)
        if credits > 0 and self.out_of_credits:
            task = asyncio.get_running_loop().create_task(self.credits_seen(credits))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def is_out_of_credits(self) -> bool:
        """Paused for lack of credits right now."""
        return self.out_of_credits and await self.pacer.paused_for() > 0

    async def refresh_gauge(self) -> None:
        """Bring the paused gauge back to 0 once a pause is over."""
        paused = await self.pacer.paused_for() > 0
        self.metrics.provider_paused.labels(self.name).set(1 if paused else 0)


EARLY_WAKES = 3
TIMER_RESOLUTION = 0.001
"""uvloop's timer resolution, in seconds."""


class Chain:
    """The VerdictSource of the pipeline when providers are configured."""

    def __init__(
        self,
        links: Sequence[Link],
        *,
        metrics: Metrics,
        clock: Clock = monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.links = list(links)
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep

    async def verify(self, address: Address, deadline: float) -> ChainOutcome:
        """The first conclusive verdict before `deadline` (a reading of `clock`)."""
        inconclusive: Verdict | None = None
        why = Reason.UNAVAILABLE_PROVIDER
        calls = 0
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
                # uvloop's timers count whole milliseconds from the loop's cached time and
                # can wake a call before its slot: going early could break the limit at the
                # provider's end. A few more short sleeps (bounded: a test's clock may stand).
                for _ in range(EARLY_WAKES):
                    early = reservation.wait - (self.clock() - asked)
                    if early <= 0:
                        break
                    await self.sleep(early + TIMER_RESOLUTION)
            # Measured from the moment we asked, so a slow answer from Redis counts as lateness.
            if reservation.late(self.clock() - asked):
                # Going now could break the limit at the provider's end: give the slot up.
                link.breaker.release()
                self._skip(link, "no_token")
                continue
            budget = deadline - FINISH - self.clock()
            if i < len(self.links) - 1:
                budget = max(min(budget, MIN_CALL), budget * FIRST_SHARE)
            calls += 1
            verdict = await self._call(link, address, budget)
            if verdict is None:
                continue
            if verdict.state is not State.UNKNOWN:
                return ChainOutcome(verdict, calls=calls)
            inconclusive = inconclusive or verdict
        if inconclusive is not None:
            # The provider could not tell either: fail open like the local verdict would.
            score = max(inconclusive.score, local.FAIL_OPEN_FLOOR)
            return ChainOutcome(dataclasses.replace(inconclusive, score=score), calls=calls)
        return ChainOutcome(None, why, calls=calls)

    async def verify_spare(self, address: Address, timeout: float) -> ChainOutcome | None:
        """For batch jobs: a verdict from the first provider with a spare slot right now (a
        background reservation: signups keep theirs), or None when no provider was asked
        (no spare slot, paused, circuit open: try again later).

        The job records the address as sent before it asks. A call refused without being
        served (429, no credits, key refused) moves on to the next provider; any other failure
        might have been charged, so it ends the attempt with no verdict and is not retried."""
        for link in self.links:
            if not link.breaker.allow():
                continue
            reservation = await link.pacer.reserve(0.0, background=True)
            if not reservation.ok:
                link.breaker.release()
                continue
            start = self.clock()
            try:
                verdict = await link.provider.verify(address, timeout)
            except ProviderError as e:
                self.metrics.provider_requests.labels(link.name, e.outcome).inc()
                await self._failed(link, e, address)
                if isinstance(e, (RateLimited, NoCredits, Unauthorized)):
                    continue
                return ChainOutcome(None, Reason.UNAVAILABLE_PROVIDER)
            finally:
                self.metrics.provider_duration.labels(link.name).observe(self.clock() - start)
            self.metrics.provider_requests.labels(link.name, "ok").inc()
            link.breaker.record_success(address.ascii_domain)
            return ChainOutcome(verdict)
        return None

    async def _call(self, link: Link, address: Address, budget: float) -> Verdict | None:
        name = link.name
        start = self.clock()
        try:
            try:
                verdict = await link.provider.verify(address, budget)
            except ProviderError:
                raise
            except asyncio.CancelledError:
                # The check went away mid-call: a half-open probe must not stay taken forever.
                link.breaker.release()
                raise
            except Exception as e:
                # A client bug or an answer it did not foresee: a failed call like any other,
                # never a 500 for the checks sharing this flight, never a probe left hanging.
                # No message or traceback in the log: either could quote the key-bearing URL.
                where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
                log.error(
                    "provider client raised an unexpected error; counted as a failed call",
                    extra={"event": "provider_client_bug", "provider": name,
                           "error": type(e).__name__,
                           "at": f"{where.filename.rpartition('/')[2]}:{where.lineno}"
                           if where else "?"},
                )  # fmt: skip
                raise ProviderUnavailable(f"{name}: unexpected {type(e).__name__}") from e
        except ProviderError as e:
            self.metrics.provider_requests.labels(name, e.outcome).inc()
            await self._failed(link, e, address)
            return None
        finally:
            self.metrics.provider_duration.labels(name).observe(self.clock() - start)
        self.metrics.provider_requests.labels(name, "ok").inc()
        link.breaker.record_success(address.ascii_domain)
        return verdict

    async def _failed(self, link: Link, error: ProviderError, address: Address) -> None:
        name = link.name
        if isinstance(error, RateLimited):
            link.breaker.release()
            await link.pause(error.retry_after)
            log.warning(
                "provider rate-limited us; paused",
                extra={"event": "provider_429", "provider": name, "pause_s": error.retry_after},
            )
        elif isinstance(error, NoCredits):
            link.breaker.release()
            await link.ran_out(NO_CREDITS_PAUSE)
            log.error(
                "provider has no credits left; not called until they come back",
                extra={"event": "provider_no_credits", "provider": name},
            )
        elif isinstance(error, Unauthorized):
            link.breaker.release()
            await link.pause(UNAUTHORIZED_PAUSE)
            log.error(
                "provider refused our API key; check its EMAILGATE_*_API_KEY",
                extra={"event": "provider_unauthorized", "provider": name,
                       "pause_s": UNAUTHORIZED_PAUSE},
            )  # fmt: skip
        else:
            # The breaker weighs this by domain: a stalling mail server is not a provider outage.
            link.breaker.record_failure(address.ascii_domain)
            log.info(
                "provider call failed",
                extra={"event": "provider_error", "provider": name, "outcome": error.outcome},
            )

    def _skip(self, link: Link, why: str) -> None:
        self.metrics.provider_skips.labels(link.name, why).inc()

    async def refresh_gauges(self) -> None:
        """Each paused gauge as things are now: 0 once its pause is over (read before a scrape)."""
        for link in self.links:
            await link.refresh_gauge()

    def link(self, name: str) -> Link | None:
        """The link of provider `name`, if it is in the chain."""
        return next((link for link in self.links if link.name == name), None)
