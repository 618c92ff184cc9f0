"""The fixed-window pacer against a real Redis: one count per window for the fleet, on Redis's
clock. Reservations for later windows are taken at once, so nothing here sleeps."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emailgate.clock import FakeClock
from emailgate.metrics import Metrics
from emailgate.pacing.window import WindowSpec
from emailgate.pacing.window_redis import RedisWindowPacer
from emailgate.services import connect_redis
from tests.conftest import RedisServer, free_port

HOUR = WindowSpec(5, 3600.0, 0.5)  # long windows: a test never straddles a boundary by chance


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client with the service's own pool and timeouts."""
    c = connect_redis(redis_url, deadline=1.5)
    yield c
    await c.aclose()


async def redis_now(client: aioredis.Redis) -> float:
    """Redis's clock, in epoch seconds."""
    seconds, micros = await client.time()
    return float(seconds) + micros / 1e6


def pacer(client: aioredis.Redis, spec: WindowSpec, *, clock: FakeClock | None = None,
          metrics: Metrics | None = None) -> RedisWindowPacer:  # fmt: skip
    """A fleet-wide window pacer for `cleanlist`."""
    return RedisWindowPacer(client, "cleanlist", spec, metrics=metrics or Metrics(),
                            clock=clock or FakeClock())  # fmt: skip


async def test_two_replicas_share_one_window(client: aioredis.Redis) -> None:
    """Five calls per window between two replicas; the sixth goes at the next window's edge."""
    a, b = pacer(client, HOUR), pacer(client, HOUR)
    now = await redis_now(client)
    firsts = [await p.reserve(0.0) for p in (a, b, a, b, a)]
    assert all(r.ok and r.wait == 0.0 for r in firsts)
    assert (await b.reserve(1.0)).refused == "no_token"
    later = await b.reserve(7200.0)
    next_start = (math.floor(now / HOUR.window) + 1) * HOUR.window
    assert later.ok
    assert later.wait == pytest.approx(next_start + HOUR.edge - now, abs=0.5)


async def test_flood_of_two_replicas_keeps_every_window(client: aioredis.Redis) -> None:
    """60 reservations from two replicas over 1 s windows of 5: each window gets exactly 5."""
    spec = WindowSpec(5, 1.0, 0.025)
    a, b = pacer(client, spec), pacer(client, spec)
    for i in range(60):
        assert (await (a if i % 2 else b).reserve(60.0)).ok
    # Redis's own count per window (its clock, not ours: no skew from a busy test host).
    counts = {int(k): int(v) for k, v in (await client.hgetall(a.keys[0])).items()}
    assert sum(counts.values()) == 60 and max(counts.values()) == 5
    full = sorted(counts)[1:]  # the first window may have been entered late
    assert all(counts[k] == 5 for k in full) and full == list(range(full[0], full[-1] + 1))


async def test_a_pause_reaches_every_replica(client: aioredis.Redis) -> None:
    """A 429 seen by one replica pauses the provider for the other; resume lifts it."""
    a, b = pacer(client, HOUR), pacer(client, HOUR)
    await a.pause(30)
    assert (await b.reserve(5.0)).refused == "paused"
    assert 29 < await b.paused_for() <= 30
    await b.resume()
    assert (await a.reserve(5.0)).ok


async def test_unreachable_redis_falls_back_to_the_next_window() -> None:
    """Redis down: degraded (metric), and the fallback skips the window the fleet may have spent."""
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0", deadline=1.5)
    metrics = Metrics()
    clock = FakeClock(time.time())
    p = pacer(dead, HOUR, clock=clock, metrics=metrics)
    first = await p.reserve(1.0)
    assert p.degraded and first.refused == "no_token"
    assert metrics.registry.get_sample_value("emailgate_redis_degraded") == 1
    later = await p.reserve(7200.0)
    assert later.ok and later.wait > 0
    await dead.aclose()


async def test_calls_made_while_degraded_count_once_redis_is_back(tmp_path: Path) -> None:
    """Three calls reserved in-process for the next window are added to Redis's count there."""
    server = RedisServer(port=free_port(), workdir=tmp_path)
    server.start()
    client = connect_redis(server.url, deadline=1.5)
    try:
        clock = FakeClock(await redis_now(client))
        p = pacer(client, HOUR, clock=clock)
        assert (await p.reserve(0.0)).ok and not p.degraded
        server.stop()
        degraded = [await p.reserve(7200.0) for _ in range(3)]
        assert p.degraded and all(r.ok for r in degraded)
        server.start()
        clock.advance(2.0)  # past the interval between attempts to reach Redis again
        back = [await p.reserve(7200.0) for _ in range(10)]
        assert not p.degraded
        now = await redis_now(client)
        current_end = (math.floor(now / HOUR.window) + 1) * HOUR.window
        in_next = [r for r in back
                   if r.ok and current_end <= now + r.wait < current_end + HOUR.window]  # fmt: skip
        # The restarted Redis forgot the current window; the next one already holds our three.
        assert len(in_next) == HOUR.limit - 3
    finally:
        await client.flushdb()
        await client.aclose()
        server.stop()
