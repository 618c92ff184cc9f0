"""Token buckets and the circuit breaker on a fake clock: no sleeps, exact arithmetic."""

from __future__ import annotations

import pytest

from emailgate.clock import FakeClock
from emailgate.pacing.breaker import CircuitBreaker, domain_group
from emailgate.pacing.bucket import BucketSpec, Gcra, Reservation
from emailgate.pacing.local import LocalPacer
from emailgate.rate import Rate
from tests.fakes.calllog import max_in_window, min_gap


def flood(spec: BucketSpec, *, seconds: float, demand_every: float, max_wait: float) -> list[float]:
    """Slot times a bucket hands out to callers arriving every `demand_every` seconds."""
    bucket = Gcra(spec)
    slots: list[float] = []
    now = 0.0
    while now < seconds:
        wait = bucket.reserve(now, max_wait)
        if wait is not None:
            slots.append(now + wait)
        now += demand_every
    return slots


@pytest.mark.parametrize("rate", ["200/60s", "20/6s", "3/1s", "1/5s", "1000/60s"])
def test_rate_holds_in_any_window_under_overload(rate: str) -> None:
    """At 10x the allowed rate, no window of the rate's length holds more than its count."""
    r = Rate.parse(rate)
    spec = BucketSpec.for_rate(r)
    slots = flood(spec, seconds=r.period * 5, demand_every=r.interval / 10, max_wait=1.5)
    assert max_in_window(slots, r.period) <= r.count
    # Slot i and slot i+N are a window plus the margin apart: a caller who wakes late by up to
    # the margin still keeps the window.
    assert min(b - a for a, b in zip(slots, slots[r.count :], strict=False)) >= (
        r.period + spec.margin - 1e-9
    )


@pytest.mark.parametrize("rate", ["200/60s", "60/15s", "1000/60s"])
def test_overload_uses_at_least_95_percent_of_the_rate(rate: str) -> None:
    """Under sustained overload the bucket passes ≥ 95 % of what the limit allows."""
    r = Rate.parse(rate)
    spec = BucketSpec.for_rate(r)
    periods = 10
    slots = flood(spec, seconds=r.period * periods, demand_every=r.interval / 10, max_wait=1.5)
    in_time = [s for s in slots if s < r.period * periods]
    assert len(in_time) / (r.count * periods) >= 0.95


def test_a_burst_after_idle_time_is_bounded_by_the_capacity() -> None:
    """After a quiet spell, simultaneous callers get `capacity` immediate slots, then waits."""
    spec = BucketSpec.for_rate(Rate(200, 60))
    assert spec.capacity == 5
    bucket = Gcra(spec)
    waits = [bucket.reserve(100.0, 10.0) for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(spec.interval)
    assert waits[6] == pytest.approx(2 * spec.interval)


def test_gap_holds_between_every_two_slots() -> None:
    """CleanMyList's 300 ms: consecutive slots are at least the gap apart, never closer."""
    spec = BucketSpec.for_gap(0.3)
    slots = flood(spec, seconds=30, demand_every=0.01, max_wait=1.5)
    assert min_gap(slots) == pytest.approx(0.315)
    assert len(slots) >= 0.95 * 30 / 0.3


def test_a_refused_reservation_takes_nothing() -> None:
    """A caller whose slot would come too late gets None and the next caller's slot is unchanged."""
    bucket = Gcra(BucketSpec.for_gap(1.0))
    assert bucket.reserve(0.0, 0.0) == 0.0
    assert bucket.reserve(0.0, 0.5) is None
    assert bucket.reserve(0.0, 0.5) is None
    assert bucket.reserve(0.0, 2.0) == pytest.approx(1.05)


async def test_local_pacer_pause_and_resume() -> None:
    """A pause refuses every slot until it ends; resume lifts it early."""
    clock = FakeClock()
    pacer = LocalPacer(BucketSpec.for_gap(0.3), clock=clock)
    await pacer.pause(30)
    assert (await pacer.reserve(5.0)).refused == "paused"
    assert await pacer.paused_for() == pytest.approx(30)
    clock.advance(30)
    assert (await pacer.reserve(5.0)).ok
    await pacer.pause(30)
    await pacer.resume()
    assert await pacer.paused_for() == 0
    assert (await pacer.reserve(5.0)).ok


async def test_a_shorter_pause_does_not_cut_a_longer_one() -> None:
    """Pauses keep the later end: a 1 s Retry-After does not end a 1 h no-credits pause."""
    clock = FakeClock()
    pacer = LocalPacer(BucketSpec.for_gap(0.3), clock=clock)
    await pacer.pause(3600)
    await pacer.pause(1)
    clock.advance(2)
    assert (await pacer.reserve(5.0)).refused == "paused"


async def test_local_pacer_refuses_past_max_wait() -> None:
    """`no_token` when the next slot comes after the caller's deadline."""
    clock = FakeClock()
    pacer = LocalPacer(BucketSpec.for_gap(1.0), clock=clock)
    assert (await pacer.reserve(0.5)).wait == 0.0
    assert (await pacer.reserve(0.5)).refused == "no_token"
    clock.advance(1.05)
    assert (await pacer.reserve(0.5)).ok


def test_hold_delays_the_first_slot_and_empties_the_bucket() -> None:
    """After hold(h) the first slot is h away and no burst follows it."""
    clock = FakeClock()
    spec = BucketSpec.for_rate(Rate(200, 60))
    pacer = LocalPacer(spec, clock=clock)
    pacer.hold(4.0)
    first = pacer.reserve_now(10.0)
    second = pacer.reserve_now(10.0)
    assert first.wait == pytest.approx(4.0)
    assert second.wait == pytest.approx(4.0 + spec.interval)


def test_late_callers_give_their_slot_up() -> None:
    """A caller waking more than half the margin after its slot must not call."""
    r = Reservation(wait=0.2, margin=0.02)
    assert not r.late(0.209)
    assert r.late(0.211)


DOMAINS = ["good.com", "gmail.com", "orange.fr", "web.de", "mail.co.uk"]


def test_breaker_opens_on_failures_across_domains_then_probes_once() -> None:
    """5 failures on 5 domains open it; after the cool-down one probe goes; success closes it."""
    clock = FakeClock()
    changes: list[bool] = []
    breaker = CircuitBreaker(threshold=5, cool_down=30, clock=clock, on_change=changes.append)
    for domain in DOMAINS[:4]:
        assert breaker.allow()
        breaker.record_failure(domain)
    assert breaker.state == "closed"
    breaker.record_failure(DOMAINS[4])
    assert (breaker.state, changes) == ("open", [True])
    assert not breaker.allow()
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    breaker.record_success("good.com")
    assert (breaker.state, changes) == ("closed", [True, False])
    assert breaker.allow()


def test_failures_of_one_registered_domain_never_open_it() -> None:
    """A stalling mail server (one domain, or any number of names under it) is not an outage."""
    breaker = CircuitBreaker(clock=FakeClock())
    for i in range(500):
        breaker.record_failure(f"x{i}.slow-mail.net")
        breaker.record_failure("slow-mail.net")
    assert breaker.state == "closed"


def test_failures_among_many_successes_do_not_open_it() -> None:
    """Failures on many domains while most calls succeed: the provider is answering."""
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock)
    for i in range(100):
        clock.advance(0.1)
        breaker.record_failure(f"d{i}.com")
        breaker.record_success("good.com")
        breaker.record_success("gmail.com")
    assert breaker.state == "closed"


