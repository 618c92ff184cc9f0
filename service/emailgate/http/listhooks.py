"""`POST /hooks/emailconsul`: EmailConsul's list webhooks, a wake-up for the waiting job.

Outside the client-key gate (EmailConsul holds no key of ours): each list's webhook address
carries its own signature instead (bulk/hooks.py). Answers, each changing nothing but the
last:

- 404 when EMAILGATE_EMAILCONSUL_WEBHOOK_URL is not set (no webhooks were asked for);
- 401 without `ref` and `sig`, 403 when `sig` is not the signature of `ref`;
- 400 when the body is not a JSON object with the list's `id`, 413 when it is too large;
- 404 when no job of this store uploaded that list under that reference;
- 200 otherwise: the job waiting on the list polls it now, on whichever replica or worker
  process works it when Redis is configured (else when this process works it).
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from emailgate import appkeys
from emailgate.http.errors import error, json_response
from emailgate.jobs.listhooks import HookRefused, wake_for

log = logging.getLogger("emailgate.jobs")

PATH = "/hooks/emailconsul"
PROVIDER = "emailconsul"
MAX_BODY = 256 * 1024  # a list item is a few hundred bytes; the cap keeps junk cheap


async def emailconsul(request: web.Request) -> web.StreamResponse:
    """One webhook from EmailConsul."""
    settings = request.app[appkeys.SETTINGS]
    secret = settings.webhook_secret
    if settings.emailconsul_webhook_url is None or secret is None:
        return error(404, "EmailConsul webhooks are not configured here")
    reference, sig = request.query.get("ref"), request.query.get("sig")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error(413, f"webhook body over {MAX_BODY} bytes")
    raw = await request.read()
    body = None
    if len(raw) <= MAX_BODY:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
    list_id = body.get("id") if isinstance(body, dict) else None
    ok_id = isinstance(list_id, str | int) and not isinstance(list_id, bool) and list_id != ""
    jobs = request.app[appkeys.JOBS]
    try:
        if not ok_id:
            # The signature first even here: an unsigned call learns nothing about the body.
            await wake_for(jobs.store, jobs.runner.wakeups, secret, PROVIDER,
                           reference=reference, sig=sig, list_id="")  # fmt: skip
        woken = await wake_for(jobs.store, jobs.runner.wakeups, secret, PROVIDER,
                               reference=reference, sig=sig, list_id=str(list_id),
                               redis=jobs.redis)  # fmt: skip
    except HookRefused as e:
        if e.status == 404 and not ok_id:
            return error(400, "webhook body is not a JSON object with the list's id")
        log.warning(
            "bulk webhook refused",
            extra={"event": "bulk_webhook_refused", "provider": PROVIDER, "status": e.status},
        )
        return error(e.status, e.message)
    return json_response({"success": True, "woken": woken})


def install(app: web.Application) -> None:
    """The webhook route."""
    app.router.add_post(PATH, emailconsul)
