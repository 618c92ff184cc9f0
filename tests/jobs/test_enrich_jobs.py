"""Enrichment jobs on the job store (SQLite and PostgreSQL): the schema step, claims by kind,
leases and takeover, and a resumed job that polls its stored workflows and never submits a
request twice, against the Cleanlist.ai fake and the real verify pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from emailgate.config import Secret, Settings
from emailgate.enrich.cleanlist import CleanlistClient, Contact
from emailgate.jobs import schema
from emailgate.jobs.enrich_runner import EnrichRunner
from emailgate.jobs.enrich_store import EnrichStore, NewEnrichJob
from emailgate.jobs.ingest import list_batches
from emailgate.jobs.model import JobStatus
from emailgate.jobs.store import JobStore, NewJob, make_engine
from emailgate.metrics import Metrics
from emailgate.pacing.window import LocalWindowPacer, WindowSpec
from emailgate.providers.http import make_session
from emailgate.rate import Rate
from emailgate.services import Services, open_services
from tests.fakes.cleanlist import BULK, STATUS, FakeCleanlist
from tests.fakes.dns_server import DNSServer


def people(n: int) -> list[Contact]:
    return [Contact(first_name=f"P{i}", last_name="Smith", company_domain="good.com")
            for i in range(n)]  # fmt: skip


def new(contacts: list[Contact], *, sandbox: bool = False) -> NewEnrichJob:
    return NewEnrichJob("crm", "leads", "marketing", sandbox, None, "partial", contacts,
                        "sandbox" if sandbox else "cleanlist")  # fmt: skip


@pytest.fixture
async def services(dns_server: DNSServer) -> AsyncIterator[Services]:
    """The real verify pipeline on our DNS server (no paid provider)."""
    async with open_services(Settings.from_env({"EMAILGATE_DNS_SERVERS": dns_server.address})) as s:
        yield s


@pytest.fixture
async def cleanlist() -> AsyncIterator[FakeCleanlist]:
    """The fake with a 6-second window and quick workflows."""
    async with FakeCleanlist(rate_window_s=6.0, workflow_s=0.3) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    s = make_session()
    yield s
    await s.close()


def runner(store: JobStore, services: Services, fake: FakeCleanlist,
           session: aiohttp.ClientSession, worker: str) -> EnrichRunner:  # fmt: skip
    pacer = LocalWindowPacer(WindowSpec.for_rate(Rate(60, 6.0)))
    client = CleanlistClient(session, fake.api_url, Secret(fake.api_key), pacer)
    return EnrichRunner(store, services.verifier, metrics=Metrics(), client=client,
                        worker=worker, poll_every=0.2, first_poll=0.1, lease_ttl=2.0,
                        heartbeat=0.3)  # fmt: skip


async def test_the_v2_step_upgrades_a_v1_store(tmp_path: Path) -> None:
    """A store made by the first schema step gets the enrichment tables and keeps its jobs."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    old = JobStore(engine)
    saved = list(schema.MIGRATIONS)
    schema.MIGRATIONS[:] = saved[:1]
    try:
        assert await old.migrate() == [1]
        job = await old.create(NewJob("crm", "l", "marketing", False, None, None, ["email"]),
                               list_batches(["a@good.com"]))  # fmt: skip
    finally:
        schema.MIGRATIONS[:] = saved
    assert await old.migrate() == [v for v, _ in saved[1:]]  # step 2 and any later one
    assert (await old.get(job.id)) is not None
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    assert {"enrich_jobs", "enrich_contacts", "enrich_requests"} <= set(tables)
    await old.close()


async def test_claims_are_by_kind(store: JobStore) -> None:
    """A batch worker never takes an enrichment job, an enrichment worker never a batch job."""
    enrich = await EnrichStore(store).create(new(people(3)))
    assert enrich.kind == "enrich" and enrich.number_of_total == 3
    assert await store.claim("batch-worker", 30) is None
    batch = await store.create(NewJob("crm", "l", "marketing", False, None, None, ["email"]),
                               list_batches(["a@good.com"]))  # fmt: skip
    taken = await store.claim("enrich-worker", 30, kind="enrich")
    assert taken is not None and taken.id == enrich.id
    assert await store.claim("enrich-worker-2", 30, kind="enrich") is None
    other = await store.claim("batch-worker", 30)
    assert other is not None and other.id == batch.id


