"""The provider chain through the HTTP API, against local fakes of both providers' APIs.

The production clients run unchanged; faults come from the fakes (statuses, slow answers, junk
bodies, reset and refused connections), and the fakes' own call logs are the evidence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests import openapi_check
from tests.fakes.cleanmylist import REQUEST, FakeCleanMyList
from tests.fakes.listcleanser import CREDITS, VERIFY, FakeListCleanser

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def provider_env(
    lc: FakeListCleanser | None, cml: FakeCleanMyList | None, **extra: str
) -> dict[str, str]:
    """Settings pointing the chain at the fakes (a fake left out is not configured)."""
    env: dict[str, str] = {}
    if lc is not None:
        env |= {"EMAILGATE_LISTCLEANSER_URL": lc.url, "EMAILGATE_LISTCLEANSER_API_KEY": lc.api_key}
    if cml is not None:
        env |= {"EMAILGATE_CLEANMYLIST_URL": cml.url, "EMAILGATE_CLEANMYLIST_API_KEY": cml.api_key,
                "EMAILGATE_CLEANMYLIST_INTERVAL_MS": "20"}  # fmt: skip
    return env | extra


async def start(
    make_client: MakeClient, lc: FakeListCleanser | None, cml: FakeCleanMyList | None, **extra: str
) -> Client:
    """An app whose chain uses the fakes, once ListCleanser's first credits poll has landed
    (so a fault queued by the test meets a verify call, not that poll)."""
    client = await make_client(**provider_env(lc, cml, **extra))
    if lc is not None and not extra.get("EMAILGATE_LISTCLEANSER_API_KEY"):
        async with asyncio.timeout(5):
            while lc.calls.statuses(CREDITS) != [200]:  # noqa: ASYNC110 (the fake has no event)
                await asyncio.sleep(0.01)
    return client


async def verify(client: Client, email: str, context: str = "signup") -> dict[str, Any]:
    """GET /api/v1/verify, checked against the OpenAPI document; the RESULT."""
    response = await client.get("/api/v1/verify", params={"email": email, "context": context})
    body = await response.json()
    openapi_check.check("GET", "/api/v1/verify", response.status, body)
    assert response.status == 200, body
    data: dict[str, Any] = body["data"]
    return data


async def metric(client: Client, name: str, **labels: str) -> float:
    """One sample of the app's /metrics (0 when absent)."""
    text = await (await client.get("/metrics")).text()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            got = series[len(name) :].strip("{}")
            if ",".join(sorted(got.split(","))) == want:
                return float(value)
    return 0.0


