"""The worker against a real job store (SQLite and PostgreSQL), our DNS server and a small
bulk provider whose call log is the witness: bulk lists are uploaded once, their id is stored
before the wait, a dead worker's job is taken over and resumed without uploading again, a
stopping worker hands its job back, and a failing provider passes the rest to the next."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emailgate.bulk.base import BulkState, BulkStatus, ListFailed
from emailgate.config import Settings
from emailgate.jobs.giveway import GIVE_WAY_POLL, GIVE_WAY_S
from emailgate.jobs.ingest import list_batches
from emailgate.jobs.model import JobStatus
from emailgate.jobs.runner import Runner
from emailgate.jobs.store import JobStore, NewJob
from emailgate.metrics import Metrics
from emailgate.providers.errors import NoCredits, ProviderError, Unauthorized
from emailgate.services import Services, open_services
from emailgate.verify.result import Reason, Source, State, Verdict
from tests.fakes.dns_server import DNSServer


@dataclass
class SmallBulk:
    """A bulk provider in a few lines: answers every list after `polls` polls, logs calls,
    and can refuse uploads or fail lists."""

    name: str = "listcleanser"
    max_upload: int = 100
    polls: int = 2
    upload_error: ProviderError | None = None
    fail_list: bool = False
    store: JobStore | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    seen_ids_at_poll: list[list[str | None]] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    polled: dict[str, int] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    references: dict[str, str] = field(default_factory=dict)

    async def upload(self, emails: Sequence[str], *, reference: str) -> str:
        self.calls.append(("upload", list(emails)))
        if self.upload_error is not None:
            raise self.upload_error
        list_id = f"L{len(self.lists) + 1}"
        self.lists[list_id] = list(emails)
        self.references[reference] = list_id
        return list_id

    async def find_list(self, reference: str) -> str | None:
        self.calls.append(("find_list", reference))
        return self.references.get(reference)

    async def poll(self, list_id: str) -> BulkStatus:
        self.calls.append(("poll", list_id))
        if self.store is not None:
            self.seen_ids_at_poll.append(
                [lst.list_id for job in (1,) for lst in await self.store.lists(job)]
            )
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_list:
            raise ListFailed("processing_error")
        self.polled[list_id] = self.polled.get(list_id, 0) + 1
        if self.polled[list_id] < self.polls:
            return BulkStatus(BulkState.WORKING, wait=0.0)
        return BulkStatus(BulkState.DONE)

    async def fetch(self, list_id: str) -> AsyncIterator[tuple[str, Verdict]]:
        self.calls.append(("fetch", list_id))
        for email in self.lists[list_id]:
            yield email, Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 95, Source.LISTCLEANSER)

    async def delete(self, list_id: str) -> None:
        self.calls.append(("delete", list_id))

    async def credits(self) -> int | None:
        return 1000

    def uploads(self) -> list[list[str]]:
        return [c[1] for c in self.calls if c[0] == "upload"]


@pytest.fixture
async def services(dns_server: DNSServer, tmp_path: Path) -> AsyncIterator[Services]:
    """The service's parts (verifier, cache, DNS) without providers."""
    settings = Settings.from_env({"EMAILGATE_DNS_SERVERS": dns_server.address})
    async with open_services(settings) as s:
        yield s


EMAILS = ["a@good.com", "b@good.com", "c@gmail.com", "x@gone.com", "bad"]
BILLABLE = ["a@good.com", "b@good.com", "c@gmail.com"]


async def add_job(store: JobStore, emails: Sequence[str] = EMAILS) -> int:
    new = NewJob("backend", "t", "marketing", False, None, None, ["email"])
    return (await store.create(new, list_batches(emails))).id


def runner(store: JobStore, services: Services, bulk: Sequence[Any], worker: str) -> Runner:
    return Runner(store, services.verifier, metrics=Metrics(), chain=None, bulk=bulk,
                  worker=worker, lease_ttl=30, heartbeat=0.05)  # fmt: skip


async def run_once(r: Runner, store: JobStore) -> None:
    job = await store.claim(r.worker, r.lease_ttl)
    assert job is not None
    await r.run_job(job)


