"""Listcleaner client (emailgate.bulk.listcleaner) against the local Listcleaner fake.

The production client runs unchanged over loopback; the fake's call log is the evidence.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from emailgate.bulk.base import BulkState, ListFailed
from emailgate.bulk.listcleaner import REASONS, Listcleaner
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
from tests.fakes.listcleaner import DOWNLOAD, SHOW, UPLOAD, FakeListcleaner


def client(
    session: aiohttp.ClientSession,
    fake: FakeListcleaner,
    metrics: Metrics,
    *,
    user: str | None = None,
    key: str | None = None,
    **kwargs: Any,
) -> Listcleaner:
    """A Listcleaner client pointed at `fake`, polling fast."""
    options: dict[str, Any] = {"poll_every": 0.05, "not_ready_wait": 0.05} | kwargs
    return Listcleaner(
        session, fake.url, Secret(user or fake.config.user_email), Secret(key or fake.api_key),
        pacer=fast_pacer(), metrics=metrics, **options,
    )  # fmt: skip


# Every documented reason, from the fake's address conventions.
ADDRESSES = {
    "ok.a@good.com": "ok",
    "catchall.a@good.com": "catch_all",
    "spamtrap.a@good.com": "spamtrap",
    "blacklisted.a@good.com": "blacklisted_email",
    "inactive.a@good.com": "account_inactive",
    "syntax.a@good.com": "syntax_error",
    "mxoffline.a@good.com": "mx_server_offline",
    "invalidmx.a@good.com": "invalid_mx",
    "disposable.a@good.com": "disposable_domain",
    "mxerror.a@good.com": "mx_server_error",
}


async def test_a_list_runs_to_the_end_and_each_reason_maps_by_the_table(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """Upload with mapping and reference, show_lists until done, download, delete; every
    documented reason becomes the RESULT its table row says."""
    fake_listcleaner.configure(processing_s=0.3)
    credits = fake_listcleaner.credits
    run = await run_list(client(session, fake_listcleaner, metrics), list(ADDRESSES),
                         reference="job-7")  # fmt: skip
    assert run.statuses[0].state is BulkState.WORKING
    assert set(run.results) == set(ADDRESSES)
    for email, reason in ADDRESSES.items():
        assert run.results[email] == REASONS[reason], email
        assert run.results[email].source is Source.LISTCLEANER
    assert run.results["catchall.a@good.com"].accept_all is True
    assert run.results["disposable.a@good.com"].disposable is True
    assert run.results["invalidmx.a@good.com"].reason is Reason.INVALID_DOMAIN
    # One upload, its list deleted at the end, one credit per row spent.
    assert len(fake_listcleaner.uploads()) == 1
    assert fake_listcleaner.deleted == [run.list_id]
    assert fake_listcleaner.credits == credits - len(ADDRESSES)
    assert bulk_count(metrics, "listcleaner", "ok") == len(fake_listcleaner.calls)


async def test_the_upload_is_a_csv_with_mapping_and_reference(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """The fake received a CSV whose `email` column holds the addresses, quoted where needed."""
    lc = client(session, fake_listcleaner, metrics)
    emails = ['o"neil@good.com', "a,b@good.com", "plain@good.com"]
    uid = await lc.upload(emails, reference="job-9")
    stored = fake_listcleaner.lists[uid]
    assert stored.reference == "job-9"
    assert stored.extra["mapping"] == "email"
    assert stored.emails == emails


async def test_download_404_means_not_ready_and_is_waited_out(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """`done` but the file not there yet: 404s are counted `not_ready`, then the results come."""
    fake_listcleaner.configure(processing_s=0.0, download_lag_s=0.3)
    run = await run_list(client(session, fake_listcleaner, metrics), ["a@good.com"])
    assert run.results["a@good.com"].state is State.DELIVERABLE
    assert 404 in fake_listcleaner.calls.statuses(DOWNLOAD)
    assert bulk_count(metrics, "listcleaner", "not_ready") >= 1


async def test_a_download_that_never_gets_ready_is_unavailable(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """After `not_ready_tries` 404s the download gives up as ProviderUnavailable."""
    fake_listcleaner.configure(processing_s=0.0, download_lag_s=60.0)
    lc = client(session, fake_listcleaner, metrics, not_ready_tries=3)
    uid = await lc.upload(["a@good.com"], reference="r")
    await poll_until_done(lc, uid)
    with pytest.raises(ProviderUnavailable, match="not ready"):
        async for _ in lc.fetch(uid):
            pass
    assert fake_listcleaner.calls.statuses(DOWNLOAD) == [404, 404, 404]


@pytest.mark.parametrize(
    ("fault", "error", "outcome"),
    [
        ({"status": 500}, ProviderUnavailable, "error"),
        ({"status": 502}, ProviderUnavailable, "error"),
        ({"status": 400}, ProviderUnavailable, "error"),
        ({"status": 402}, NoCredits, "no_credits"),
        ({"status": 401}, Unauthorized, "unauthorized"),
        ({"status": 429, "retry_after": 5}, RateLimited, "rate_limited"),
    ],
)
async def test_poll_failures_are_classified(
    session: aiohttp.ClientSession,
    fake_listcleaner: FakeListcleaner,
    metrics: Metrics,
    fault: dict[str, Any],
    error: type[Exception],
    outcome: str,
) -> None:
    """Each failing status of show_lists raises its class of the providers' error tree."""
    lc = client(session, fake_listcleaner, metrics)
    uid = await lc.upload(["a@good.com"], reference="r")
    fake_listcleaner.fail(**fault)
    with pytest.raises(error):
        await lc.poll(uid)
    assert bulk_count(metrics, "listcleaner", outcome) == 1


