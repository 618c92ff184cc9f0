"""The cache-hit path of a check: with the in-process cache, a repeat is answered without the
check ever suspending (no coroutine or task hop), from the cache, counted as a hit; with
history hidden it is still dressed as a fresh check. The provider chain is replaced at the
pipeline's seam; cache, DNS and local checks are real."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from emailgate.clock import FakeClock
from emailgate.config import Settings
from emailgate.services import open_services
from emailgate.verify.pipeline import CheckResult
from emailgate.verify.result import Address, Reason, Source, State, Verdict
from emailgate.verify.seams import ChainOutcome
from tests.fakes.dns_server import DNSServer

GOOD = Verdict(state=State.DELIVERABLE, reason=Reason.ACCEPTED_EMAIL, score=95,
               source=Source.LISTCLEANSER)  # fmt: skip


class Chain:
    """A provider chain at the seam that always answers GOOD, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def verify(self, address: Address, deadline: float) -> ChainOutcome:
        self.calls += 1
        return ChainOutcome(GOOD, calls=1)


def run_without_suspending(coro: Coroutine[Any, Any, CheckResult]) -> CheckResult:
    """The coroutine's result if it finishes at its first step; fails if it suspends."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: CheckResult = done.value
        return result
    coro.close()
    raise AssertionError("the check suspended")


async def test_an_in_process_hit_never_suspends(dns_server: DNSServer) -> None:
    """The second check of an address returns at its first step, cached, without the chain,
    and the cache counts one miss and one hit."""
    settings = Settings.from_env({"EMAILGATE_DNS_SERVERS": dns_server.address})
    chain = Chain()
    async with open_services(settings, chain=chain, clock=FakeClock()) as s:
        assert s.verifier.cache.in_process
        first = await s.verifier.check("ada@good.com", "signup")
        assert not first.cached and chain.calls == 1
        again = run_without_suspending(s.verifier.check("ADA@good.com", "signup"))
        assert again.cached and again.verdict == first.verdict and chain.calls == 1
        read = s.metrics.registry.get_sample_value
        assert read("emailgate_cache_lookups_total", {"result": "hit"}) == 1
        assert read("emailgate_cache_lookups_total", {"result": "miss"}) == 1
        hidden = await s.verifier.check("ada@good.com", "signup", history=False)
        assert not hidden.cached and chain.calls == 1
