"""Real time, real processes: a flood of unique addresses never breaks the providers' limits.

The service runs as `emailgate serve` child processes (one, or two sharing a real Redis), the
fake providers in another process, the load from this one. The evidence is the fakes' own call
logs (arrival times at the provider's end), not our bookkeeping. Rates are shortened (10 per
2 s, 100 ms gap) so each test takes seconds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import RedisServer, free_port
from tests.fakes.calllog import CallLog
from tests.fakes.cleanmylist import REQUEST, CleanMyListConfig
from tests.fakes.control import FakeControl
from tests.fakes.dns_server import DNSServer
from tests.fakes.listcleanser import VERIFY, ListCleanserConfig
from tests.fakes.process import FakeProvidersProcess
from tests.serviceproc import ServiceProcess

COUNT, WINDOW, GAP_MS = 10, 2.0, 100
DEADLINE = 1.5
SECONDS = 6.0
LC_KEY = ListCleanserConfig().api_key
CML_KEY = CleanMyListConfig().api_key

Answer = tuple[int, float, str]


@pytest.fixture
async def fakes() -> AsyncIterator[FakeProvidersProcess]:
    """Both fake providers in their own process, with latency, limiting at the shortened rate."""
    process = await FakeProvidersProcess.start(
        "--latency-ms", "60", "--jitter-ms", "40",
        "--rate-limit", str(COUNT), "--rate-window-s", str(WINDOW),
    )  # fmt: skip
    yield process
    await process.stop()


def service_env(fakes: FakeProvidersProcess, dns: DNSServer, **extra: str) -> dict[str, str]:
    """Settings of a service process pointed at the fakes and the loopback DNS server."""
    return {
        "EMAILGATE_DNS_SERVERS": dns.address,
        "EMAILGATE_LISTCLEANSER_URL": fakes.listcleanser_url,
        "EMAILGATE_LISTCLEANSER_API_KEY": LC_KEY,
        "EMAILGATE_LISTCLEANSER_RATE": f"{COUNT}/{WINDOW:g}s",
        "EMAILGATE_CLEANMYLIST_URL": fakes.cleanmylist_url,
        "EMAILGATE_CLEANMYLIST_API_KEY": CML_KEY,
        "EMAILGATE_CLEANMYLIST_INTERVAL_MS": str(GAP_MS),
        "EMAILGATE_HASH_KEY": "flood-test-hash-key-0123456789",
        # The load comes from one loopback address: lift the open per-IP client limit.
        "EMAILGATE_OPEN_RATE": "1000000/1s",
    } | extra


async def flood(urls: Sequence[str], *, seconds: float, workers: int) -> list[Answer]:
    """Unique addresses from `workers` callers spread over `urls` for `seconds`:
    (status, duration, source) of each answer."""
    numbers = itertools.count()
    answers: list[Answer] = []
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds

    async def worker(http: aiohttp.ClientSession, url: str) -> None:
        while loop.time() < stop:
            email = f"u{next(numbers)}@good.com"
            async with http.get(f"{url}/api/v1/verify", params={"email": email}) as response:
                data = (await response.json()).get("data", {})
                answers.append(
                    (response.status, data.get("duration", -1.0), data.get("source", ""))
                )

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(worker(http, urls[i % len(urls)]) for i in range(workers)))
    return answers


async def provider_logs(fakes: FakeProvidersProcess) -> tuple[CallLog, CallLog]:
    """The verify calls each fake received."""
    async with aiohttp.ClientSession() as http:
        lc = await FakeControl(fakes.listcleanser_url, http).calls(VERIFY)
        cml = await FakeControl(fakes.cleanmylist_url, http).calls(REQUEST)
    return lc, cml


def assert_limits_held(
    answers: list[Answer], lc: CallLog, cml: CallLog, seconds: float, *, used: bool = True
) -> None:
    """Every answer in time, the limits held at the fakes, and (`used`) most of the allowed
    rate used."""
    assert answers and {status for status, _, _ in answers} == {200}
    # A small overhead over the deadline is loop lag on a busy machine; benchmarks measure it.
    assert max(duration for _, duration, _ in answers) <= DEADLINE + 0.25
    assert lc.max_in_window(WINDOW, clock="wall") <= COUNT
    assert 429 not in lc.statuses()
    gap = cml.min_gap(clock="wall")
    assert gap is not None and gap >= GAP_MS / 1000
    if used:
        assert len(lc) >= 0.8 * COUNT * seconds / WINDOW
        assert len(cml) >= 0.6 * seconds / (GAP_MS / 1000)


async def test_one_replica_keeps_both_limits(
    fakes: FakeProvidersProcess, dns_server: DNSServer, tmp_path: Path
) -> None:
    """One process: at most 10 ListCleanser calls in any 2 s, no two CleanMyList calls < 100 ms."""
    service = await ServiceProcess.start(service_env(fakes, dns_server), tmp_path / "svc.log")
    try:
        answers = await flood([service.url], seconds=SECONDS, workers=20)
    finally:
        assert await service.stop() == 0
    lc, cml = await provider_logs(fakes)
    assert_limits_held(answers, lc, cml, SECONDS)
    assert {"listcleanser", "cleanmylist", "local"} <= {source for _, _, source in answers}


async def test_two_replicas_on_redis_keep_the_limits_for_the_pair(
    fakes: FakeProvidersProcess, dns_server: DNSServer, redis_url: str, tmp_path: Path
) -> None:
    """Two processes sharing Redis: the limits hold for the pair, not for each."""
    env = service_env(fakes, dns_server, EMAILGATE_REDIS_URL=redis_url, EMAILGATE_REPLICAS="2")
    services = [await ServiceProcess.start(env, tmp_path / f"svc{i}.log") for i in range(2)]
    try:
        answers = await flood([s.url for s in services], seconds=SECONDS, workers=20)
        ok_calls = [await provider_calls(s.url) for s in services]
    finally:
        for s in services:
            assert await s.stop() == 0
    lc, cml = await provider_logs(fakes)
    assert_limits_held(answers, lc, cml, SECONDS)
    # Both replicas called the providers: the pair shares one budget, neither sits idle.
    assert all(n > 0 for n in ok_calls), ok_calls
    assert sum(ok_calls) == len(lc) + len(cml)


async def test_redis_stopped_mid_run_degrades_safely(
    fakes: FakeProvidersProcess, dns_server: DNSServer, tmp_path: Path
) -> None:
    """Redis dies under load: no 5xx, answers in time, /readyz says why, limits still hold."""
    redis = RedisServer(port=free_port(), workdir=tmp_path)
    redis.start()
    env = service_env(fakes, dns_server, EMAILGATE_REDIS_URL=redis.url, EMAILGATE_REPLICAS="2")
    services = [await ServiceProcess.start(env, tmp_path / f"svc{i}.log") for i in range(2)]
    try:
        load = asyncio.create_task(flood([s.url for s in services], seconds=8.0, workers=20))
        await asyncio.sleep(3.0)
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(2.0)
        async with aiohttp.ClientSession() as http, http.get(f"{services[0].url}/readyz") as r:
            ready = (r.status, await r.json())
        answers = await load
    finally:
        for s in services:
            assert await s.stop() == 0
        redis.stop()
    assert ready[0] == 503
    assert "redis" in ready[1]["message"] and "pacing" in ready[1]["message"]
    assert "degraded" in ready[1]["checks"]["pacing"]["detail"]
    lc, cml = await provider_logs(fakes)
    # After the switch each replica holds back a few seconds, so the rate is not all used.
    assert_limits_held(answers, lc, cml, 8.0, used=False)


async def provider_calls(url: str) -> float:
    """Provider calls a service made that got a verdict (its own /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("emailgate_provider_requests_total{") and 'outcome="ok"' in line
    )