async def test_bulk_list_uploaded_once_id_stored_before_wait(
    store: JobStore, services: Services
) -> None:
    """The billable addresses go up as one list; its id is in the store before the first
    poll; results are stored and cached, the list deleted, credits counted."""
    bulk = SmallBulk(store=store)
    job_id = await add_job(store)
    await run_once(runner(store, services, [bulk], "w1"), store)
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.PROCESSED
    assert len(bulk.uploads()) == 1 and sorted(bulk.uploads()[0]) == sorted(BILLABLE)
    assert bulk.seen_ids_at_poll[0] == ["L1"]
    assert [c[0] for c in bulk.calls] == ["upload", "poll", "poll", "fetch", "delete"]
    assert job.credits_spent == 3 and job.provider == "listcleanser"
    assert [lst.status for lst in await store.lists(job_id)] == ["deleted"]
    cache = services.verifier.cache
    from emailgate.verify.syntax import parse_address

    hit = await cache.get(cache.key(parse_address("a@good.com")), budget=1.0)
    assert hit is not None and hit.source is Source.LISTCLEANSER


@pytest.mark.parametrize("error", [Unauthorized("401"), NoCredits("402"), "list_failed"])
async def test_a_failing_bulk_provider_passes_the_rest_to_the_next(
    store: JobStore, services: Services, error: Any
) -> None:
    """A refused key, no credits or a failed list: the same addresses go to the next bulk
    provider, which answers them."""
    first = SmallBulk(name="listcleanser")
    if error == "list_failed":
        first.fail_list = True
    else:
        first.upload_error = error
    second = SmallBulk(name="listcleaner")
    job_id = await add_job(store)
    await run_once(runner(store, services, [first, second], "w1"), store)
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.PROCESSED
    assert len(first.uploads()) == 1 and len(second.uploads()) == 1
    assert sorted(second.uploads()[0]) == sorted(BILLABLE)
    assert job.provider == "listcleaner" and job.credits_spent == 3


async def test_no_provider_left_answers_locally(store: JobStore, services: Services) -> None:
    """Every bulk provider refusing: the billable addresses get the local fail-open verdict."""
    first = SmallBulk(upload_error=Unauthorized("401"))
    job_id = await add_job(store)
    await run_once(runner(store, services, [first], "w1"), store)
    page, _ = await store.results(job_id, state=None, page=1, per_page=10)
    reasons = {email: r["reason"] for _, email, r in page}
    assert reasons["a@good.com"] == "unavailable_provider"
    assert reasons["x@gone.com"] == "invalid_domain" and reasons["bad"] == "invalid_email"


async def test_a_job_of_several_lists_waits_on_them_side_by_side(
    store: JobStore, services: Services
) -> None:
    """Three billable addresses in lists of two: both lists are uploaded before the first
    poll, and both are polled before either is fetched (the provider cleans them together)."""
    bulk = SmallBulk(max_upload=2, polls=3, store=store)
    job_id = await add_job(store)
    await run_once(runner(store, services, [bulk], "w1"), store)
    kinds = [c[0] for c in bulk.calls]
    assert kinds[:3] == ["upload", "upload", "poll"]
    before_fetch = bulk.calls[: kinds.index("fetch")]
    assert {c[1] for c in before_fetch if c[0] == "poll"} == {"L1", "L2"}
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.PROCESSED and job.credits_spent == 3
    assert [lst.status for lst in await store.lists(job_id)] == ["deleted", "deleted"]


async def test_dead_worker_is_taken_over_and_polls_the_same_list(
    store: JobStore, services: Services
) -> None:
    """A worker that dies while waiting on a list (its task killed, no hand-back) loses the
    job when its lease runs out; the next worker polls the stored list id and never uploads
    again."""
    now = [1000.0]
    store.wall = lambda: now[0]
    gate = asyncio.Event()
    bulk = SmallBulk(gate=gate)
    job_id = await add_job(store)
    first = runner(store, services, [bulk], "w1")
    first.heartbeat = 3600  # dies before renewing
    job = await store.claim("w1", 30)
    assert job is not None
    task = asyncio.create_task(first.run_job(job))
    async with asyncio.timeout(5):
        while not any(c[0] == "poll" for c in bulk.calls):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    task.cancel()  # the worker is gone; its lease stays until it runs out
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.claim("w2", 30) is None
    now[0] += 31
    gate.set()
    second = runner(store, services, [bulk], "w2")
    await run_once(second, store)
    assert len(bulk.uploads()) == 1
    assert [c[1] for c in bulk.calls if c[0] == "poll"][-1] == "L1"
    done = await store.get(job_id)
    assert done is not None and done.status is JobStatus.PROCESSED and done.processed == 5


