"""Client limits and credit budgets shared by replicas through a real Redis, and kept (per
replica) when Redis is gone."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from emailgate.access.counters import RETRY_REDIS_AFTER_S, MemoryCounter, RedisCounter
from emailgate.clock import FakeClock
from emailgate.rate import Rate
from emailgate.services import connect_redis
from tests.conftest import free_port
from tests.fakes.listcleanser import FakeListCleanser

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

PUBLIC = "pk_live_replicated"
SHOP = "https://shop.example"


async def status_of(client: Client, **headers: str) -> int:
    response = await client.get(
        "/api/v1/verify", params={"email": "someone@good.com"}, headers=headers
    )
    await response.read()
    return response.status


async def test_replicas_share_one_open_limit(make_client: MakeClient, redis_url: str) -> None:
    """Two replicas on one Redis count one window per client: the limit holds fleet-wide."""
    env = {"EMAILGATE_REDIS_URL": redis_url, "EMAILGATE_OPEN_RATE": "3/60s"}
    one, two = await make_client(**env), await make_client(**env)
    assert [await status_of(one), await status_of(two), await status_of(one)] == [200] * 3
    assert await status_of(two) == 429
    response = await one.get("/api/v1/verify", params={"email": "a@good.com"})
    assert response.status == 429
    # The window's end is Redis's TTL: both replicas tell the same Retry-After.
    assert 58 <= int(response.headers["Retry-After"]) <= 60
    client = aioredis.Redis.from_url(redis_url)
    try:
        names = [k.decode() async for k in client.scan_iter("emailgate:v1:rl:*")]
    finally:
        await client.aclose()
    # One bucket, named by a keyed hash: no client address in Redis.
    assert len(names) == 1 and "127.0.0.1" not in names[0]


async def test_replicas_share_the_credit_budget(
    make_client: MakeClient, redis_url: str, tmp_path: Path, fake_listcleanser: FakeListCleanser
) -> None:
    """A page's visitor cannot spend one budget per replica."""
    keys = tmp_path / "keys.toml"
    keys.write_text(
        f"""[[key]]
name = "page"
kind = "public"
sha256 = "{hashlib.sha256(PUBLIC.encode()).hexdigest()}"
origins = ["{SHOP}"]
"""
    )
    env = {
        "EMAILGATE_REDIS_URL": redis_url,
        "EMAILGATE_API_KEYS_FILE": str(keys),
        "EMAILGATE_PUBLIC_CREDITS_PER_HOUR": "1",
        "EMAILGATE_LISTCLEANSER_API_KEY": fake_listcleanser.api_key,
        "EMAILGATE_LISTCLEANSER_URL": fake_listcleanser.url,
        "EMAILGATE_PROVIDERS": "listcleanser",
    }
    one, two = await make_client(**env), await make_client(**env)
    headers = {"X-API-Key": PUBLIC, "Origin": SHOP}
    sources = []
    for client, email in ((one, "a@good.com"), (two, "b@good.com"), (one, "c@good.com")):
        response = await client.get("/api/v1/verify", params={"email": email}, headers=headers)
        sources.append((await response.json())["data"]["source"])
    assert sources == ["listcleanser", "local", "local"]
    assert len(fake_listcleanser.calls.select(endpoint="/api/v1/verify")) == 1


async def test_without_redis_each_replica_still_limits(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable: counting falls back to the process (said once); the limit holds."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await make_client(EMAILGATE_REDIS_URL=dead, EMAILGATE_OPEN_RATE="2/60s")
    with caplog.at_level(logging.INFO, logger="emailgate.access"):
        assert [await status_of(client) for _ in range(3)] == [200, 200, 429]
    degraded = [r for r in caplog.records if getattr(r, "event", "") == "client_limits_degraded"]
    assert len(degraded) == 1


async def test_a_hanging_redis_is_not_asked_again_for_a_while(clock: FakeClock) -> None:
    """A Redis that accepts and never answers costs one timeout, then counting stays in the
    process for RETRY_REDIS_AFTER_S (no bytes sent to it), then Redis is tried again."""
    received: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(4096):
            received.append(chunk)  # and never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = connect_redis(f"redis://127.0.0.1:{port}/0", deadline=0.3)
    counter = RedisCounter(client, MemoryCounter(clock))
    rate = Rate(2, 60.0)
    try:
        first = await counter.take("bucket", rate)
        assert first.allowed and counter.degraded and received
        sent = len(received)
        clock.advance(RETRY_REDIS_AFTER_S - 1)
        assert [(await counter.take("bucket", rate)).allowed for _ in range(2)] == [True, False]
        await counter.give_back("bucket")
        assert len(received) == sent  # Redis was left alone
        clock.advance(1)
        await counter.take("bucket", rate)
        assert len(received) > sent  # and asked again once the pause was over
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
