"""Handlers of the enrichment API: `POST /api/v1/enrich` and `GET /api/v1/enrich/{id}`.

Who may: private keys and, without a keys file, anyone; test keys get the free, deterministic
sandbox; public keys are refused by the access layer (403). A key sees only its own jobs:
another key's id is a 404. Every bad input is a 4xx before anything is stored.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

import orjson
from aiohttp import web

from emailgate import access, appkeys
from emailgate.enrich.request import InvalidRequest, TooManyContacts, parse_request
from emailgate.http.batch import _int_param, _jobs, _owner, _read_limited, _sandbox
from emailgate.http.errors import BadRequest, json_response
from emailgate.jobs.enrich_store import OUTCOMES, EnrichStore, NewEnrichJob
from emailgate.jobs.model import Job, JobStatus, job_id
from emailgate.jobs.service import HOOK_PATH, provider_hook_token
from emailgate.jobs.webhooks import CallbackRefused, check_callback
from emailgate.verify.decision import UnknownContext

MAX_BODY = 8 * 1024 * 1024  # 10,000 contacts of a few hundred bytes each, with room
MAX_HOOK_BODY = 4 * 1024 * 1024  # a callback may carry a workflow's 250 results
PATH = "/api/v1/enrich"


async def create(request: web.Request) -> web.Response:
    """POST /api/v1/enrich: a job of up to 10,000 contacts."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    body = await _read_limited(request, MAX_BODY)
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    try:
        req = parse_request(data)
    except TooManyContacts as e:
        raise web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=str(e)) from None
    except InvalidRequest as e:
        raise BadRequest(str(e)) from None
    app = request.app
    settings = app[appkeys.SETTINGS]
    services = app[appkeys.SERVICES]
    try:
        services.verifier.threshold(req.context)
    except UnknownContext as e:
        raise BadRequest(str(e)) from None
    if req.callback_url is not None:
        if settings.webhook_secret is None:
            raise BadRequest("callback_url needs EMAILGATE_WEBHOOK_SECRET set on the service")
        try:
            await check_callback(req.callback_url, allow_private=settings.webhook_allow_private)
        except CallbackRefused as e:
            raise BadRequest(str(e)) from None
    sandbox = _sandbox(request)
    enrichment = services.enrichment
    if not sandbox and (enrichment is None or not enrichment.enabled):
        note = enrichment.note if enrichment is not None else "enrichment: off"
        raise web.HTTPServiceUnavailable(text=f"contact enrichment is not available ({note})")
    owner = _owner(request)
    gate = app[access.GATE]
    window = await gate.counter.take(
        gate.hasher.hash("enrich-upload|" + owner), settings.batch_upload_rate
    )
    if not window.allowed:
        raise web.HTTPTooManyRequests(
            text=f"too many enrichment jobs; try again in {window.reset_seconds} s",
            headers={"Retry-After": str(window.reset_seconds)},
        )
    jobs = _jobs(request)
    new = NewEnrichJob(
        owner=owner, name=req.name or "enrichment", context=req.context, sandbox=sandbox,
        callback_url=req.callback_url, enrichment_type=req.enrichment_type,
        contacts=req.contacts, provider="sandbox" if sandbox else "cleanlist",
    )  # fmt: skip
    job = await EnrichStore(jobs.store).create(new)
    jobs.wake_enricher()
    data = {"id": job.id, "name": job.name, "status": job.status.value,
            "number_of_total": job.number_of_total}  # fmt: skip
    return json_response({"success": True, "data": data}, status=201)


async def status(request: web.Request) -> web.Response:
    """GET /api/v1/enrich/{id}: progress, and each contact's outcome once the job has ended."""
    page = _int_param(request.query, "page", 1, low=1, high=1_000_000)
    per_page = _int_param(request.query, "per_page", 100, low=1, high=1000)
    outcome = request.query.get("status")
    if outcome is not None and outcome not in OUTCOMES:
        raise BadRequest(f"'status' must be one of {', '.join(OUTCOMES)}")
    job = await _enrich_job(request)
    store = EnrichStore(_jobs(request).store)
    body: dict[str, Any] = {"success": True, "state": job.status.value, "progress": job.progress,
                            "job": await _job_json(store, job)}  # fmt: skip
    if job.status in (JobStatus.PROCESSED, JobStatus.FAILED):
        found, count = await store.page(job.id, page=page, per_page=per_page, outcome=outcome)
        body.update({"data": found, "page": page, "per_page": per_page, "count": count,
                     "total_pages": math.ceil(count / per_page)})  # fmt: skip
    return json_response(body)


async def _enrich_job(request: web.Request) -> Job:
    found = job_id(request.match_info.get("id", ""))
    if found is None:
        raise web.HTTPNotFound(text="no such job")
    job: Job | None = await _jobs(request).store.get(found, owner=_owner(request))
    if job is None or job.kind != "enrich":
        raise web.HTTPNotFound(text="no such job")
    return job


async def _job_json(store: EnrichStore, job: Job) -> dict[str, Any]:
    """JOB, with the enrichment's own counters."""
    return {**job.to_dict(), "enrichment": await store.summary(job.id)}


async def provider_hook(request: web.Request) -> web.Response:
    """POST /hooks/cleanlist/{token}: Cleanlist.ai says a workflow ended. A wake-up only: the
    job polls that workflow now (if this replica works it; else its next poll comes anyway).
    The body is trusted for nothing but the workflow id; the results come from a poll."""
    expected = provider_hook_token(request.app[appkeys.SETTINGS])
    given = request.match_info.get("token", "")
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise web.HTTPNotFound(text="no such hook")
    body = await _read_limited(request, MAX_HOOK_BODY)
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    workflow = _workflow_id(data)
    if workflow is None:
        raise BadRequest("no workflow_id in the body")
    enricher = _jobs(request).enricher
    woken = enricher is not None and enricher.workflow_done(workflow)
    return json_response({"success": True, "woken": woken})


def _workflow_id(data: Any) -> str | None:
    """The workflow id of a callback, read leniently (top level or under `data`)."""
    for holder in (data, data.get("data") if isinstance(data, dict) else None):
        if isinstance(holder, dict):
            value = holder.get("workflow_id")
            if isinstance(value, str) and 0 < len(value) <= 200:
                return value
    return None


def install(app: web.Application) -> None:
    """Add the enrichment routes."""
    app.router.add_post(PATH, create)
    app.router.add_get(PATH + "/{id}", status)
    app.router.add_post(HOOK_PATH, provider_hook)
