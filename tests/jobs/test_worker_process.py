"""Where jobs run: EMAILGATE_JOB_WORKER=process works them (and reads uploads) in children of
`emailgate serve` at a lower CPU priority, which end with it even when it is killed; `off`
leaves them to an `emailgate worker` process; `process` without Redis is a settings error."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from emailgate.config import Settings, SettingsError
from tests.fakes.dns_server import DNSServer
from tests.fakes.listcleanser import FakeListCleanser
from tests.jobs.test_batch_serve import EMAILS, env, job, paid_once, processed, submit
from tests.serviceproc import REPO_ROOT, ServiceProcess

pytestmark = pytest.mark.slow


def children(pid: int) -> dict[int, str]:
    """The process's children: pid → command line."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            found[int(child)] = cmd.decode(errors="replace")
    return found


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def lease_owner(data: Path, job_id: int) -> str | None:
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        row = db.execute("SELECT lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else row[0]


def gone(pid: int) -> bool:
    """Exited (reaped, or a zombie its killed parent left to init)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text(errors="replace")
    except FileNotFoundError:
        return True


async def eventually(check: Callable[[], object], timeout: float = 30) -> None:
    """Wait until `check()` is true; fail after `timeout` seconds."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {check}")


async def test_process_mode_works_jobs_in_a_nice_child_that_dies_with_the_service(
    dns_server: DNSServer, fake_listcleanser: FakeListCleanser, tmp_path: Path, redis_url: str
) -> None:
    """The job is worked by the `emailgate worker` child (its pid holds the lease), at nice 10;
    a file upload is read by a child and a bad one still gets its 400; the download is written
    by a child and streamed; after SIGKILL of the service its children exit too, and nothing was
    paid twice."""
    fake_listcleanser.configure(latency_ms=40)
    data = tmp_path / "data"
    settings = env(dns_server, fake_listcleanser, data, EMAILGATE_JOB_WORKER="process",
                   EMAILGATE_REDIS_URL=redis_url)  # fmt: skip
    service = await ServiceProcess.start(settings, tmp_path / "serve.log")
    try:
        pid = service.proc.pid
        await eventually(lambda: any(" worker " in c for c in children(pid).values()))
        worker = next(p for p, cmd in children(pid).items() if " worker " in cmd)
        await eventually(lambda: nice_of(worker) == min(19, nice_of(pid) + 10))
        job_id = await submit(service.url)
        await eventually(lambda: lease_owner(data, job_id) is not None)
        assert int(str(lease_owner(data, job_id)).split(":")[1]) == worker
        done = await processed(service.url, job_id)
        assert done["job"]["processed"] == len(EMAILS)
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("email_list", b"name,city\nAnn,Oslo\n", filename="l.csv")
            async with http.post(f"{service.url}/api/v1/batch", data=form) as r:
                body = await r.json()
                assert r.status == 400, body
                assert "name" in body["message"]
            form = aiohttp.FormData()
            form.add_field("email_list", b"email\nann@good.com\nbob@good.com\n",
                           filename="l.csv")  # fmt: skip
            async with http.post(f"{service.url}/api/v1/batch", data=form) as r:
                body = await r.json()
                assert r.status == 201 and body["data"]["number_of_total"] == 2, body
        small = body["data"]["id"]
        await processed(service.url, small)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{service.url}/api/v1/batch/{small}/download") as r,
        ):
            assert r.status == 200
            lines = (await r.text()).splitlines()
        assert [line.split(",")[0] for line in lines] == ["email", "ann@good.com", "bob@good.com"]
        assert list((data / "exports").iterdir()) == []  # the child's file, streamed and gone
        kids = children(service.proc.pid)
        assert len(kids) >= 2  # the worker and the upload reader
    finally:
        await service.stop(signal.SIGKILL)
    for kid in kids:
        await eventually(lambda k=kid: gone(k))  # type: ignore[misc]
    paid_once(fake_listcleanser)


async def test_off_mode_leaves_jobs_to_an_emailgate_worker(
    dns_server: DNSServer, fake_listcleanser: FakeListCleanser, tmp_path: Path
) -> None:
    """A service with EMAILGATE_JOB_WORKER=off accepts and answers for a job but does not work
    it; an `emailgate worker` on the same store does, and stops on SIGTERM with status 0."""
    data = tmp_path / "data"
    settings = env(dns_server, fake_listcleanser, data, EMAILGATE_JOB_WORKER="off")
    service = await ServiceProcess.start(settings, tmp_path / "serve.log")
    worker = None
    try:
        job_id = await submit(service.url)
        await asyncio.sleep(1.5)  # the service's own idle poll is 1 s: it would have begun
        assert (await job(service.url, job_id))["job"]["processed"] == 0
        assert fake_listcleanser.calls.emails("/api/v1/verify") == []
        base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
        with (tmp_path / "worker.log").open("ab") as log:
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emailgate", "worker", env=base | settings,
                cwd=REPO_ROOT, stdout=log, stderr=log,
            )  # fmt: skip
        done = await processed(service.url, job_id)
        assert done["job"]["processed"] == len(EMAILS)
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 20) == 0
    finally:
        if worker is not None and worker.returncode is None:
            worker.kill()
            await worker.wait()
        await service.stop()


def test_process_mode_needs_redis() -> None:
    """EMAILGATE_JOB_WORKER=process without EMAILGATE_REDIS_URL is refused, naming both."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"EMAILGATE_JOB_WORKER": "process"})
    assert any("EMAILGATE_REDIS_URL" in p for p in caught.value.problems)
    assert Settings.from_env({"EMAILGATE_JOB_WORKER": "off"}).job_worker == "off"
