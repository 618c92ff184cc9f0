"""Middlewares: request ids and errors in the shape docs/api.md documents (no input yields a
500), and request bodies read within a time limit. The stack's order is declared in app.py."""

from __future__ import annotations

import asyncio
import logging
import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from emailgate import appkeys
from emailgate.access.grant import RESPONSE_HEADERS
from emailgate.http.errors import BadRequest, error
from emailgate.http.limits import BODY_TIMEOUT_S
from emailgate.log import request_id

log = logging.getLogger("emailgate.http")

# A caller's own request id is kept only when it cannot smuggle anything into a log line.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Headers of aiohttp's HTTP exceptions that belong in our JSON answer too.
_KEEP = ("Allow", "Retry-After", "WWW-Authenticate")

STREAMED = ("/api/v1/batch", "/api/v1/enrich", "/hooks/cleanlist/")
"""Paths whose bodies (uploaded lists, up to EMAILGATE_BATCH_MAX_BYTES; contacts, up to 8 MiB;
Cleanlist.ai's callback, which may carry results) the handler reads, each with its own limit."""

BODY_TIMEOUT = web.AppKey("body_timeout", float)
"""Seconds a request body may take to arrive (tests set a short one); default BODY_TIMEOUT_S."""


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id and turn every failure into the documented JSON error."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _SAFE_ID.match(given) else os.urandom(8).hex()
    token = request_id.set(rid)
    try:
        try:
            response = await handler(request)
        except BadRequest as e:
            response = error(400, str(e))
        except web.HTTPException as e:
            if e.status < 400:
                raise
            headers = {k: e.headers[k] for k in _KEEP if k in e.headers}
            # aiohttp's own texts are "404: Not Found"; a custom text says more, keep it.
            text = e.text or ""
            message = e.reason if not text or text.startswith(f"{e.status}:") else text
            response = error(e.status, message, headers)
        except Exception:
            log.exception("unhandled error", extra={"path": request.path})
            response = error(500, "internal error; the request id is in the X-Request-Id header")
        response.headers.update(request.get(RESPONSE_HEADERS, {}))
        response.headers["X-Request-Id"] = rid
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    finally:
        request_id.reset(token)


@web.middleware
async def slow_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the body (bounded by the app's client_max_size) within a time limit, else 408.
    Batch uploads and enrichment jobs are read by their handlers instead."""
    if request.can_read_body and not request.path.startswith(STREAMED):
        size = request.content_length
        if size is not None and size > request.client_max_size:
            # Refused unread: no reason to wait for a body that will not be used.
            raise web.HTTPRequestEntityTooLarge(max_size=request.client_max_size, actual_size=size)
        try:
            async with asyncio.timeout(request.app.get(BODY_TIMEOUT, BODY_TIMEOUT_S)):
                await request.read()  # kept by the request: the handler's read() returns it
        except TimeoutError:
            request.app[appkeys.METRICS].client_rejections.labels("slow_body").inc()
            response = error(408, "the request body did not arrive in time")
            response.force_close()
            return response
    return await handler(request)
