"""ListCleanser batch client (emailgate.bulk.listcleanser) against the local ListCleanser fake.

The production client runs unchanged over loopback; the fake's call log is the evidence.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from emailgate.bulk.assemble import rate_pacer
from emailgate.bulk.base import BulkState, ListFailed
from emailgate.bulk.listcleanser import ListCleanserBatch
from emailgate.bulk.wire import may_have_landed
from emailgate.clock import monotonic
from emailgate.config import Secret
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer
from emailgate.providers.errors import (
    BadResponse,
    NoCredits,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from emailgate.rate import Rate
from emailgate.verify.result import Source, State
from tests.bulkrun import bulk_count, fast_pacer, poll_until_done, run_list
from tests.fakes.listcleanser import BATCH, FakeListCleanser


def client(
    session: aiohttp.ClientSession,
    fake: FakeListCleanser,
    metrics: Metrics,
    *,
    key: str | None = None,
    upload_pacer: Pacer | None = None,
    results_pacer: Pacer | None = None,
    **kwargs: Any,
) -> ListCleanserBatch:
    """A batch client pointed at `fake`, polling fast."""
    return ListCleanserBatch(
        session, fake.url, Secret(key or fake.api_key),
        results_pacer=results_pacer or fast_pacer(), upload_pacer=upload_pacer or fast_pacer(),
        metrics=metrics, poll_every=0.05, **kwargs,
    )  # fmt: skip


async def test_a_list_runs_to_the_end_with_every_record_mapped(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """Upload, processing polls with progress, paged results (more than one page), no delete."""
    fake_listcleanser.configure(batch_processing_s=0.4, batch_max_per_page=500)
    emails = [f"user{i}@good.com" for i in range(1100)]
    emails += ["undeliverable.x@good.com", "spamtrap.y@good.com", "acceptall.z@good.com"]
    credits = fake_listcleanser.credits
    run = await run_list(client(session, fake_listcleanser, metrics), emails)
    assert run.statuses[0].state is BulkState.WORKING
    assert run.statuses[-1].state is BulkState.DONE
    assert set(run.results) == set(emails)
    assert run.results["user5@good.com"].state is State.DELIVERABLE
    assert run.results["user5@good.com"].score == 90
    assert run.results["user5@good.com"].source is Source.LISTCLEANSER
    assert run.results["undeliverable.x@good.com"].state is State.UNDELIVERABLE
    assert run.results["spamtrap.y@good.com"].possible_spamtrap is True
    assert run.results["acceptall.z@good.com"].accept_all is True
    assert len(fake_listcleanser.uploads()) == 1
    assert fake_listcleanser.credits == credits - len(emails)
    pages = [c for c in fake_listcleanser.calls if c.endpoint.startswith(BATCH + "/")]
    assert len(pages) == len(run.statuses) + 3  # 1,103 records, 500 a page
    assert bulk_count(metrics, "listcleanser", "ok") == 1 + len(pages)


async def test_uploads_keep_to_the_upload_limit(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """Uploads paced at the fake's limit (3 in any 1 s here) never meet a 429."""
    fake_listcleanser.configure(batch_upload_limit=3, rate_window_s=1.0)
    lc = client(session, fake_listcleanser, metrics, upload_pacer=fast_pacer(3, 1.0))
    for i in range(7):
        await lc.upload([f"u{i}@good.com"], reference=f"r{i}")
    assert fake_listcleanser.calls.statuses(BATCH) == [201] * 7
    assert fake_listcleanser.calls.max_in_window(1.0, BATCH) <= 3


@pytest.mark.slow
async def test_two_replicas_share_the_upload_limit_through_redis(
    session: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    metrics: Metrics,
    redis_url: str,
) -> None:
    """Two clients on one Redis bucket keep the fleet within the fake's limit together."""
    fake_listcleanser.configure(batch_upload_limit=3, rate_window_s=1.0)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        pacers = [
            rate_pacer(
                "listcleanser-upload",
                Rate(3, 1.0),
                replicas=2,
                metrics=metrics,
                clock=monotonic,
                redis=redis,
            )
            for _ in range(2)
        ]
        replicas = [client(session, fake_listcleanser, metrics, upload_pacer=p) for p in pacers]

        async def uploads(lc: ListCleanserBatch, tag: str) -> None:
            for i in range(4):
                await lc.upload([f"{tag}{i}@good.com"], reference=tag)

        await asyncio.gather(uploads(replicas[0], "a"), uploads(replicas[1], "b"))
    finally:
        await redis.aclose()
    assert fake_listcleanser.calls.statuses(BATCH) == [201] * 8
    assert fake_listcleanser.calls.max_in_window(1.0, BATCH) <= 3