async def test_stopping_worker_hands_the_job_back(store: JobStore, services: Services) -> None:
    """stop() during the wait releases the lease at once: another worker takes the job
    without waiting for expiry, and finishes it with the same list."""
    gate = asyncio.Event()
    bulk = SmallBulk(gate=gate, polls=1)
    job_id = await add_job(store)
    first = runner(store, services, [bulk], "w1")
    job = await store.claim("w1", 30)
    assert job is not None
    task = asyncio.create_task(first.run_job(job))
    async with asyncio.timeout(5):
        while not any(c[0] == "poll" for c in bulk.calls):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    first.stop()
    gate.set()
    await asyncio.wait_for(task, 5)
    second = runner(store, services, [bulk], "w2")
    await run_once(second, store)
    assert len(bulk.uploads()) == 1
    done = await store.get(job_id)
    assert done is not None and done.status is JobStatus.PROCESSED


async def test_sent_addresses_are_never_sent_again(store: JobStore, services: Services) -> None:
    """Addresses recorded as sent whose answer was lost (a crash) are answered locally on
    resume, not uploaded again."""
    bulk = SmallBulk()
    new = NewJob("backend", "t", "marketing", False, None, 0, ["email"])
    job_id = (await store.create(new, list_batches(EMAILS))).id
    # max_credits 0: the free stage runs, then the job waits for approval.
    await run_once(runner(store, services, [bulk], "w1"), store)
    waiting = await store.get(job_id)
    assert waiting is not None and waiting.status is JobStatus.WAITING_APPROVAL
    assert waiting.billable == 3 and bulk.calls == []
    # A worker recorded one address as sent, then died before its answer was stored.
    sent = [w for w in await store.work(job_id, states=["pending"]) if w.email == "a@good.com"]
    await store.mark_sent(job_id, [sent[0].seq], None)
    await store.set_status(job_id, JobStatus.PROCESSING)
    await run_once(runner(store, services, [bulk], "w2"), store)
    assert sorted(bulk.uploads()[0]) == ["b@good.com", "c@gmail.com"]
    page, _ = await store.results(job_id, state=None, page=1, per_page=10)
    reasons = {email: r["reason"] for _, email, r in page}
    assert reasons["a@good.com"] == "timeout"


async def test_an_upload_whose_answer_was_lost_is_adopted(
    store: JobStore, services: Services
) -> None:
    """The worker died after the provider took a list but before its id was stored: the next
    worker finds the list by its reference and polls it; nothing is uploaded again."""
    bulk = SmallBulk()
    new = NewJob("backend", "t", "marketing", False, None, 0, ["email"])
    job_id = (await store.create(new, list_batches(EMAILS))).id
    await run_once(runner(store, services, [bulk], "w1"), store)  # free stage, then waits
    pending = await store.work(job_id, states=["pending"])
    row = await store.new_list(job_id, bulk.name)
    await store.mark_sent(job_id, [a.seq for a in pending], row)
    await bulk.upload([a.email for a in pending], reference=f"emailgate-job-{job_id}-list-{row}")
    await store.set_status(job_id, JobStatus.PROCESSING)
    await run_once(runner(store, services, [bulk], "w2"), store)
    assert len(bulk.uploads()) == 1
    assert ("find_list", f"emailgate-job-{job_id}-list-{row}") in bulk.calls
    done = await store.get(job_id)
    assert done is not None and done.status is JobStatus.PROCESSED and done.credits_spent == 3


@pytest.mark.parametrize("signups", [0, 1])
async def test_a_job_gives_way_to_signups_in_flight_but_is_not_stopped_by_them(
    store: JobStore, services: Services, signups: int
) -> None:
    """With an interactive check being answered on the same loop, each job step first waits
    (GIVE_WAY_S in GIVE_WAY_POLL steps) before its work, and the job still ends; with none, a
    step never waits."""
    events: list[str] = []

    async def sleep(seconds: float) -> None:
        if seconds == GIVE_WAY_POLL:
            events.append("wait")
        await asyncio.sleep(0)

    services.verifier.interactive = signups
    job_id = await add_job(store)
    r = Runner(store, services.verifier, metrics=Metrics(), chain=None, bulk=[], worker="w1",
               sleep=sleep, lease_ttl=30, heartbeat=30,
               on_answers=lambda _job, _answers: events.append("answers"))  # fmt: skip
    await run_once(r, store)
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.PROCESSED
    steps = round(GIVE_WAY_S / GIVE_WAY_POLL)
    if signups:
        assert events[:steps] == ["wait"] * steps and "answers" in events
    else:
        assert "wait" not in events and "answers" in events
