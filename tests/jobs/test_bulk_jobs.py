"""Batch jobs through the bulk providers on a real app (SQLite store, our DNS server), with the
production clients against the local fakes of ListCleanser batch, Listcleaner and EmailConsul:
each provider alone, the order and every fallback, the real-time threshold, and uploads whose
answer was lost (adopted where the provider can find its lists, never uploaded twice)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests import openapi_check
from tests.fakes.emailconsul import FakeEmailConsul
from tests.fakes.listcleaner import FakeListcleaner
from tests.fakes.listcleanser import BATCH as LC_BATCH
from tests.fakes.listcleanser import VERIFY, FakeListCleanser
from tests.jobs.helpers import Client, download, wait_status

MakeClient = Callable[..., Awaitable[Client]]
BATCH = "/api/v1/batch"
BILLABLE = [f"deliverable.u{i}@good.com" for i in range(30)] + ["spamtrap.t@good.com"]
EMAILS = [*BILLABLE, "x@gone.com", "not an address", BILLABLE[0]]


def env_for(
    lc: FakeListCleanser | None = None,
    lcn: FakeListcleaner | None = None,
    ec: FakeEmailConsul | None = None,
    **extra: str,
) -> dict[str, str]:
    """Settings for the fakes given (fast polling is the clients' default of the fakes' speed:
    the fakes finish lists in well under a second); jobs always go to a bulk provider."""
    env: dict[str, str] = {"EMAILGATE_BATCH_REALTIME_MAX": "0", "EMAILGATE_OPEN_RATE": "100000/60s"}
    if lc is not None:
        env |= {"EMAILGATE_LISTCLEANSER_URL": lc.url, "EMAILGATE_LISTCLEANSER_API_KEY": lc.api_key}
    if lcn is not None:
        env |= {"EMAILGATE_LISTCLEANER_URL": lcn.url, "EMAILGATE_LISTCLEANER_API_KEY": lcn.api_key,
                "EMAILGATE_LISTCLEANER_USER_EMAIL": lcn.config.user_email}  # fmt: skip
    if ec is not None:
        env |= {"EMAILGATE_EMAILCONSUL_URL": ec.url, "EMAILGATE_EMAILCONSUL_API_KEY": ec.api_key}
    return env | extra


async def run_job(client: Client, emails: list[str] = EMAILS) -> dict[str, Any]:
    """Submit `emails`, wait until processed; the completed answer (all results on one page)."""
    response = await client.post(BATCH, json={"emails": emails})
    body = await response.json()
    openapi_check.check("POST", BATCH, response.status, body)
    assert response.status == 201, body
    job_id = body["data"]["id"]
    await wait_status(client, job_id, timeout=60)
    done = await client.get(f"{BATCH}/{job_id}", params={"per_page": "1000"})
    result: dict[str, Any] = await done.json()
    return result


def sources(done: dict[str, Any]) -> dict[str, str]:
    """Each distinct address's `source`."""
    return {d["email"]["email_address"]: d["email"]["source"] for d in done["data"]}