async def test_wrong_credentials_are_unauthorized_and_pause_it(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """A wrong user email (with the right key) is a 401: Unauthorized, then paused."""
    lc = client(session, fake_listcleaner, metrics, user="someone@else.com")
    with pytest.raises(Unauthorized):
        await lc.upload(["a@good.com"], reference="r")
    assert await lc.paused_for() > 0
    assert fake_listcleaner.calls.statuses(UPLOAD) == [401]


async def test_too_few_credits_is_no_credits_and_credits_reads_the_balance(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """A list larger than the balance: 402 NoCredits; get_credits tells the balance."""
    fake_listcleaner.configure(credits=1)
    lc = client(session, fake_listcleaner, metrics)
    with pytest.raises(NoCredits):
        await lc.upload(["a@good.com", "b@good.com"], reference="r")
    assert await lc.credits() == 1
    # Credits seen again lift the no-credits pause.
    assert await lc.paused_for() == 0


@pytest.mark.parametrize("kind", ["html", "wrong_shape", "truncated", "empty"])
async def test_junk_is_a_bad_response(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics,
    kind: str,
) -> None:  # fmt: skip
    """A 200 that is not the documented JSON: BadResponse, counted as such."""
    lc = client(session, fake_listcleaner, metrics)
    fake_listcleaner.junk(kind)  # type: ignore[arg-type]
    with pytest.raises(BadResponse):
        await lc.upload(["a@good.com"], reference="r")
    assert bulk_count(metrics, "listcleaner", "bad_response") == 1


async def test_a_result_file_without_the_reason_column_is_a_bad_response(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """A download that lacks `reason` is a BadResponse naming the columns it has."""
    fake_listcleaner.configure(download_without_reason=True)
    lc = client(session, fake_listcleaner, metrics)
    uid = await lc.upload(["a@good.com"], reference="r")
    await poll_until_done(lc, uid)
    with pytest.raises(BadResponse, match=r"no reason column .*'email'"):
        async for _ in lc.fetch(uid):
            pass
    assert bulk_count(metrics, "listcleaner", "bad_response") == 1


async def test_a_list_that_vanishes_is_list_failed(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """A list no longer in show_lists ends as ListFailed, counted `failed`."""
    fake_listcleaner.configure(fail_lists=1, processing_s=0.2)
    lc = client(session, fake_listcleaner, metrics)
    uid = await lc.upload(["a@good.com"], reference="r")
    with pytest.raises(ListFailed):
        await poll_until_done(lc, uid)
    assert bulk_count(metrics, "listcleaner", "failed") == 1
    assert fake_listcleaner.calls.statuses(SHOW)[-1] == 200


async def test_timeouts_and_resets_are_classified(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """A hang is a ProviderTimeout, a reset a ProviderUnavailable."""
    lc = client(session, fake_listcleaner, metrics, request_timeout=0.3)
    fake_listcleaner.hang()
    with pytest.raises(ProviderTimeout):
        await lc.credits()
    fake_listcleaner.drop_connections()
    with pytest.raises(ProviderUnavailable):
        await lc.credits()


async def test_delete_of_a_list_already_gone_is_fine(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """Deleting twice (a restart between delete and its record) raises nothing."""
    lc = client(session, fake_listcleaner, metrics)
    uid = await lc.upload(["a@good.com"], reference="r")
    await lc.delete(uid)
    await lc.delete(uid)
    assert fake_listcleaner.deleted == [uid]


async def test_repr_hides_the_credentials(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """Neither the key nor the account's address shows in repr."""
    text = repr(client(session, fake_listcleaner, metrics))
    assert fake_listcleaner.api_key not in text
    assert fake_listcleaner.config.user_email not in text


async def test_an_upload_whose_answer_was_lost_is_found_by_its_reference(
    session: aiohttp.ClientSession, fake_listcleaner: FakeListcleaner, metrics: Metrics
) -> None:
    """The fake stores the list and resets the connection: the client sees no uid, but
    find_list adopts the stored list by reference, so nothing is uploaded (or paid) again."""
    fake_listcleaner.configure(lose_upload_answers=1)
    lc = client(session, fake_listcleaner, metrics)
    credits = fake_listcleaner.credits
    with pytest.raises(ProviderUnavailable):
        await lc.upload(["a@good.com", "b@good.com"], reference="emailgate-job-3-1")
    uid = await lc.find_list("emailgate-job-3-1")
    assert uid is not None and uid in fake_listcleaner.lists
    assert await lc.find_list("emailgate-job-3-2") is None
    await poll_until_done(lc, uid)
    assert {e async for e, _ in lc.fetch(uid)} == {"a@good.com", "b@good.com"}
    assert len(fake_listcleaner.uploads()) == 1
    assert fake_listcleaner.credits == credits - 2
