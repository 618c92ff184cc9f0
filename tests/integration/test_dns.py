"""Stage 5 against a real DNS server on loopback.

MX, null MX, A-only, NXDOMAIN, SERVFAIL and silence, each classified as the RFCs say.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from emailgate.clock import FakeClock
from emailgate.verify.dns import ERROR_TTL, MXResolver
from emailgate.verify.mail import MailStatus
from tests.fakes.dns_server import DNSServer, Zone


@pytest.fixture
async def resolver(dns_server: DNSServer) -> MXResolver:
    """An MXResolver pointed at the loopback DNS server. Each query may take a second: an
    A-only domain needs two in a row, and a loaded machine must not turn them into errors."""
    r = MXResolver([dns_server.address], query_timeout=1.0, tries=1)
    yield r
    await r.close()


@pytest.mark.parametrize(
    ("domain", "status", "mx"),
    [
        ("good.com", MailStatus.MX, "mx1.good.com"),  # lowest preference wins
        ("nullmx.com", MailStatus.NO_MAIL, None),  # RFC 7505
        ("aonly.com", MailStatus.IMPLICIT, "aonly.com"),  # RFC 5321 §5.1
        ("aaaaonly.net", MailStatus.IMPLICIT, "aaaaonly.net"),
        ("empty.com", MailStatus.NO_MAIL, None),
        ("gone.com", MailStatus.NXDOMAIN, None),
        ("never-heard-of.com", MailStatus.NXDOMAIN, None),
        ("sick.com", MailStatus.ERROR, None),
    ],
)
async def test_classification(
    resolver: MXResolver, domain: str, status: MailStatus, mx: str | None
) -> None:
    """Each kind of zone is classified as RFC 5321 and RFC 7505 say."""
    answer = await resolver.lookup(domain, timeout=1.0)
    assert (answer.status, answer.mx) == (status, mx)


async def test_silence_is_bounded_by_the_budget(resolver: MXResolver) -> None:
    """A server that never answers costs at most the caller's budget, then dns error."""
    start = time.monotonic()
    answer = await resolver.lookup("mute.com", timeout=0.3)
    elapsed = time.monotonic() - start
    assert answer.status is MailStatus.ERROR
    assert elapsed < 0.6


async def test_answers_are_cached(dns_server: DNSServer, resolver: MXResolver) -> None:
    """A second lookup of a domain asks no one."""
    await resolver.lookup("good.com", timeout=1.0)
    asked = len(dns_server.queries)
    assert (await resolver.lookup("good.com", timeout=1.0)).status is MailStatus.MX
    assert len(dns_server.queries) == asked


async def test_concurrent_lookups_share_one_query(
    dns_server: DNSServer, resolver: MXResolver
) -> None:
    """Fifty checks on one domain at once send one MX query."""
    answers = await asyncio.gather(*(resolver.lookup("good.com", 1.0) for _ in range(50)))
    assert {a.status for a in answers} == {MailStatus.MX}
    assert dns_server.queries.count(("good.com", "MX")) == 1


async def test_cache_is_bounded_and_respects_ttl(dns_server: DNSServer) -> None:
    """Entries expire on the injected clock and the cache never exceeds its bound."""
    clock = FakeClock()
    dns_server.zones["short.com"] = Zone(mx=[(10, "mx.short.com")], ttl=5)
    r = MXResolver([dns_server.address], clock=clock, max_entries=3, query_timeout=0.2, tries=1)
    try:
        await r.lookup("short.com", 1.0)
        assert r.cached("short.com") is not None
        clock.advance(59)  # TTL 5 s is raised to the 60 s floor
        assert r.cached("short.com") is not None
        clock.advance(2)
        assert r.cached("short.com") is None
        await r.lookup("sick.com", 1.0)
        clock.advance(ERROR_TTL + 1)
        assert r.cached("sick.com") is None  # errors are re-asked soon
        for d in ("good.com", "aonly.com", "empty.com", "gone.com"):
            await r.lookup(d, 1.0)
        assert len(r._cache) == 3
    finally:
        await r.close()


async def test_no_search_domains_are_appended(dns_server: DNSServer, resolver: MXResolver) -> None:
    """A missing domain is asked about as given, never with the host's search list."""
    await resolver.lookup("gone.com", 1.0)
    assert all(name == "gone.com" for name, _ in dns_server.queries)
