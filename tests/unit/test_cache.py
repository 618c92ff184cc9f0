"""The cache seam in memory: keyed-hash keys, TTL by state and source, the bound, LRU."""

from __future__ import annotations

import pytest

from emailgate.cache import BoundedMemoryCache, VerdictCache, ttl_for
from emailgate.clock import FakeClock
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.verify.result import Address, Reason, Source, State, Verdict

ADDRESS = Address("Jane.Doe@example.com", "Jane.Doe", "example.com", "example.com")
GOOD = Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 95, Source.LISTCLEANSER)
FAIL_OPEN = Verdict(State.UNKNOWN, Reason.UNKNOWN, 60, Source.LOCAL)


def make(clock: FakeClock, max_entries: int = 1000) -> VerdictCache:
    backend = BoundedMemoryCache(max_entries, clock=clock)
    return VerdictCache(backend, hasher=Hasher(b"k" * 32), metrics=Metrics())


def test_key_is_a_keyed_hash_shared_by_case_variants(clock: FakeClock) -> None:
    """No address in the key; case variants share one entry; another key gives another hash."""
    cache = make(clock)
    key = cache.key(ADDRESS)
    assert "jane" not in key.lower() and "example" not in key
    variant = Address("jane.doe@example.com", "jane.doe", "example.com", "example.com")
    assert cache.key(variant) == key
    other = VerdictCache(
        BoundedMemoryCache(10, clock=clock), hasher=Hasher(b"x" * 32), metrics=Metrics()
    )
    assert other.key(ADDRESS) != key


async def test_verdicts_expire_by_their_ttl(clock: FakeClock) -> None:
    """A fail-open verdict lives minutes, a deliverable one days (no sleeping: a fake clock)."""
    cache = make(clock)
    await cache.set("a", FAIL_OPEN)
    await cache.set("b", GOOD)
    clock.advance(4 * 60)
    assert await cache.get("a", budget=1) == FAIL_OPEN
    clock.advance(2 * 60)
    assert await cache.get("a", budget=1) is None
    clock.advance(6 * 86400)
    assert await cache.get("b", budget=1) == GOOD
    clock.advance(86400)
    assert await cache.get("b", budget=1) is None


def test_ttl_policy() -> None:
    """TTL by state and source: provider verdicts for days, unknown and local for minutes."""
    assert ttl_for(GOOD) == 7 * 86400
    assert ttl_for(Verdict(State.UNKNOWN, Reason.UNKNOWN, 50, Source.CLEANMYLIST)) == 600
    assert ttl_for(FAIL_OPEN) == 300
    assert ttl_for(Verdict(State.UNKNOWN, Reason.DNS_ERROR, 40, Source.LOCAL)) == 60
    assert ttl_for(Verdict(State.UNDELIVERABLE, Reason.INVALID_DOMAIN, 0, Source.LOCAL)) == 3600
    assert ttl_for(Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 95, Source.SANDBOX)) is None


async def test_memory_is_bounded_and_evicts_least_recently_used(clock: FakeClock) -> None:
    """A flood of unique addresses never holds more than the bound; recent use survives."""
    cache = make(clock, max_entries=100)
    await cache.set("keep", GOOD)
    for i in range(10_000):
        await cache.set(f"k{i}", GOOD)
        if i % 50 == 0:
            assert await cache.get("keep", budget=1) == GOOD  # touched: stays
    assert len(cache.backend) == 100
    assert await cache.get("keep", budget=1) == GOOD
    assert await cache.get("k0", budget=1) is None


async def test_lookups_are_counted(clock: FakeClock) -> None:
    """Hits and misses land in emailgate_cache_lookups_total."""
    cache = make(clock)
    await cache.set("a", GOOD)
    await cache.get("a", budget=1)
    await cache.get("zz", budget=1)
    registry = cache.metrics.registry
    assert registry.get_sample_value("emailgate_cache_lookups_total", {"result": "hit"}) == 1
    assert registry.get_sample_value("emailgate_cache_lookups_total", {"result": "miss"}) == 1


async def test_backend_speaks_aiocache(clock: FakeClock) -> None:
    """The bounded backend works through aiocache's own API too (the seam stays swappable)."""
    backend = BoundedMemoryCache(10, clock=clock)
    assert await backend.set("k", "v", ttl=5)
    assert await backend.get("k") == "v"
    assert await backend.exists("k")
    clock.advance(6)
    assert await backend.get("k") is None
    await backend.set("n", 1)
    assert await backend.increment("n", 2) == 3
    assert await backend.delete("n") == 1
    assert await backend.add("k2", 1)
    with pytest.raises(ValueError, match="exists"):
        await backend.add("k2", 1)
