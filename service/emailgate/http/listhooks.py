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
from emailgate.jobs.listhooks import HookRefused, check_signed, wake_for

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
    jobs = request.app[appkeys.JOBS]
    try:
        # The signature first: an unsigned or forged call learns nothing more.
        check_signed(secret, PROVIDER, reference, sig)
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise HookRefused(413, f"webhook body over {MAX_BODY} bytes")
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise HookRefused(413, f"webhook body over {MAX_BODY} bytes")
        list_id = _list_id(raw)
        woken = await wake_for(jobs.store, jobs.runner.wakeups, secret, PROVIDER,
                               reference=reference, sig=sig, list_id=list_id,
                               redis=jobs.redis)  # fmt: skip
    except HookRefused as e:
        log.warning(
            "bulk webhook refused",
            extra={"event": "bulk_webhook_refused", "provider": PROVIDER, "status": e.status},
        )
        return error(e.status, e.message)
    return json_response({"success": True, "woken": woken})


def _list_id(raw: bytes) -> str:
    """The list's `id` from a webhook body (the list item); HookRefused (400) without one."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    list_id = body.get("id") if isinstance(body, dict) else None
    if isinstance(list_id, bool) or not isinstance(list_id, str | int) or list_id == "":
        raise HookRefused(400, "webhook body is not a JSON object with the list's id")
    return str(list_id)


def install(app: web.Application) -> None:
    """The webhook route."""
    app.router.add_post(PATH, emailconsul)
