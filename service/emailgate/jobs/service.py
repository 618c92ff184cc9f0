"""Jobs in a running service: the store, the worker, the webhook outbox and retention, started
with the app and stopped with it (the job in hand goes back to the store)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from emailgate.bulk.base import BulkProvider
from emailgate.config import Settings
from emailgate.enrich.cleanlist import CleanlistClient
from emailgate.enrich.engine import FIRST_POLL, POLL_EVERY
from emailgate.jobs.enrich_runner import EnrichRunner
from emailgate.jobs.listhooks import relay
from emailgate.jobs.model import JobStatus
from emailgate.jobs.offload import IngestPool
from emailgate.jobs.runner import Runner, SpareSource
from emailgate.jobs.store import JobStore, open_store
from emailgate.jobs.webhooks import Deliverer
from emailgate.metrics import JOB_STATUSES, Metrics
from emailgate.verify.pipeline import Verifier

log = logging.getLogger("emailgate.jobs")

JOB_KINDS = ("batch", "enrich")
HOUSEKEEPING = 30.0  # seconds between retention passes and gauge refreshes
WORKED_BY = {"inline": "worked here", "process": "worked in a child (emailgate worker)",
             "off": "worked by an emailgate worker elsewhere"}  # fmt: skip
GAUGE_SETTLE = 0.2  # seconds: status changes this close together make one gauge refresh


@dataclass
class Jobs:
    """What the HTTP layer and the CLI use: the store, and a way to wake the worker."""

    store: JobStore
    runner: Runner
    deliverer: Deliverer
    settings: Settings
    metrics: Metrics
    enricher: EnrichRunner | None = None
    """The enrichment worker (None when this process does not work jobs)."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ingest: IngestPool | None = None
    """Uploads are read and stored by a child process (EMAILGATE_JOB_WORKER=process)."""
    gauge_stale: asyncio.Event = field(default_factory=asyncio.Event)
    redis: aioredis.Redis | None = None
    """Carries bulk webhooks' wake-ups to whichever process works the job (listhooks.py)."""

    def describe(self) -> str:
        """One line for the start-up log (no secret: the database URL is not shown)."""
        where = (
            "PostgreSQL (EMAILGATE_DATABASE_URL)"
            if self.store.dialect == "postgresql"
            else f"SQLite in {self.settings.data_dir}"
        )
        bulk = ", ".join(p.name for p in self.runner.bulk) or "none"
        chain = "spare slots of the real-time chain" if self.runner.chain else "no real-time chain"
        runs = WORKED_BY[self.settings.job_worker]
        return f"store {where}; bulk providers: {bulk}; then {chain}; jobs {runs}"

    def wake(self) -> None:
        """A job was added or approved: look for work now."""
        self.runner.wake.set()

    def wake_enricher(self) -> None:
        """An enrichment job was added: look for work now."""
        if self.enricher is not None:
            self.enricher.wake.set()

    async def refresh_gauge(self) -> None:
        """`emailgate_jobs{kind,status}` from the store (shared by every replica)."""
        counts = await self.store.counts_by_status()
        for kind in JOB_KINDS:
            for status in JOB_STATUSES:
                self.metrics.jobs.labels(kind, status).set(counts.get((kind, status), 0))

    async def cancel(self, job_id: int) -> bool:
        """Cancel (a webhook says so) and delete the job with every address it holds."""
        await self.store.set_status(
            job_id,
            JobStatus.CANCELLED,
            only_from=[JobStatus.PROCESSING, JobStatus.WAITING_APPROVAL],
        )
        return await self.store.delete(job_id)

    async def housekeeping(self) -> None:
        """Delete jobs past retention, forget old webhooks, refresh the gauge."""
        for job_id in await self.store.expired(self.settings.job_retention):
            await self.store.delete(job_id)
        await self.store.prune_outbox(self.settings.job_retention)
        await self.refresh_gauge()