def test_old_failures_leave_the_window() -> None:
    """Failures spread thinner than the window never add up to evidence."""
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=5, window=60, clock=clock)
    for i in range(20):
        breaker.record_failure(f"d{i}.com")
        clock.advance(16)
    assert breaker.state == "closed"


@pytest.mark.parametrize(
    ("domain", "group"),
    [("a.b.slow-mail.net", "slow-mail.net"), ("mail.co.uk", "mail.co.uk"),
     ("x.mail.co.uk", "mail.co.uk"), ("good.com", "good.com"), ("com", "com")],
)  # fmt: skip
def test_domains_are_grouped_by_registered_domain(domain: str, group: str) -> None:
    """Names under one registered domain count as one domain of evidence."""
    assert domain_group(domain) == group


def test_a_failed_probe_reopens_for_a_new_cool_down() -> None:
    """The probe fails: open again, for a whole cool-down from now."""
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, min_domains=1, cool_down=10, clock=clock)
    breaker.record_failure("good.com")
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure("good.com")
    assert breaker.state == "open"
    clock.advance(9)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_a_released_probe_lets_the_next_caller_probe() -> None:
    """A probe that did not call (no token) frees its place for the next caller."""
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, min_domains=1, cool_down=10, clock=clock)
    breaker.record_failure("good.com")
    clock.advance(10)
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_background_slots_keep_a_reserve_for_interactive_calls() -> None:
    """A job takes slots only while the bucket keeps `reserve` ready for signups: a burst of
    signups right after the job took all it could still goes at once."""
    spec = BucketSpec.for_rate(Rate(200, 60))
    assert spec.reserve == 2
    bucket = Gcra(spec)
    now = 100.0
    taken = 0
    while bucket.reserve_spare(now):
        taken += 1
    assert taken == spec.capacity - spec.reserve
    assert [bucket.reserve(now, 0.0) for _ in range(spec.reserve)] == [0.0] * spec.reserve


@pytest.mark.parametrize("signup_every", [0.5, 1.0, 3.0])
def test_background_lane_takes_only_what_signups_leave_and_the_limit_holds(
    signup_every: float,
) -> None:
    """A job asking for a slot every 10 ms next to signups arriving steadily: no signup ever
    waits (they would not without the job either), and together they keep 200 in any 60 s."""
    spec = BucketSpec.for_rate(Rate(200, 60))
    bucket = Gcra(spec)
    slots: list[float] = []
    signup_waits: list[float] = []
    t, next_signup = 0.0, 0.0
    while t < 300:
        if t >= next_signup:
            wait = bucket.reserve(t, 1.5)
            assert wait is not None
            signup_waits.append(wait)
            slots.append(t + wait)
            next_signup += signup_every
        elif bucket.reserve_spare(t):
            slots.append(t)
        t = round(t + 0.01, 6)
    assert max(signup_waits) == 0.0
    assert max_in_window(slots, 60) <= 200
    assert len(slots) >= 0.95 * 200 * 5  # the job used what was left


def test_background_reservation_on_the_local_pacer(clock: FakeClock) -> None:
    """LocalPacer: background slots go now or never and honour a pause."""
    pacer = LocalPacer(BucketSpec.for_rate(Rate(200, 60)), clock=clock)
    got = [pacer.reserve_now(1.5, background=True) for _ in range(5)]
    assert [r.ok for r in got] == [True, True, True, False, False]
    assert all(r.wait == 0.0 for r in got if r.ok)
    pacer.pause_now(10)
    assert pacer.reserve_now(0, background=True).refused == "paused"
