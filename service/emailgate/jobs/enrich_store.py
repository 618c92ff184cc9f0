"""The job store's part for contact enrichment (jobs of kind `enrich`): the job with its contacts
and its requests of at most 250 in one transaction, each request's state as it goes (`sending`
written before the request is sent, the workflow id as soon as it is known), and each request's
rows with the job's counters in one transaction once its workflow ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from emailgate.enrich.cleanlist import MAX_CONTACTS, Contact
from emailgate.jobs.model import STATES, Job, JobStatus, Stage
from emailgate.jobs.schema import enrich_contacts, enrich_jobs, enrich_requests, jobs
from emailgate.jobs.store import ENRICH_COUNTERS, INSERT_BATCH, JobStore, enrich_summary

OUTCOMES = ("found", "not_found", "failed")


@dataclass(frozen=True, slots=True)
class NewEnrichJob:
    """What `POST /api/v1/enrich` asks for."""

    owner: str
    name: str
    context: str
    sandbox: bool
    callback_url: str | None
    enrichment_type: str
    contacts: Sequence[Contact]
    provider: str


@dataclass(frozen=True, slots=True)
class Request:
    """One request of at most 250 consecutive contacts, as stored."""

    number: int
    start: int
    size: int
    state: str
    workflow_id: str | None
    task_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact's outcome, ready to store: `row` is what the API shows for it."""

    index: int
    outcome: str
    row: dict[str, Any]
    state: str | None = None
    """The verify RESULT's state of a found email (for the job's `counts`)."""
    email: bool = False
    rejected: bool = False
    phones: int = 0
    credits: int = 0


