"""The enrichment API end to end on a real app (SQLite store, our DNS server, the Cleanlist.ai
fake with a shortened fixed window): who may, the sandbox of test keys, jobs split into
requests of 250, every found email with its RESULT, 402/429/failed tasks where they belong,
signed `enrich.status` webhooks, metrics, and every bad input a 4xx with nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from emailgate import appkeys
from tests import openapi_check
from tests.fakes.cleanlist import BULK, STATUS, FakeCleanlist
from tests.fakes.listcleanser import VERIFY, FakeListCleanser
from tests.jobs.helpers import Client
from tests.jobs.test_webhooks import SECRET, Receiver

MakeClient = Callable[..., Awaitable[Client]]
ENRICH = "/api/v1/enrich"
PRIVATE, OTHER, TEST, PUBLIC = "sk_enrich_one", "sk_enrich_two", "tk_enrich", "pk_enrich"
SHOP = "https://shop.example"
WINDOW = "60/6s"  # the provider's 60 a minute, its window (and emailgate's polls) ten times shorter


def keys(tmp_path: Path) -> Path:
    def entry(name: str, kind: str, key: str, extra: str = "") -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f'[[key]]\nname = "{name}"\nkind = "{kind}"\nsha256 = "{digest}"\n{extra}\n'

    path = tmp_path / "keys.toml"
    path.write_text(
        entry("crm", "private", PRIVATE) + entry("billing", "private", OTHER)
        + entry("integration", "test", TEST)
        + entry("form", "public", PUBLIC, f'origins = ["{SHOP}"]')
    )  # fmt: skip
    return path


@pytest.fixture
async def cleanlist() -> AsyncIterator[FakeCleanlist]:
    """The Cleanlist.ai fake with a 6-second fixed window and 0.5 s workflows."""
    async with FakeCleanlist(rate_window_s=6.0, workflow_s=0.5) as fake:
        yield fake


@pytest.fixture
async def hook(aiohttp_server: Any) -> Receiver:
    """A webhook receiver on loopback that checks every signature."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    receiver.url = str(server.make_url("/hook"))
    return receiver


def with_cleanlist(fake: FakeCleanlist, **extra: str) -> dict[str, str]:
    return {
        "EMAILGATE_CLEANLIST_URL": fake.api_url,
        "EMAILGATE_CLEANLIST_API_KEY": fake.api_key,
        "EMAILGATE_CLEANLIST_RATE": WINDOW,
        **extra,
    }


def person(first: str, last: str = "Smith", domain: str = "good.com") -> dict[str, str]:
    return {"first_name": first, "last_name": last, "company_domain": domain}


