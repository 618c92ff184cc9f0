"""The aiohttp application, built by a factory whose dependencies are all injectable."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

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
from emailgate.http.middlewares import middleware
from emailgate.http.openapi import document
from emailgate.jobs.child import worker_child
from emailgate.jobs.runner import SpareSource
from emailgate.jobs.service import Jobs, open_jobs
from emailgate.metrics import Metrics
from emailgate.services import Services, open_services
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
    worker_env: Mapping[str, str] | None = None,
) -> web.Application:
    """The emailgate app. Anything not given is built from `settings` at start-up.

    `worker_env`: the environment of the `emailgate worker` child that EMAILGATE_JOB_WORKER=
    process starts (the one `settings` were read from); without it jobs are worked inline."""
    in_child = settings.job_worker == "process" and worker_env is not None
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
            jobs = await stack.enter_async_context(
                _open_jobs(
                    settings,
                    services,
                    bulk,
                    # `off`: an emailgate worker elsewhere works them.
                    run_jobs=settings.job_worker != "off" and not in_child,
                    ingest_in_child=in_child,
                )
            )
            app[appkeys.JOBS] = jobs
            if in_child and worker_env is not None:
                # The jobs' CPU work in a child at a lower priority: signups first (batch.md).
                await stack.enter_async_context(
                    worker_child(worker_env, stop_timeout=settings.shutdown_timeout_s)
                )
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
    # The whole middleware stack, declared here only: one middleware giving every answer
    # (refusals included) its request id and error shape, around the access gate, around the
    # body's reading (after the gate), around the handler.
    app.middlewares.append(middleware(admit=gate))
    static.install(app)
    return app


def create_worker_app(settings: Settings, *, metrics: Metrics | None = None) -> web.Application:
    """`emailgate worker`: the services and the job worker, no API; `/metrics` and `/healthz`
    for whoever watches it. The service it works for delivers the webhooks and prunes."""
    metrics = metrics or Metrics()
    app = web.Application()
    app[appkeys.SETTINGS] = settings
    app[appkeys.METRICS] = metrics

    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            services = await stack.enter_async_context(open_services(settings, metrics=metrics))
            app[appkeys.SERVICES] = services
            jobs = await stack.enter_async_context(_open_jobs(settings, services, upkeep=False))
            app[appkeys.JOBS] = jobs
            log.info(
                "emailgate worker ready",
                extra={"event": "worker_start", "notes": [*services.notes, jobs.describe()]},
            )
            yield

    app.cleanup_ctx.append(worker_ctx)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/healthz", handlers.healthz)
    return app


def _open_jobs(
    settings: Settings,
    services: Services,
    bulk: Sequence[BulkProvider] = (),
    *,
    run_jobs: bool = True,
    upkeep: bool = True,
    ingest_in_child: bool = False,
) -> contextlib.AbstractAsyncContextManager[Jobs]:
    # Batch jobs pay through the chain's spare slots, when it offers them.
    spare = services.chain if isinstance(services.chain, SpareSource) else None
    return open_jobs(
        settings,
        verifier=services.verifier,
        metrics=services.metrics,
        chain=spare,
        bulk=bulk or (services.bulk.providers if services.bulk else ()),
        enrichment=services.enrichment.client if services.enrichment else None,
        run_jobs=run_jobs,
        upkeep=upkeep,
        ingest_in_child=ingest_in_child,
        redis=services.redis,
    )
