"""Enrichment jobs against real `emailgate serve` processes killed with SIGKILL while the
provider works: the job is resumed by the next worker (a restarted service on the same SQLite
file, or the other replica on PostgreSQL), which polls the stored workflows; the Cleanlist.ai
fake's log shows every request submitted once. SIGTERM hands the job back at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.cleanlist import BULK, STATUS, FakeCleanlist
from tests.fakes.dns_server import DNSServer
from tests.jobs.conftest import pg_run
from tests.serviceproc import ServiceProcess

pytestmark = pytest.mark.slow

CONTACTS = [{"first_name": f"P{i}", "last_name": "Smith", "company_domain": "good.com"}
            for i in range(1000)]  # fmt: skip
CONTACTS[10] = {"first_name": "Temp", "last_name": "Mail", "company_domain": "mailinator.com"}


@pytest.fixture
async def cleanlist() -> AsyncIterator[FakeCleanlist]:
    """The fake with a 6-second window; each workflow takes 3 s (time to kill a worker)."""
    async with FakeCleanlist(rate_window_s=6.0, workflow_s=3.0) as fake:
        yield fake


def env(dns: DNSServer, fake: FakeCleanlist, data: Path, **extra: str) -> dict[str, str]:
    return {
        "EMAILGATE_DNS_SERVERS": dns.address,
        "EMAILGATE_CLEANLIST_URL": fake.api_url,
        "EMAILGATE_CLEANLIST_API_KEY": fake.api_key,
        "EMAILGATE_CLEANLIST_RATE": "60/6s",
        "EMAILGATE_DATA_DIR": str(data),
        "EMAILGATE_JOB_LEASE_S": "2",
        "EMAILGATE_LOG_LEVEL": "warning",
        **extra,
    }


async def submit(url: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/v1/enrich", json={"contacts": CONTACTS}) as r,
    ):
        body = await r.json()
        assert r.status == 201, body
        return int(body["data"]["id"])


async def ended(url: str, job_id: int, timeout: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{url}/api/v1/enrich/{job_id}", params={"per_page": "1000"}) as r:
                body: dict[str, Any] = await r.json()
                assert r.status == 200, body
            if body["job"]["status"] in ("processed", "failed"):
                return body
            await asyncio.sleep(0.1)


SENT = "SELECT count(*) FROM enrich_requests WHERE state = 'sent'"


async def all_stored(count: Callable[[], int], n: int = 4) -> None:
    """Until the job's `n` requests have their workflow ids stored (then the kill comes while
    the provider works; a request killed before that is the job-store tests' case)."""
    async with asyncio.timeout(30):
        while count() < n:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def sqlite_count(data: Path) -> Callable[[], int]:
    def count() -> int:
        with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3", timeout=5)) as db:
            return int(db.execute(SENT).fetchone()[0])

    return count


def check_done(body: dict[str, Any], fake: FakeCleanlist) -> None:
    """Each of the four requests submitted once; every contact found, with its RESULT."""
    assert len(fake.calls.select(BULK)) == 4 and len(fake.workflows) == 4
    assert fake.calls.select(STATUS)
    assert body["job"]["status"] == "processed", body["job"]
    rows = body["data"]
    assert len(rows) == 1000 and all(r["status"] == "found" for r in rows)
    assert all(r["result"]["email_address"] == r["email"] for r in rows)
    assert rows[10]["email_rejected"] and not rows[11]["email_rejected"]
    assert body["job"]["credits_spent"] == 1000 == 1_000_000 - fake.credits


async def test_sigkill_mid_job_on_sqlite_polls_the_stored_workflows(
    dns_server: DNSServer, cleanlist: FakeCleanlist, tmp_path: Path
) -> None:
    """A service killed with SIGKILL while the provider works on the job's four requests; a
    new service on the same data directory takes the job over after the lease, polls the
    four stored workflows and finishes the job without submitting anything again."""
    settings = env(dns_server, cleanlist, tmp_path / "data")
    first = await ServiceProcess.start(settings, tmp_path / "first.log")
    job_id = await submit(first.url)
    await all_stored(sqlite_count(tmp_path / "data"))
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    second = await ServiceProcess.start(settings, tmp_path / "second.log")
    try:
        done = await ended(second.url, job_id)
    finally:
        await second.stop()
    check_done(done, cleanlist)


async def test_sigkill_of_the_working_replica_on_postgresql(
    dns_server: DNSServer, cleanlist: FakeCleanlist, tmp_path: Path, pg_clean: str
) -> None:
    """Two replicas on one PostgreSQL database: only one works the job; SIGKILL of that one
    and the other takes it over, polls the stored workflows and finishes it."""
    settings = env(dns_server, cleanlist, tmp_path / "data", EMAILGATE_DATABASE_URL=pg_clean)
    a = await ServiceProcess.start(settings, tmp_path / "a.log")
    b = await ServiceProcess.start(settings, tmp_path / "b.log")
    try:
        job_id = await submit(a.url)
        await all_stored(lambda: int(pg_run(pg_clean, SENT)[0][0]))
        owner = pg_run(pg_clean, f"SELECT lease_owner FROM jobs WHERE id = {job_id}")[0][0]
        pid = int(owner.split(":")[1])
        worker, other = (a, b) if a.proc.pid == pid else (b, a)
        assert worker.proc.pid == pid
        await worker.stop(signal.SIGKILL)
        done = await ended(other.url, job_id)
    finally:
        await a.stop()
        await b.stop()
    check_done(done, cleanlist)


async def test_sigterm_hands_the_job_back(
    dns_server: DNSServer, cleanlist: FakeCleanlist, tmp_path: Path
) -> None:
    """SIGTERM mid-job: the service exits cleanly and releases its lease; a new service
    resumes at once (the lease would last ten minutes) and submits nothing again."""
    settings = env(dns_server, cleanlist, tmp_path / "data", EMAILGATE_JOB_LEASE_S="600")
    first = await ServiceProcess.start(settings, tmp_path / "first.log")
    job_id = await submit(first.url)
    await all_stored(sqlite_count(tmp_path / "data"))
    assert await first.stop(signal.SIGTERM) == 0
    second = await ServiceProcess.start(settings, tmp_path / "second.log")
    try:
        done = await ended(second.url, job_id, timeout=30)
    finally:
        await second.stop()
    check_done(done, cleanlist)
