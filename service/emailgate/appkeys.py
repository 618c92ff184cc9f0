"""Typed keys for everything the app holds (aiohttp `web.AppKey`), in one place."""

from __future__ import annotations

from aiohttp import web

from emailgate.config import Settings
from emailgate.jobs.service import Jobs
from emailgate.metrics import Metrics
from emailgate.services import Services

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SERVICES = web.AppKey("services", Services)
"""Long-lived resources (verifier, cache, Redis, providers), set by the app's cleanup_ctx."""
JOBS = web.AppKey("jobs", Jobs)
"""Batch jobs: the store, the worker and the webhook outbox, set by the app's cleanup_ctx."""