@pytest.mark.parametrize(
    ("fault", "error", "outcome"),
    [
        ({"status": 500}, ProviderUnavailable, "error"),
        ({"status": 503}, ProviderUnavailable, "error"),
        ({"status": 402}, NoCredits, "no_credits"),
        ({"status": 401}, Unauthorized, "unauthorized"),
        ({"status": 403}, Unauthorized, "unauthorized"),
        ({"status": 429, "retry_after": 7}, RateLimited, "rate_limited"),
    ],
)
async def test_upload_failures_are_classified(
    session: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    metrics: Metrics,
    fault: dict[str, Any],
    error: type[Exception],
    outcome: str,
) -> None:
    """Each failing status of an upload raises its class of the providers' error tree."""
    fake_listcleanser.fail(**fault)
    lc = client(session, fake_listcleanser, metrics)
    with pytest.raises(error):
        await lc.upload(["a@good.com"], reference="r")
    assert bulk_count(metrics, "listcleanser", outcome) == 1


async def test_a_429_pauses_the_provider_for_its_retry_after(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """After a 429 with Retry-After: 7 the next call is refused here, without reaching the fake."""
    fake_listcleanser.fail(429, retry_after=7)
    lc = client(session, fake_listcleanser, metrics)
    with pytest.raises(RateLimited) as first:
        await lc.upload(["a@good.com"], reference="r")
    assert first.value.retry_after == 7
    assert 6 < await lc.paused_for() <= 7
    calls = len(fake_listcleanser.calls)
    with pytest.raises(RateLimited):
        await lc.poll("456")
    assert len(fake_listcleanser.calls) == calls
    assert (
        metrics.registry.get_sample_value(
            "emailgate_bulk_provider_paused", {"provider": "listcleanser"}
        )
        == 1
    )


async def test_a_refused_key_pauses_and_says_unauthorized_again(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """A key the fake does not know: Unauthorized, and later calls fail the same way at once."""
    lc = client(session, fake_listcleanser, metrics, key="not-our-key")
    with pytest.raises(Unauthorized):
        await lc.upload(["a@good.com"], reference="r")
    with pytest.raises(Unauthorized):
        await lc.upload(["a@good.com"], reference="r")
    assert len(fake_listcleanser.uploads()) == 1


async def test_no_credits_for_the_list_is_no_credits(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """A list larger than the credits left: 402, NoCredits, nothing spent."""
    fake_listcleanser.configure(credits=2)
    lc = client(session, fake_listcleanser, metrics)
    with pytest.raises(NoCredits):
        await lc.upload(["a@good.com", "b@good.com", "c@good.com"], reference="r")
    assert fake_listcleanser.credits == 2
    assert await lc.credits() == 2


@pytest.mark.parametrize("kind", ["html", "wrong_shape", "truncated", "empty"])
async def test_junk_answers_are_bad_responses(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics,
    kind: str,
) -> None:  # fmt: skip
    """A 200 whose body is not the documented JSON is a BadResponse, for uploads and polls."""
    lc = client(session, fake_listcleanser, metrics)
    list_id = await lc.upload(["a@good.com"], reference="r")
    fake_listcleanser.junk(kind, times=2)  # type: ignore[arg-type]
    with pytest.raises(BadResponse):
        await lc.upload(["b@good.com"], reference="r")
    with pytest.raises(BadResponse):
        await lc.poll(list_id)
    assert bulk_count(metrics, "listcleanser", "bad_response") == 2
    assert bulk_count(metrics, "listcleanser", "ok") == 1


async def test_a_hanging_provider_times_out(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """No answer within the request timeout: ProviderTimeout."""
    fake_listcleanser.hang()
    lc = client(session, fake_listcleanser, metrics, request_timeout=0.3)
    with pytest.raises(ProviderTimeout):
        await lc.poll("456")
    assert bulk_count(metrics, "listcleanser", "timeout") == 1


async def test_reset_and_refused_connections_are_unavailable(
    session: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    metrics: Metrics,
    refused_url: str,
) -> None:
    """A reset connection and a refused port are ProviderUnavailable."""
    fake_listcleanser.drop_connections()
    lc = client(session, fake_listcleanser, metrics)
    with pytest.raises(ProviderUnavailable):
        await lc.upload(["a@good.com"], reference="r")
    gone = ListCleanserBatch(
        session, refused_url, Secret("k"), results_pacer=fast_pacer(), upload_pacer=fast_pacer()
    )
    with pytest.raises(ProviderUnavailable):
        await gone.poll("1")


async def test_a_failed_list_and_an_unknown_list_are_list_failed(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """The fake fails a list half-way: ListFailed; an id it never gave: ListFailed too."""
    fake_listcleanser.configure(fail_lists=1, batch_processing_s=0.2)
    lc = client(session, fake_listcleanser, metrics)
    list_id = await lc.upload(["a@good.com"], reference="r")
    with pytest.raises(ListFailed, match="failed"):
        await poll_until_done(lc, list_id)
    with pytest.raises(ListFailed):
        await lc.poll("999999")
    assert bulk_count(metrics, "listcleanser", "failed") == 2


async def test_bad_records_are_left_out_not_fatal(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """A record with a state outside the document is skipped; the others come through."""
    fake_listcleanser.set_answer("odd@good.com", state="maybe")
    run = await run_list(client(session, fake_listcleanser, metrics),
                         ["odd@good.com", "fine@good.com"])  # fmt: skip
    assert set(run.results) == {"fine@good.com"}


async def test_a_list_id_that_is_not_an_id_never_shapes_a_url(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """A stored id such as `../credits` is refused before any call."""
    lc = client(session, fake_listcleanser, metrics)
    with pytest.raises(ListFailed):
        await lc.poll("../credits")
    assert len(fake_listcleanser.calls) == 0


async def test_repr_hides_the_key(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """The key never shows in repr."""
    lc = client(session, fake_listcleanser, metrics)
    assert fake_listcleanser.api_key not in repr(lc)


async def test_a_lost_upload_answer_is_unavailable_and_the_list_stays_at_the_provider(
    session: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, metrics: Metrics
) -> None:
    """ListCleanser stored the list but the answer was lost: the client can only say
    ProviderUnavailable (ListCleanser documents no way to find a batch again)."""
    fake_listcleanser.configure(lose_upload_answers=1)
    lc = client(session, fake_listcleanser, metrics)
    with pytest.raises(ProviderUnavailable):
        await lc.upload(["a@good.com"], reference="r")
    assert len(fake_listcleanser.lists) == 1
    assert not hasattr(lc, "find_list")


async def test_failed_uploads_say_whether_they_may_have_landed(
    session: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    metrics: Metrics,
    refused_url: str,
) -> None:
    """An error status or a refused connection: not landed. A lost answer, a hang or a 2xx
    with junk: may have landed (the job then must not upload those addresses again)."""
    lc = client(session, fake_listcleanser, metrics, request_timeout=0.3, transfer_timeout=0.3)

    async def failure() -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            await lc.upload(["a@good.com"], reference="r")
        return caught.value

    fake_listcleanser.fail(503)
    assert not may_have_landed(await failure())
    fake_listcleanser.configure(lose_upload_answers=1)
    assert may_have_landed(await failure())
    fake_listcleanser.hang()
    assert may_have_landed(await failure())
    fake_listcleanser.junk("wrong_shape")
    assert may_have_landed(await failure())
    gone = ListCleanserBatch(
        session, refused_url, Secret("k"), results_pacer=fast_pacer(), upload_pacer=fast_pacer()
    )
    with pytest.raises(ProviderUnavailable) as refused:
        await gone.upload(["a@good.com"], reference="r")
    assert not may_have_landed(refused.value)