async def post(client: Client, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await client.post(ENRICH, json=body, headers=headers)
    data = await response.json()
    openapi_check.check("POST", ENRICH, response.status, data)
    return response.status, data


async def ended(client: Client, job_id: int, *, key: str | None = None) -> dict[str, Any]:
    """Poll GET /api/v1/enrich/{id} until the job has ended; the last answer (all rows)."""
    headers = {"X-API-Key": key} if key else {}
    async with asyncio.timeout(60):
        while True:
            response = await client.get(
                f"{ENRICH}/{job_id}", params={"per_page": "1000"}, headers=headers
            )
            body: dict[str, Any] = await response.json()
            assert response.status == 200, body
            openapi_check.check("GET", f"{ENRICH}/{{id}}", 200, body)
            if body["job"]["status"] in ("processed", "failed"):
                return body
            await asyncio.sleep(0.2)  # within the open mode's 200 requests a minute


async def stored_jobs(client: Client) -> int:
    counts = await client.app[appkeys.JOBS].store.counts_by_status()
    return sum(counts.values())


async def test_test_keys_get_the_free_deterministic_sandbox(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A test key's job calls no provider: each first name gives its documented branch, the
    found email carries the verify sandbox's RESULT, and nothing is spent."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    contacts = [person("Ada"), person("Nobody"), person("Failtask"), person("Undeliverable"),
                {"linkedin_url": "https://www.linkedin.com/in/grace-hopper/"}]  # fmt: skip
    status, body = await post(client, {"enrichment_type": "full", "contacts": contacts},
                              **{"X-API-Key": TEST})  # fmt: skip
    assert status == 201, body
    assert body["data"]["status"] == "processing" and body["data"]["number_of_total"] == 5
    done = await ended(client, body["data"]["id"], key=TEST)
    rows = done["data"]
    assert [r["status"] for r in rows] == ["found", "not_found", "failed", "found", "found"]
    ada = rows[0]
    assert ada["email"] == "ada.smith@good.com" and ada["phones"]
    assert ada["result"]["source"] == "sandbox" and ada["result"]["decision"] == "accept"
    assert rows[3]["email_rejected"] is True and rows[3]["result"]["state"] == "undeliverable"
    assert rows[4]["email"] == "gracehopper@example.com"
    job = done["job"]
    assert job["status"] == "processed" and job["provider"] == "sandbox"
    assert job["credits_spent"] == 0 and job["processed"] == 5 and job["progress"] == 100
    assert job["enrichment"] == {"enrichment_type": "full", "found": 3, "not_found": 1,
                                 "failed": 1, "emails_found": 3, "emails_rejected": 1,
                                 "phones_found": 3}  # fmt: skip
    _, body = await post(client, {"enrichment_type": "full", "contacts": contacts},
                         **{"X-API-Key": TEST})  # fmt: skip
    again = await ended(client, body["data"]["id"], key=TEST)
    assert [(r["email"], r["phones"]) for r in again["data"]] == [
        (r["email"], r["phones"]) for r in rows]  # fmt: skip


async def test_who_may(make_client: MakeClient, tmp_path: Path) -> None:
    """Public keys get 403, no key 401; another key's job is a 404, and an enrichment job is
    not a batch job."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    body = {"contacts": [person("Ada")]}
    pub = {"X-API-Key": PUBLIC, "Origin": SHOP}
    assert (await client.post(ENRICH, json=body, headers=pub)).status == 403
    assert (await client.get(f"{ENRICH}/1", headers=pub)).status == 403
    assert (await client.post(ENRICH, json=body)).status == 401
    status, created = await post(client, body, **{"X-API-Key": TEST})
    assert status == 201
    job_id = created["data"]["id"]
    await ended(client, job_id, key=TEST)
    other = await client.get(f"{ENRICH}/{job_id}", headers={"X-API-Key": OTHER})
    assert other.status == 404
    as_batch = await client.get(f"/api/v1/batch/{job_id}", headers={"X-API-Key": TEST})
    assert as_batch.status == 404
    listed = await client.get("/api/v1/batch", headers={"X-API-Key": TEST})
    assert (await listed.json())["data"] == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("not json", 400, "JSON"),
        ([], 400, "object"),
        ({"contacts": []}, 400, "non-empty"),
        ({"contacts": [person("A")] * 10_001}, 413, "10,000"),
        ({"contacts": [person("A")], "enrichment_type": "everything"}, 400, "enrichment_type"),
        ({"contacts": [{"first_name": "Ada"}]}, 400, "linkedin_url"),
        ({"contacts": [{**person("A"), "company_domian": "x.com"}]}, 400, "company_domian"),
        ({"contacts": [{**person("A"), "last_name": 7}]}, 400, "string"),
        ({"contacts": [person("A")], "context": "nope"}, 400, "context"),
        ({"contacts": [person("A")], "callback_url": "https://hooks.example.org/x"}, 400,
         "EMAILGATE_WEBHOOK_SECRET"),
        ({"contacts": [person("A")], "colour": "red"}, 400, "colour"),
    ],
)  # fmt: skip
async def test_bad_input_is_4xx_and_stores_nothing(
    make_client: MakeClient, cleanlist: FakeCleanlist, body: Any, status: int, words: str
) -> None:
    """Each bad body: a clear 4xx in the contract's error shape, no job stored, no provider
    request made."""
    client = await make_client(**with_cleanlist(cleanlist))
    if isinstance(body, str):
        response = await client.post(ENRICH, data=body, headers={"Content-Type":
                                                                 "application/json"})  # fmt: skip
    else:
        response = await client.post(ENRICH, json=body)
    data = await response.json()
    assert response.status == status, data
    assert data["success"] is False and words in data["message"]
    assert await stored_jobs(client) == 0
    assert not cleanlist.calls.select(BULK)


async def test_wrong_content_type_and_unknown_id(make_client: MakeClient) -> None:
    """A form body is 415; an unknown or malformed id is 404; a bad `status` filter is 400."""
    client = await make_client()
    response = await client.post(ENRICH, data={"contacts": "x"})
    assert response.status == 415
    assert (await client.get(f"{ENRICH}/999")).status == 404
    assert (await client.get(f"{ENRICH}/abc")).status == 404
    assert (await client.get(f"{ENRICH}/1", params={"status": "maybe"})).status == 400
    assert await stored_jobs(client) == 0


async def test_private_keys_need_enrichment_on(make_client: MakeClient, tmp_path: Path) -> None:
    """Without a Cleanlist.ai key a private key's job is a 503 saying why, and nothing is
    stored; a test key's job still runs in the sandbox."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    response = await client.post(ENRICH, json={"contacts": [person("Ada")]},
                                 headers={"X-API-Key": PRIVATE})  # fmt: skip
    assert response.status == 503
    assert "EMAILGATE_CLEANLIST_API_KEY" in (await response.json())["message"]
    assert await stored_jobs(client) == 0
    status, _ = await post(client, {"contacts": [person("Ada")]}, **{"X-API-Key": TEST})
    assert status == 201


