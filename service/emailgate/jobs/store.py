"""The job store: one code path (SQLAlchemy Core, async) over SQLite or PostgreSQL.

SQLite (`EMAILGATE_DATA_DIR/jobs.sqlite3`, WAL) needs no set-up and survives a killed process;
PostgreSQL (`EMAILGATE_DATABASE_URL`) is shared by every replica. A job is worked by one worker
at a time: it holds a lease (owner and expiry on the job's row) and renews it while it works;
a lease that ran out is free for any worker to take.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from emailgate.jobs import schema
from emailgate.jobs.model import STATES, Job, JobStatus, Stage
from emailgate.jobs.schema import (
    addresses,
    bulk_lists,
    enrich_contacts,
    enrich_jobs,
    enrich_requests,
    jobs,
    outbox,
    rows,
)

Wall = Callable[[], float]
INSERT_BATCH = 1000
ENRICH_TABLES = (enrich_jobs, enrich_contacts, enrich_requests)
ENRICH_COUNTERS = ("found", "not_found", "failed", "emails_found", "emails_rejected",
                   "phones_found")  # fmt: skip


def engine_url(database_url: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL: PostgreSQL through asyncpg, else SQLite in `data_dir`."""
    if database_url:
        scheme, _, rest = database_url.partition("://")
        if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
            return f"postgresql+asyncpg://{rest}"
        raise ValueError("the job database must be a postgresql:// URL")
    return f"sqlite+aiosqlite:///{data_dir / 'jobs.sqlite3'}"


def make_engine(url: str) -> AsyncEngine:
    """An engine; SQLite gets WAL (readers never wait for the writer) and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)


@dataclass(frozen=True, slots=True)
class NewJob:
    """What an upload asks for."""

    owner: str
    name: str
    context: str
    sandbox: bool
    callback_url: str | None
    max_credits: int | None
    columns: list[str]


@dataclass(frozen=True, slots=True)
class InRow:
    """One input row: its cells, and the address found in it."""

    cells: list[Any]
    identity: str
    email: str
    domain: str | None


@dataclass(frozen=True, slots=True)
class WorkAddress:
    """A distinct address the worker still has to answer."""

    seq: int
    email: str
    domain: str | None
    state: str
    mail: str | None
    mx: str | None
    bulk_list: int | None


@dataclass(frozen=True, slots=True)
class Answer:
    """One distinct address's verdict, as the worker stores it."""

    seq: int
    stage: str
    state: str
    result: dict[str, Any]
    paid: bool = False


