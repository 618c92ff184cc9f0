"""Durability against real `emailgate serve` processes killed with SIGKILL mid-job: the job
is resumed by the next worker (a restarted service on the same SQLite file, or the other
replica on PostgreSQL), finishes, and the fake provider's call log shows no address paid
twice. SIGTERM hands the job back at once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.dns_server import DNSServer
from tests.fakes.listcleanser import VERIFY, FakeListCleanser
from tests.jobs.conftest import pg_run
from tests.serviceproc import ServiceProcess

pytestmark = pytest.mark.slow

EMAILS = [f"deliverable.user{i}@good.com" for i in range(160)] + ["x@gone.com", "bad"]


def env(dns: DNSServer, fake: FakeListCleanser, data: Path, **extra: str) -> dict[str, str]:
    return {
        "EMAILGATE_DNS_SERVERS": dns.address,
        "EMAILGATE_LISTCLEANSER_URL": fake.url,
        "EMAILGATE_LISTCLEANSER_API_KEY": fake.api_key,
        "EMAILGATE_LISTCLEANSER_RATE": "6000/60s",
        "EMAILGATE_PROVIDERS": "listcleanser",
        "EMAILGATE_DATA_DIR": str(data),
        "EMAILGATE_JOB_LEASE_S": "2",
        "EMAILGATE_LOG_LEVEL": "warning",
        **extra,
    }


async def submit(url: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/v1/batch", json={"emails": EMAILS}) as r,
    ):
        body = await r.json()
        assert r.status == 201, body
        return int(body["data"]["id"])


async def job(url: str, job_id: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/batch/{job_id}") as r:
        body: dict[str, Any] = await r.json()
        assert r.status == 200, body
        return body


async def calls_reach(fake: FakeListCleanser, n: int) -> None:
    async with asyncio.timeout(30):
        while len(fake.calls.emails(VERIFY)) < n:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def processed(url: str, job_id: int, timeout: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body = await job(url, job_id)
            if body["job"]["status"] == "processed":
                return body
            await asyncio.sleep(0.1)


def paid_once(fake: FakeListCleanser) -> list[str]:
    """Every address the provider was asked about, asserting none was asked twice."""
    called = fake.calls.emails(VERIFY)
    assert len(called) == len(set(called)), [e for e in set(called) if called.count(e) > 1]
    return called


async def test_sigkill_mid_job_on_sqlite_resumes_and_pays_nothing_twice(
    dns_server: DNSServer, fake_listcleanser: FakeListCleanser, tmp_path: Path
) -> None:
    """A service killed with SIGKILL while paying for a job; a new service on the same data
    directory takes the job over after the lease and finishes it; each address reached the
    provider at most once, and the answers lost in the kill are answered, not resent."""
    fake_listcleanser.configure(latency_ms=40)
    settings = env(dns_server, fake_listcleanser, tmp_path / "data")
    first = await ServiceProcess.start(settings, tmp_path / "first.log")
    job_id = await submit(first.url)
    await calls_reach(fake_listcleanser, 30)
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    before = len(paid_once(fake_listcleanser))
    second = await ServiceProcess.start(settings, tmp_path / "second.log")
    try:
        done = await processed(second.url, job_id)
    finally:
        await second.stop()
    called = paid_once(fake_listcleanser)
    assert len(called) > before  # the second service paid for the rest
    j = done["job"]
    assert j["processed"] == 162 and sum(j["counts"].values()) == 162
    assert j["billable"] == 160 and len(called) <= 160
    assert j["credits_spent"] <= len(called)


async def test_sigkill_of_the_working_replica_on_postgresql(
    dns_server: DNSServer, fake_listcleanser: FakeListCleanser, tmp_path: Path, pg_clean: str
) -> None:
    """Two replicas on one PostgreSQL database: both answer status; only one works the job;
    SIGKILL of that one and the other takes the job over and finishes it, nothing paid twice."""
    fake_listcleanser.configure(latency_ms=40)
    settings = env(dns_server, fake_listcleanser, tmp_path / "data",
                   EMAILGATE_DATABASE_URL=pg_clean)  # fmt: skip
    a = await ServiceProcess.start(settings, tmp_path / "a.log")
    b = await ServiceProcess.start(settings, tmp_path / "b.log")
    try:
        job_id = await submit(a.url)
        await calls_reach(fake_listcleanser, 30)
        assert (await job(b.url, job_id))["job"]["status"] == "processing"
        owner = pg_run(pg_clean, f"SELECT lease_owner FROM jobs WHERE id = {job_id}")[0][0]
        pid = int(owner.split(":")[1])
        worker, other = (a, b) if a.proc.pid == pid else (b, a)
        assert worker.proc.pid == pid
        await worker.stop(signal.SIGKILL)
        done = await processed(other.url, job_id)
    finally:
        await a.stop()
        await b.stop()
    called = paid_once(fake_listcleanser)
    assert done["job"]["processed"] == 162 and len(called) <= 160


async def test_sigterm_hands_the_job_back(
    dns_server: DNSServer, fake_listcleanser: FakeListCleanser, tmp_path: Path
) -> None:
    """A service stopped with SIGTERM mid-job exits cleanly and releases its lease: a new
    service resumes at once, without waiting for the lease to run out."""
    fake_listcleanser.configure(latency_ms=40)
    settings = env(dns_server, fake_listcleanser, tmp_path / "data", EMAILGATE_JOB_LEASE_S="600")
    first = await ServiceProcess.start(settings, tmp_path / "first.log")
    job_id = await submit(first.url)
    await calls_reach(fake_listcleanser, 30)
    assert await first.stop(signal.SIGTERM) == 0
    second = await ServiceProcess.start(settings, tmp_path / "second.log")
    try:
        done = await processed(second.url, job_id, timeout=30)
    finally:
        await second.stop()
    called = paid_once(fake_listcleanser)
    assert done["job"]["processed"] == 162 and len(called) == 160