async def test_600_contacts_in_requests_of_250_every_found_email_verified(
    make_client: MakeClient, cleanlist: FakeCleanlist
) -> None:
    """Three requests (250, 250, 100); every found email comes back with its RESULT, a
    rejected one marked; credits as the provider charged them; within the window, no 429;
    the jobs gauge and the enrichment metrics count the job."""
    contacts = [person(f"P{i}") for i in range(600)]
    contacts[5] = person("Nobody")
    contacts[260] = person("Failtask")
    contacts[300] = person("Temp", "Mail", "mailinator.com")
    contacts[599] = person("Gone", "Away", "gone.com")
    client = await make_client(**with_cleanlist(cleanlist))
    status, body = await post(client, {"enrichment_type": "partial", "contacts": contacts})
    assert status == 201, body
    done = await ended(client, body["data"]["id"])
    assert len(cleanlist.calls.select(BULK)) == 3
    assert sorted(len(w.tasks) for w in cleanlist.workflows.values()) == [100, 250, 250]
    assert cleanlist.rate_limited() == 0
    rows = done["data"]
    assert len(rows) == 600 and [r["index"] for r in rows] == list(range(600))
    found = [r for r in rows if r["status"] == "found"]
    assert len(found) == 598 and all(r["result"]["email_address"] == r["email"] for r in found)
    assert rows[5]["status"] == "not_found" and rows[260]["status"] == "failed"
    assert rows[300]["email_rejected"] and rows[300]["result"]["reason"] == "low_quality"
    assert rows[599]["email_rejected"] and rows[599]["result"]["reason"] == "invalid_domain"
    assert rows[0]["result"]["context"] == "marketing" and not rows[0]["email_rejected"]
    job = done["job"]
    assert job["provider"] == "cleanlist" and job["credits_spent"] == 598
    assert 1_000_000 - cleanlist.credits == 598
    assert sum(job["counts"].values()) == 598
    gauge = 'emailgate_jobs{kind="enrich",status="processed"} 1.0'
    async with asyncio.timeout(10):  # the gauge follows the job's status change shortly after
        while gauge not in (metrics := await (await client.get("/metrics")).text()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert 'emailgate_enrich_contacts_total{outcome="found"} 598.0' in metrics
    assert 'emailgate_enrich_credits_spent_total{kind="email",provider="cleanlist"} 598.0' in (
        metrics)  # fmt: skip
    assert 'emailgate_job_addresses_total{kind="enrich",stage="local"} 598.0' in metrics


async def test_found_emails_use_the_providers_spare_slots(
    make_client: MakeClient, cleanlist: FakeCleanlist, fake_listcleanser: FakeListCleanser
) -> None:
    """With a real-time provider configured, a found email is verified by it (in the
    background lane) and its RESULT says so."""
    client = await make_client(
        **with_cleanlist(cleanlist),
        EMAILGATE_LISTCLEANSER_URL=fake_listcleanser.url,
        EMAILGATE_LISTCLEANSER_API_KEY=fake_listcleanser.api_key,
        EMAILGATE_LISTCLEANSER_RATE="6000/60s",
        EMAILGATE_PROVIDERS="listcleanser",
    )
    contacts = [person("Deliverable", f"N{i}") for i in range(4)]
    status, body = await post(client, {"contacts": contacts})
    assert status == 201
    done = await ended(client, body["data"]["id"])
    assert {r["result"]["source"] for r in done["data"]} == {"listcleanser"}
    verified = sorted(str(e) for e in fake_listcleanser.calls.emails(VERIFY))
    assert verified == sorted(r["email"] for r in done["data"])


async def test_no_credits_fails_the_job_saying_why(
    make_client: MakeClient, cleanlist: FakeCleanlist
) -> None:
    """402 once the credits are spent: nothing more is sent, the job fails saying why, and
    each of its contacts is failed unsent; the job before it keeps its finds."""
    cleanlist.configure(credits=250)
    client = await make_client(**with_cleanlist(cleanlist))
    contacts = [person(f"P{i}") for i in range(500)]
    _, body = await post(client, {"contacts": contacts[:250]})
    first = await ended(client, body["data"]["id"])
    assert first["job"]["status"] == "processed" and first["job"]["credits_spent"] == 250
    _, body = await post(client, {"contacts": contacts})
    done = await ended(client, body["data"]["id"])
    job = done["job"]
    assert job["status"] == "failed" and "402" in job["error"]
    assert all(r["status"] == "failed" for r in done["data"])
    assert "not sent" in done["data"][0]["error"] and len(done["data"]) == 500
    # The first job's request, then this job's (sent together): each refused, none served.
    assert [c.status for c in cleanlist.calls.select(BULK)][1:] == [402, 402]


async def test_429s_slow_and_failed_workflows(
    make_client: MakeClient, cleanlist: FakeCleanlist
) -> None:
    """A 429 with Retry-After (another client of the organisation spent the window) is waited
    out and the request sent again; a slow task and a failed workflow end where they belong."""
    cleanlist.configure(slow_ms=1500)
    client = await make_client(**with_cleanlist(cleanlist))
    cleanlist.fail(429, retry_after=1.0)
    contacts = [person("Slow"), person("Ada")] + [person(f"Q{i}") for i in range(249)]
    contacts.append(person("Failworkflow"))
    status, body = await post(client, {"contacts": contacts})
    assert status == 201
    done = await ended(client, body["data"]["id"])
    rows = done["data"]
    assert rows[0]["status"] == "found" and rows[1]["status"] == "found"
    assert rows[-1]["status"] == "failed"
    assert len(cleanlist.calls.select(BULK)) == 3  # one 429, then two requests
    assert cleanlist.calls.select(BULK)[0].status == 429
    assert done["job"]["status"] == "processed"


async def test_status_webhooks_are_signed_enrich_events(
    make_client: MakeClient, cleanlist: FakeCleanlist, hook: Receiver
) -> None:
    """Our own webhooks: `enrich.status` on each status change, signed, with the JOB and its
    enrichment counters."""
    client = await make_client(**with_cleanlist(cleanlist), EMAILGATE_WEBHOOK_SECRET=SECRET,
                               EMAILGATE_WEBHOOK_ALLOW_PRIVATE="1")  # fmt: skip
    status, body = await post(client, {"contacts": [person("Ada")], "callback_url": hook.url})
    assert status == 201, body
    await ended(client, body["data"]["id"])
    async with asyncio.timeout(10):
        while not any(g["data"]["status"] == "processed" for g in hook.got):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert hook.bad_signatures == 0
    assert {g["event"] for g in hook.got} == {"enrich.status"}
    assert hook.got[0]["data"]["status"] == "processing"
    last = hook.got[-1]["data"]
    assert last["enrichment"]["found"] == 1 and last["id"] == body["data"]["id"]


async def test_the_providers_callback_wakes_the_job(
    make_client: MakeClient, cleanlist: FakeCleanlist, aiohttp_server: Any
) -> None:
    """With EMAILGATE_CLEANLIST_WEBHOOK_URL each request names our hook (with a secret path
    part); the provider's completion callback makes the job poll that workflow at once, long
    before its first scheduled poll (30 s with a 10-minute window); a wrong path part is a 404."""
    apps: list[Client] = []

    async def relay(request: web.Request) -> web.Response:  # the public address, in front of us
        answer = await apps[0].post(request.path, data=await request.read(),
                                    headers={"Content-Type": "application/json"})  # fmt: skip
        return web.json_response(await answer.json(), status=answer.status)

    front = web.Application()
    front.router.add_post("/hooks/cleanlist/{token}", relay)
    proxy = await aiohttp_server(front)
    client = await make_client(
        **with_cleanlist(cleanlist, EMAILGATE_CLEANLIST_RATE="60/600s"),
        EMAILGATE_CLEANLIST_WEBHOOK_URL=str(proxy.make_url("/hooks/cleanlist")),
    )
    apps.append(client)
    status, body = await post(client, {"contacts": [person("Ada"), person("Bob")]})
    assert status == 201
    async with asyncio.timeout(20):
        done = await ended(client, body["data"]["id"])
    assert [r["status"] for r in done["data"]] == ["found", "found"]
    assert [s for _, s in cleanlist.callbacks] == [200]
    assert len(cleanlist.calls.select(STATUS)) == 1  # woken once, polled once
    (workflow,) = cleanlist.workflows.values()
    assert workflow.webhook_url is not None and workflow.webhook_url.startswith(
        str(proxy.make_url("/hooks/cleanlist/")))  # fmt: skip
    wrong = await client.post("/hooks/cleanlist/not-the-token", json={"workflow_id": "x"})
    assert wrong.status == 404
    token = workflow.webhook_url.rsplit("/", 1)[1]
    junk = await client.post(f"/hooks/cleanlist/{token}", json={"nothing": 1})
    assert junk.status == 400
    openapi_check.check("POST", "/hooks/cleanlist/{token}", 400, await junk.json())
    late = await client.post(
        f"/hooks/cleanlist/{token}", json={"workflow_id": workflow.workflow_id}
    )
    assert await late.json() == {"success": True, "woken": False}  # the job has ended
