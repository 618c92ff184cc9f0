"""Handlers of the endpoints (docs/api.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from emailgate import access, appkeys
from emailgate.http.errors import JSON, BadRequest, json_response
from emailgate.verify.decision import UnknownContext

MAX_BODY = 8 * 1024  # docs/api.md: a verify body is at most 8 KiB
DEFAULT_CONTEXT = "signup"


async def verify_get(request: web.Request) -> web.Response:
    """GET /api/v1/verify?email=…&context=…"""
    query = request.query
    emails = query.getall("email", [])
    if len(emails) != 1:
        raise BadRequest(
            "give exactly one 'email' query parameter" if emails else "'email' is required"
        )
    contexts = query.getall("context", [])
    if len(contexts) > 1:
        raise BadRequest("give at most one 'context' query parameter")
    return await _answer(request, emails[0], contexts[0] if contexts else DEFAULT_CONTEXT)


async def verify_post(request: web.Request) -> web.Response:
    """POST /api/v1/verify with `{"email": str, "context": str?}`."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = await request.read()  # bounded by the app's client_max_size
    if not body:
        raise BadRequest('the body must be JSON like {"email": "someone@example.com"}')
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object like {"email": "someone@example.com"}')
    email = data.get("email")
    if not isinstance(email, str):
        raise BadRequest("'email' is required and must be a string")
    context = data.get("context", DEFAULT_CONTEXT)
    if context is None:
        context = DEFAULT_CONTEXT
    if not isinstance(context, str):
        raise BadRequest("'context' must be a string")
    return await _answer(request, email, context)


async def _answer(request: web.Request, email: str, context: str) -> web.Response:
    verifier = request.app[appkeys.SERVICES].verifier
    grant = request.get(access.GRANT, access.OPEN)
    try:
        result = await verifier.check(
            email,
            context,
            use_providers=grant.use_providers,
            sandbox=grant.sandbox,
            history=grant.history,
        )
    except UnknownContext as e:
        raise BadRequest(str(e)) from None
    access.note_answer(request, result)
    return web.Response(body=result.answer(), headers={"Content-Type": JSON})


async def credits(request: web.Request) -> web.Response:
    """GET /api/v1/credits: the last known credits per provider (null when unknown)."""
    services = request.app[appkeys.SERVICES]
    return json_response({"success": True, "data": services.credits()})


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 while the process serves."""
    return json_response({"success": True, "status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when ready to answer, else 503 with the reasons."""
    services = request.app[appkeys.SERVICES]
    checks = await asyncio.wait_for(services.readiness(), timeout=1.0)
    problems = [f"{name}: {detail}" for name, (ok, detail) in checks.items() if not ok]
    body: dict[str, Any] = {
        "success": not problems,
        "status": "ready" if not problems else "not ready",
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
    }
    if problems:
        body["message"] = "not ready: " + "; ".join(problems)
        body["reasons"] = problems
    return json_response(body, status=200 if not problems else 503)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition."""
    services = request.app.get(appkeys.SERVICES)
    if services is not None:
        await services.refresh_gauges()
    registry = request.app[appkeys.METRICS].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
