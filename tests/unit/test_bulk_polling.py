"""When a bulk client polls a list again (PollPlan) and the signed webhook addresses of
EmailConsul lists (bulk/hooks.py): pure functions of an injected clock and a secret."""

from __future__ import annotations

import pytest

from emailgate.bulk.base import PollPlan
from emailgate.bulk.hooks import Wakeups, hook_url, parse_reference, signature, signed
from emailgate.config import Secret, Settings, SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_list_that_does_not_move_is_polled_with_a_gentle_back_off() -> None:
    """No progress yet: the floor, then half the time waited so far, up to the ceiling."""
    clock = Clock()
    plan = PollPlan(clock=clock)
    waits = []
    for _ in range(12):
        wait = plan.wait("L1", 0.0, 15.0)
        waits.append(wait)
        clock.now += wait
    assert waits[:4] == [1.0, 1.0, 1.0, 1.5]
    assert waits == sorted(waits) and waits[-1] == 15.0


def test_a_moving_list_is_polled_at_half_its_time_left_and_ends_about_a_floor_late() -> None:
    """Progress 1 % a second: waits of half the time left, closing in on the end; the poll
    that sees it done comes less than two seconds after it."""
    clock = Clock()
    plan = PollPlan(clock=clock)
    start = clock.now
    polls = 0
    while True:
        progress = min(1.0, (clock.now - start) / 100)
        if progress >= 1.0:
            break
        clock.now += plan.wait("L1", progress, 15.0)
        polls += 1
    assert clock.now - start - 100 < 2.0
    assert polls < 30  # a fixed one-second poll would take 100


def test_the_ceiling_and_a_restart() -> None:
    """Never longer than the ceiling (nor a floor above it); a restart times afresh."""
    clock = Clock()
    plan = PollPlan(clock=clock)
    plan.wait("L1", 0.0, 15.0)
    clock.now += 10
    assert plan.wait("L1", 0.01, 15.0) == 15.0
    assert plan.wait("L2", 0.0, 0.05) == 0.05
    plan.restart("L1")
    assert plan.wait("L1", 0.5, 15.0) == 1.0


def test_webhook_addresses_are_signed_per_list() -> None:
    """The address carries the reference and its HMAC; another reference or secret does
    not verify; references parse back to (job, list row)."""
    secret = Secret("s" * 32)
    ref = "emailgate-job-7-list-3"
    url = hook_url("https://eg.example/hooks/emailconsul", secret, "emailconsul", ref)
    sig = signature(secret, "emailconsul", ref)
    assert url == f"https://eg.example/hooks/emailconsul?ref={ref}&sig={sig}"
    assert signed(secret, "emailconsul", ref, sig)
    assert not signed(secret, "emailconsul", "emailgate-job-7-list-4", sig)
    assert not signed(Secret("t" * 32), "emailconsul", ref, sig)
    assert not signed(secret, "emailconsul", ref, "")
    assert parse_reference(ref) == (7, 3)
    assert parse_reference("emailgate-job-7-list-3x") is None


def test_wakeups_are_taken_once() -> None:
    """A notified list is taken once; another list has no news."""
    wakeups = Wakeups()
    provider = "emailconsul"
    wakeups.notify(provider, "L1")
    assert not wakeups.take(provider, "L2")
    assert wakeups.take(provider, "L1")
    assert not wakeups.take(provider, "L1")


def test_the_webhook_url_needs_the_secret() -> None:
    """EMAILGATE_EMAILCONSUL_WEBHOOK_URL without EMAILGATE_WEBHOOK_SECRET is a settings
    problem (the addresses could not be signed); with it, both are read."""
    url = "https://eg.example/hooks/emailconsul"
    with pytest.raises(SettingsError, match="EMAILGATE_WEBHOOK_SECRET"):
        Settings.from_env({"EMAILGATE_EMAILCONSUL_WEBHOOK_URL": url})
    settings = Settings.from_env(
        {"EMAILGATE_EMAILCONSUL_WEBHOOK_URL": url, "EMAILGATE_WEBHOOK_SECRET": "x" * 20}
    )
    assert settings.emailconsul_webhook_url == url