class EnrichStore:
    """Every read and write of enrichment jobs, on the job store's engine."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.engine = store.engine

    async def create(self, new: NewEnrichJob, *, size: int = MAX_CONTACTS) -> Job:
        """Store the job, its contacts and its requests in one transaction: all or nothing."""
        now = self.store.wall()
        n = len(new.contacts)
        async with self.engine.begin() as conn:
            job_id = (
                await conn.execute(
                    jobs.insert()
                    .values(
                        owner=new.owner,
                        kind="enrich",
                        name=new.name,
                        context=new.context,
                        sandbox=new.sandbox,
                        status=JobStatus.PROCESSING.value,
                        stage=Stage.PAYING.value,
                        callback_url=new.callback_url,
                        number_of_total=n,
                        distinct_total=n,
                        billable=n,
                        provider=new.provider,
                        columns="[]",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(jobs.c.id)
                )
            ).scalar_one()
            await conn.execute(
                enrich_jobs.insert().values(job_id=job_id, enrichment_type=new.enrichment_type)
            )
            for first in range(0, n, INSERT_BATCH):
                await conn.execute(
                    enrich_contacts.insert(),
                    [
                        {
                            "job_id": job_id,
                            "idx": i,
                            "contact": orjson.dumps(new.contacts[i].to_json()).decode(),
                        }
                        for i in range(first, min(n, first + INSERT_BATCH))
                    ],
                )
            await conn.execute(
                enrich_requests.insert(),
                [
                    {
                        "job_id": job_id,
                        "number": k,
                        "start": start,
                        "size": min(size, n - start),
                        "state": "pending",
                    }
                    for k, start in enumerate(range(0, n, size))
                ],
            )
            job = await self.store._get(conn, job_id)
            assert job is not None
            await self.store._notify(conn, job, now)
        self.store._changed()
        return job

    async def enrichment_type(self, job_id: int) -> str | None:
        """The job's `enrichment_type` (None when the job is gone)."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(enrich_jobs.c.enrichment_type).where(enrich_jobs.c.job_id == job_id)
            )
            value = found.scalar_one_or_none()
            return None if value is None else str(value)

    async def summary(self, job_id: int) -> dict[str, Any]:
        """The job's `enrichment` object: its type and what was found so far."""
        async with self.engine.connect() as conn:
            return await enrich_summary(conn, job_id)

    async def contacts(self, job_id: int) -> list[Contact]:
        """The job's contacts, in order."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(enrich_contacts.c.contact)
                .where(enrich_contacts.c.job_id == job_id)
                .order_by(enrich_contacts.c.idx)
            )
            return [Contact(**orjson.loads(c)) for c in found.scalars()]

    async def requests(self, job_id: int) -> list[Request]:
        """The job's requests, in order."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(enrich_requests)
                .where(enrich_requests.c.job_id == job_id)
                .order_by(enrich_requests.c.number)
            )
            return [
                Request(
                    r.number,
                    r.start,
                    r.size,
                    r.state,
                    r.workflow_id,
                    tuple(orjson.loads(r.task_ids)) if r.task_ids else (),
                )
                for r in found
            ]

    async def sending(self, job_id: int, number: int) -> None:
        """Written before the request goes: a request found `sending` is never sent again."""
        await self._set(job_id, number, {"state": "sending", "sent_at": self.store.wall()},
                        only_from="pending")  # fmt: skip

    async def sent(
        self, job_id: int, number: int, workflow_id: str, task_ids: Sequence[str]
    ) -> None:
        """The provider's workflow id (and task ids), stored before anyone waits on them."""
        values = {"state": "sent", "workflow_id": workflow_id,
                  "task_ids": orjson.dumps(list(task_ids)).decode()}  # fmt: skip
        await self._set(job_id, number, values)

    async def _set(
        self, job_id: int, number: int, values: dict[str, Any], only_from: str | None = None
    ) -> None:
        where = [enrich_requests.c.job_id == job_id, enrich_requests.c.number == number]
        if only_from is not None:
            where.append(enrich_requests.c.state == only_from)
        async with self.engine.begin() as conn:
            await conn.execute(enrich_requests.update().where(*where).values(**values))

    async def finished(
        self, job_id: int, number: int | None, rows: Sequence[ContactRow], *, state: str = "done"
    ) -> int:
        """Store rows and add them to the job's counters, in one transaction; the request
        (`number`) ends in `state`. Contacts that already have an outcome keep it (a resumed
        worker may finish a request twice): the number of rows stored."""
        async with self.engine.begin() as conn:
            if number is not None:
                await conn.execute(
                    enrich_requests.update()
                    .where(enrich_requests.c.job_id == job_id, enrich_requests.c.number == number)
                    .values(state=state)
                )
            if not rows:
                return 0
            open_idx = set(
                (
                    await conn.execute(
                        sa.select(enrich_contacts.c.idx).where(
                            enrich_contacts.c.job_id == job_id,
                            enrich_contacts.c.idx.in_([r.index for r in rows]),
                            enrich_contacts.c.outcome.is_(None),
                        )
                    )
                ).scalars()
            )
            rows = [r for r in rows if r.index in open_idx]
            if not rows:
                return 0
            await conn.execute(
                enrich_contacts.update().where(
                    enrich_contacts.c.job_id == job_id,
                    enrich_contacts.c.idx == sa.bindparam("b_idx"),
                    enrich_contacts.c.outcome.is_(None),
                ),
                [
                    {"b_idx": r.index, "outcome": r.outcome, "row": orjson.dumps(r.row).decode()}
                    for r in rows
                ],
            )
            counters = dict.fromkeys(ENRICH_COUNTERS, 0)
            states = dict.fromkeys(STATES, 0)
            credits = 0
            for r in rows:
                counters[r.outcome] += 1
                counters["emails_found"] += r.email
                counters["emails_rejected"] += r.rejected
                counters["phones_found"] += r.phones
                credits += r.credits
                if r.state in states:
                    states[r.state] += 1
            await conn.execute(
                enrich_jobs.update()
                .where(enrich_jobs.c.job_id == job_id)
                .values(**{c: getattr(enrich_jobs.c, c) + n for c, n in counters.items() if n})
            )
            await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    processed=jobs.c.processed + len(rows),
                    credits_spent=jobs.c.credits_spent + credits,
                    updated_at=self.store.wall(),
                    **{s: getattr(jobs.c, s) + n for s, n in states.items() if n},
                )
            )
            return len(rows)

    async def open_contacts(self, job_id: int) -> list[int]:
        """Indexes of the contacts without an outcome yet."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                sa.select(enrich_contacts.c.idx)
                .where(enrich_contacts.c.job_id == job_id, enrich_contacts.c.outcome.is_(None))
                .order_by(enrich_contacts.c.idx)
            )
            return list(found.scalars())

    async def page(
        self, job_id: int, *, page: int, per_page: int, outcome: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of contacts with an outcome, in input order, and how many there are."""
        where = [enrich_contacts.c.job_id == job_id, enrich_contacts.c.outcome.is_not(None)]
        if outcome is not None:
            where.append(enrich_contacts.c.outcome == outcome)
        async with self.engine.connect() as conn:
            count = int((await conn.execute(sa.select(sa.func.count()).where(*where))).scalar_one())
            found = await conn.execute(
                sa.select(enrich_contacts.c.row)
                .where(*where)
                .order_by(enrich_contacts.c.idx)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return [orjson.loads(r) for r in found.scalars()], count
