"""EmailConsul's webhooks as a wake-up for polling, end to end: the fake EmailConsul sends its
real webhooks to a real `emailgate serve` on loopback. A signed webhook for a list a job
waits on makes the job poll at once (the list's results are fetched seconds before the next
poll was due); forged, unsigned, unknown-list and junk webhooks get a clear 4xx and wake
nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import openapi_check
from tests.conftest import free_port
from tests.fakes.dns_server import DNSServer
from tests.fakes.emailconsul import FakeEmailConsul
from tests.jobs.test_bulk_serve import BILLABLE, env, processed, submit
from tests.serviceproc import ServiceProcess

pytestmark = pytest.mark.slow

SECRET = "webhook-secret-for-tests-0123456789"
HOOK = "/hooks/emailconsul"
QUIET = 2.5  # seconds a refused webhook must leave the job waiting (its next poll is ~15 s off)


def sig(reference: str) -> str:
    message = f"emailconsul.{reference}".encode()
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


async def start(dns: DNSServer, fake: FakeEmailConsul, tmp: Path, **extra: str) -> ServiceProcess:
    """A service whose EmailConsul lists carry a webhook address pointing back at it."""
    port = free_port()
    settings = env(dns, tmp / "data", fake,
                   EMAILGATE_EMAILCONSUL_WEBHOOK_URL=f"http://127.0.0.1:{port}{HOOK}",
                   EMAILGATE_WEBHOOK_SECRET=SECRET, **extra)  # fmt: skip
    return await ServiceProcess.start(settings, tmp / "serve.log", port=port)


async def running_list(fake: FakeEmailConsul) -> tuple[str, str]:
    """Wait until the list runs and its job sits in a long wait; (list id, reference)."""
    async with asyncio.timeout(30):
        while not any(i.started is not None for i in fake.lists.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    item = next(iter(fake.lists.values()))
    # The polls right after the run come a second apart until the fake's count moves (one
    # address in 1.5 s); from then on the job waits the 15 s ceiling (PollPlan: 58 s left).
    await asyncio.sleep(4.0)
    return item.id, item.reference


def reads(fake: FakeEmailConsul, list_id: str, since: float) -> list[float]:
    """When the service read the list (GET of the item) after `since`."""
    path = f"/listcleaning/list/{list_id}"
    return [c.mono for c in fake.calls if c.method == "GET" and c.endpoint == path
            and c.mono > since]  # fmt: skip


async def post(url: str, body: Any, **query: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, params=query) as r:
        return r.status, await r.json()


async def test_a_webhook_wakes_the_waiting_job_at_once(
    dns_server: DNSServer, fake_emailconsul: FakeEmailConsul, tmp_path: Path
) -> None:
    """The list is given a signed webhook address; when the fake ends the list, its DONE
    webhook (answered 200) makes the job fetch the export within seconds, well before the
    poll it was waiting for; every webhook the fake sent was accepted."""
    await woken_at_once(dns_server, fake_emailconsul, tmp_path)


async def test_a_webhook_wakes_the_job_in_the_worker_child_through_redis(
    dns_server: DNSServer, fake_emailconsul: FakeEmailConsul, tmp_path: Path, redis_url: str
) -> None:
    """With EMAILGATE_JOB_WORKER=process the job waits in the service's worker child: the
    webhook reaches it through Redis and the export is fetched as quickly."""
    await woken_at_once(dns_server, fake_emailconsul, tmp_path, EMAILGATE_JOB_WORKER="process",
                        EMAILGATE_REDIS_URL=redis_url)  # fmt: skip


async def woken_at_once(
    dns_server: DNSServer, fake_emailconsul: FakeEmailConsul, tmp_path: Path, **extra: str
) -> None:
    fake_emailconsul.configure(preprocess_s=0.3, processing_s=60.0)
    service = await start(dns_server, fake_emailconsul, tmp_path, **extra)
    try:
        job_id = await submit(service.url)
        list_id, reference = await running_list(fake_emailconsul)
        hook_url = fake_emailconsul.lists[list_id].extra["hook"]
        assert hook_url == f"{service.url}{HOOK}?ref={reference}&sig={sig(reference)}"
        fake_emailconsul.finish(list_id)
        done = await processed(service.url, job_id, timeout=60)
    finally:
        await service.stop()
    hooks = fake_emailconsul.hooks_sent
    assert [h.body.get("status") for h in hooks] == ["PRE_PROCESSING_DONE", "PROCESSING",
                                                     "DONE", None]  # fmt: skip
    assert [h.status for h in hooks] == [200, 200, 200, 200]
    done_hook = hooks[2].mono
    exports = [c.mono for c in fake_emailconsul.calls if c.endpoint.endswith("/export")]
    assert len(exports) == 1 and 0 < exports[0] - done_hook < 5.0
    assert {d["email"]["source"] for d in done["data"]
            if d["email"]["email_address"] in BILLABLE} == {"emailconsul"}  # fmt: skip


async def test_forged_unsigned_and_unknown_webhooks_are_refused_and_wake_nothing(
    dns_server: DNSServer, fake_emailconsul: FakeEmailConsul, tmp_path: Path
) -> None:
    """While the job waits: no signature → 401, a wrong one → 403, a signed reference of no
    list of ours or another list's id → 404, junk → 400; none makes the job read the list.
    Then a signed webhook for the list (200) does."""
    fake_emailconsul.configure(preprocess_s=0.3, processing_s=60.0, webhooks=False)
    service = await start(dns_server, fake_emailconsul, tmp_path)
    hook = service.url + HOOK
    try:
        await submit(service.url)
        list_id, reference = await running_list(fake_emailconsul)
        since = fake_emailconsul.calls[-1].mono
        other = reference.rsplit("-", 1)[0] + "-999"
        refused = [
            await post(hook, {"id": list_id}),
            await post(hook, {"id": list_id}, ref=reference),
            await post(hook, {"id": list_id}, ref=reference, sig="0" * 64),
            await post(hook, {"id": list_id}, ref=other, sig=sig(reference)),
            await post(hook, {"id": list_id}, ref=other, sig=sig(other)),
            await post(hook, {"id": "another-list"}, ref=reference, sig=sig(reference)),
            await post(hook, ["not", "an", "item"], ref=reference, sig=sig(reference)),
        ]
        await asyncio.sleep(QUIET)
        quiet = reads(fake_emailconsul, list_id, since)
        woke_at = time.monotonic()
        accepted = await post(hook, {"id": list_id, "status": "DONE"}, ref=reference,
                              sig=sig(reference))  # fmt: skip
        await asyncio.sleep(QUIET)
        woken = reads(fake_emailconsul, list_id, since)
    finally:
        await service.stop()
    assert [status for status, _ in refused] == [401, 401, 403, 403, 404, 404, 400]
    assert all(body["success"] is False and body["message"] for _, body in refused)
    for status, body in [*refused, accepted]:
        openapi_check.check("POST", HOOK, status, body)
    assert quiet == []
    assert accepted == (200, {"success": True, "woken": True})
    assert len(woken) == 1 and woken[0] >= woke_at - 0.05
