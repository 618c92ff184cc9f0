"""In-process counting windows on a fake clock: what rate limits and credit budgets count with."""

from __future__ import annotations

from emailgate.access.counters import MemoryCounter
from emailgate.clock import FakeClock
from emailgate.rate import Rate


async def test_a_window_takes_count_hits_then_refuses_until_it_ends(clock: FakeClock) -> None:
    """3/60s: three hits with 2, 1, 0 left; the fourth refused for the rest of the window."""
    counter = MemoryCounter(clock)
    rate = Rate(3, 60.0)
    seen = [await counter.take("a", rate) for _ in range(3)]
    assert [w.remaining for w in seen] == [2, 1, 0] and all(w.allowed for w in seen)
    clock.advance(20)
    refused = await counter.take("a", rate)
    assert not refused.allowed and refused.remaining == 0
    assert refused.reset == 40 and refused.reset_seconds == 40 and refused.limit == 3
    clock.advance(40)
    again = await counter.take("a", rate)
    assert again.allowed and again.remaining == 2 and again.reset == 60


async def test_buckets_are_independent(clock: FakeClock) -> None:
    """One bucket's hits do not count against another."""
    counter = MemoryCounter(clock)
    rate = Rate(1, 10.0)
    assert (await counter.take("a", rate)).allowed
    assert not (await counter.take("a", rate)).allowed
    assert (await counter.take("b", rate)).allowed


async def test_a_hit_given_back_can_be_taken_again(clock: FakeClock) -> None:
    """A reservation not used is returned; giving back never goes below zero."""
    counter = MemoryCounter(clock)
    rate = Rate(1, 3600.0)
    assert (await counter.take("budget", rate)).allowed
    await counter.give_back("budget")
    await counter.give_back("budget")
    assert (await counter.take("budget", rate)).allowed
    assert not (await counter.take("budget", rate)).allowed
    await counter.give_back("nobody")  # unknown bucket: nothing happens


async def test_reset_rounds_up_to_a_whole_second(clock: FakeClock) -> None:
    """Headers carry whole seconds, at least 1, never 0 while refused."""
    counter = MemoryCounter(clock)
    rate = Rate(1, 1.5)
    await counter.take("a", rate)
    clock.advance(1.4)
    w = await counter.take("a", rate)
    assert not w.allowed and 0 < w.reset < 1 and w.reset_seconds == 1


async def test_memory_stays_bounded_under_a_flood_of_clients(clock: FakeClock) -> None:
    """Unique clients beyond the bound push out the oldest windows; expired ones are dropped."""
    counter = MemoryCounter(clock, max_buckets=100)
    rate = Rate(5, 60.0)
    for i in range(1000):
        await counter.take(f"client-{i}", rate)
    assert len(counter) <= 100
    clock.advance(61)
    await counter.take("late", rate)
    assert len(counter) == 1


async def test_expired_short_windows_go_before_a_live_long_one(clock: FakeClock) -> None:
    """60 s and 3600 s windows in one counter: once the 60 s ones end they are dropped, and the
    bound never evicts the live 3600 s credit window while expired ones remain."""
    counter = MemoryCounter(clock, max_buckets=10)
    credits, minute = Rate(5, 3600.0), Rate(5, 60.0)
    assert (await counter.take("credit", credits)).remaining == 4
    for i in range(9):
        await counter.take(f"client-{i}", minute)
    assert len(counter) == 10
    clock.advance(61)
    await counter.take("late", minute)
    assert len(counter) == 2  # the nine expired minute windows are gone
    assert (await counter.take("credit", credits)).remaining == 3  # still counting


async def test_over_the_bound_a_live_window_in_use_is_kept(clock: FakeClock) -> None:
    """At the bound with every window live, the least recently hit one goes: a credit window
    opened first but still in use outlives short windows nobody hits any more."""
    counter = MemoryCounter(clock, max_buckets=3)
    credits, minute = Rate(5, 3600.0), Rate(5, 60.0)
    await counter.take("credit", credits)
    clock.advance(1)
    await counter.take("a", minute)
    clock.advance(1)
    await counter.take("b", minute)
    clock.advance(1)
    assert (await counter.take("credit", credits)).remaining == 3  # in use again
    await counter.take("c", minute)  # over the bound: "a" was hit longest ago
    assert len(counter) == 3
    assert (await counter.take("credit", credits)).remaining == 2
    assert (await counter.take("a", minute)).remaining == 4  # started afresh