async def metric(client: Client, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    text = await (await client.get("/metrics")).text()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, _, value = line.rpartition(" ")
            if ",".join(sorted(series[len(name) :].strip("{}").split(","))) == want:
                return float(value)
    return 0.0


def quick(lc: FakeListCleanser | None = None, lcn: FakeListcleaner | None = None,
          ec: FakeEmailConsul | None = None) -> None:  # fmt: skip
    """Processing delays short enough for a test, long enough to be polled."""
    if lc is not None:
        lc.configure(batch_processing_s=0.2)
    if lcn is not None:
        lcn.configure(processing_s=0.2)
    if ec is not None:
        ec.configure(preprocess_s=0.1, processing_s=0.2)


@pytest.mark.parametrize("name", ["listcleanser", "listcleaner", "emailconsul"])
async def test_a_job_runs_through_each_bulk_provider_alone(
    make_client: MakeClient,
    fake_listcleanser: FakeListCleanser,
    fake_listcleaner: FakeListcleaner,
    fake_emailconsul: FakeEmailConsul,
    name: str,
) -> None:
    """Free stages first; the billable addresses go to the provider in one upload, each once;
    its verdicts are the results (and reach the download); the job names the provider."""
    fakes: dict[str, Any] = {"listcleanser": fake_listcleanser, "listcleaner": fake_listcleaner,
                             "emailconsul": fake_emailconsul}  # fmt: skip
    fake = fakes[name]
    quick(**{{"listcleanser": "lc", "listcleaner": "lcn", "emailconsul": "ec"}[name]: fake})
    env = env_for(**{{"listcleanser": "lc", "listcleaner": "lcn", "emailconsul": "ec"}[name]: fake},
                  EMAILGATE_PROVIDERS="cleanmylist")  # fmt: skip
    credits = fake.credits
    client = await make_client(**env)
    done = await run_job(client)
    job = done["job"]
    assert job["provider"] == name
    assert (job["billable"], job["processed"]) == (len(BILLABLE), len(BILLABLE) + 2)
    assert {sources(done)[e] for e in BILLABLE} == {name}
    assert len(fake.uploads()) == 1
    assert fake.credits == credits - len(BILLABLE)
    by_email = {d["email"]["email_address"]: d["email"] for d in done["data"]}
    assert by_email["x@gone.com"]["source"] == "local"
    assert by_email["deliverable.u3@good.com"]["state"] == "deliverable"
    assert by_email["spamtrap.t@good.com"]["decision"] == "reject"
    rows = await download(client, job["id"])
    assert [r["email"] for r in rows] == EMAILS
    assert rows[-1]["source"] == name
    assert await metric(client, "emailgate_bulk_requests_total", provider=name, outcome="ok") > 2
    if name == "listcleaner":
        assert len(fake.deleted) == 1  # deleted at the provider once stored


async def test_no_credits_at_the_first_passes_the_job_to_the_next(
    make_client: MakeClient, fake_listcleaner: FakeListcleaner, fake_emailconsul: FakeEmailConsul
) -> None:
    """Listcleaner answers 402: the addresses go to EmailConsul, nothing is lost or doubled."""
    quick(lcn=fake_listcleaner, ec=fake_emailconsul)
    fake_listcleaner.configure(credits=3)
    client = await make_client(**env_for(lcn=fake_listcleaner, ec=fake_emailconsul))
    done = await run_job(client)
    assert done["job"]["provider"] == "emailconsul"
    assert {sources(done)[e] for e in BILLABLE} == {"emailconsul"}
    assert fake_listcleaner.calls.statuses("/upload_list") == [402]
    assert len(fake_emailconsul.uploads()) == 1
    labels = {"provider": "listcleaner", "outcome": "no_credits"}
    assert await metric(client, "emailgate_bulk_requests_total", **labels) == 1
    assert await metric(client, "emailgate_bulk_provider_paused", provider="listcleaner") == 1


async def test_a_failed_list_and_a_refused_key_fall_through_to_the_real_time_chain(
    make_client: MakeClient,
    fake_listcleaner: FakeListcleaner,
    fake_emailconsul: FakeEmailConsul,
    fake_listcleanser: FakeListCleanser,
) -> None:
    """EmailConsul ends the list FAILED, Listcleaner refuses the key (paused, so skipped): the
    addresses are verified through the real-time chain's spare slots (ListCleanser's verify)."""
    quick(lcn=fake_listcleaner, ec=fake_emailconsul)
    fake_emailconsul.configure(fail_lists=1)
    env = env_for(
        lcn=fake_listcleaner, ec=fake_emailconsul,
        EMAILGATE_BATCH_PROVIDERS="emailconsul,listcleaner",
        EMAILGATE_LISTCLEANER_API_KEY="not-the-key",
        EMAILGATE_PROVIDERS="listcleanser", EMAILGATE_LISTCLEANSER_URL=fake_listcleanser.url,
        EMAILGATE_LISTCLEANSER_API_KEY=fake_listcleanser.api_key,
        EMAILGATE_LISTCLEANSER_RATE="6000/60s",
    )  # fmt: skip
    client = await make_client(**env)
    done = await run_job(client)
    assert {sources(done)[e] for e in BILLABLE} == {"listcleanser"}
    assert len(fake_emailconsul.uploads()) == 1
    # The credits poll met the 401 first: Listcleaner was paused and skipped, never uploaded to.
    assert fake_listcleaner.calls.statuses("/get_credits") == [401]
    assert fake_listcleaner.calls.statuses("/upload_list") == []
    assert await metric(client, "emailgate_bulk_provider_paused", provider="listcleaner") == 1
    assert sorted(fake_listcleanser.calls.emails(VERIFY)) == sorted(BILLABLE)
    assert len(fake_listcleanser.uploads()) == 0  # ListCleanser batch is not in this order


async def test_a_small_job_goes_through_the_real_time_chain(
    make_client: MakeClient, fake_listcleaner: FakeListcleaner, fake_listcleanser: FakeListCleanser
) -> None:
    """At most EMAILGATE_BATCH_REALTIME_MAX billable addresses: no bulk upload at all."""
    env = env_for(
        lcn=fake_listcleaner, EMAILGATE_BATCH_REALTIME_MAX="500",
        EMAILGATE_BATCH_PROVIDERS="listcleaner", EMAILGATE_PROVIDERS="listcleanser",
        EMAILGATE_LISTCLEANSER_URL=fake_listcleanser.url,
        EMAILGATE_LISTCLEANSER_API_KEY=fake_listcleanser.api_key,
        EMAILGATE_LISTCLEANSER_RATE="6000/60s",
    )  # fmt: skip
    client = await make_client(**env)
    done = await run_job(client)
    assert {sources(done)[e] for e in BILLABLE} == {"listcleanser"}
    assert len(fake_listcleaner.uploads()) == 0


async def test_a_lost_upload_answer_is_adopted_not_uploaded_again(
    make_client: MakeClient, fake_listcleaner: FakeListcleaner, fake_emailconsul: FakeEmailConsul
) -> None:
    """Listcleaner stores the list but the answer is lost: the job finds it by reference and
    polls it; one upload, one charge, and EmailConsul is never asked."""
    quick(lcn=fake_listcleaner)
    fake_listcleaner.configure(lose_upload_answers=1)
    credits = fake_listcleaner.credits
    client = await make_client(**env_for(lcn=fake_listcleaner, ec=fake_emailconsul))
    done = await run_job(client)
    assert {sources(done)[e] for e in BILLABLE} == {"listcleaner"}
    assert len(fake_listcleaner.uploads()) == 1
    assert fake_listcleaner.credits == credits - len(BILLABLE)
    assert len(fake_emailconsul.calls) == 0


async def test_a_lost_listcleanser_upload_is_never_sent_again(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser, fake_emailconsul: FakeEmailConsul
) -> None:
    """ListCleanser cannot list its batches: a list whose answer was lost may be there, so its
    addresses get the local verdict and go to no other provider (the bounded exposure)."""
    quick(lc=fake_listcleanser)
    fake_listcleanser.configure(lose_upload_answers=1)
    env = env_for(lc=fake_listcleanser, ec=fake_emailconsul, EMAILGATE_PROVIDERS="cleanmylist")
    client = await make_client(**env)
    done = await run_job(client)
    assert {sources(done)[e] for e in BILLABLE} == {"local"}
    by_email = {d["email"]["email_address"]: d["email"] for d in done["data"]}
    assert by_email["deliverable.u1@good.com"]["reason"] == "unavailable_provider"
    assert len(fake_listcleanser.calls.select(LC_BATCH)) == 1
    assert len(fake_emailconsul.calls) == 0
