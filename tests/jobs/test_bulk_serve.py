"""Bulk providers across SIGKILL of real `emailgate serve` processes: a job whose list is at
the provider survives the kill of the service (restarted on the same SQLite file) or of the
replica working it (the other one on PostgreSQL takes over), and the provider sees one upload;
a kill during the upload itself is recovered by finding the list by its reference."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.dns_server import DNSServer
from tests.fakes.emailconsul import FakeEmailConsul
from tests.fakes.listcleaner import FakeListcleaner
from tests.fakes.listcleanser import FakeListCleanser
from tests.jobs.conftest import pg_run
from tests.serviceproc import ServiceProcess

pytestmark = pytest.mark.slow

BILLABLE = [f"deliverable.k{i}@good.com" for i in range(40)]
EMAILS = [*BILLABLE, "x@gone.com", "bad"]
Fake = FakeListCleanser | FakeListcleaner | FakeEmailConsul


def env(dns: DNSServer, data: Path, fake: Fake, **extra: str) -> dict[str, str]:
    """One bulk provider (the fake), jobs always to it, a short lease."""
    base = {
        "EMAILGATE_DNS_SERVERS": dns.address,
        "EMAILGATE_DATA_DIR": str(data),
        "EMAILGATE_JOB_LEASE_S": "2",
        "EMAILGATE_BATCH_REALTIME_MAX": "0",
        "EMAILGATE_PROVIDERS": "cleanmylist",  # no real-time key: bulk or nothing
        "EMAILGATE_LOG_LEVEL": "warning",
    }
    if isinstance(fake, FakeListCleanser):
        base |= {"EMAILGATE_LISTCLEANSER_URL": fake.url,
                 "EMAILGATE_LISTCLEANSER_API_KEY": fake.api_key}  # fmt: skip
    elif isinstance(fake, FakeListcleaner):
        base |= {"EMAILGATE_LISTCLEANER_URL": fake.url,
                 "EMAILGATE_LISTCLEANER_API_KEY": fake.api_key,
                 "EMAILGATE_LISTCLEANER_USER_EMAIL": fake.config.user_email}  # fmt: skip
    else:
        base |= {"EMAILGATE_EMAILCONSUL_URL": fake.url,
                 "EMAILGATE_EMAILCONSUL_API_KEY": fake.api_key}  # fmt: skip
    return base | extra


async def submit(url: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/v1/batch", json={"emails": EMAILS}) as r,
    ):
        body = await r.json()
        assert r.status == 201, body
        return int(body["data"]["id"])


async def job(url: str, job_id: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/v1/batch/{job_id}", params={"per_page": "100"}) as r,
    ):
        body: dict[str, Any] = await r.json()
        assert r.status == 200, body
        return body


async def processed(url: str, job_id: int, timeout: float = 90) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body = await job(url, job_id)
            if body["job"]["status"] == "processed":
                return body
            await asyncio.sleep(0.2)


async def list_at_provider(fake: Fake) -> None:
    """Wait until the provider holds one list."""
    async with asyncio.timeout(30):
        while not fake.lists:  # noqa: ASYNC110 (the fake has no event)
            await asyncio.sleep(0.02)


def slow_lists(fake: Fake) -> None:
    """Lists take a few seconds: long enough to kill the service while one is at the fake."""
    if isinstance(fake, FakeListCleanser):
        fake.configure(batch_processing_s=4.0)
    elif isinstance(fake, FakeListcleaner):
        fake.configure(processing_s=4.0)
    else:
        fake.configure(preprocess_s=0.5, processing_s=4.0)


def check_results(done: dict[str, Any], name: str) -> None:
    by_email = {d["email"]["email_address"]: d["email"] for d in done["data"]}
    assert {by_email[e]["source"] for e in BILLABLE} == {name}
    assert done["job"]["processed"] == len(BILLABLE) + 2


@pytest.mark.parametrize("name", ["listcleanser", "listcleaner", "emailconsul"])
async def test_sigkill_while_the_list_is_at_the_provider_uploads_once(
    dns_server: DNSServer,
    fake_listcleanser: FakeListCleanser,
    fake_listcleaner: FakeListcleaner,
    fake_emailconsul: FakeEmailConsul,
    tmp_path: Path,
    name: str,
) -> None:
    """SIGKILL once the list is uploaded; a new service on the same data directory polls the
    stored list id and finishes the job: one upload, one charge, the provider's verdicts."""
    fake: Fake = {"listcleanser": fake_listcleanser, "listcleaner": fake_listcleaner,
                  "emailconsul": fake_emailconsul}[name]  # fmt: skip
    slow_lists(fake)
    credits = fake.credits
    settings = env(dns_server, tmp_path / "data", fake)
    first = await ServiceProcess.start(settings, tmp_path / "first.log")
    job_id = await submit(first.url)
    await list_at_provider(fake)
    await asyncio.sleep(0.3)  # the id is stored right after the answer
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    second = await ServiceProcess.start(settings, tmp_path / "second.log")
    try:
        done = await processed(second.url, job_id)
    finally:
        await second.stop()
    check_results(done, name)
    assert len(fake.uploads()) == 1
    assert fake.credits == credits - len(BILLABLE)


async def test_sigkill_during_the_upload_adopts_the_list_found_by_reference(
    dns_server: DNSServer, fake_listcleaner: FakeListcleaner, tmp_path: Path
) -> None:
    """Killed after Listcleaner stored the list but before its answer came: the restarted
    service finds the list by its reference and polls it; nothing is uploaded again."""
    fake_listcleaner.configure(processing_s=0.5, upload_answer_delay_s=30.0)
    settings = env(dns_server, tmp_path / "data", fake_listcleaner)
    first = await ServiceProcess.start(settings, tmp_path / "first.log")
    job_id = await submit(first.url)
    await list_at_provider(fake_listcleaner)
    await first.stop(signal.SIGKILL)
    fake_listcleaner.configure(upload_answer_delay_s=0.0)
    second = await ServiceProcess.start(settings, tmp_path / "second.log")
    try:
        done = await processed(second.url, job_id)
    finally:
        await second.stop()
    check_results(done, "listcleaner")
    assert len(fake_listcleaner.uploads()) == 1


async def test_sigkill_of_the_working_replica_on_postgresql_uploads_once(
    dns_server: DNSServer, fake_emailconsul: FakeEmailConsul, tmp_path: Path, pg_clean: str
) -> None:
    """Two replicas on one PostgreSQL database; the one working the job is killed while its
    EmailConsul list runs; the other takes the job over and polls the same list."""
    slow_lists(fake_emailconsul)
    settings = env(dns_server, tmp_path / "data", fake_emailconsul,
                   EMAILGATE_DATABASE_URL=pg_clean)  # fmt: skip
    a = await ServiceProcess.start(settings, tmp_path / "a.log")
    b = await ServiceProcess.start(settings, tmp_path / "b.log")
    try:
        job_id = await submit(a.url)
        await list_at_provider(fake_emailconsul)
        await asyncio.sleep(0.3)
        owner = pg_run(pg_clean, f"SELECT lease_owner FROM jobs WHERE id = {job_id}")[0][0]
        pid = int(owner.split(":")[1])
        worker, other = (a, b) if a.proc.pid == pid else (b, a)
        assert worker.proc.pid == pid
        await worker.stop(signal.SIGKILL)
        done = await processed(other.url, job_id)
    finally:
        await a.stop()
        await b.stop()
    check_results(done, "emailconsul")
    assert len(fake_emailconsul.uploads()) == 1
    assert len([c for c in fake_emailconsul.runs() if c.status == 200]) == 1
