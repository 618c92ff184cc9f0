"""Background checks (enrichment's found emails): the pipeline asks the provider chain only for
spare slots, asks again while none is free, and falls back to the local verdict once its
deadline has passed; interactive checks keep the chain's ordinary path. The chain is replaced
at the pipeline's own seam (`VerdictSource`), the rest (cache, DNS, local checks) is real; the
pipeline's clock is a fake one that its sleeps move."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from emailgate.clock import FakeClock
from emailgate.config import Settings
from emailgate.services import Services, open_services
from emailgate.verify.pipeline import BACKGROUND_DEADLINE
from emailgate.verify.result import Address, Reason, Source, State, Verdict
from emailgate.verify.seams import ChainOutcome
from tests.fakes.dns_server import DNSServer

GOOD = Verdict(state=State.DELIVERABLE, reason=Reason.ACCEPTED_EMAIL, score=95,
               source=Source.LISTCLEANSER)  # fmt: skip


class Chain:
    """A provider chain at the seam: records which path was asked; spare slots come only after
    `busy` refusals (None: never)."""

    def __init__(self, busy: int | None) -> None:
        self.busy = busy
        self.asked: list[str] = []

    async def verify(self, address: Address, deadline: float) -> ChainOutcome:
        self.asked.append("verify")
        return ChainOutcome(GOOD, calls=1)

    async def verify_spare(self, address: Address, timeout: float) -> ChainOutcome | None:
        self.asked.append("spare")
        if self.busy is None or self.busy > 0:
            self.busy = None if self.busy is None else self.busy - 1
            return None
        return ChainOutcome(GOOD)


@pytest.fixture
def clock() -> FakeClock:
    """The pipeline's clock."""
    return FakeClock()


async def services_with(chain: Chain, dns: DNSServer, clock: FakeClock) -> AsyncIterator[Services]:
    settings = Settings.from_env({"EMAILGATE_DNS_SERVERS": dns.address})
    async with open_services(settings, chain=chain, clock=clock) as s:

        async def sleep(seconds: float) -> None:
            clock.advance(seconds)

        s.verifier.sleep = sleep
        yield s


async def test_a_background_check_waits_for_a_spare_slot(
    dns_server: DNSServer, clock: FakeClock
) -> None:
    """Two refusals, then a spare slot: the provider's verdict, asked only through spare slots;
    an interactive check of another address takes the ordinary path."""
    chain = Chain(busy=2)
    async for s in services_with(chain, dns_server, clock):
        found = await s.verifier.check("ada@good.com", "marketing", background=True)
        assert found.verdict.source is Source.LISTCLEANSER
        assert chain.asked == ["spare", "spare", "spare"]
        signup = await s.verifier.check("bob@good.com", "signup")
        assert signup.verdict.source is Source.LISTCLEANSER
        assert chain.asked[3:] == ["verify"]


async def test_no_spare_slot_before_the_deadline_is_the_local_verdict(
    dns_server: DNSServer, clock: FakeClock
) -> None:
    """No spare slot for BACKGROUND_DEADLINE seconds: the fail-open local verdict (never the
    signups' path), asked with growing pauses rather than in a busy loop."""
    chain = Chain(busy=None)
    async for s in services_with(chain, dns_server, clock):
        start = clock()
        found = await s.verifier.check("ada@good.com", "marketing", background=True)
        assert found.verdict.source is Source.LOCAL and found.verdict.state is State.UNKNOWN
        assert set(chain.asked) == {"spare"}
        assert BACKGROUND_DEADLINE <= clock() - start < BACKGROUND_DEADLINE + 2
        assert 5 < len(chain.asked) < BACKGROUND_DEADLINE + 10
