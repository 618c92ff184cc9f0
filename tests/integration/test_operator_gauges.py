"""What an operator reads from a real `emailgate serve`'s /metrics and /readyz is true now: a
pause that is over reads 0, a resolver known to lie is named and distrusted until it tells the
truth, and `emailgate_redis_degraded` follows every user of Redis, clearing when all recover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ZONES, RedisServer, free_port
from tests.fakes.dns_server import NXDOMAIN, DNSServer, Zone
from tests.fakes.listcleanser import CREDITS, VERIFY, FakeListCleanser
from tests.serviceproc import ServiceProcess


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the test."""
    async with aiohttp.ClientSession() as session:
        yield session


async def sample(http: aiohttp.ClientSession, url: str, series: str) -> float | None:
    """The value of one series (name plus labels, as printed) in the service's /metrics."""
    async with http.get(f"{url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


async def check(http: aiohttp.ClientSession, url: str, email: str) -> dict[str, Any]:
    """GET /api/v1/verify; the RESULT."""
    async with http.get(f"{url}/api/v1/verify", params={"email": email}) as r:
        body = await r.json()
        assert r.status == 200, body
        data: dict[str, Any] = body["data"]
        return data


async def readyz(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    """GET /readyz: status and body."""
    async with http.get(f"{url}/readyz") as r:
        return r.status, await r.json()


async def until(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll `probe` until true, or fail saying `what` never happened."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await probe():
        if loop.time() > end:
            pytest.fail(f"{what} within {timeout} s")
        await asyncio.sleep(0.1)


async def test_the_paused_gauge_goes_back_to_0_when_the_pause_is_over(
    fake_listcleanser: FakeListCleanser,
    dns_server: DNSServer,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """A 429 with Retry-After: 1 pauses ListCleanser and /metrics says 1; a second later, with
    no other event, /metrics says 0 (the alert can resolve)."""
    env = {
        "EMAILGATE_DNS_SERVERS": dns_server.address,
        "EMAILGATE_LISTCLEANSER_URL": fake_listcleanser.url,
        "EMAILGATE_LISTCLEANSER_API_KEY": fake_listcleanser.api_key,
    }
    service = await ServiceProcess.start(env, tmp_path / "svc.log")
    try:
        paused = 'emailgate_provider_paused{provider="listcleanser"}'

        async def polled() -> bool:
            return fake_listcleanser.calls.statuses(CREDITS) == [200]

        await until(polled, 10, "the credits poll did not land")
        assert await sample(http, service.url, paused) == 0
        fake_listcleanser.fail(429, retry_after=1)
        await check(http, service.url, "a@good.com")
        assert fake_listcleanser.calls.statuses(VERIFY) == [429]
        assert await sample(http, service.url, paused) == 1
        await asyncio.sleep(1.1)
        assert await sample(http, service.url, paused) == 0
        assert (await check(http, service.url, "b@good.com"))["source"] == "listcleanser"
    finally:
        assert await service.stop() == 0


LYING = {**ZONES, "gmail.com": NXDOMAIN, "posteo.de": NXDOMAIN, "acme-corp.io": NXDOMAIN}
"""A resolver that denies gmail.com, and with it domains we cannot check otherwise."""


async def test_a_resolver_known_to_lie_fails_open_until_it_tells_the_truth(
    dns_server: DNSServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Once the resolver denies gmail.com, its NXDOMAIN for any domain is a DNS error (the
    check fails open), /readyz names the problem, the gauge is 1; when gmail.com has mail
    hosts again, the gauge clears, /readyz is ready and NXDOMAIN is believed again."""
    dns_server.zones = dict(LYING)
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address}
    service = await ServiceProcess.start(env, tmp_path / "svc.log")
    unreliable = "emailgate_dns_resolver_unreliable"
    try:
        assert await sample(http, service.url, unreliable) == 0
        assert (await readyz(http, service.url))[0] == 200
        assert (await check(http, service.url, "jane@gmail.com"))["reason"] == "dns_error"
        for email in ("jane@posteo.de", "jane@acme-corp.io"):
            r = await check(http, service.url, email)
            assert (r["reason"], r["decision"]) == ("dns_error", "accept"), email
        assert await sample(http, service.url, unreliable) == 1
        status, body = await readyz(http, service.url)
        assert status == 503
        assert not body["checks"]["dns"]["ok"]
        assert "gmail.com" in body["checks"]["dns"]["detail"] and "dns" in body["message"]

        dns_server.zones["gmail.com"] = Zone(mx=[(5, "gmail-smtp-in.l.google.com")])

        async def trusted() -> bool:
            return await sample(http, service.url, unreliable) == 0

        await until(trusted, 10, "the resolver was not trusted again")
        assert (await readyz(http, service.url))[0] == 200
        # posteo.de's denial from the lying days is not reused: asked again, and believed.
        r = await check(http, service.url, "jim@posteo.de")
        assert (r["reason"], r["decision"]) == ("invalid_domain", "reject")
    finally:
        assert await service.stop() == 0


async def test_redis_degraded_follows_the_cache_and_the_limits(
    dns_server: DNSServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """No providers: Redis stops, the cache and the client limits fall back and the gauge is 1;
    Redis comes back, the cache recovers at once but the gauge stays 1 while the limits still
    count in-process; it is 0 only when both use Redis again."""
    redis = RedisServer(port=free_port(), workdir=tmp_path)
    redis.start()
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_REDIS_URL": redis.url}
    service = await ServiceProcess.start(env, tmp_path / "svc.log")
    degraded = "emailgate_redis_degraded"
    try:
        await check(http, service.url, "one@good.com")
        assert await sample(http, service.url, degraded) == 0
        await asyncio.to_thread(redis.stop)
        await check(http, service.url, "two@good.com")
        assert await sample(http, service.url, degraded) == 1
        await asyncio.to_thread(redis.start)
        loop = asyncio.get_running_loop()
        back = loop.time()
        await check(http, service.url, "three@good.com")  # the cache reaches Redis again

        async def cache_read() -> bool:
            await check(http, service.url, "three@good.com")
            async with http.get(f"{service.url}/metrics") as r:
                return 'emailgate_cache_lookups_total{result="hit"} 1.0' in await r.text()

        await until(cache_read, 5, "the cache did not reach Redis again")
        if loop.time() - back < 4.0:  # the limits retry Redis 5 s after their failure
            assert await sample(http, service.url, degraded) == 1

        async def cleared() -> bool:
            await check(http, service.url, "four@good.com")
            return await sample(http, service.url, degraded) == 0

        await until(cleared, 10, "emailgate_redis_degraded did not clear")
    finally:
        assert await service.stop() == 0
        redis.stop()
