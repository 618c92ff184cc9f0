"""Who may ask, from where and how often: client keys, origins/CORS, client rate limits, the
credit budget of public keys, and the sandbox of test keys.

`install(app)` sets up the gate, which the app's middleware (declared in app.py) calls with
each request and the rest of its way. It sets a `Grant` on each API request that the verify
handler honours (providers allowed or not, sandbox or not). The keys file is read when the
app is built and again on SIGHUP. This layer answers nothing itself: a refusal is raised as
an aiohttp HTTP error, which the HTTP layer turns into the error body every answer shares.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from emailgate import appkeys
from emailgate.access.gate import Gate
from emailgate.access.grant import (
    CLIENT,
    GRANT,
    OPEN,
    OPEN_CLIENT,
    PAID,
    RESPONSE_HEADERS,
    SPENT,
    Grant,
    note_answer,
)
from emailgate.access.keys import KeyRing, KeysFileError, load_keys
from emailgate.config import Settings

__all__ = [
    "CLIENT", "GATE", "GRANT", "OPEN", "OPEN_CLIENT", "PAID", "RESPONSE_HEADERS", "SPENT",
    "Gate", "Grant",
    "KeysFileError", "install", "note_answer", "read_settings",
]  # fmt: skip

log = logging.getLogger("emailgate.access")

GATE = web.AppKey("gate", Gate)


def read_settings(env: Mapping[str, str]) -> tuple[Settings, KeyRing | None]:
    """The settings and the client keys file they name, each read once; raise SettingsError
    listing every problem of both (a bad keys file is reported with the other settings)."""
    rings: list[KeyRing] = []

    def check(path: Path) -> list[str]:
        try:
            rings.append(load_keys(path))
        except KeysFileError as e:
            return e.problems
        return []

    settings = Settings.from_env(env, check_keys_file=check)
    return settings, rings[0] if rings else None


def install(app: web.Application, keys: KeyRing | None = None) -> Gate:
    """Add the access layer to `app` (before it starts): `keys` as read by `read_settings`,
    else the settings' keys file is read here (KeysFileError on a bad one). The caller puts
    the gate in the app's middleware."""
    settings = app[appkeys.SETTINGS]
    ring = keys
    if ring is None and settings.api_keys_file is not None:
        ring = load_keys(settings.api_keys_file)
    gate = Gate(settings, app[appkeys.METRICS], ring=ring)
    app[GATE] = gate

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
