"""Drive a bulk client as a job's provider step does: upload, poll until done, fetch, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from emailgate.bulk.base import BulkProvider, BulkState, BulkStatus
from emailgate.metrics import Metrics
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.rate import Rate
from emailgate.verify.result import Verdict


@dataclass
class Run:
    """What one list went through."""

    list_id: str
    statuses: list[BulkStatus] = field(default_factory=list)
    results: dict[str, Verdict] = field(default_factory=dict)


async def run_list(
    provider: BulkProvider,
    emails: Sequence[str],
    *,
    reference: str = "job-1",
    delete: bool = True,
    max_polls: int = 400,
) -> Run:
    """Upload `emails`, poll until done (waiting what each poll says), fetch, delete."""
    run = Run(await provider.upload(emails, reference=reference))
    for _ in range(max_polls):
        status = await provider.poll(run.list_id)
        run.statuses.append(status)
        if status.state is BulkState.DONE:
            break
        await asyncio.sleep(status.wait)
    else:
        pytest.fail(f"{provider.name}: list {run.list_id} not done after {max_polls} polls")
    async for email, verdict in provider.fetch(run.list_id):
        run.results[email] = verdict
    if delete:
        await provider.delete(run.list_id)
    return run


async def poll_until_done(provider: BulkProvider, list_id: str, max_polls: int = 400) -> None:
    """Poll, waiting what each poll says, until the list is done (its errors propagate)."""
    for _ in range(max_polls):
        status = await provider.poll(list_id)
        if status.state is BulkState.DONE:
            return
        await asyncio.sleep(status.wait)
    pytest.fail(f"{provider.name}: list {list_id} not done after {max_polls} polls")


def fast_pacer(count: int = 1000, period: float = 1.0) -> LocalPacer:
    """An in-process pacer generous enough not to slow a test down."""
    return LocalPacer(BucketSpec.for_rate(Rate(count, period)))


def bulk_count(metrics: Metrics, provider: str, outcome: str) -> float:
    """One sample of emailgate_bulk_requests_total."""
    value = metrics.registry.get_sample_value(
        "emailgate_bulk_requests_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0
