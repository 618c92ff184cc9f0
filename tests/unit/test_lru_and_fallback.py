"""The two shared tools: the bounded memo with a TTL per entry, and the Redis-or-process switch."""

from __future__ import annotations

from emailgate.lru import TtlLru
from emailgate.redis_fallback import RedisFallback


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_entry_lives_for_its_own_ttl() -> None:
    """An entry reads as absent once its own time to live is over; None keeps it."""
    clock = Clock()
    memo: TtlLru[str, int] = TtlLru(10, clock=clock)
    memo.put("short", 1, 5)
    memo.put("long", 2, 60)
    memo.put("always", 3, None)
    clock.now = 5
    assert (memo.get("short"), memo.get("long"), memo.get("always")) == (None, 2, 3)
    clock.now = 10_000
    assert (memo.get("long"), memo.get("always")) == (None, 3)


def test_past_the_bound_the_least_recently_used_goes() -> None:
    """A read makes an entry recent; the bound holds."""
    memo: TtlLru[str, int] = TtlLru(2, clock=Clock())
    memo.put("a", 1, 60)
    memo.put("b", 2, 60)
    assert memo.get("a") == 1
    memo.put("c", 3, 60)
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (1, None, 3)
    assert len(memo) == 2


def test_the_switch_retries_redis_after_a_while_and_says_when_it_switches() -> None:
    """After a failure the fallback serves until the retry time; each switch is reported once."""
    clock = Clock()
    switch = RedisFallback(retry_after=5, clock=clock)
    assert switch.use_redis() and not switch.degraded
    assert switch.failed() is True
    assert switch.failed() is False  # still degraded: not a new switch
    assert not switch.use_redis()
    clock.now = 5
    assert switch.use_redis()
    assert switch.answered() is True
    assert switch.answered() is False and not switch.degraded
