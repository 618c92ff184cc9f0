"""The enrichment worker: takes jobs of kind `enrich` under a lease and runs the enrichment
engine on them, with the job store as its ledger.

    resume   requests `sending` without a workflow id (the worker died while sending): their
             contacts fail, never sent again; requests `sent`: their stored workflow is polled
    engine   requests of ≤ 250 submitted (recorded `sending` first, the workflow id stored at
             once), polled, every found email verified in the background lane, rows stored
    end      processed (or failed: no credits, key refused, with every contact left failed)

A worker that dies is replaced by another after the lease runs out; it polls the stored
workflows and never submits a request twice. Batch workers never take these jobs, nor the
reverse (the store's claim is by kind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emailgate.clock import Clock, monotonic
from emailgate.enrich.cleanlist import CleanlistClient, Contact, Submission, WorkflowStatus
from emailgate.enrich.engine import (
    FIRST_POLL,
    POLL_EVERY,
    Chunk,
    Enricher,
    EnrichSource,
    JobFailed,
    Row,
)
from emailgate.enrich.sandbox import SandboxSource
from emailgate.jobs.enrich_store import OUTCOMES, ContactRow, EnrichStore
from emailgate.jobs.lease import HEARTBEAT, LEASE_TTL, LeasedRun, LeaseWorker
from emailgate.jobs.model import Job, JobStatus, Stage
from emailgate.jobs.runner import PROGRESS_EVERY
from emailgate.jobs.store import JobStore
from emailgate.metrics import Metrics
from emailgate.verify.pipeline import Verifier

log = logging.getLogger("emailgate.jobs")

LOST = "sent to the provider without an answer before a restart; not sent again (no double pay)"
PHONE_CREDITS = 10  # Cleanlist.ai's price of a phone found; an email costs 1


@dataclass
class _Run(LeasedRun):
    engine: Enricher | None = None


@dataclass
class _Ledger:
    """The engine's ledger on the store: every step recorded before the next."""

    runner: EnrichRunner
    run: _Run
    contacts: Sequence[Contact]

    async def submitting(self, chunk: Chunk) -> None:
        self.runner._check(self.run)
        await self.runner.enrich.sending(self.run.job.id, chunk.number)

    async def submitted(self, chunk: Chunk) -> None:
        assert chunk.workflow_id is not None
        await self.runner.enrich.sent(
            self.run.job.id, chunk.number, chunk.workflow_id, chunk.task_ids
        )

    async def finished(self, chunk: Chunk, rows: list[Row]) -> None:
        await self.runner._store_rows(self.run.job, chunk.number, rows, self.contacts)


