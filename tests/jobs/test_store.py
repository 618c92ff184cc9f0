"""The job store on SQLite and PostgreSQL: migrations, ingest in one transaction, leases,
answers and counters, deletion, the webhook outbox."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from emailgate.jobs import schema
from emailgate.jobs.ingest import IngestError, list_batches, to_row
from emailgate.jobs.model import JobStatus, Stage
from emailgate.jobs.store import Answer, InRow, JobStore, NewJob, open_store


def new_job(owner: str = "backend", callback: str | None = None) -> NewJob:
    return NewJob(owner, "list", "marketing", False, callback, None, ["email"])


async def add(store: JobStore, emails: Sequence[str], **kw: object) -> int:
    job = await store.create(new_job(**kw), list_batches(emails))  # type: ignore[arg-type]
    return job.id


async def test_migrate_twice_applies_once(store: JobStore) -> None:
    """Opening a migrated store again applies nothing; the version table says the latest."""
    assert await store.migrate() == []
    async with store.engine.connect() as conn:
        versions = (await conn.execute(sa.select(schema.schema_version.c.version))).scalars()
        assert list(versions) == [v for v, _ in schema.MIGRATIONS]


async def test_ingest_counts_duplicates_by_cache_identity(store: JobStore) -> None:
    """Rows are counted as given; duplicates by mailbox (ASCII case of the local part and the
    domain folded, Unicode case not); bad syntax is a row, not an error."""
    emails = ["Ann@Good.com", " ann@good.com\t", "ANN@GOOD.COM", "ſam@good.com", "sam@good.com",
              "not-an-address", "bob@gmail.com"]  # fmt: skip
    job = await store.get(await add(store, emails))
    assert job is not None
    assert job.number_of_total == 7
    assert job.duplicates == 2
    assert job.invalid_format == 1
    assert job.distinct_total == 5
    assert job.domains == 2
    assert job.status is JobStatus.PROCESSING and job.stage is Stage.FREE


async def test_failed_ingest_stores_nothing(store: JobStore) -> None:
    """An error while reading rows (too many, say) rolls the whole job back."""

    async def batches() -> AsyncIterator[list[InRow]]:
        yield [to_row(["a@good.com"], "a@good.com")]
        raise IngestError(413, "too many rows")

    with pytest.raises(IngestError):
        await store.create(new_job(), batches())
    jobs, total = await store.list_jobs("backend", page=1, per_page=10)
    assert total == 0 and jobs == []
    async with store.engine.connect() as conn:
        for table in (schema.rows, schema.addresses):
            n = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            assert n == 0


async def test_owner_sees_only_own_jobs(store: JobStore) -> None:
    """get() with an owner hides another key's job; list() is per owner, newest first."""
    a1 = await add(store, ["a@good.com"], owner="a")
    b1 = await add(store, ["b@good.com"], owner="b")
    a2 = await add(store, ["c@good.com"], owner="a")
    assert await store.get(b1, owner="a") is None
    jobs, total = await store.list_jobs("a", page=1, per_page=10)
    assert [j.id for j in jobs] == [a2, a1] and total == 2


async def test_one_lease_at_a_time_and_takeover_after_expiry(store: JobStore) -> None:
    """A claimed job is not claimed again until its lease runs out; renew keeps it; release
    hands it back at once."""
    now = [1000.0]
    store.wall = lambda: now[0]
    job_id = await add(store, ["a@good.com"])
    first = await store.claim("w1", ttl=30)
    assert first is not None and first.id == job_id
    assert await store.claim("w2", ttl=30) is None
    now[0] += 20
    assert await store.renew(job_id, "w1", ttl=30)
    now[0] += 20
    assert await store.claim("w2", ttl=30) is None
    now[0] += 31
    taken = await store.claim("w2", ttl=30)
    assert taken is not None and taken.id == job_id
    assert not await store.renew(job_id, "w1", ttl=30)
    await store.release(job_id, "w2")
    again = await store.claim("w3", ttl=30)
    assert again is not None


