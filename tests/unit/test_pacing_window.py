"""The fixed-window pacer on a fake clock: counts per clock-aligned window, no sleeps."""

from __future__ import annotations

import math

import pytest

from emailgate.clock import FakeClock
from emailgate.pacing.window import FixedWindow, LocalWindowPacer, WindowSpec
from emailgate.rate import Rate

SPEC = WindowSpec.for_rate(Rate(60, 60.0))


def per_window(slots: list[float], window: float) -> dict[int, int]:
    """How many slots fall in each clock-aligned window."""
    counts: dict[int, int] = {}
    for s in slots:
        k = math.floor(s / window)
        counts[k] = counts.get(k, 0) + 1
    return counts


def flood(spec: WindowSpec, *, start: float, seconds: float, every: float,
          max_wait: float) -> list[float]:  # fmt: skip
    """Slot times handed to callers arriving every `every` seconds from `start`."""
    window = FixedWindow(spec)
    slots: list[float] = []
    now = start
    while now < start + seconds:
        wait = window.reserve(now, max_wait)
        if wait is not None:
            slots.append(now + wait)
        now += every
    return slots


def test_spec_for_the_provider_limit() -> None:
    """60/60s: 60 per window, edges of half a second; a 6 s test window gets 0.15 s edges."""
    assert (SPEC.limit, SPEC.window, SPEC.edge) == (60, 60.0, 0.5)
    assert WindowSpec.for_rate(Rate(60, 6.0)).edge == pytest.approx(0.15)


def test_a_window_lets_its_whole_allowance_go_at_once() -> None:
    """Sixty callers at the same moment all go now; the 61st waits for the next window's edge."""
    window = FixedWindow(SPEC)
    now = 1_800_000_010.0  # 10 s into a clock minute
    waits = [window.reserve(now, 120.0) for _ in range(61)]
    assert waits[:60] == [0.0] * 60
    next_start = (math.floor(now / 60) + 1) * 60
    assert waits[60] == pytest.approx(next_start + SPEC.edge - now)


@pytest.mark.parametrize("offset", [0.0, 0.2, 17.3, 59.7])
def test_no_window_ever_holds_more_than_the_limit(offset: float) -> None:
    """At 10x demand for 10 minutes, every clock window holds at most 60, and nearly 60."""
    start = 1_800_000_000.0 + offset
    slots = flood(SPEC, start=start, seconds=600, every=0.1, max_wait=1e9)
    counts = per_window(slots, SPEC.window)
    assert max(counts.values()) == 60
    # Every full window in the middle was used to the last call.
    middle = sorted(counts)[1:-1]
    assert all(counts[k] == 60 for k in middle)


def test_slots_keep_clear_of_window_edges() -> None:
    """No slot lies within `edge` of a window boundary, so transit and skew do not spill."""
    slots = flood(SPEC, start=1_800_000_059.9, seconds=300, every=0.05, max_wait=1e9)
    for s in slots:
        into = s - math.floor(s / 60) * 60
        assert SPEC.edge - 1e-9 <= into <= 60 - SPEC.edge + 1e-9


def test_a_refused_reservation_takes_nothing() -> None:
    """A slot past `max_wait` is refused and leaves the count as it was."""
    window = FixedWindow(WindowSpec(2, 60.0, 0.5))
    now = 1_800_000_030.0
    assert window.reserve(now, 0.0) == 0.0
    assert window.reserve(now, 0.0) == 0.0
    assert window.reserve(now, 10.0) is None
    assert window.used(now) == 2
    assert window.reserve(now, 60.0) == pytest.approx(30.5)


def test_late_in_a_window_the_slot_moves_to_the_next() -> None:
    """A call inside the last edge of a window goes at the next window's first slot."""
    window = FixedWindow(SPEC)
    now = 1_800_000_059.8  # 0.2 s before the minute ends: inside the edge
    wait = window.reserve(now, 5.0)
    assert wait == pytest.approx(0.2 + SPEC.edge)


def test_divided_spec_for_fallback_replicas() -> None:
    """Three replicas without Redis get 20 each; more replicas than calls get none."""
    assert SPEC.divided(3).limit == 20
    assert FixedWindow(SPEC.divided(61)).reserve(1_800_000_010.0, 100.0) is None


async def test_local_pacer_pause_and_resume() -> None:
    """A 429's Retry-After pauses the pacer; it refuses as paused, then serves again."""
    clock = FakeClock(1_800_000_010.0)
    pacer = LocalWindowPacer(SPEC, clock=clock)
    assert (await pacer.reserve(0.0)).ok
    await pacer.pause(7.0)
    refused = await pacer.reserve(100.0)
    assert refused.refused == "paused"
    assert await pacer.paused_for() == pytest.approx(7.0)
    clock.advance(7.0)
    assert (await pacer.reserve(0.0)).ok
    await pacer.pause(3.0)
    await pacer.resume()
    assert (await pacer.reserve(0.0)).ok
    assert pacer.used() == 3


async def test_local_pacer_full_window_is_no_token_within_max_wait() -> None:
    """With the window spent, a caller who cannot wait for the next one is refused (no_token)."""
    clock = FakeClock(1_800_000_010.0)
    pacer = LocalWindowPacer(WindowSpec(1, 60.0, 0.5), clock=clock)
    assert (await pacer.reserve(0.0)).ok
    refused = await pacer.reserve(5.0)
    assert refused.refused == "no_token"
    later = await pacer.reserve(60.0)
    assert later.ok and later.wait == pytest.approx(50.5)


def test_skip_current_window_holds_until_the_next() -> None:
    """After a switch the rest of the current window is not used (others may have spent it)."""
    clock = FakeClock(1_800_000_010.0)
    pacer = LocalWindowPacer(SPEC, clock=clock)
    pacer.skip_current_window()
    reservation = pacer.reserve_now(100.0)
    assert reservation.ok and reservation.wait == pytest.approx(50.5)