async def test_a_lease_that_ran_out_is_taken_over(tmp_path: Path) -> None:
    """Held, an enrichment job is nobody else's; once its lease ran out another worker takes it."""
    now = [1000.0]
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'j.sqlite3'}")
    store = JobStore(engine, wall=lambda: now[0])
    await store.migrate()
    job = await EnrichStore(store).create(new(people(1)))
    assert await store.claim("a", 30, kind="enrich") is not None
    now[0] += 29
    assert await store.claim("b", 30, kind="enrich") is None
    now[0] += 2
    taken = await store.claim("b", 30, kind="enrich")
    assert taken is not None and taken.id == job.id
    assert not await store.renew(job.id, "a", 30)
    await store.close()


async def test_a_resumed_job_polls_its_workflows_and_never_submits_twice(
    store: JobStore, services: Services, cleanlist: FakeCleanlist, session: aiohttp.ClientSession
) -> None:
    """A job as a dead worker left it: request 0 sent (workflow id stored), request 1 recorded
    `sending` without an answer, request 2 pending. The next worker polls request 0's
    workflow, fails request 1's contacts unsent, submits request 2 once; the job ends."""
    contacts = people(600)
    enrich = EnrichStore(store)
    job = await enrich.create(new(contacts))
    first = await CleanlistClient(
        session, cleanlist.api_url, Secret(cleanlist.api_key),
        LocalWindowPacer(WindowSpec.for_rate(Rate(60, 6.0))),
    ).submit(contacts[:250], "partial")  # fmt: skip
    await enrich.sending(job.id, 0)
    await enrich.sent(job.id, 0, first.workflow_id, first.task_ids)
    await enrich.sending(job.id, 1)
    worker = runner(store, services, cleanlist, session, "next")
    claimed = await store.claim(worker.worker, 30, kind="enrich")
    assert claimed is not None
    await worker.run_job(claimed)
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.PROCESSED
    bulk = cleanlist.calls.select(BULK)
    assert len(bulk) == 2  # the first (before the "crash"), then request 2 only
    assert [len(w.tasks) for w in cleanlist.workflows.values()] == [250, 100]
    assert cleanlist.calls.select(STATUS)  # request 0 was polled, not sent again
    rows, count = await enrich.page(job.id, page=1, per_page=1000)
    assert count == 600
    assert all(r["status"] == "found" for r in rows[:250] + rows[500:])
    assert all(r["status"] == "failed" and "not sent again" in r["error"] for r in rows[250:500])
    assert [r.state for r in await enrich.requests(job.id)] == ["done", "lost", "done"]
    assert done.processed == 600 and done.credits_spent == 350


async def test_shutdown_hands_the_job_back_and_the_next_worker_finishes_it(
    store: JobStore, services: Services, cleanlist: FakeCleanlist, session: aiohttp.ClientSession
) -> None:
    """A worker stopped while it waits on a workflow hands the job back at once; another takes
    it without waiting for the lease, polls the stored workflow and submits nothing again."""
    cleanlist.configure(workflow_s=3.0)
    job = await EnrichStore(store).create(new(people(10)))
    a = runner(store, services, cleanlist, session, "a")
    claimed = await store.claim("a", 30, kind="enrich")
    assert claimed is not None
    working = asyncio.create_task(a.run_job(claimed))
    async with asyncio.timeout(10):
        while not cleanlist.calls.select(BULK):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    a.stop()
    await asyncio.wait_for(working, 5)
    b = runner(store, services, cleanlist, session, "b")
    again = await store.claim("b", 30, kind="enrich")
    assert again is not None and again.id == job.id
    await b.run_job(again)
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.PROCESSED and done.processed == 10
    assert len(cleanlist.calls.select(BULK)) == 1


async def test_deleting_a_job_deletes_its_contacts_and_requests(store: JobStore) -> None:
    """Retention (and any delete) takes the contacts and requests with the job, no other job's."""
    enrich = EnrichStore(store)
    gone = await enrich.create(new(people(300)))
    kept = await enrich.create(new(people(2)))
    assert await store.delete(gone.id)
    assert await enrich.contacts(gone.id) == [] and await enrich.requests(gone.id) == []
    assert await enrich.summary(gone.id) == {}
    assert len(await enrich.contacts(kept.id)) == 2 and len(await enrich.requests(kept.id)) == 1
