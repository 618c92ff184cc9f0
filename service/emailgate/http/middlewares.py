"""The app's one middleware: request ids and errors in the shape docs/api.md documents (no
input yields a 500), the access layer's admission, and request bodies read within a time
limit, in that order. It is one aiohttp middleware, not three: each middleware costs every
request a wrapper and a coroutine, and the cache-hit path is a few of those long. app.py
declares it."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

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

Admit = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
"""The access layer: answers a request itself (a preflight), refuses it (raises an HTTP
error) or passes it on to the handler it is given."""

# Fresh request ids are 64 random bits: they identify, they are not secrets, so a seeded
# Mersenne Twister does (a system call for each would cost more than the rest of the id).
_ids = random.Random()


def middleware(admit: Admit) -> Middleware:
    """The middleware: a request id and the error shape around `admit` (the access layer),
    which passes the request on to the body's reading, then the handler. Every answer
    (refusals included) gets its request id and error shape; the access layer decides
    before a body is read."""

    @web.middleware
    async def http(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        rid = given if _SAFE_ID.match(given) else f"{_ids.getrandbits(64):016x}"
        token = request_id.set(rid)
        if request.can_read_body:
            handler = functools.partial(_read_body, handler=handler)
        try:
            try:
                response = await admit(request, handler)
            except Exception as e:  # every failure gets the error shape
                response = _as_json(request, e)
            response.headers.update(request.get(RESPONSE_HEADERS, {}))
            response.headers["X-Request-Id"] = rid
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response
        finally:
            request_id.reset(token)

    return http


def _as_json(request: web.Request, failure: Exception) -> web.Response:
    """The documented JSON error for any failure (aiohttp redirects are raised again)."""
    if isinstance(failure, BadRequest):
        return error(400, str(failure))
    if isinstance(failure, web.HTTPException):
        if failure.status < 400:
            raise failure
        headers = {k: failure.headers[k] for k in _KEEP if k in failure.headers}
        # aiohttp's own texts are "404: Not Found"; a custom text says more, keep it.
        text = failure.text or ""
        prefix = f"{failure.status}:"
        message = failure.reason if not text or text.startswith(prefix) else text
        return error(failure.status, message, headers)
    log.error("unhandled error", exc_info=failure, extra={"path": request.path})
    return error(500, "internal error; the request id is in the X-Request-Id header")


async def _read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the body (bounded by the app's client_max_size) within a time limit, else 408.
    Batch uploads and enrichment jobs are read by their handlers instead."""
    if not request.path.startswith(STREAMED):
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
