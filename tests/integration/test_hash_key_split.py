"""Real `emailgate serve` replicas on one real Redis, without EMAILGATE_HASH_KEY: when the
shared hash key vanishes (Redis restarted empty, or an eviction) the fleet does not split
into halves with their own cache and client limits; a split is said and healed. And verdicts
never fill Redis to the point where its eviction policy takes control state."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from emailgate.hashkey import REDIS_KEY, WATCH_S
from tests.fakes.dns_server import DNSServer
from tests.serviceproc import ServiceProcess

TEST_KEY = "tk_test_integration_key"
PRIVATE = "sk_live_backend_key_for_fill"
KEYS = f"""
[[key]]
name = "integration"
kind = "test"
sha256 = "{hashlib.sha256(TEST_KEY.encode()).hexdigest()}"
rate = "100/60s"

[[key]]
name = "backend"
kind = "private"
sha256 = "{hashlib.sha256(PRIVATE.encode()).hexdigest()}"
rate = "1000000/60s"
"""


@dataclass
class Fleet:
    replicas: list[ServiceProcess]
    redis: aioredis.Redis
    env: dict[str, str]
    logs: Path

    async def start(self) -> ServiceProcess:
        """One more replica with the same settings."""
        log = self.logs / f"replica-{len(self.replicas)}.log"
        replica = await ServiceProcess.start(self.env, log)
        self.replicas.append(replica)
        return replica


@pytest.fixture
async def fleet(tmp_path: Path, dns_server: DNSServer, redis_url: str) -> AsyncIterator[Fleet]:
    """Replica A running on Redis; the test starts more with `fleet.start()`."""
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    env = {
        "EMAILGATE_DNS_SERVERS": dns_server.address,
        "EMAILGATE_API_KEYS_FILE": str(keys),
        "EMAILGATE_REDIS_URL": redis_url,
        "EMAILGATE_LOG_LEVEL": "info",
    }
    fleet = Fleet([], aioredis.Redis.from_url(redis_url), env, tmp_path)
    try:
        await fleet.start()
        yield fleet
    finally:
        await fleet.redis.aclose()
        for replica in fleet.replicas:
            await replica.stop()


def events(replica: ServiceProcess, name: str) -> list[dict[str, Any]]:
    text = replica.log_path.read_text(errors="replace").rpartition("\n")[0]
    return [e for e in map(json.loads, text.splitlines()) if e.get("event") == name]


async def readyz(http: aiohttp.ClientSession, replica: ServiceProcess) -> dict[str, Any]:
    async with http.get(f"{replica.url}/readyz") as r:
        body: dict[str, Any] = await r.json()
        assert r.status == 200, body
        return body


async def wait_until_agreed(http: aiohttp.ClientSession, replicas: list[ServiceProcess]) -> None:
    """Until every replica's /readyz names the same key fingerprint (a few watch periods)."""
    end = time.monotonic() + 4 * WATCH_S + 5
    while True:
        details = [(await readyz(http, r))["checks"]["hash_key"]["detail"] for r in replicas]
        prints = {d.split("fingerprint ")[1][:8] for d in details}
        if len(prints) == 1:
            return
        assert time.monotonic() < end, details
        await asyncio.sleep(0.2)


