"""Who may ask, from where and how often: client keys, origins/CORS, client rate limits, the
credit budget of public keys, and the sandbox of test keys.

`install(app)` adds the access middleware (and the body time limit); it sets a `Grant` on each
API request that the verify handler honours (providers allowed or not, sandbox or not). The
keys file is read when the app is built and again on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.typedefs import Handler

from emailgate import appkeys
from emailgate.access.gate import Gate
from emailgate.access.grant import GRANT, OPEN, PAID, SPENT, Grant, note_answer
from emailgate.access.keys import KeysFileError, load_keys
from emailgate.http.middlewares import slow_bodies

__all__ = [
    "GATE", "GRANT", "OPEN", "PAID", "SPENT", "Gate", "Grant", "KeysFileError", "install",
    "note_answer",
]  # fmt: skip

log = logging.getLogger("emailgate.access")

GATE = web.AppKey("gate", Gate)


def install(app: web.Application) -> Gate:
    """Add the access layer to `app` (before it starts); raise KeysFileError on a bad file."""
    settings = app[appkeys.SETTINGS]
    ring = load_keys(settings.api_keys_file) if settings.api_keys_file is not None else None
    gate = Gate(settings, app[appkeys.METRICS], ring=ring)
    app[GATE] = gate

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await gate(request, handler)

    app.middlewares.append(access)
    app.middlewares.append(slow_bodies)

    async def start(app: web.Application) -> None:
        services = app[appkeys.SERVICES]  # opened by the cleanup_ctx, which runs first
        verifier = services.verifier
        gate.use_shared(hasher=verifier.hasher, redis=services.redis, clock=verifier.clock)
        if ring is not None:
            log.info(
                "client keys in force",
                extra={
                    "event": "keys",
                    "keys": {k.name: k.kind.value for k in ring.keys},
                    "trusted_proxies": [str(n) for n in settings.trusted_proxies],
                    "public_credits_per_hour": settings.public_credits_per_hour,
                },
            )
            if len(ring) == 0:
                log.warning(
                    "the keys file has no keys: every API request will be refused (401)",
                    extra={"event": "no_keys"},
                )
        # Also when running open: SIGHUP's default action would end the process.
        _listen_for_sighup(app, gate)

    app.on_startup.append(start)
    return gate


def _listen_for_sighup(app: web.Application, gate: Gate) -> None:
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, gate.reload)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        # Not the main thread, or no signals on this platform: reloading needs a restart.
        log.info("keys file: SIGHUP reload unavailable here", extra={"event": "no_sighup"})
        return

    async def stop(app: web.Application) -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    app.on_cleanup.append(stop)
