"""The chain never calls a provider before its paced slot, even when a timer wakes it early."""

from __future__ import annotations

import math

from emailgate.clock import FakeClock
from emailgate.metrics import Metrics
from emailgate.pacing.breaker import CircuitBreaker
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.providers.chain import Chain, Link
from emailgate.providers.credits import CreditsBook
from emailgate.verify.result import Address, Reason, Source, State, Verdict
from emailgate.verify.syntax import parse_address

GAP = 1.0


class RecordingProvider:
    """A provider answering at once, noting the clock's reading at each call."""

    name = Source.CLEANMYLIST.value

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def verify(self, address: Address, timeout: float) -> Verdict:
        self.calls.append(self.clock())
        return Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 90, Source.CLEANMYLIST)

    async def credits(self, timeout: float) -> int | None:
        return None


async def test_a_timer_that_fires_early_does_not_send_a_call_before_its_slot(
    clock: FakeClock,
) -> None:
    """uvloop counts whole milliseconds from its cached time: a sleep ends up to a
    millisecond or so short of the wait; the chain sleeps again, and the second call keeps
    the slot the pacer gave it."""
    slept: list[float] = []

    async def early_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(max(0.0, math.floor(seconds * 1000) / 1000 - 0.0005))

    metrics = Metrics()
    provider = RecordingProvider(clock)
    spec = BucketSpec.for_gap(GAP)
    link = Link(provider, LocalPacer(spec, clock=clock), CircuitBreaker(clock=clock),
                metrics=metrics, credits=CreditsBook((provider.name,), metrics))  # fmt: skip
    chain = Chain([link], metrics=metrics, clock=clock, sleep=early_sleep)
    for user in ("first", "second"):
        outcome = await chain.verify(parse_address(f"{user}@good.com"), clock() + 30.0)
        assert outcome.verdict is not None
    first, second = provider.calls
    assert second - first >= spec.interval - 1e-9  # float rounding of the readings
    assert len(slept) > 1 and max(slept[1:]) < 0.01  # short extra sleeps
