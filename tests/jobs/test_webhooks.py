"""Webhooks: signed as documented, delivered in order per job from the outbox, retried with
growing delays after a non-2xx or a timeout, given up after a day; callbacks to private
addresses refused, also when a name resolves to one. A receiver on loopback checks every
signature."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from emailgate.jobs.ingest import list_batches
from emailgate.jobs.model import JobStatus
from emailgate.jobs.store import JobStore, NewJob
from emailgate.jobs.webhooks import (
    SIGNATURE_HEADER,
    CallbackRefused,
    Deliverer,
    check_callback,
    retry_delay,
    sign,
    verify_signature,
)
from emailgate.metrics import Metrics
from tests.jobs.helpers import Client, wait_status

SECRET = "whsec_test_secret_0123456789"
MakeClient = Callable[..., Awaitable[Client]]


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1: checks the signature, answers from `statuses`."""

    statuses: list[int] = field(default_factory=list)
    got: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not verify_signature(SECRET, body, header, now=time.time()):
            self.bad_signatures += 1
            return web.Response(status=400)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.got.append(orjson.loads(body))
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver, serving for the test."""
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    r.url = f"http://127.0.0.1:{port}/hook"
    yield r
    await runner.cleanup()


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    """The header is t=…,v1=HMAC-SHA256(secret, "{t}.{body}"); a changed body, secret or an
    old timestamp does not verify."""
    import hashlib
    import hmac

    body = b'{"event":"batch.status"}'
    header = sign(SECRET, body, 1700000000)
    mac = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert verify_signature(SECRET, body, header, now=1700000010)
    assert not verify_signature(SECRET, body + b" ", header, now=1700000010)
    assert not verify_signature("other-secret", body, header, now=1700000010)
    assert not verify_signature(SECRET, body, header, now=1700009999)


def test_retry_delays_grow_and_are_capped() -> None:
    """5 s, 10 s, 20 s … never more than an hour."""
    delays = [retry_delay(n) for n in range(12)]
    assert delays[:3] == [5.0, 10.0, 20.0]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 3600.0


async def test_callback_names_resolving_to_loopback_are_refused() -> None:
    """`localhost` resolves to a loopback address: refused unless private targets are allowed."""
    with pytest.raises(CallbackRefused, match="loopback"):
        await check_callback("https://localhost/hook", allow_private=False)
    assert await check_callback("http://localhost/hook", allow_private=True)


async def test_outbox_delivers_in_order_and_retries_with_growing_delays(
    store: JobStore, receiver: Receiver
) -> None:
    """A 500 and a timeout-free failure are retried after 5 s then 10 s; the later event of
    the same job waits for the earlier; every delivery carries a valid signature."""
    now = [1_000_000.0]
    store.wall = lambda: now[0]
    new = NewJob("k", "n", "marketing", False, receiver.url, None, ["email"])
    job = await store.create(new, list_batches(["a@good.com"]))
    await store.set_status(job.id, JobStatus.PROCESSED)
    receiver.statuses = [500, 503]
    metrics = Metrics()
    deliverer = Deliverer(store, secret=SECRET, metrics=metrics, allow_private=True,
                          wall=lambda: time.time())  # fmt: skip
    async with deliverer.client() as session:
        assert await deliverer.deliver_due(session) == 1  # 500
        assert await deliverer.deliver_due(session) == 0  # not due yet
        now[0] += 5
        assert await deliverer.deliver_due(session) == 1  # 503
        now[0] += 9
        assert await deliverer.deliver_due(session) == 0
        now[0] += 1
        assert await deliverer.deliver_due(session) == 1  # first event delivered
        assert await deliverer.deliver_due(session) == 1  # then the second
    assert [g["data"]["status"] for g in receiver.got] == ["processing", "processed"]
    assert receiver.bad_signatures == 0
    assert metrics.webhook_deliveries.labels("failed")._value.get() == 2
    assert metrics.webhook_deliveries.labels("delivered")._value.get() == 2


async def test_gives_up_after_a_day(store: JobStore, receiver: Receiver) -> None:
    """An event still undelivered a day after it was made is given up."""
    now = [1_000_000.0]
    store.wall = lambda: now[0]
    new = NewJob("k", "n", "marketing", False, receiver.url, None, ["email"])
    await store.create(new, list_batches(["a@good.com"]))
    metrics = Metrics()
    deliverer = Deliverer(store, secret=SECRET, metrics=metrics, allow_private=True)
    now[0] += 86401
    async with deliverer.client() as session:
        assert await deliverer.deliver_due(session) == 1
        assert await deliverer.deliver_due(session) == 0
    assert receiver.got == []
    assert metrics.webhook_deliveries.labels("gave_up")._value.get() == 1


async def test_a_job_posts_signed_status_webhooks(
    make_client: MakeClient, receiver: Receiver
) -> None:
    """Through the service: processing, then processed, each signed; the body is the JOB."""
    client = await make_client(EMAILGATE_WEBHOOK_SECRET=SECRET, EMAILGATE_WEBHOOK_ALLOW_PRIVATE="1")
    response = await client.post(
        "/api/v1/batch", json={"emails": ["a@good.com", "b@gone.com"], "callback_url": receiver.url}
    )
    assert response.status == 201, await response.text()
    job_id = (await response.json())["data"]["id"]
    await wait_status(client, job_id)
    import asyncio

    async with asyncio.timeout(10):
        while not any(g["data"]["status"] == "processed" for g in receiver.got):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    statuses = [g["data"]["status"] for g in receiver.got]
    assert statuses[0] == "processing" and statuses[-1] == "processed"
    assert all(g["event"] == "batch.status" and g["data"]["id"] == job_id for g in receiver.got)
    assert receiver.bad_signatures == 0
