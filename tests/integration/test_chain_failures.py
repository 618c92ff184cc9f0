"""A provider client that raises something unforeseen ends as a classified failure: no 500 for
the checks sharing the flight, and a half-open breaker is never left probing forever."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

from emailgate.clock import FakeClock
from emailgate.config import Secret
from emailgate.metrics import Metrics
from emailgate.pacing.breaker import COOL_DOWN, FAILURES_TO_OPEN, CircuitBreaker
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.providers.base import Provider
from emailgate.providers.chain import Chain, Link
from emailgate.providers.cleanmylist import CleanMyList
from emailgate.providers.credits import CreditsBook
from emailgate.providers.http import make_session
from emailgate.verify.result import Address, Verdict
from emailgate.verify.syntax import parse_address
from tests.fakes.cleanmylist import REQUEST, FakeCleanMyList
from tests.integration.test_chain import metric, provider_env, verify

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


async def test_a_superscript_score_is_a_bad_response_not_a_500(
    make_client: MakeClient, fake_cleanmylist: FakeCleanMyList
) -> None:
    """CleanMyList answers score "²" (str.isdigit() says yes, int() says no): the check fails
    open with a local answer and the call counts as a bad response."""
    client = await make_client(**provider_env(None, fake_cleanmylist))
    fake_cleanmylist.set_answer("odd.score@good.com", score="²")
    r = await verify(client, "odd.score@good.com")
    assert (r["source"], r["state"], r["decision"]) == ("local", "unknown", "accept")
    assert await metric(client, "emailgate_provider_requests_total",
                        provider="cleanmylist", outcome="bad_response") == 1  # fmt: skip


async def test_a_superscript_quota_is_ignored_and_the_verdict_stands(
    make_client: MakeClient, fake_cleanmylist: FakeCleanMyList
) -> None:
    """A quota of "³" is not a number of credits: the verdict is used, the quota left unknown."""
    client = await make_client(**provider_env(None, fake_cleanmylist))
    fake_cleanmylist.set_answer("odd.quota@good.com", quota="³")
    r = await verify(client, "odd.quota@good.com")
    assert (r["source"], r["state"]) == ("cleanmylist", "deliverable")
    credits = await (await client.get("/api/v1/credits")).json()
    assert credits["data"]["cleanmylist"] is None


def one_link_chain(provider: Provider, clock: FakeClock) -> tuple[Chain, CircuitBreaker]:
    """A chain of `provider` alone, paced and broken on the fake clock."""
    metrics = Metrics()
    breaker = CircuitBreaker(clock=clock)
    pacer = LocalPacer(BucketSpec.for_gap(0.001), clock=clock)
    credits = CreditsBook((provider.name,), metrics)
    link = Link(provider, pacer, breaker, metrics=metrics, credits=credits)
    chain = Chain([link], metrics=metrics, clock=clock)
    return chain, breaker


async def test_a_probe_the_client_trips_over_reopens_the_breaker(
    fake_cleanmylist: FakeCleanMyList, clock: FakeClock
) -> None:
    """The breaker is open; its half-open probe meets a "²" score: the probe counts as failed,
    the circuit opens again, and after the next cool-down the provider is probed again rather
    than never (the probe was left taken when the client's exception escaped)."""
    address = parse_address("probe.me@good.com")
    async with make_session() as session:
        client = CleanMyList(session, fake_cleanmylist.url, Secret(fake_cleanmylist.api_key))
        chain, breaker = one_link_chain(client, clock)
        fake_cleanmylist.fail(503, times=FAILURES_TO_OPEN)
        for i in range(FAILURES_TO_OPEN):  # an outage: failures for many domains
            clock.advance(1)
            outage = parse_address(f"someone@domain{i}.com")
            assert (await chain.verify(outage, clock() + 1.5)).verdict is None
        assert breaker.state == "open"
        fake_cleanmylist.set_answer("probe.me@good.com", score="²")
        clock.advance(COOL_DOWN)
        assert (await chain.verify(address, clock() + 1.5)).verdict is None
        assert breaker.state == "open" and not breaker.probing
        fake_cleanmylist.clear_answers()
        clock.advance(COOL_DOWN)
        outcome = await chain.verify(address, clock() + 1.5)
    assert outcome.verdict is not None and breaker.state == "closed"
    assert len(fake_cleanmylist.calls.emails(REQUEST)) == FAILURES_TO_OPEN + 2


class BuggyProvider:
    """A provider client with a bug: every call raises something that is no ProviderError."""

    name = "listcleanser"

    def __init__(self) -> None:
        self.calls = 0

    async def verify(self, address: Address, timeout: float) -> Verdict:
        self.calls += 1
        raise KeyError("a field the client did not expect")

    async def credits(self, timeout: float) -> int | None:
        return None


async def test_any_unexpected_client_exception_is_a_classified_failure(clock: FakeClock) -> None:
    """Whatever a client raises ends as an `error` outcome and a breaker failure: the breaker
    opens at its threshold, half-opens after the cool-down and probes again."""
    provider = BuggyProvider()
    chain, breaker = one_link_chain(provider, clock)
    address = parse_address("bug@good.com")
    for i in range(FAILURES_TO_OPEN):  # failing for every domain, as a client bug would
        clock.advance(1)
        outage = parse_address(f"bug@domain{i}.com")
        assert (await chain.verify(outage, clock() + 1.5)).verdict is None
    assert breaker.state == "open"
    requests = chain.metrics.registry.get_sample_value(
        "emailgate_provider_requests_total", {"provider": "listcleanser", "outcome": "error"}
    )
    assert requests == FAILURES_TO_OPEN
    clock.advance(COOL_DOWN)
    await chain.verify(address, clock() + 1.5)
    clock.advance(COOL_DOWN)
    await chain.verify(address, clock() + 1.5)
    assert provider.calls == FAILURES_TO_OPEN + 2 and not breaker.probing
