"""Graceful shutdown of a real `emailgate serve` process under load.

Checks are held in flight by a slow fake ListCleanser (3 s per answer, inside a 5 s deadline),
so SIGTERM arrives while they wait on the provider. Each test runs with in-process pacing and
with Redis (cache and pacing shared), whose connections must close cleanly too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.fakes.dns_server import DNSServer
from tests.fakes.listcleanser import VERIFY, FakeListCleanser

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_LATENCY_MS = 3000
SHUTDOWN_TIMEOUT_S = 10
LOAD = 40
# Lines that must never appear in the log of a clean shutdown.
TROUBLE = ("Traceback", "Unclosed", '"level":"error"', "Task was destroyed", "never awaited")


@dataclass
class Served:
    """A running `python -m emailgate serve`, its URL, the slow fake behind it and its log."""

    proc: asyncio.subprocess.Process
    url: str
    port: int
    fake: FakeListCleanser
    log: Path

    def provider_calls(self) -> int:
        return len(self.fake.calls.select(VERIFY))

    def assert_clean_log(self) -> None:
        text = self.log.read_text()
        for trouble in TROUBLE:
            assert trouble not in text, text[-3000:]


@pytest.fixture(params=["in-process", "redis"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, dns_server: DNSServer, redis_url: str
) -> AsyncIterator[Served]:
    """The service in its own process before a slow ListCleanser, with in-process pacing and
    cache or on the test Redis; killed if left running."""
    extra = {"EMAILGATE_REDIS_URL": redis_url} if request.param == "redis" else {}
    async with FakeListCleanser(latency_ms=PROVIDER_LATENCY_MS, rate_limit=4000) as fake:
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
        env = base | extra | {
            "EMAILGATE_HOST": "127.0.0.1",
            "EMAILGATE_PORT": str(port),
            "EMAILGATE_DNS_SERVERS": dns_server.address,
            "EMAILGATE_PROVIDERS": "listcleanser",
            "EMAILGATE_LISTCLEANSER_URL": fake.url,
            "EMAILGATE_LISTCLEANSER_API_KEY": fake.api_key,
            "EMAILGATE_LISTCLEANSER_RATE": "4000/60s",  # a burst of 100 tokens
            "EMAILGATE_DEADLINE_MS": "5000",
            "EMAILGATE_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        }  # fmt: skip
        log = tmp_path / "emailgate.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emailgate", "serve",
                env=env, cwd=REPO_ROOT, stdout=out, stderr=out,
            )  # fmt: skip
        service = Served(proc, f"http://127.0.0.1:{port}", port, fake, log)
        try:
            await wait_ready(service)
            yield service
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def wait_ready(service: Served, timeout: float = 20.0) -> None:
    async with aiohttp.ClientSession() as http:
        end = time.monotonic() + timeout
        while time.monotonic() < end and service.proc.returncode is None:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{service.url}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    pytest.fail(f"emailgate did not become ready:\n{service.log.read_text()[-3000:]}")


async def refuses_connections(port: int) -> bool:
    """Whether a TCP connection to the port is refused right now."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (ConnectionRefusedError, ConnectionResetError):
        # Reset: the listening socket closed while this connection waited in its backlog.
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


async def verify(
    http: aiohttp.ClientSession, url: str, email: str
) -> tuple[int, dict[str, object]]:
    async with http.post(f"{url}/api/v1/verify", json={"email": email}) as r:
        return r.status, await r.json()


async def test_sigterm_under_load_answers_every_request_then_exits_0(served: Served) -> None:
    """SIGTERM while checks wait on the provider: the service stops accepting at once, every
    request gets its 200 (those at the provider with the provider's verdict, not a fail-open),
    and the process exits 0 within the shutdown timeout, with a clean log."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        emails = [f"user{i}@good.com" for i in range(LOAD)]
        tasks = [asyncio.create_task(verify(http, served.url, e)) for e in emails]
        # Settled: each check has either been answered already (the pacer may answer some
        # from local checks at once) or reached the provider, which the fake logs on arrival.
        end = time.monotonic() + 10
        while served.provider_calls() + sum(t.done() for t in tasks) < LOAD:
            assert time.monotonic() < end, f"{served.fake.calls!r}, {sum(t.done() for t in tasks)}"
            await asyncio.sleep(0.01)
        at_provider = served.provider_calls()
        assert at_provider >= 1
        assert sum(not t.done() for t in tasks) == at_provider

        served.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        while not await refuses_connections(served.port):
            assert time.monotonic() - signalled < 2.0, "still accepting 2 s after SIGTERM"
            await asyncio.sleep(0.02)
        # Stopped accepting while the checks were still waiting on the provider.
        assert sum(not t.done() for t in tasks) == at_provider

        answers = await asyncio.gather(*tasks)

    sources = []
    for (status, body), email in zip(answers, emails, strict=True):
        assert status == 200, body
        assert body["success"] is True
        data = body["data"]
        assert isinstance(data, dict)
        assert data["email_address"] == email
        sources.append(data["source"])
    assert sources.count("listcleanser") == at_provider
    rc = await asyncio.wait_for(served.proc.wait(), SHUTDOWN_TIMEOUT_S)
    assert rc == 0
    assert time.monotonic() - signalled < SHUTDOWN_TIMEOUT_S
    assert served.provider_calls() == at_provider
    served.assert_clean_log()


async def test_sigterm_when_idle_exits_0_at_once(served: Served) -> None:
    """With nothing in flight (an idle keep-alive connection open), SIGTERM ends the process
    with status 0 well inside the timeout, closing Redis and sessions without complaint."""
    async with aiohttp.ClientSession() as http:
        status, _ = await verify(http, served.url, "bob@gone.com")  # local verdict, fast
        assert status == 200
        served.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        rc = await asyncio.wait_for(served.proc.wait(), SHUTDOWN_TIMEOUT_S)
    assert rc == 0
    assert time.monotonic() - signalled < SHUTDOWN_TIMEOUT_S / 2
    served.assert_clean_log()


async def send_raw_verify(
    port: int, email: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and write a whole verify request on it; the answer is left unread."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"email": "%s"}' % email.encode()
    head = (
        b"POST /api/v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    writer.write(head + body)
    await writer.drain()
    return reader, writer


async def test_requests_written_just_before_sigterm_are_answered(served: Served) -> None:
    """40 requests written on fresh connections immediately before SIGTERM (not waiting for
    them to reach a handler) all get a 200, and the process exits 0."""
    sent = await asyncio.gather(
        *(send_raw_verify(served.port, f"burst{i}@good.com") for i in range(LOAD))
    )
    served.proc.send_signal(signal.SIGTERM)
    status_lines = []
    for reader, writer in sent:
        try:
            answer = await asyncio.wait_for(reader.read(), SHUTDOWN_TIMEOUT_S)
            status_lines.append(answer.split(b"\r\n", 1)[0].decode())
        except OSError as e:
            status_lines.append(repr(e))
        writer.close()
    assert status_lines == ["HTTP/1.1 200 OK"] * LOAD
    assert await asyncio.wait_for(served.proc.wait(), SHUTDOWN_TIMEOUT_S) == 0
    served.assert_clean_log()