class EnrichRunner(LeaseWorker[_Run]):
    """Works enrichment jobs from the store, one at a time, until stopped."""

    kind = "enrich"

    def __init__(
        self,
        store: JobStore,
        verifier: Verifier,
        *,
        metrics: Metrics,
        client: CleanlistClient | None,
        worker: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Clock = monotonic,
        lease_ttl: float = LEASE_TTL,
        heartbeat: float = HEARTBEAT,
        poll_every: float = POLL_EVERY,
        first_poll: float = FIRST_POLL,
        webhook_url: str | None = None,
    ) -> None:
        super().__init__(store, worker=worker, sleep=sleep, clock=clock, lease_ttl=lease_ttl,
                         heartbeat=heartbeat)  # fmt: skip
        self.enrich = EnrichStore(store)
        self.verifier = verifier
        self.metrics = metrics
        self.client = client
        """None when enrichment is off here: only sandbox jobs can run."""
        self.poll_every = poll_every
        self.first_poll = first_poll
        self.webhook_url = webhook_url
        """Where Cleanlist.ai calls back when a workflow ends (a wake-up for polling)."""

    def workflow_done(self, workflow_id: str) -> bool:
        """The provider's webhook: poll that workflow now, if this worker waits on it."""
        run = self._run
        return run is not None and run.engine is not None and run.engine.wake(workflow_id)

    def _new_run(self, job: Job) -> _Run:
        return _Run(job)

    def _checked_sleep(self, run: _Run) -> Callable[[float], Awaitable[None]]:
        """The engine's sleep: leaves at once on shutdown or a lost lease."""

        async def sleep(seconds: float) -> None:
            end = self.clock() + max(0.0, seconds)
            while True:
                self._check(run)
                left = end - self.clock()
                if left <= 0:
                    return
                await self.sleep(min(0.2, left))

        return sleep

    # One job ----------------------------------------------------------------------------------

    async def _work(self, run: _Run) -> None:
        job = run.job
        kind = await self.enrich.enrichment_type(job.id)
        if kind is None:
            return  # deleted meanwhile
        contacts = await self.enrich.contacts(job.id)
        source = self._source(job)
        if source is None:
            await self._fail(job, contacts, "enrichment is off on this replica "
                             "(no valid EMAILGATE_CLEANLIST_API_KEY)")  # fmt: skip
            return
        chunks: list[Chunk] = []
        for req in await self.enrich.requests(job.id):
            part = list(contacts[req.start : req.start + req.size])
            chunk = Chunk(req.number, req.start, part, req.workflow_id, req.task_ids)
            if req.state in ("done", "lost"):
                continue
            if req.state == "sending" and req.workflow_id is None:
                # The worker died between recording the request and storing its workflow id:
                # it may have reached the provider. Its contacts fail; it is never resent.
                await self._store_rows(job, req.number, _failed(chunk, LOST), contacts, "lost")
                continue
            if isinstance(source, SandboxSource) and req.workflow_id is not None:
                source.remember(req.workflow_id, part, kind)
            chunks.append(chunk)
        engine = Enricher(
            source, self.verifier, self.metrics.enrich, context=job.context,
            sandbox=job.sandbox, poll_every=self.poll_every, first_poll=self.first_poll,
            clock=self.clock, sleep=self._checked_sleep(run),
        )  # fmt: skip
        run.engine = engine
        self._check(run)
        try:
            await engine.run(chunks, kind, _Ledger(self, run, contacts))
        except JobFailed as e:
            await self._fail(job, contacts, str(e))
            return
        self._check(run)
        await self.store.set_status(
            job.id, JobStatus.PROCESSED, stage=Stage.DONE, only_from=[JobStatus.PROCESSING]
        )
        log.info("enrichment job processed", extra={"event": "job_processed", "job": job.id})

    def _source(self, job: Job) -> EnrichSource | None:
        if job.sandbox:
            return SandboxSource()
        if self.client is None:
            return None
        if self.webhook_url is None:
            return self.client
        return _Hooked(self.client, self.webhook_url)

    async def _fail(self, job: Job, contacts: Sequence[Contact], why: str) -> None:
        """The job cannot go on: every contact without an outcome fails with `why`."""
        open_idx = await self.enrich.open_contacts(job.id)
        rows = [Row(i, "failed", error=why) for i in open_idx]
        await self._store_rows(job, None, rows, contacts)
        await self.store.set_status(
            job.id, JobStatus.FAILED, stage=Stage.DONE, error=why,
            only_from=[JobStatus.PROCESSING],
        )  # fmt: skip
        log.warning("enrichment job failed",
                    extra={"event": "job_failed", "job": job.id, "error": why})  # fmt: skip

    async def _store_rows(
        self,
        job: Job,
        number: int | None,
        rows: Sequence[Row],
        contacts: Sequence[Contact],
        state: str = "done",
    ) -> None:
        stored = [self._contact_row(job, r, contacts[r.index]) for r in rows]
        await self.enrich.finished(job.id, number, stored, state=state)
        for r in rows:
            if r.result is not None:
                self.metrics.job_addresses.labels("enrich", _stage(r.result)).inc()
        if job.callback_url is not None:
            await self.store.progress_note(job.id, PROGRESS_EVERY)

    @staticmethod
    def _contact_row(job: Job, r: Row, contact: Contact) -> ContactRow:
        assert r.status in OUTCOMES
        paid = r.status == "found" and not job.sandbox
        credits = ((r.email is not None) + PHONE_CREDITS * len(r.phones)) if paid else 0
        state = None if r.result is None else str(r.result.get("state"))
        return ContactRow(r.index, r.status, r.to_json(contact), state, r.email is not None,
                          r.rejected, len(r.phones), credits)  # fmt: skip


class _Hooked:
    """The client with the provider's webhook named in every submission."""

    name = "cleanlist"

    def __init__(self, client: CleanlistClient, webhook_url: str) -> None:
        self.client = client
        self.webhook_url = webhook_url

    async def submit(self, contacts: Sequence[Contact], enrichment_type: str) -> Submission:
        return await self.client.submit(contacts, enrichment_type, webhook_url=self.webhook_url)

    async def status(self, workflow_id: str) -> WorkflowStatus:
        return await self.client.status(workflow_id)


def _failed(chunk: Chunk, why: str) -> list[Row]:
    return [Row(chunk.start + i, "failed", error=why) for i in range(len(chunk.contacts))]


def _stage(result: dict[str, Any]) -> str:
    """`emailgate_job_addresses_total{stage}` of a found email's RESULT."""
    if result.get("cached"):
        return "cached"
    return "local" if result.get("source") in ("local", "sandbox") else "provider"


__all__ = ["EnrichRunner"]
