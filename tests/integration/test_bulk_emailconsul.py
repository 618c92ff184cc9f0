"""EmailConsul client (emailgate.bulk.emailconsul) against the local EmailConsul fake.

The production client runs unchanged over loopback; the fake's call log is the evidence.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from emailgate.bulk.base import BulkState, ListFailed
from emailgate.bulk.emailconsul import EmailConsul
from emailgate.config import Secret
from emailgate.metrics import Metrics
from emailgate.providers.errors import (
    BadResponse,
    NoCredits,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from emailgate.verify.result import Reason, Source, State
from tests.bulkrun import bulk_count, fast_pacer, poll_until_done, run_list
from tests.fakes.emailconsul import EXPORT_COLUMNS, PRESIGNED, FakeEmailConsul


def client(
    session: aiohttp.ClientSession,
    fake: FakeEmailConsul,
    metrics: Metrics,
    *,
    key: str | None = None,
    **kwargs: Any,
) -> EmailConsul:
    """An EmailConsul client pointed at `fake`, polling fast."""
    options: dict[str, Any] = {"poll_every": 0.05} | kwargs
    return EmailConsul(
        session, fake.url, Secret(key or fake.api_key), pacer=fast_pacer(), metrics=metrics,
        **options,
    )  # fmt: skip


EMAILS = [
    "deliverable.a@good.com",
    "undeliverable.b@good.com",
    "risky.c@good.com",
    "unknown.d@good.com",
    "spamtrap.e@good.com",
    "acceptall.f@gmail.com",
    "disposable.g@good.com",
    "admin@good.com",
    "nomx.h@good.com",
]


async def test_a_small_list_goes_as_an_array_and_runs_once(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """Array upload, pre-processing, one run from poll, DONE, export parsed by column name."""
    credits = fake_emailconsul.credits
    run = await run_list(client(session, fake_emailconsul, metrics), EMAILS)
    assert run.statuses[0].state is BulkState.WORKING
    assert set(run.results) == set(EMAILS)
    r = run.results
    assert (r["deliverable.a@good.com"].state, r["deliverable.a@good.com"].score) == (
        State.DELIVERABLE,
        95,
    )
    assert r["deliverable.a@good.com"].source is Source.EMAILCONSUL
    assert r["deliverable.a@good.com"].mx_record == "mx.good.com"
    assert r["undeliverable.b@good.com"].reason is Reason.REJECTED_EMAIL
    assert r["unknown.d@good.com"].accept_all is None
    assert r["spamtrap.e@good.com"].possible_spamtrap is True
    assert r["acceptall.f@gmail.com"].accept_all is True
    assert r["acceptall.f@gmail.com"].free is True
    assert r["acceptall.f@gmail.com"].smtp_provider == "Google"
    assert r["disposable.g@good.com"].disposable is True
    assert r["admin@good.com"].role is True
    assert r["nomx.h@good.com"].reason is Reason.INVALID_DOMAIN
    assert r["nomx.h@good.com"].mx_record is None
    assert len(fake_emailconsul.uploads()) == 1
    assert len(fake_emailconsul.runs()) == 1
    assert fake_emailconsul.stored == {}  # no CSV import for a small list
    assert fake_emailconsul.credits == credits - len(EMAILS)


async def test_a_large_list_goes_as_a_csv_through_the_presigned_url(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """Above `array_max`: presigned URL, a PUT without our key (the fake refuses one with it),
    then the list created from the key."""
    emails = [f"user{i}@good.com" for i in range(25)]
    run = await run_list(client(session, fake_emailconsul, metrics, array_max=10), emails)
    assert set(run.results) == set(emails)
    assert len(fake_emailconsul.calls.select(PRESIGNED)) == 1
    (key,) = fake_emailconsul.stored
    assert fake_emailconsul.stored[key].decode().splitlines()[0] == "email"
    put = [c for c in fake_emailconsul.calls if c.method == "PUT"]
    assert [c.status for c in put] == [200]


async def test_export_columns_are_found_by_name_and_unknown_ones_ignored(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """Columns in another order, with unknown ones among them, read the same."""
    columns = ["created_at", *reversed(EXPORT_COLUMNS), "listcleaning.extra"]
    fake_emailconsul.configure(export_columns=",".join(columns))
    run = await run_list(client(session, fake_emailconsul, metrics), EMAILS)
    assert run.results["spamtrap.e@good.com"].possible_spamtrap is True
    assert run.results["admin@good.com"].role is True
    assert run.results["risky.c@good.com"].score == 45


async def test_an_export_without_a_status_column_is_a_bad_response(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """`status` is required: its absence is a BadResponse naming the columns found."""
    fake_emailconsul.configure(export_columns="email,reason,score")
    ec = client(session, fake_emailconsul, metrics)
    list_id = await ec.upload(EMAILS[:2], reference="r")
    await poll_until_done(ec, list_id)
    with pytest.raises(BadResponse, match="status"):
        async for _ in ec.fetch(list_id):
            pass
    assert bulk_count(metrics, "emailconsul", "bad_response") == 1


@pytest.mark.parametrize("stage", ["processing", "preprocessing"])
async def test_a_failed_list_is_list_failed_with_the_providers_error(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics, stage: str
) -> None:
    """FAILED, in either stage, raises ListFailed carrying processing_error/preprocessing_error."""
    fake_emailconsul.configure(fail_lists=1, fail_stage=stage)
    ec = client(session, fake_emailconsul, metrics)
    list_id = await ec.upload(EMAILS[:3], reference="r")
    with pytest.raises(ListFailed, match=f"{stage} failed"):
        await poll_until_done(ec, list_id)
    assert bulk_count(metrics, "emailconsul", "failed") == 1


async def test_a_run_already_started_elsewhere_is_not_paid_twice(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """Two pollers of one list (a replica and its replacement) may both ask to run it: the
    second run is refused by the provider, taken as running, and the credits go once."""
    fake_emailconsul.configure(processing_s=0.5)
    credits = fake_emailconsul.credits
    first = client(session, fake_emailconsul, metrics)
    second = client(session, fake_emailconsul, metrics)
    list_id = await first.upload(EMAILS, reference="r")
    await asyncio.sleep(fake_emailconsul.config.preprocess_s + 0.05)
    one, two = await asyncio.gather(first.poll(list_id), second.poll(list_id))
    assert one.state is two.state is BulkState.WORKING
    assert [c.status for c in fake_emailconsul.runs()] == [200, 400]
    await poll_until_done(second, list_id)
    assert fake_emailconsul.credits == credits - len(EMAILS)


async def test_sandbox_addresses_cost_nothing(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """A list of sandbox addresses (with +suffixes) gives verdicts and leaves the credits be."""
    fake_emailconsul.configure(sandbox="deliverable@good.com,undeliverable@good.com")
    credits = fake_emailconsul.credits
    emails = ["deliverable@good.com", "deliverable+1@good.com", "undeliverable+x@good.com"]
    run = await run_list(client(session, fake_emailconsul, metrics), emails)
    assert run.results["undeliverable+x@good.com"].state is State.UNDELIVERABLE
    assert run.results["deliverable+1@good.com"].state is State.DELIVERABLE
    assert fake_emailconsul.credits == credits


async def test_no_credits_at_run_is_no_credits(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """The run answers 402 when the balance is short: NoCredits, and the provider pauses."""
    fake_emailconsul.configure(credits=1)
    ec = client(session, fake_emailconsul, metrics)
    list_id = await ec.upload(EMAILS[:3], reference="r")
    with pytest.raises(NoCredits):
        await poll_until_done(ec, list_id)
    assert await ec.paused_for() > 0
    with pytest.raises(NoCredits):
        await ec.poll(list_id)  # refused here while paused: said as the same reason


@pytest.mark.parametrize(
    ("fault", "error", "outcome"),
    [
        ({"status": 500}, ProviderUnavailable, "error"),
        ({"status": 504}, ProviderUnavailable, "error"),
        ({"status": 401}, Unauthorized, "unauthorized"),
        ({"status": 403}, Unauthorized, "unauthorized"),
        ({"status": 429, "retry_after": 3}, RateLimited, "rate_limited"),
    ],
)
async def test_create_failures_are_classified(
    session: aiohttp.ClientSession,
    fake_emailconsul: FakeEmailConsul,
    metrics: Metrics,
    fault: dict[str, Any],
    error: type[Exception],
    outcome: str,
) -> None:
    """Each failing status of the list creation raises its class of the error tree."""
    fake_emailconsul.fail(**fault)
    with pytest.raises(error):
        await client(session, fake_emailconsul, metrics).upload(EMAILS, reference="r")
    assert bulk_count(metrics, "emailconsul", outcome) == 1


async def test_a_wrong_key_is_unauthorized(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """A key the fake does not know: 403, Unauthorized."""
    with pytest.raises(Unauthorized):
        await client(session, fake_emailconsul, metrics, key="nope").upload(EMAILS, reference="r")


@pytest.mark.parametrize("kind", ["html", "wrong_shape", "truncated", "empty"])
async def test_junk_poll_answers_are_bad_responses(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics,
    kind: str,
) -> None:  # fmt: skip
    """A list read that is not the documented JSON: BadResponse."""
    ec = client(session, fake_emailconsul, metrics)
    list_id = await ec.upload(EMAILS[:1], reference="r")
    fake_emailconsul.junk(kind)  # type: ignore[arg-type]
    with pytest.raises(BadResponse):
        await ec.poll(list_id)


async def test_hangs_time_out_and_unknown_lists_fail(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """A hang is a ProviderTimeout; an id the provider does not know is ListFailed."""
    ec = client(session, fake_emailconsul, metrics, request_timeout=0.3)
    fake_emailconsul.hang()
    with pytest.raises(ProviderTimeout):
        await ec.poll("abc123")
    with pytest.raises(ListFailed):
        await ec.poll("abc123")


async def test_credits_and_delete_need_no_call(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """No documented credits call (None) and no delete after a run: nothing is sent."""
    ec = client(session, fake_emailconsul, metrics)
    assert await ec.credits() is None
    await ec.delete("abc123")
    assert len(fake_emailconsul.calls) == 0
    assert fake_emailconsul.api_key not in repr(ec)


async def test_an_upload_whose_answer_was_lost_is_found_by_its_title(
    session: aiohttp.ClientSession, fake_emailconsul: FakeEmailConsul, metrics: Metrics
) -> None:
    """The list is created but the answer never comes: find_list adopts it by title."""
    fake_emailconsul.configure(lose_upload_answers=1)
    ec = client(session, fake_emailconsul, metrics)
    with pytest.raises(ProviderUnavailable):
        await ec.upload(EMAILS[:2], reference="emailgate-job-4-1")
    list_id = await ec.find_list("emailgate-job-4-1")
    assert list_id is not None and list_id in fake_emailconsul.lists
    assert await ec.find_list("emailgate-job-4-9") is None
    await poll_until_done(ec, list_id)
    assert {e async for e, _ in ec.fetch(list_id)} == set(EMAILS[:2])
    assert len(fake_emailconsul.uploads()) == 1
