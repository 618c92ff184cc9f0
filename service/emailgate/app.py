"""The aiohttp application, built by a factory whose dependencies are all injectable."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import orjson
from aiocache.base import BaseCache
from aiohttp import web

from emailgate import access, appkeys
from emailgate.access.keys import KeyRing
from emailgate.bulk.base import BulkProvider
from emailgate.clock import Clock, monotonic
from emailgate.config import Settings
from emailgate.http import batch, enrich, handlers, listhooks, static
from emailgate.http.errors import JSON
from emailgate.http.middlewares import errors, slow_bodies
from emailgate.http.openapi import document
from emailgate.jobs.runner import SpareSource
from emailgate.jobs.service import open_jobs
from emailgate.metrics import Metrics
from emailgate.services import open_services
from emailgate.verify.domains import DomainLists
from emailgate.verify.seams import DomainResolver, VerdictSource

log = logging.getLogger("emailgate")


def create_app(
    settings: Settings,
    *,
    clock: Clock = monotonic,
    metrics: Metrics | None = None,
    resolver: DomainResolver | None = None,
    cache_backend: BaseCache | None = None,
    chain: VerdictSource | None = None,
    lists: DomainLists | None = None,
    keys: KeyRing | None = None,
    bulk: Sequence[BulkProvider] = (),
) -> web.Application:
    """The emailgate app. Anything not given is built from `settings` at start-up."""
    metrics = metrics or Metrics()
    app = web.Application(client_max_size=handlers.MAX_BODY)
    app[appkeys.SETTINGS] = settings
    app[appkeys.METRICS] = metrics

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            services = await stack.enter_async_context(
                open_services(
                    settings,
                    metrics=metrics,
                    clock=clock,
                    resolver=resolver,
                    cache_backend=cache_backend,
                    chain=chain,
                    lists=lists,
                )
            )
            app[appkeys.SERVICES] = services
            # Batch jobs pay through the chain's spare slots, when it offers them.
            spare = services.chain if isinstance(services.chain, SpareSource) else None
            jobs = await stack.enter_async_context(
                open_jobs(
                    settings,
                    verifier=services.verifier,
                    metrics=metrics,
                    chain=spare,
                    bulk=bulk or (services.bulk.providers if services.bulk else ()),
                    enrichment=services.enrichment.client if services.enrichment else None,
                )
            )
            app[appkeys.JOBS] = jobs
            log.info(
                "emailgate ready",
                extra={
                    "event": "start",
                    "listen": f"{settings.host}:{settings.port}",
                    "embedded_defaults": settings.embedded_defaults(),
                    "notes": [*services.notes, f"jobs: {jobs.describe()}"],
                    "client_authentication": "none (no EMAILGATE_API_KEYS_FILE)"
                    if settings.api_keys_file is None
                    else "keys file",
                },
            )
            yield

    app.cleanup_ctx.append(services_ctx)

    openapi_body = orjson.dumps(document())

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=openapi_body, headers={"Content-Type": JSON})

    app.router.add_get("/api/v1/verify", handlers.verify_get)
    app.router.add_post("/api/v1/verify", handlers.verify_post)
    app.router.add_get("/api/v1/credits", handlers.credits)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/openapi.json", openapi)
    batch.install(app)
    enrich.install(app)
    listhooks.install(app)
    gate = access.install(app, keys)
    # The whole middleware stack, outermost first, declared here only: every answer (refusals
    # included) gets its request id and error shape; the gate runs before a body is read.
    app.middlewares.extend([errors, access.middleware(gate), slow_bodies])
    static.install(app)
    return app