@contextlib.asynccontextmanager
async def open_jobs(
    settings: Settings,
    *,
    verifier: Verifier,
    metrics: Metrics,
    chain: SpareSource | None,
    bulk: Sequence[BulkProvider] = (),
    enrichment: CleanlistClient | None = None,
    work: bool = True,
    run_jobs: bool = True,
    upkeep: bool = True,
    ingest_in_child: bool = False,
    wall: Callable[[], float] = time.time,
    redis: aioredis.Redis | None = None,
) -> AsyncIterator[Jobs]:
    """The store (migrated) and, with `work`, the loops: the worker (unless not `run_jobs`:
    another process works the jobs), the webhook outbox and housekeeping (unless not `upkeep`:
    `emailgate worker` leaves them to the service)."""
    url = settings.database_url.reveal() if settings.database_url is not None else None
    async with open_store(url, settings.data_dir, wall=wall) as store:
        lease = settings.job_lease_s
        runner = Runner(
            store, verifier, metrics=metrics, chain=chain, bulk=bulk,
            lease_ttl=lease, heartbeat=lease / 6, realtime_max=settings.batch_realtime_max,
        )  # fmt: skip
        secret = settings.webhook_secret.reveal() if settings.webhook_secret else None
        deliverer = Deliverer(
            store,
            secret=secret,
            metrics=metrics,
            allow_private=settings.webhook_allow_private,
            wall=wall,
        )
        # Polls keep the provider's advised cadence (5 s a minute window), scaled with the window.
        scale = settings.cleanlist_rate.period / 60.0
        enricher = EnrichRunner(
            store, verifier, metrics=metrics, client=enrichment, lease_ttl=lease,
            heartbeat=lease / 6, webhook_url=provider_hook_url(settings),
            poll_every=POLL_EVERY * scale, first_poll=FIRST_POLL * scale,
        )  # fmt: skip
        jobs = Jobs(store, runner, deliverer, settings, metrics, enricher=enricher, redis=redis)
        if ingest_in_child:
            jobs.ingest = IngestPool(url, settings.data_dir)
        # This replica's status changes show in the gauge at once; other replicas' (PostgreSQL)
        # within HOUSEKEEPING seconds.
        store.on_change = jobs.gauge_stale.set
        jobs.tasks.append(asyncio.create_task(_gauge(jobs, runner.stopping), name="jobs-gauge"))
        if work and run_jobs:
            jobs.tasks += [
                asyncio.create_task(runner.run_forever(), name="jobs-runner"),
                asyncio.create_task(enricher.run_forever(), name="jobs-enricher"),
            ]
            if redis is not None:  # bulk webhooks received by any replica or process
                jobs.tasks.append(asyncio.create_task(
                    relay(redis, runner.wakeups, runner.stopping), name="jobs-bulk-wakeups"
                ))  # fmt: skip
        if work and upkeep:
            jobs.tasks += [
                asyncio.create_task(deliverer.run_forever(), name="jobs-webhooks"),
                asyncio.create_task(_housekeeping(jobs, runner.stopping), name="jobs-retention"),
            ]
        try:
            yield jobs
        finally:
            if jobs.ingest is not None:
                jobs.ingest.close()
            store.on_change = None
            runner.stop()
            enricher.stop()
            deliverer.stop()
            for task in jobs.tasks:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, settings.shutdown_timeout_s)


HOOK_PATH = "/hooks/cleanlist/{token}"


def provider_hook_token(settings: Settings) -> str | None:
    """The secret last part of the callback path: only Cleanlist.ai (told it with each
    request) knows it. Derived from the provider key, so every replica agrees, across restarts."""
    key = settings.cleanlist_api_key
    if key is None:
        return None
    return hmac.new(key.reveal().encode(), b"emailgate cleanlist webhook", "sha256").hexdigest()[
        :32
    ]


def provider_hook_url(settings: Settings) -> str | None:
    """The webhook Cleanlist.ai is given with each request (None: polling only)."""
    token = provider_hook_token(settings)
    if settings.cleanlist_webhook_url is None or token is None:
        return None
    return f"{settings.cleanlist_webhook_url}/{token}"


async def _housekeeping(jobs: Jobs, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await jobs.housekeeping()
        except Exception:
            log.exception("job housekeeping failed", extra={"event": "jobs_housekeeping"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), HOUSEKEEPING)


async def _gauge(jobs: Jobs, stopping: asyncio.Event) -> None:
    """Refresh the jobs gauge whenever a job of this replica changes status."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_either(jobs.gauge_stale, stopping), HOUSEKEEPING)
        if stopping.is_set():
            return
        jobs.gauge_stale.clear()
        try:
            await jobs.refresh_gauge()
        except Exception:
            log.warning("jobs gauge refresh failed", extra={"event": "jobs_gauge_failed"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), GAUGE_SETTLE)


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    waits = {asyncio.create_task(a.wait()), asyncio.create_task(b.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