@dataclass(frozen=True, slots=True)
class BulkList:
    """A list handed to a bulk provider."""

    id: int
    job_id: int
    provider: str
    list_id: str | None
    status: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook waiting in the outbox."""

    id: int
    job_id: int
    url: str
    body: bytes
    attempts: int
    created_at: float


class NotEnded(Exception):
    """The job is still running and cannot be changed that way."""


class JobStore:
    """Every read and write of jobs; methods take the wall-clock time from `wall`."""

    def __init__(self, engine: AsyncEngine, *, wall: Wall = time.time) -> None:
        self.engine = engine
        self.wall = wall
        self.on_change: Callable[[], None] | None = None
        """Called after a job is created, changes status or is deleted (the jobs gauge)."""

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    async def migrate(self) -> list[int]:
        """Bring the schema up to date; the versions applied now."""
        async with self.engine.begin() as conn:
            return await conn.run_sync(schema.migrate, self.wall())

    async def close(self) -> None:
        """Close the pool."""
        await self.engine.dispose()

    # Ingest ---------------------------------------------------------------------------------

    async def create(
        self,
        new: NewJob,
        batches: AsyncIterator[Sequence[InRow]],
        *,
        status: JobStatus = JobStatus.PROCESSING,
    ) -> Job:
        """Store a job with all of its rows in one transaction: every row or nothing.

        An exception raised by `batches` (too many rows, a damaged file) rolls everything back.
        """
        now = self.wall()
        async with self.engine.begin() as conn:
            job_id = (
                await conn.execute(
                    jobs.insert()
                    .values(
                        owner=new.owner,
                        kind="batch",
                        name=new.name,
                        context=new.context,
                        sandbox=new.sandbox,
                        status=status.value,
                        stage=Stage.FREE.value,
                        callback_url=new.callback_url,
                        max_credits=new.max_credits,
                        columns=orjson.dumps(new.columns).decode(),
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(jobs.c.id)
                )
            ).scalar_one()
            total = invalid = 0
            async for batch in batches:
                values = []
                for row in batch:
                    total += 1
                    if row.domain is None:
                        invalid += 1
                    values.append(
                        {
                            "job_id": job_id,
                            "row_no": total,
                            "identity": row.identity,
                            "email": row.email,
                            "domain": row.domain,
                            "cells": orjson.dumps(row.cells, default=str).decode(),
                        }
                    )
                if values:
                    await conn.execute(rows.insert(), values)
            # Distinct addresses, each numbered by the row of its first occurrence.
            first = (
                sa.select(rows.c.identity, sa.func.min(rows.c.row_no).label("first"))
                .where(rows.c.job_id == job_id)
                .group_by(rows.c.identity)
                .subquery()
            )
            pick = sa.select(
                rows.c.job_id,
                rows.c.row_no,
                rows.c.identity,
                rows.c.email,
                rows.c.domain,
                sa.literal("pending"),
            ).select_from(
                rows.join(first, sa.and_(rows.c.row_no == first.c.first, rows.c.job_id == job_id))
            )
            await conn.execute(
                addresses.insert().from_select(
                    ["job_id", "seq", "identity", "email", "domain", "state"], pick
                )
            )
            distinct = await _scalar(
                conn, sa.select(sa.func.count()).where(addresses.c.job_id == job_id)
            )
            domains = await _scalar(
                conn,
                sa.select(sa.func.count(sa.distinct(addresses.c.domain))).where(
                    addresses.c.job_id == job_id, addresses.c.domain.is_not(None)
                ),
            )
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    number_of_total=total,
                    duplicates=total - distinct,
                    invalid_format=invalid,
                    distinct_total=distinct,
                    domains=domains,
                )
            )
            job = await self._get(conn, job_id)
            assert job is not None
            await self._notify(conn, job, now)
        self._changed()
        return job

    # Reading --------------------------------------------------------------------------------

    async def get(self, job_id: int, owner: str | None = None) -> Job | None:
        """The job, if it exists (and belongs to `owner` when given)."""
        async with self.engine.connect() as conn:
            job = await self._get(conn, job_id)
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    async def _get(self, conn: AsyncConnection, job_id: int) -> Job | None:
        row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().first()
        return None if row is None else _job(row)

    async def list_jobs(
        self, owner: str, *, page: int, per_page: int, kind: str = "batch"
    ) -> tuple[list[Job], int]:
        """The owner's jobs of `kind`, newest first, and how many there are."""
        mine = sa.and_(jobs.c.owner == owner, jobs.c.kind == kind)
        async with self.engine.connect() as conn:
            total = await _scalar(conn, sa.select(sa.func.count()).select_from(jobs).where(mine))
            found = (
                await conn.execute(
                    sa.select(jobs)
                    .where(mine)
                    .order_by(jobs.c.id.desc())
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                )
            ).mappings()
            return [_job(r) for r in found], total

    async def results(
        self, job_id: int, *, state: str | None, page: int, per_page: int
    ) -> tuple[list[tuple[int, str, dict[str, Any]]], int]:
        """One page of distinct addresses with their verdicts: (id, email, verdict)."""
        where = [addresses.c.job_id == job_id, addresses.c.state == "done"]
        if state is not None:
            where.append(addresses.c.verdict == state)
        async with self.engine.connect() as conn:
            count = await _scalar(conn, sa.select(sa.func.count()).where(*where))
            found = await conn.execute(
                sa.select(addresses.c.seq, addresses.c.email, addresses.c.result)
                .where(*where)
                .order_by(addresses.c.seq)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return [(r.seq, r.email, orjson.loads(r.result)) for r in found], count

    async def export(
        self, job_id: int, *, page: int = 2000
    ) -> AsyncIterator[tuple[list[Any], str, dict[str, Any] | None]]:
        """Every input row in order with its address and verdict, a page at a time."""
        after = 0
        while True:
            async with self.engine.connect() as conn:
                found = (
                    await conn.execute(
                        sa.select(rows.c.row_no, rows.c.cells, rows.c.email, addresses.c.result)
                        .select_from(
                            rows.outerjoin(
                                addresses,
                                sa.and_(
                                    addresses.c.job_id == rows.c.job_id,
                                    addresses.c.identity == rows.c.identity,
                                ),
                            )
                        )
                        .where(rows.c.job_id == job_id, rows.c.row_no > after)
                        .order_by(rows.c.row_no)
                        .limit(page)
                    )
                ).all()
            if not found:
                return
            for r in found:
                yield (
                    orjson.loads(r.cells),
                    r.email,
                    None if r.result is None else orjson.loads(r.result),
                )
            after = found[-1].row_no

    # Leases ---------------------------------------------------------------------------------

    async def claim(
        self, worker: str, ttl: float, *, job_id: int | None = None, kind: str = "batch"
    ) -> Job | None:
        """Take the oldest processing job of `kind` (or `job_id`) whose lease is free or ran
        out: each kind has its own workers, which never take another kind's jobs."""
        now = self.wall()
        free = sa.or_(jobs.c.lease_owner.is_(None), jobs.c.lease_until < now)
        if job_id is not None:
            ids = [job_id]
        else:
            async with self.engine.connect() as conn:
                candidates = (
                    await conn.execute(
                        sa.select(jobs.c.id)
                        .where(
                            jobs.c.kind == kind, jobs.c.status == JobStatus.PROCESSING.value, free
                        )
                        .order_by(jobs.c.id)
                        .limit(5)
                    )
                ).scalars()
                ids = list(candidates)
        for candidate in ids:
            async with self.engine.begin() as conn:
                taken = await conn.execute(
                    jobs.update()
                    .where(
                        jobs.c.id == candidate,
                        jobs.c.kind == kind,
                        jobs.c.status == JobStatus.PROCESSING.value,
                        free,
                    )
                    .values(lease_owner=worker, lease_until=now + ttl)
                )
                if taken.rowcount == 1:
                    return await self._get(conn, candidate)
        return None

    async def renew(self, job_id: int, worker: str, ttl: float) -> bool:
        """Extend our lease; False when it is no longer ours (taken over, deleted, ended)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == worker)
                .values(lease_until=self.wall() + ttl)
            )
            return done.rowcount == 1

    async def release(self, job_id: int, worker: str) -> None:
        """Hand the job back: any worker may take it at once."""
        async with self.engine.begin() as conn:
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == worker)
                .values(lease_owner=None, lease_until=None)
            )

    # Status ---------------------------------------------------------------------------------

    async def set_status(
        self,
        job_id: int,
        status: JobStatus,
        *,
        stage: Stage | None = None,
        error: str | None = None,
        max_credits: int | None = None,
        only_from: Iterable[JobStatus] | None = None,
        release_from: str | None = None,
    ) -> Job | None:
        """Change the status (and queue its webhook in the same transaction); None when the
        job is gone or was not in one of `only_from`."""
        now = self.wall()
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if stage is not None:
            values["stage"] = stage.value
        if error is not None:
            values["error"] = error
        if max_credits is not None:
            values["max_credits"] = max_credits
        if status.ended:
            values["ended_at"] = now
        if release_from is not None or status.ended:
            values["lease_owner"] = None
            values["lease_until"] = None
        where = [jobs.c.id == job_id]
        if only_from is not None:
            where.append(jobs.c.status.in_([s.value for s in only_from]))
        async with self.engine.begin() as conn:
            changed = await conn.execute(jobs.update().where(*where).values(**values))
            if changed.rowcount != 1:
                return None
            job = await self._get(conn, job_id)
            assert job is not None
            await self._notify(conn, job, now)
        self._changed()
        return job

    async def set_stage(self, job_id: int, stage: Stage, **counters: int) -> None:
        """Record that a stage is done (and the counters it settled)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(stage=stage.value, updated_at=self.wall(), **counters)
            )

    async def set_provider(self, job_id: int, provider: str) -> None:
        """Name the provider that is paid for this job's addresses."""
        async with self.engine.begin() as conn:
            await conn.execute(jobs.update().where(jobs.c.id == job_id).values(provider=provider))

    async def progress_note(self, job_id: int, every: float) -> bool:
        """Queue a progress webhook unless one went out less than `every` seconds ago."""
        now = self.wall()
        async with self.engine.begin() as conn:
            job = await self._get(conn, job_id)
            if job is None or job.callback_url is None:
                return False
            if job.notified_at is not None and now - job.notified_at < every:
                return False
            await self._notify(conn, job, now)
            return True

    async def _notify(self, conn: AsyncConnection, job: Job, now: float) -> None:
        if job.callback_url is None:
            return
        data = job.to_dict()
        if job.kind == "enrich":
            data["enrichment"] = await enrich_summary(conn, job.id)
        body = orjson.dumps({"event": f"{job.kind}.status", "data": data}).decode()
        await conn.execute(
            outbox.insert().values(
                job_id=job.id, url=job.callback_url, body=body, next_at=now, created_at=now
            )
        )
        await conn.execute(jobs.update().where(jobs.c.id == job.id).values(notified_at=now))

    async def delete(self, job_id: int) -> bool:
        """Delete the job and every address and row it holds (its queued webhooks stay)."""
        async with self.engine.begin() as conn:
            for table in (rows, addresses, bulk_lists, *ENRICH_TABLES):
                await conn.execute(table.delete().where(table.c.job_id == job_id))
            gone = await conn.execute(jobs.delete().where(jobs.c.id == job_id))
        if gone.rowcount == 1:
            self._changed()
        return gone.rowcount == 1

    async def expired(self, retention: float) -> list[int]:
        """Ids of jobs that ended more than `retention` seconds ago."""
        cutoff = self.wall() - retention
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(jobs.c.id).where(jobs.c.ended_at.is_not(None), jobs.c.ended_at < cutoff)
            )
            return list(found.scalars())

    async def counts_by_status(self) -> dict[tuple[str, str], int]:
        """(kind, status) -> jobs, for the gauge."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(jobs.c.kind, jobs.c.status, sa.func.count()).group_by(
                    jobs.c.kind, jobs.c.status
                )
            )
            return {(r[0], r[1]): int(r[2]) for r in found}

    # Work on addresses ----------------------------------------------------------------------

    async def work(
        self,
        job_id: int,
        *,
        states: Sequence[str],
        after: tuple[str, int] | None = None,
        invalid: bool = False,
        limit: int = 1000,
    ) -> list[WorkAddress]:
        """Addresses in `states` by seq (`invalid`: only those with bad syntax); with `after` =
        (domain, seq), those with a domain ordered by domain (one domain's addresses together,
        for the free stage) and seq, after that key."""
        columns = (
            addresses.c.seq,
            addresses.c.email,
            addresses.c.domain,
            addresses.c.state,
            addresses.c.mail,
            addresses.c.mx,
            addresses.c.bulk_list,
        )
        where = [addresses.c.job_id == job_id, addresses.c.state.in_(list(states))]
        if invalid:
            where.append(addresses.c.domain.is_(None))
        if after is None:
            query = sa.select(*columns).where(*where).order_by(addresses.c.seq)
        else:
            # Keyset over the (job, state, domain, seq) index: no sort, whatever the size.
            domain = addresses.c.domain
            d, s = after
            query = (
                sa.select(*columns)
                .where(*where, sa.or_(domain > d, sa.and_(domain == d, addresses.c.seq > s)))
                .order_by(domain, addresses.c.seq)
            )
        async with self.engine.connect() as conn:
            found = await conn.execute(query.limit(limit))
            return [WorkAddress(*r) for r in found]

    async def count(self, job_id: int, state: str) -> int:
        """Distinct addresses of the job in `state`."""
        async with self.engine.connect() as conn:
            return await _scalar(
                conn,
                sa.select(sa.func.count()).where(
                    addresses.c.job_id == job_id, addresses.c.state == state
                ),
            )

    async def answer(self, job_id: int, answers: Sequence[Answer]) -> None:
        """Store verdicts and add them to the job's counters, in one transaction."""
        if not answers:
            return
        async with self.engine.begin() as conn:
            # Only what is not answered yet counts: a resumed worker may answer twice.
            open_seqs = set(
                (
                    await conn.execute(
                        sa.select(addresses.c.seq).where(
                            addresses.c.job_id == job_id,
                            addresses.c.seq.in_([a.seq for a in answers]),
                            addresses.c.state != "done",
                        )
                    )
                ).scalars()
            )
            answers = [a for a in answers if a.seq in open_seqs]
            if not answers:
                return
            counts = dict.fromkeys(STATES, 0)
            paid = 0
            for a in answers:
                counts[a.state] += 1
                paid += a.paid
            await conn.execute(
                addresses.update().where(
                    addresses.c.job_id == job_id,
                    addresses.c.seq == sa.bindparam("b_seq"),
                    addresses.c.state != "done",
                ),
                [
                    {
                        "b_seq": a.seq,
                        "state": "done",
                        "stage": a.stage,
                        "verdict": a.state,
                        "result": orjson.dumps(a.result).decode(),
                    }
                    for a in answers
                ],
            )
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    processed=jobs.c.processed + len(answers),
                    credits_spent=jobs.c.credits_spent + paid,
                    updated_at=self.wall(),
                    **{s: getattr(jobs.c, s) + n for s, n in counts.items() if n},
                )
            )

    async def mark_dns(self, job_id: int, facts: Sequence[tuple[int, str, str | None]]) -> None:
        """Remember what DNS said for addresses left for a provider: (seq, status, mx)."""
        if not facts:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                addresses.update().where(
                    addresses.c.job_id == job_id, addresses.c.seq == sa.bindparam("b_seq")
                ),
                [{"b_seq": seq, "mail": status, "mx": mx} for seq, status, mx in facts],
            )

    async def mark_sent(self, job_id: int, seqs: Sequence[int], bulk_list: int | None) -> None:
        """Record, before any provider hears of them, that these addresses are being sent."""
        await self._move(
            job_id, seqs, "pending", state="sent", sent_at=self.wall(), bulk_list=bulk_list
        )

    async def unsend(self, job_id: int, seqs: Sequence[int]) -> None:
        """Addresses that no provider was asked about after all go back to pending."""
        await self._move(job_id, seqs, "sent", state="pending", sent_at=None, bulk_list=None)

    async def _move(self, job_id: int, seqs: Sequence[int], from_state: str, **values: Any) -> None:
        """Set `values` on those of `seqs` still in `from_state`, in one transaction."""
        if not seqs:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                addresses.update()
                .where(
                    addresses.c.job_id == job_id,
                    addresses.c.seq.in_(list(seqs)),
                    addresses.c.state == from_state,
                )
                .values(**values)
            )

    # Bulk lists -----------------------------------------------------------------------------

    async def new_list(self, job_id: int, provider: str) -> int:
        """A bulk list about to be uploaded (its addresses are marked sent with it)."""
        async with self.engine.begin() as conn:
            return int(
                (
                    await conn.execute(
                        bulk_lists.insert()
                        .values(
                            job_id=job_id,
                            provider=provider,
                            status="uploading",
                            created_at=self.wall(),
                        )
                        .returning(bulk_lists.c.id)
                    )
                ).scalar_one()
            )

    async def set_list(self, list_row: int, status: str, list_id: str | None = None) -> None:
        """Record where a bulk list stands (the provider's id as soon as it is known)."""
        values: dict[str, Any] = {"status": status}
        if list_id is not None:
            values["list_id"] = list_id
        async with self.engine.begin() as conn:
            await conn.execute(
                bulk_lists.update().where(bulk_lists.c.id == list_row).values(values)
            )

    async def lists(self, job_id: int) -> list[BulkList]:
        """The job's bulk lists, oldest first."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(
                    bulk_lists.c.id,
                    bulk_lists.c.job_id,
                    bulk_lists.c.provider,
                    bulk_lists.c.list_id,
                    bulk_lists.c.status,
                )
                .where(bulk_lists.c.job_id == job_id)
                .order_by(bulk_lists.c.id)
            )
            return [BulkList(*r) for r in found]

    async def list_addresses(self, job_id: int, list_row: int) -> list[WorkAddress]:
        """The addresses sent in one bulk list that are not answered yet."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(
                    addresses.c.seq,
                    addresses.c.email,
                    addresses.c.domain,
                    addresses.c.state,
                    addresses.c.mail,
                    addresses.c.mx,
                    addresses.c.bulk_list,
                ).where(
                    addresses.c.job_id == job_id,
                    addresses.c.bulk_list == list_row,
                    addresses.c.state == "sent",
                )
            )
            return [WorkAddress(*r) for r in found]

    # Webhook outbox -------------------------------------------------------------------------

    async def due_deliveries(self, limit: int = 20) -> list[Delivery]:
        """The oldest undelivered webhook of each job, when its time has come (in order per
        job: a later one waits for the earlier)."""
        now = self.wall()
        oldest = (
            sa.select(sa.func.min(outbox.c.id))
            .where(outbox.c.outcome.is_(None))
            .group_by(outbox.c.job_id)
            .scalar_subquery()
        )
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(
                    outbox.c.id,
                    outbox.c.job_id,
                    outbox.c.url,
                    outbox.c.body,
                    outbox.c.attempts,
                    outbox.c.created_at,
                )
                .where(outbox.c.id.in_(oldest), outbox.c.next_at <= now)
                .order_by(outbox.c.next_at)
                .limit(limit)
            )
            return [Delivery(r[0], r[1], r[2], r[3].encode(), r[4], r[5]) for r in found]

    async def delivered(self, delivery_id: int, outcome: str) -> None:
        """A webhook is done with: `delivered` or `gave_up`."""
        async with self.engine.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == delivery_id)
                .values(outcome=outcome, done_at=self.wall())
            )

    async def retry_later(self, delivery_id: int, delay: float) -> None:
        """A failed attempt: try again after `delay` seconds."""
        async with self.engine.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == delivery_id)
                .values(attempts=outbox.c.attempts + 1, next_at=self.wall() + delay)
            )

    async def prune_outbox(self, retention: float) -> None:
        """Forget webhooks that ended more than `retention` seconds ago."""
        async with self.engine.begin() as conn:
            await conn.execute(
                outbox.delete().where(
                    outbox.c.done_at.is_not(None), outbox.c.done_at < self.wall() - retention
                )
            )


