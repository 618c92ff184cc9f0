"""The way one check travels (docs/architecture.md): syntax, domain facts, cache, single
flight, DNS, providers, decision, cache store. Only the cache, DNS and providers touch the
network, each through an interface of verify/seams.py."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from emailgate import log as logsetup
from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.verify import local
from emailgate.verify.decision import decide, threshold_of
from emailgate.verify.domains import DomainFacts, DomainLists
from emailgate.verify.mail import MailDomain, MailStatus
from emailgate.verify.resolver_trust import ResolverTrust
from emailgate.verify.result import ACCOUNTS, Address, Decision, Reason, Source, State, Verdict
from emailgate.verify.sandbox import sandbox_verdict
from emailgate.verify.seams import (
    ChainOutcome,
    DomainResolver,
    SpareVerdictSource,
    VerdictSource,
    VerdictStore,
)
from emailgate.verify.singleflight import SingleFlight
from emailgate.verify.syntax import InvalidAddress, parse_address, split_loosely

log = logging.getLogger("emailgate.check")

NO_PROVIDER = ChainOutcome(None, Reason.UNKNOWN)
# DNS answers in milliseconds when healthy; a silent name server must leave the providers most
# of the budget, and must read as a DNS failure, not as the whole check timing out.
DNS_SHARE = 0.4
FRESH_SAMPLES = 256  # durations of fresh checks kept per source, for answers that hide history
PROVIDER_CHECK_S = 0.3  # a fresh provider-backed check's typical time, until one is measured
BACKGROUND_DEADLINE = 30.0  # seconds a background check may wait for a spare provider slot
SPARE_WAIT = (0.05, 1.0)  # seconds between two asks for a spare slot: first, then at most
PAID_SOURCES = frozenset(ACCOUNTS)  # real-time and bulk providers: their verdicts are cached


@dataclass(frozen=True, slots=True)
class Fresh:
    """A verdict nobody had cached, and the provider calls made for it."""

    verdict: Verdict
    calls: int = 0


@dataclass(slots=True)
class CheckResult:
    """One answered check: RESULT (docs/api.md).

    Not frozen, though nothing changes one once made (`dataclasses.replace` makes another):
    one is made for every check, and a frozen dataclass's `__init__` costs 0.8 µs more."""

    email_address: str
    user: str
    domain: str
    verdict: Verdict
    decision: Decision
    context: str
    threshold: int
    cached: bool
    duration: float
    provider_calls: int = 0
    """Provider calls made for this answer, answered or not (what its caller is charged)."""

    def to_dict(self) -> dict[str, Any]:
        """RESULT as JSON-ready values, in its documented field order (docs/api.md)."""
        data: dict[str, Any] = {
            "email_address": self.email_address,
            "user": self.user,
            "domain": self.domain,
        }
        data.update(self.verdict.to_dict())  # the verdict's fields, in their order
        source = data.pop("source")  # RESULT gives it near the end
        data["did_you_mean"] = _with_user(self.verdict.did_you_mean, self.user)
        data["duration"] = round(self.duration, 6)
        data["decision"] = self.decision.value
        data["context"] = self.context
        data["threshold"] = self.threshold
        data["source"] = source
        data["cached"] = self.cached
        return data

    def answer(self) -> bytes:
        """`{"success": true, "data": RESULT}` as JSON, what the verify endpoints send.

        Only the duration changes between two answers of one address, context and verdict,
        so the bytes either side of it are memoised: a cache hit repeats them."""
        before, after = _answer_around_duration(
            self.email_address, self.user, self.domain, self.verdict, self.decision,
            self.context, self.threshold, self.cached,
        )  # fmt: skip
        return before + orjson.dumps(round(self.duration, 6)) + after


_DURATION = "\x00duration\x00"
"""The duration's placeholder. Fields before it may carry the same text (an address, a
provider's MX record), the fields after it cannot (a known context, enums, numbers): the
answer is split at its last occurrence."""
ANSWERS_MEMO = 4096