async def test_listcleanser_answers_first(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """With both configured, ListCleanser's record becomes the RESULT and CleanMyList is idle."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    r = await verify(client, "deliverable.jo@good.com")
    assert (r["state"], r["reason"], r["score"], r["source"]) == (
        "deliverable",
        "accepted_email",
        95,
        "listcleanser",
    )
    assert (r["decision"], r["cached"]) == ("accept", False)
    assert r["mx_record"] == "mx.good.com"
    assert fake_listcleanser.calls.emails(VERIFY) == ["deliverable.jo@good.com"]
    assert len(fake_cleanmylist.calls) == 0
    assert (
        await metric(
            client, "emailgate_provider_requests_total", provider="listcleanser", outcome="ok"
        )
        == 1
    )


def lc_calls(fake: FakeListCleanser) -> int:
    """Verify calls that reached the ListCleanser fake."""
    return len(fake.calls.emails(VERIFY))


def cml_calls(fake: FakeCleanMyList) -> int:
    """Calls that reached the CleanMyList fake."""
    return len(fake.calls.emails(REQUEST))


@pytest.mark.parametrize(
    ("local_part", "state", "reason", "decision", "spamtrap", "role"),
    [
        ("deliverable.a", "deliverable", "accepted_email", "accept", False, False),
        ("undeliverable.a", "undeliverable", "rejected_email", "reject", False, False),
        ("risky.a", "risky", "low_deliverability", "accept", False, False),
        ("spamtrap.a", "risky", "low_quality", "reject", True, False),
        ("role.a", "deliverable", "accepted_email", "accept", False, True),
        ("nomx.a", "undeliverable", "invalid_domain", "reject", False, False),
        ("bounce.a", "undeliverable", "rejected_email", "reject", False, False),
        ("abuse.a", "risky", "low_quality", "reject", False, False),
        ("spamreporter.a", "risky", "low_quality", "reject", False, False),
        ("lowscore.a", "risky", "low_deliverability", "reject", False, False),
    ],
)
async def test_cleanmylist_answers_are_mapped_by_the_stated_rules(
    make_client: MakeClient,
    fake_cleanmylist: FakeCleanMyList,
    local_part: str,
    state: str,
    reason: str,
    decision: str,
    spamtrap: bool,
    role: bool,
) -> None:
    """Each CleanMyList answer shape maps onto state, reason, flags and a signup decision."""
    client = await start(make_client, None, fake_cleanmylist)
    r = await verify(client, f"{local_part}@good.com")
    assert (r["state"], r["reason"], r["source"]) == (state, reason, "cleanmylist")
    assert (r["decision"], r["possible_spamtrap"], r["role"]) == (decision, spamtrap, role)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"status": 503}, "error"),
        ({"status": 500}, "error"),
        ({"junk": "html"}, "bad_response"),
        ({"junk": "wrong_shape"}, "bad_response"),
        ({"reset": True}, "error"),
        ({"status": 429}, "rate_limited"),
        ({"status": 402}, "no_credits"),
        ({"status": 401}, "unauthorized"),
        ({"status": 403}, "unauthorized"),
    ],
)
async def test_a_listcleanser_failure_falls_back_to_cleanmylist(
    make_client: MakeClient,
    fake_listcleanser: FakeListCleanser,
    fake_cleanmylist: FakeCleanMyList,
    fault: dict[str, Any],
    outcome: str,
) -> None:
    """Any classified ListCleanser failure is a metric outcome, and CleanMyList answers."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    if "status" in fault:
        fake_listcleanser.fail(fault["status"], retry_after=2)
    elif "junk" in fault:
        fake_listcleanser.junk(fault["junk"])
    else:
        fake_listcleanser.drop_connections()
    r = await verify(client, "someone@good.com")
    assert (r["source"], r["state"]) == ("cleanmylist", "deliverable")
    assert await metric(client, "emailgate_provider_requests_total",
                        provider="listcleanser", outcome=outcome) == 1  # fmt: skip
    assert lc_calls(fake_listcleanser) == 1 and cml_calls(fake_cleanmylist) == 1


async def test_retry_after_pauses_listcleanser(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """After a 429 ListCleanser is not called for Retry-After seconds; then it is again."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_listcleanser.fail(429, retry_after=1)
    await verify(client, "a@good.com")
    r = await verify(client, "b@good.com")
    assert r["source"] == "cleanmylist"
    assert lc_calls(fake_listcleanser) == 1
    assert await metric(client, "emailgate_provider_skips_total",
                        provider="listcleanser", why="paused") == 1  # fmt: skip
    assert await metric(client, "emailgate_provider_paused", provider="listcleanser") == 1
    await asyncio.sleep(1.05)
    assert (await verify(client, "c@good.com"))["source"] == "listcleanser"


async def test_no_credits_stops_calls_until_credits_come_back(
    make_client: MakeClient,
    fake_listcleanser: FakeListCleanser,
    fake_cleanmylist: FakeCleanMyList,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 402 pauses ListCleanser, logs loudly and sets its credits to 0."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_listcleanser.configure(credits=0)
    with caplog.at_level(logging.ERROR, logger="emailgate"):
        await verify(client, "a@good.com")
    assert any(getattr(rec, "event", "") == "provider_no_credits" for rec in caplog.records)
    for i in range(3):
        assert (await verify(client, f"n{i}@good.com"))["source"] == "cleanmylist"
    assert lc_calls(fake_listcleanser) == 1
    credits = await (await client.get("/api/v1/credits")).json()
    assert credits["data"]["listcleanser"] == 0
    assert await metric(client, "emailgate_provider_credits", provider="listcleanser") == 0


async def test_a_refused_key_stops_calls_and_is_logged(
    make_client: MakeClient,
    fake_listcleanser: FakeListCleanser,
    fake_cleanmylist: FakeCleanMyList,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong key: 403 once, a loud log without the key, then the provider is left alone."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist,
                         EMAILGATE_LISTCLEANSER_API_KEY="not-the-right-key-123")  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="emailgate"):
        for i in range(3):
            assert (await verify(client, f"k{i}@good.com"))["source"] == "cleanmylist"
    assert lc_calls(fake_listcleanser) == 1
    loud = [rec for rec in caplog.records if getattr(rec, "event", "") == "provider_unauthorized"]
    assert loud and "not-the-right-key-123" not in caplog.text


async def test_a_slow_provider_is_cut_at_its_budget_and_the_next_one_answers(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """ListCleanser hangs: it times out inside the deadline and CleanMyList still answers."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_listcleanser.hang()
    r = await verify(client, "someone@good.com")
    assert r["source"] == "cleanmylist"
    assert r["duration"] < 1.5
    assert await metric(client, "emailgate_provider_requests_total",
                        provider="listcleanser", outcome="timeout") == 1  # fmt: skip


async def test_when_every_provider_fails_the_answer_fails_open_in_time(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """Both hang: the local verdict answers within the deadline, accepted, cached briefly."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_listcleanser.hang()
    fake_cleanmylist.hang()
    r = await verify(client, "someone@good.com")
    assert (r["state"], r["source"], r["decision"]) == ("unknown", "local", "accept")
    assert r["reason"] in ("timeout", "unavailable_provider")
    assert r["score"] >= 30
    assert r["duration"] <= 1.5 + 0.05
    again = await verify(client, "someone@good.com")
    assert again["cached"] is True


async def test_refused_connections_fail_open(make_client: MakeClient, refused_url: str) -> None:
    """Both providers refuse connections: error outcomes, and a local fail-open answer."""
    env = {
        "EMAILGATE_LISTCLEANSER_URL": refused_url, "EMAILGATE_LISTCLEANSER_API_KEY": "k" * 20,
        "EMAILGATE_CLEANMYLIST_URL": refused_url, "EMAILGATE_CLEANMYLIST_API_KEY": "k" * 20,
    }  # fmt: skip
    client = await make_client(**env)
    r = await verify(client, "someone@good.com")
    assert (r["source"], r["state"], r["reason"], r["decision"]) == (
        "local", "unknown", "unavailable_provider", "accept")  # fmt: skip
    for provider in ("listcleanser", "cleanmylist"):
        assert await metric(client, "emailgate_provider_requests_total",
                            provider=provider, outcome="error") == 1  # fmt: skip


async def test_an_inconclusive_answer_moves_on_to_the_next_provider(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """ListCleanser says unknown: CleanMyList is asked and its verdict stands."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_cleanmylist.set_answer("unknown.z@good.com", valid=True, score=80)
    r = await verify(client, "unknown.z@good.com")
    assert (r["source"], r["state"], r["score"]) == ("cleanmylist", "deliverable", 80)
    assert lc_calls(fake_listcleanser) == 1 and cml_calls(fake_cleanmylist) == 1


async def test_an_answer_nobody_can_settle_keeps_the_fail_open_floor(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser
) -> None:
    """The only provider says unknown with a low score: the answer is unknown and accepted."""
    client = await start(make_client, fake_listcleanser, None)
    fake_listcleanser.set_answer("unknown.y@good.com", score=10)
    r = await verify(client, "unknown.y@good.com")
    assert (r["source"], r["state"], r["decision"]) == ("listcleanser", "unknown", "accept")
    assert r["score"] >= 30


async def test_the_breaker_opens_after_repeated_failures(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """Five 503s for five domains (the provider itself failing) open ListCleanser's circuit:
    the sixth check does not call it."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_listcleanser.fail(503, times=None)
    domains = ["good.com", "gmail.com", "gamil.com", "aonly.com", "aaaaonly.net"]
    for i in range(7):
        await verify(client, f"b{i}@{domains[i % len(domains)]}")
    assert lc_calls(fake_listcleanser) == 5
    assert await metric(client, "emailgate_circuit_open", provider="listcleanser") == 1
    assert await metric(client, "emailgate_provider_skips_total",
                        provider="listcleanser", why="circuit_open") == 2  # fmt: skip


async def test_fifty_concurrent_checks_of_one_address_cost_one_call(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser
) -> None:
    """Single flight across the chain: 50 identical fresh checks, one provider call."""
    client = await start(make_client, fake_listcleanser, None)
    fake_listcleanser.configure(latency_ms=200)
    results = await asyncio.gather(*(verify(client, "same.one@good.com") for _ in range(50)))
    assert {r["source"] for r in results} == {"listcleanser"}
    assert lc_calls(fake_listcleanser) == 1


async def test_a_repeat_is_answered_from_the_cache_without_spending(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser
) -> None:
    """A provider verdict is cached: the repeat (in another case) spends nothing."""
    client = await start(make_client, fake_listcleanser, None)
    first = await verify(client, "deliverable.c@good.com")
    second = await verify(client, "  Deliverable.C@GOOD.com ")
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["source"] == "listcleanser"
    assert lc_calls(fake_listcleanser) == 1


async def test_credits_come_from_both_providers(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_cleanmylist: FakeCleanMyList
) -> None:
    """ListCleanser's credits endpoint and CleanMyList's quota feed /api/v1/credits and gauges."""
    client = await start(make_client, fake_listcleanser, fake_cleanmylist)
    fake_listcleanser.fail(503)
    await verify(client, "q@good.com")  # CleanMyList answers, with its quota
    body = await (await client.get("/api/v1/credits")).json()
    openapi_check.check("GET", "/api/v1/credits", 200, body)
    lc = fake_listcleanser.config.credits
    assert body["data"]["listcleanser"] == lc
    assert body["data"]["cleanmylist"] == fake_cleanmylist.config.quota
    assert await metric(client, "emailgate_provider_credits", provider="listcleanser") == lc
    assert len(fake_listcleanser.calls.emails(CREDITS)) == 1  # polled once at start, not per check


async def test_a_provider_slot_too_late_for_the_deadline_is_skipped_at_once(
    make_client: MakeClient, fake_cleanmylist: FakeCleanMyList
) -> None:
    """CleanMyList's next slot is 5 s away: the second check skips it (no_token) and answers."""
    client = await start(
        make_client, None, fake_cleanmylist, EMAILGATE_CLEANMYLIST_INTERVAL_MS="5000"
    )
    assert (await verify(client, "one@good.com"))["source"] == "cleanmylist"
    r = await verify(client, "two@good.com")
    assert (r["source"], r["decision"]) == ("local", "accept")
    assert r["duration"] < 0.5
    assert cml_calls(fake_cleanmylist) == 1
    assert await metric(client, "emailgate_provider_skips_total",
                        provider="cleanmylist", why="no_token") == 1  # fmt: skip