async def test_answers_update_counters_once(store: JobStore) -> None:
    """An answered address is not answered again; counters and credits add up."""
    job_id = await add(store, ["a@good.com", "b@good.com", "c@good.com"])
    work = await store.work(job_id, states=["pending"])
    assert [w.email for w in work] == ["a@good.com", "b@good.com", "c@good.com"]
    a = Answer(work[0].seq, "provider", "deliverable", {"state": "deliverable"}, paid=True)
    await store.answer(job_id, [a])
    await store.answer(job_id, [a])  # a repeat (a resumed worker) changes nothing
    job = await store.get(job_id)
    assert job is not None
    assert job.processed == 1 and job.credits_spent == 1
    assert job.counts["deliverable"] == 1
    page, count = await store.results(job_id, state="deliverable", page=1, per_page=10)
    assert count == 1 and page[0][1] == "a@good.com"


async def test_sent_is_recorded_before_and_undone_only_when_nothing_went(
    store: JobStore,
) -> None:
    """mark_sent moves pending to sent; unsend moves it back; work() by state sees it."""
    job_id = await add(store, ["a@good.com", "b@good.com"])
    seqs = [w.seq for w in await store.work(job_id, states=["pending"])]
    await store.mark_sent(job_id, seqs[:1], None)
    assert [w.seq for w in await store.work(job_id, states=["sent"])] == seqs[:1]
    await store.unsend(job_id, seqs[:1])
    assert await store.count(job_id, "pending") == 2


async def test_delete_removes_every_address(store: JobStore) -> None:
    """DELETE and retention leave no row, address or list of the job behind."""
    job_id = await add(store, ["a@good.com", "b@good.com"])
    await store.new_list(job_id, "listcleanser")
    assert await store.delete(job_id)
    async with store.engine.connect() as conn:
        for table in (schema.jobs, schema.rows, schema.addresses, schema.bulk_lists):
            n = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            assert n == 0, table.name


async def test_status_change_queues_webhook_in_order(store: JobStore) -> None:
    """The job's creation and each status change of a job with a callback write one outbox
    row; only the oldest undelivered one of a job is due."""
    job_id = await add(store, ["a@good.com"], callback="https://hooks.example.org/x")
    await store.set_status(job_id, JobStatus.WAITING_APPROVAL)
    await store.set_status(job_id, JobStatus.PROCESSING)
    seen = []
    while due := await store.due_deliveries():
        assert len(due) == 1
        seen.append(due[0].body.split(b'"status":"')[1].split(b'"')[0].decode())
        await store.delivered(due[0].id, "delivered")
    assert seen == ["processing", "waiting_approval", "processing"]


async def test_sqlite_file_lives_in_data_dir(tmp_path: Path) -> None:
    """Without a database URL the store is a SQLite file in the data directory (created)."""
    async with open_store(None, tmp_path / "nested" / "data") as s:
        assert s.dialect == "sqlite"
    assert (tmp_path / "nested" / "data" / "jobs.sqlite3").is_file()


def test_processes_sharing_one_data_dir_migrate_it_once(tmp_path: Path) -> None:
    """Several `emailgate serve` on one machine share ./data: started together, each opens the
    SQLite store without error and the schema is applied exactly once."""
    script = (
        "import asyncio, sys; from pathlib import Path; "
        "from emailgate.jobs.store import open_store\n"
        "async def main():\n"
        "    async with open_store(None, Path(sys.argv[1])): pass\n"
        "asyncio.run(main())"
    )
    for round_no in range(6):
        data = tmp_path / f"data{round_no}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(data)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        for proc in procs:
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()[-400:]
        with sqlite3.connect(data / "jobs.sqlite3") as db:
            versions = [v for (v,) in db.execute("SELECT version FROM emailgate_schema")]
        assert versions == sorted(set(versions)) and versions[0] == 1