async def enrich_summary(conn: AsyncConnection, job_id: int) -> dict[str, Any]:
    """An enrichment job's own part of JOB: its type and what was found so far."""
    row = (
        (await conn.execute(sa.select(enrich_jobs).where(enrich_jobs.c.job_id == job_id)))
        .mappings()
        .first()
    )
    if row is None:
        return {}
    return {"enrichment_type": row["enrichment_type"], **{c: row[c] for c in ENRICH_COUNTERS}}


async def _scalar(conn: AsyncConnection, query: Any) -> int:
    return int((await conn.execute(query)).scalar_one())


def _job(r: Any) -> Job:
    return Job(
        id=r["id"],
        owner=r["owner"],
        kind=r["kind"],
        name=r["name"],
        context=r["context"],
        sandbox=bool(r["sandbox"]),
        status=JobStatus(r["status"]),
        stage=Stage(r["stage"]),
        callback_url=r["callback_url"],
        max_credits=r["max_credits"],
        number_of_total=r["number_of_total"],
        duplicates=r["duplicates"],
        invalid_format=r["invalid_format"],
        domains=r["domains"],
        distinct_total=r["distinct_total"],
        billable=r["billable"],
        credits_spent=r["credits_spent"],
        processed=r["processed"],
        counts={s: r[s] for s in STATES},
        provider=r["provider"],
        error=r["error"],
        columns=orjson.loads(r["columns"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        ended_at=r["ended_at"],
        notified_at=r["notified_at"],
    )


@contextlib.asynccontextmanager
async def open_store(
    database_url: str | None, data_dir: Path, *, wall: Wall = time.time
) -> AsyncIterator[JobStore]:
    """A migrated store (SQLite in `data_dir`, created if missing, or PostgreSQL)."""
    if not database_url:
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    store = JobStore(make_engine(engine_url(database_url, data_dir)), wall=wall)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()