@functools.lru_cache(maxsize=ANSWERS_MEMO)
def _answer_around_duration(
    email_address: str, user: str, domain: str, verdict: Verdict, decision: Decision,
    context: str, threshold: int, cached: bool,
) -> tuple[bytes, bytes]:  # fmt: skip
    """The answer's bytes before and after its duration."""
    result = CheckResult(email_address, user, domain, verdict, decision, context, threshold,
                         cached, duration=0.0)  # fmt: skip
    data = result.to_dict()
    data["duration"] = _DURATION
    before, _, after = orjson.dumps({"success": True, "data": data}).rpartition(
        orjson.dumps(_DURATION)
    )
    return before, after


def _with_user(suggestion: str | None, user: str) -> str | None:
    # A cached suggestion may come from a case variant of this address: keep this user's spelling.
    if suggestion is None:
        return None
    return f"{user}@{suggestion.rpartition('@')[2]}"


class Verifier:
    """Runs checks. Every dependency is given, so tests and the CLI build their own."""

    def __init__(
        self,
        *,
        lists: DomainLists,
        resolver: DomainResolver,
        cache: VerdictStore,
        metrics: Metrics,
        hasher: Hasher,
        thresholds: Mapping[str, int],
        deadline: float,
        chain: VerdictSource | None = None,
        clock: Clock = monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.lists = lists
        self.resolver = resolver
        self.cache = cache
        self.metrics = metrics
        self.hasher = hasher
        self.thresholds = dict(thresholds)
        self.deadline = deadline
        self.chain = chain
        self.clock = clock
        self.sleep = sleep
        self.flight: SingleFlight[Fresh] = SingleFlight()
        self.trust = ResolverTrust(resolver, lists.popular, metrics=metrics)
        self._fresh_durations: dict[Source, deque[float]] = {}
        self._random = random.Random()
        self.interactive = 0
        """Interactive checks (not `background`) being answered now: jobs on this event loop
        give way while there are any (jobs/runner.py)."""

    def threshold(self, context: str) -> int:
        """The threshold of `context`; raises UnknownContext (a 400 at the HTTP layer)."""
        return threshold_of(context, self.thresholds)

    async def check(
        self,
        raw: str,
        context: str = "signup",
        *,
        use_providers: bool = True,
        sandbox: bool = False,
        history: bool = True,
        background: bool = False,
    ) -> CheckResult:
        """Check one address for `context` within the deadline. Never raises for bad input.

        `background` (jobs: enrichment's found emails): providers are asked only in slots that
        interactive checks leave unused (the pacers' background lane: signups go first),
        waiting for one up to BACKGROUND_DEADLINE instead of the interactive deadline.

        `history=False` (public keys): the answer must not tell whether anyone checked this
        address before. A cache hit then answers `cached: false` after as long as a fresh
        check of its kind takes, and without providers the cache is not read at all (its
        provider verdicts would say someone paid for this address)."""
        threshold = self.threshold(context)
        start = self.clock()
        self.metrics.in_flight += 1
        interactive = not background
        self.interactive += interactive
        try:
            try:
                address = parse_address(raw)
            except InvalidAddress:
                return self._finish_invalid(raw, context, threshold, start)
            fresh, cached = await self._verdict(
                address, start, use_providers, sandbox, read_cache=history or use_providers,
                background=background,
            )  # fmt: skip
            result = self._finish(address, fresh, cached, context, threshold, start)
            if cached and not history:
                return await self._as_if_fresh(result, start)
            return result
        finally:
            self.metrics.in_flight -= 1
            self.interactive -= interactive

    async def _as_if_fresh(self, result: CheckResult, start: float) -> CheckResult:
        """A cache hit dressed as a fresh check: `cached` false, and a duration (and answer
        time) drawn from recent fresh checks of the same source."""
        source = result.verdict.source
        samples = self._fresh_durations.get(source)
        if not samples and source is not Source.LOCAL:
            # No fresh check of this provider here yet (its verdicts came from peers): any
            # provider's times, else a provider call's typical time.
            samples = next((d for s, d in self._fresh_durations.items() if s in PAID_SOURCES), None)
        if samples:
            duration = self._random.choice(samples)
        else:
            duration = PROVIDER_CHECK_S if source is not Source.LOCAL else result.duration
        wait = duration - (self.clock() - start)
        if wait > 0:
            await self.sleep(wait)
        return dataclasses.replace(result, cached=False, duration=max(duration, result.duration))

    async def _verdict(
        self,
        address: Address,
        start: float,
        use_providers: bool,
        sandbox: bool,
        *,
        read_cache: bool = True,
        background: bool = False,
    ) -> tuple[Fresh, bool]:
        if sandbox:
            return Fresh(sandbox_verdict(address)), False
        key = self.cache.key(address)
        deadline_at = start + (BACKGROUND_DEADLINE if background else self.deadline)
        if read_cache:
            cache = self.cache
            cached = (
                cache.get_now(key)  # an in-process read: no coroutine (a hit is all of it)
                if cache.in_process
                else await cache.get(key, budget=deadline_at - self.clock())
            )
            if cached is not None:
                return Fresh(cached), True
        facts = self.lists.facts(address.ascii_domain)
        role = self.lists.is_role(address.user)
        # A background check never shares a signup's flight: neither waits on the other's lane.
        task, _shared = self.flight.start(
            (key, use_providers, background),
            lambda: self._fresh(address, facts, role, key, deadline_at, use_providers, background),
        )
        try:
            fresh = await asyncio.wait_for(
                asyncio.shield(task), max(0.0, deadline_at - self.clock())
            )
        except TimeoutError:
            # Every stage keeps to the deadline on its own; this is the net under them. The
            # run goes on and may call a provider: the caller is charged for one call.
            calls = 1 if use_providers and self.chain is not None else 0
            fresh = Fresh(local.timeout_verdict(address, facts, role), calls)
        return fresh, False

    async def _fresh(
        self,
        address: Address,
        facts: DomainFacts,
        role: bool,
        key: str,
        deadline_at: float,
        use_providers: bool,
        background: bool = False,
    ) -> Fresh:
        """A verdict nobody has cached: local checks, DNS, then providers; then store it."""
        calls = 0
        if facts.disposable:
            verdict = local.disposable_verdict(address, facts, role)
        else:
            budget = min(deadline_at - self.clock(), self.deadline * DNS_SHARE)
            mail = await self.resolver.lookup(address.ascii_domain, budget)
            mail = self.trust.judge(address.ascii_domain, mail)
            self.metrics.dns_lookups.labels(mail.status.value).inc()
            if mail.status.takes_mail or mail.status is MailStatus.ERROR:
                verdict, calls = await self._ask_providers(
                    address, facts, role, mail, deadline_at, use_providers, background
                )
            else:
                verdict = local.domain_verdict(address, facts, role, mail, Reason.UNKNOWN)
        if (
            use_providers
            or verdict.source is not Source.LOCAL
            or verdict.state is not State.UNKNOWN
        ):
            # A local guess made only because this caller's provider budget ran out must not
            # stand in for a provider's answer that the next caller could get.
            await self.cache.set(key, verdict)
        return Fresh(verdict, calls)

    async def _ask_providers(
        self,
        address: Address,
        facts: DomainFacts,
        role: bool,
        mail: MailDomain,
        deadline_at: float,
        use_providers: bool,
        background: bool = False,
    ) -> tuple[Verdict, int]:
        outcome = NO_PROVIDER
        if use_providers and self.chain is not None:
            if background and isinstance(self.chain, SpareVerdictSource):
                outcome = await self._spare(self.chain, address, deadline_at)
            else:
                outcome = await self.chain.verify(address, deadline_at)
        if outcome.verdict is None:
            verdict = local.domain_verdict(address, facts, role, mail, outcome.why_none)
            return verdict, outcome.calls
        v = outcome.verdict
        return dataclasses.replace(
            v,
            free=v.free or facts.free,
            role=v.role or role,
            did_you_mean=v.did_you_mean or local.suggestion(address, facts),
            mx_record=v.mx_record or mail.mx,
        ), outcome.calls

    async def _spare(
        self, chain: SpareVerdictSource, address: Address, deadline_at: float
    ) -> ChainOutcome:
        """A background verdict: the first spare slot before `deadline_at`, asked again with
        growing pauses while none is free; past the deadline, no provider verdict."""
        wait = SPARE_WAIT[0]
        while (left := deadline_at - self.clock()) > 0:
            outcome = await chain.verify_spare(address, left)
            if outcome is not None:
                return dataclasses.replace(outcome, calls=max(outcome.calls, 1))
            await self.sleep(min(wait, left))
            wait = min(SPARE_WAIT[1], wait * 2)
        return ChainOutcome(None, Reason.UNAVAILABLE_PROVIDER)

    def _finish(
        self,
        address: Address,
        fresh: Fresh,
        cached: bool,
        context: str,
        threshold: int,
        start: float,
    ) -> CheckResult:
        verdict = fresh.verdict
        duration = self.clock() - start
        if not cached and verdict.source is not Source.SANDBOX:
            samples = self._fresh_durations.get(verdict.source)
            if samples is None:
                samples = self._fresh_durations[verdict.source] = deque(maxlen=FRESH_SAMPLES)
            samples.append(duration)
        result = CheckResult(
            email_address=address.email,
            user=address.user,
            domain=address.domain,
            verdict=verdict,
            decision=decide(verdict, threshold),
            context=context,
            threshold=threshold,
            cached=cached,
            duration=duration,
            provider_calls=fresh.calls,
        )
        self._observe(result, self.hasher.hash(address.identity))
        return result

    def _finish_invalid(self, raw: str, context: str, threshold: int, start: float) -> CheckResult:
        user, domain = split_loosely(raw)
        verdict = Verdict(
            state=State.UNDELIVERABLE, reason=Reason.INVALID_EMAIL, score=0, source=Source.LOCAL
        )
        result = CheckResult(
            email_address=raw.strip(),
            user=user,
            domain=domain,
            verdict=verdict,
            decision=Decision.REJECT,
            context=context,
            threshold=threshold,
            cached=False,
            duration=self.clock() - start,
        )
        # The parser's message can quote pieces of the input: it goes to the caller, not the log.
        self._observe(result, self.hasher.hash(raw.strip().casefold()))
        return result

    def _observe(self, result: CheckResult, email_hash: str) -> None:
        # The enums are StrEnums: labels and JSON take the members as their values (`.value`
        # costs a descriptor call each, six of them a check).
        v = result.verdict
        self.metrics.observe_check(result.context, result.decision, v.source, result.duration)
        if log.isEnabledFor(logging.INFO):
            fields = {
                "event": "check",
                "email_hash": email_hash,
                "duration_ms": round(result.duration * 1000, 3),
            }
            logsetup.event(log, "check", fields, _check_fields(
                result.context, v.state, v.reason, v.score, result.decision, v.source,
                result.cached,
            ))  # fmt: skip


@functools.lru_cache(maxsize=ANSWERS_MEMO)
def _check_fields(
    context: str, state: State, reason: Reason, score: int, decision: Decision, source: Source,
    cached: bool,
) -> logsetup.Fixed:  # fmt: skip
    """What a check's log line shares with every check of the same verdict and context."""
    return logsetup.Fixed({
        "context": context, "state": state, "reason": reason, "score": score,
        "decision": decision, "source": source, "cached": cached,
    })  # fmt: skip
