"""The Redis pacer against a real Redis: one bucket for every replica, on Redis's clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from emailgate.clock import FakeClock
from emailgate.metrics import Metrics
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.pacing.shared import RedisPacer, switch_hold
from emailgate.rate import Rate
from emailgate.services import connect_redis
from tests.conftest import RedisServer, free_port


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client with the service's own pool and timeouts."""
    c = connect_redis(redis_url, deadline=1.5)
    yield c
    await c.aclose()


def pacer(client: aioredis.Redis, spec: BucketSpec, clock: FakeClock | None = None,
          metrics: Metrics | None = None) -> RedisPacer:  # fmt: skip
    """A Redis pacer for `cleanmylist` whose fallback paces at the same spec."""
    clock = clock or FakeClock()
    return RedisPacer(client, "cleanmylist", spec, fallback=LocalPacer(spec, clock=clock),
                      metrics=metrics or Metrics(), clock=clock)  # fmt: skip


async def test_two_replicas_share_one_bucket(client: aioredis.Redis) -> None:
    """Slots handed out by two pacers (two replicas) interleave on one schedule."""
    spec = BucketSpec.for_gap(0.3)
    a, b = pacer(client, spec), pacer(client, spec)
    waits = [(await p.reserve(5.0)).wait for p in (a, b, a, b)]
    # Each later reservation is one interval further than the one before, whoever asked.
    for earlier, later in itertools.pairwise(waits):
        assert later - earlier == pytest.approx(spec.interval, abs=0.01)


async def test_a_slot_past_max_wait_reserves_nothing(client: aioredis.Redis) -> None:
    """Refused at once (no_token) and the schedule is unchanged for the next caller."""
    spec = BucketSpec.for_gap(1.0)
    p = pacer(client, spec)
    assert (await p.reserve(0.0)).ok
    refused = await p.reserve(0.5)
    assert refused.refused == "no_token"
    nxt = await p.reserve(2.0)
    assert nxt.ok and nxt.wait == pytest.approx(spec.interval, abs=0.05)


async def test_rate_bucket_burst_then_even_spacing(client: aioredis.Redis) -> None:
    """200/60s: five at once (the burst), then one every interval, on Redis's clock."""
    spec = BucketSpec.for_rate(Rate(200, 60))
    p = RedisPacer(client, "listcleanser", spec, fallback=LocalPacer(spec), metrics=Metrics())
    waits = [(await p.reserve(10.0)).wait for _ in range(7)]
    assert waits[:5] == pytest.approx([0.0] * 5, abs=0.01)
    assert waits[5] == pytest.approx(spec.interval, abs=0.01)
    assert waits[6] == pytest.approx(2 * spec.interval, abs=0.01)


async def test_a_pause_reaches_every_replica(client: aioredis.Redis) -> None:
    """A 429 seen by one replica pauses the provider for the other too; resume lifts it."""
    spec = BucketSpec.for_gap(0.3)
    a, b = pacer(client, spec), pacer(client, spec)
    await a.pause(30)
    assert (await b.reserve(5.0)).refused == "paused"
    assert 29 < await b.paused_for() <= 30
    await b.resume()
    assert (await a.reserve(5.0)).ok


async def test_unreachable_redis_falls_back_and_holds_back_first() -> None:
    """Redis down: degraded, the metric says so, and the fallback waits out the switch hold."""
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0", deadline=1.5)
    clock = FakeClock()
    metrics = Metrics()
    spec = BucketSpec.for_gap(0.3)
    p = pacer(dead, spec, clock, metrics)
    first = await p.reserve(1.0)
    assert p.degraded and first.refused == "no_token"
    assert metrics.registry.get_sample_value("emailgate_redis_degraded") == 1
    clock.advance(switch_hold(spec, 1))
    assert (await p.reserve(1.0)).ok
    await dead.aclose()


async def test_back_on_redis_the_shared_bucket_holds_back_too(tmp_path: Path) -> None:
    """Redis stops, then comes back: the first shared reservation waits out the switch hold."""
    server = RedisServer(port=free_port(), workdir=tmp_path)
    server.start()
    client = connect_redis(server.url, deadline=1.5)
    clock = FakeClock()
    spec = BucketSpec.for_gap(0.3)
    p = pacer(client, spec, clock)
    try:
        assert (await p.reserve(1.0)).ok and not p.degraded
        server.stop()
        await p.reserve(1.0)
        assert p.degraded
        server.start()
        clock.advance(2.0)  # past the interval between attempts to reach Redis again
        back = await p.reserve(10.0)
        assert not p.degraded
        assert back.ok and back.wait >= switch_hold(spec, 1) - 0.05
    finally:
        await client.flushdb()
        await client.aclose()
        server.stop()


async def test_background_lane_in_redis_keeps_the_reserve_for_two_replicas(
    client: aioredis.Redis,
) -> None:
    """Jobs on two replicas share the fleet's bucket: together they take only what leaves the
    reserve, and a signup on either replica still gets a slot at once."""
    spec = BucketSpec.for_rate(Rate(200, 60))
    a, b = pacer(client, spec), pacer(client, spec)
    taken = 0
    for p in (a, b, a, b, a, b):
        reservation = await p.reserve(0.0, background=True)
        if reservation.ok:
            assert reservation.wait == 0.0
            taken += 1
        else:
            assert reservation.refused == "no_token"
    assert taken == spec.capacity - spec.reserve
    for p in (a, b):
        signup = await p.reserve(1.5)
        assert signup.ok and signup.wait == 0.0