async def allowed_across(http: aiohttp.ClientSession, replicas: list[ServiceProcess]) -> int:
    """200 requests with the test key (100/60s), alternating replicas: how many pass."""
    passed = 0
    for i in range(200):
        replica = replicas[i % len(replicas)]
        async with http.get(
            f"{replica.url}/api/v1/verify",
            params={"email": f"deliverable{i}@good.com"},
            headers={"X-API-Key": TEST_KEY},
        ) as r:
            await r.read()
            passed += r.status == 200
    return passed


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["restart", "eviction"])
async def test_a_lost_hash_key_does_not_split_the_fleet(fleet: Fleet, loss: str) -> None:
    """Redis restarts empty and a new replica writes its own key before the old one's, or the
    key is evicted: within a few seconds both replicas hash alike again (the split is logged,
    counted and shown in /readyz) and the test key's 100/60s holds across them."""
    a = fleet.replicas[0]
    if loss == "restart":
        await fleet.redis.flushdb()
        await fleet.redis.set(REDIS_KEY, "b" * 64)  # what replica B writes when it starts first
    else:
        await fleet.redis.delete(REDIS_KEY)
    await fleet.start()
    async with aiohttp.ClientSession() as http:
        await wait_until_agreed(http, fleet.replicas)
        if loss == "restart":
            assert [e["level"] for e in events(a, "hash_key_split")] == ["warning"]
            detail = (await readyz(http, a))["checks"]["hash_key"]["detail"]
            assert "1 split(s) detected and healed" in detail
            async with http.get(f"{a.url}/metrics") as r:
                assert "emailgate_hash_key_splits_total 1.0" in await r.text()
        assert await allowed_across(http, fleet.replicas) <= 100
    assert b"b" * 64 not in a.log_path.read_bytes()  # the key itself is never logged


@pytest.mark.slow
async def test_verdicts_never_fill_redis_into_evicting_control_state(fleet: Fleet) -> None:
    """Redis with a memory limit and allkeys-lru, already 80 % full of verdicts: fresh verdicts
    until the guard pauses their writes (/readyz, the metric and one log line say so), then
    2,500 more, none written; nothing was evicted (the hash key and the client-limit windows
    are still there)."""
    redis = fleet.redis
    a = fleet.replicas[0]
    info = await redis.info("memory")
    limit = int(info["used_memory"]) + 4 * 1024 * 1024
    old = await redis.config_get("maxmemory*")
    await redis.config_set("maxmemory", limit)
    await redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        filler = "x" * 1000
        n = 0
        while int((await redis.info("memory"))["used_memory"]) < 0.80 * limit:
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.set(f"emailgate:v1:verdict:filler{n}", filler, ex=600)
                    n += 1
                await pipe.execute()
        before = int((await redis.info("stats"))["evicted_keys"])
        async with aiohttp.ClientSession() as http:
            assert await allowed_across(http, [a]) == 100  # a client-limit window in Redis
            sem = asyncio.Semaphore(8)

            async def fill(i: int) -> None:
                async with (
                    sem,
                    http.get(
                        f"{a.url}/api/v1/verify",
                        params={"email": f"user{i}@good.com"},
                        headers={"X-API-Key": PRIVATE},
                    ) as r,
                ):
                    assert r.status == 200
                    await r.read()

            async def paused() -> bool:
                detail = (await readyz(http, a))["checks"]["cache"]["detail"]
                return "verdict writes paused" in detail

            # Batches of 250 (about 2 % of the limit each), each followed by a guard period
            # once Redis is past the pause mark: the test never outruns the guard's 2 s reads,
            # whatever the machine's speed or the size of a verdict.
            sent = 0
            while not await paused():
                assert sent < 40_000, "Redis never reached the pause mark"
                await asyncio.gather(*(fill(sent + i) for i in range(250)))
                sent += 250
                memory = await redis.info("memory")
                if int(memory["used_memory"]) >= 0.85 * limit:
                    for _ in range(50):  # up to 5 s: a guard period and then some
                        if await paused():
                            break
                        await asyncio.sleep(0.1)
            verdicts = len([k async for k in redis.scan_iter("emailgate:v1:verdict:*")])
            await asyncio.gather(*(fill(sent + i) for i in range(2500)))
            assert len([k async for k in redis.scan_iter("emailgate:v1:verdict:*")]) <= verdicts
            assert await paused()
            async with http.get(f"{a.url}/metrics") as r:
                metrics = await r.text()
        assert int((await redis.info("stats"))["evicted_keys"]) == before
        assert await redis.get(REDIS_KEY) is not None
        assert [k async for k in redis.scan_iter("emailgate:v1:rl:*")]
        assert "emailgate_cache_writes_paused 1.0" in metrics
        assert [e["event"] for e in events(a, "cache_writes_paused")] == ["cache_writes_paused"]
    finally:
        await redis.config_set("maxmemory", old["maxmemory"])
        await redis.config_set("maxmemory-policy", old["maxmemory-policy"])
