"""Middlewares: request ids and errors in the contract's shape. No input yields a 500."""

from __future__ import annotations

import logging
import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from emailgate.http.errors import BadRequest, error
from emailgate.log import request_id

log = logging.getLogger("emailgate.http")

# A caller's own request id is kept only when it cannot smuggle anything into a log line.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Headers of aiohttp's HTTP exceptions that belong in our JSON answer too.
_KEEP = ("Allow", "Retry-After")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id and turn every failure into the contract's JSON error."""
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
        response.headers["X-Request-Id"] = rid
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    finally:
        request_id.reset(token)
