"""Retention: a job and every address it holds are deleted EMAILGATE_JOB_RETENTION after it
ended; running jobs and recent ones stay; the jobs gauge follows the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from emailgate.config import Settings
from emailgate.jobs import schema
from emailgate.jobs.ingest import list_batches
from emailgate.jobs.model import JobStatus
from emailgate.jobs.service import open_jobs
from emailgate.jobs.store import NewJob
from emailgate.metrics import Metrics
from emailgate.services import open_services
from tests.fakes.dns_server import DNSServer


async def test_retention_deletes_ended_jobs_with_their_addresses(
    dns_server: DNSServer, tmp_path: Path, store_url: str | None
) -> None:
    """Processed two days ago with a 1d retention: gone, rows and addresses too; processed an
    hour ago, or still processing: kept."""
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_DATA_DIR": str(tmp_path),
           "EMAILGATE_JOB_RETENTION": "1d"}  # fmt: skip
    if store_url:
        env["EMAILGATE_DATABASE_URL"] = store_url
    settings = Settings.from_env(env)
    now = [1_000_000.0]
    metrics = Metrics()
    async with (
        open_services(settings, metrics=metrics) as services,
        open_jobs(settings, verifier=services.verifier, metrics=metrics, chain=None,
                  work=False, wall=lambda: now[0]) as jobs,
    ):  # fmt: skip
        store = jobs.store

        async def add() -> int:
            new = NewJob("k", "n", "marketing", False, None, None, ["email"])
            return (await store.create(new, list_batches(["a@good.com", "b@good.com"]))).id

        old, recent, running = await add(), await add(), await add()
        await store.set_status(old, JobStatus.PROCESSED)
        now[0] += 47 * 3600
        await store.set_status(recent, JobStatus.PROCESSED)
        now[0] += 3600
        await jobs.housekeeping()
        assert await store.get(old) is None
        assert await store.get(recent) is not None and await store.get(running) is not None
        async with store.engine.connect() as conn:
            for table in (schema.rows, schema.addresses):
                left = await conn.execute(sa.select(sa.func.count()).where(table.c.job_id == old))
                assert left.scalar_one() == 0
        assert metrics.jobs.labels("batch", "processed")._value.get() == 1
        assert metrics.jobs.labels("batch", "processing")._value.get() == 1


async def test_jobs_gauge_follows_status_changes_at_once(
    dns_server: DNSServer, tmp_path: Path
) -> None:
    """The gauge moves on create, status change and delete, without waiting for housekeeping."""
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env)
    metrics = Metrics()

    def gauge(status: str) -> float:
        return float(metrics.jobs.labels("batch", status)._value.get())

    async def until(status: str, want: float) -> None:
        for _ in range(500):  # the refresh runs on its own task: give it turns
            if gauge(status) == want:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{status}: {gauge(status)}, not {want}")

    async with (
        open_services(settings, metrics=metrics) as services,
        open_jobs(settings, verifier=services.verifier, metrics=metrics, chain=None,
                  work=False) as jobs,
    ):  # fmt: skip
        new = NewJob("k", "n", "marketing", False, None, None, ["email"])
        job = await jobs.store.create(new, list_batches(["a@good.com"]))
        await until("processing", 1)
        await jobs.store.set_status(job.id, JobStatus.PROCESSED)
        await until("processed", 1)
        assert gauge("processing") == 0
        await jobs.store.delete(job.id)
        await until("processed", 0)
