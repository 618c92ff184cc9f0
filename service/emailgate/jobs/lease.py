"""What every job worker shares: take a job of its kind under a lease, renew the lease while
working, hand the job back on shutdown, and fail the job (never the loop) on an unexpected
error. The batch worker (runner.py) and the enrichment worker (enrich_runner.py) add the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from emailgate.jobs.model import Job, JobStatus
from emailgate.jobs.store import JobStore

log = logging.getLogger("emailgate.jobs")

LEASE_TTL = 30.0  # seconds a lease lasts without a heartbeat: a dead worker's job waits this long
HEARTBEAT = 5.0  # seconds between renewals
IDLE_POLL = 1.0  # seconds between looks for work when there is none


class Handback(Exception):
    """The worker stops (shutdown): the job goes back to the store for anyone to take."""


class LeaseLost(Exception):
    """Another worker holds the job now, or it was deleted: stop touching it."""


@dataclass
class LeasedRun:
    """One claimed job while a worker holds it."""

    job: Job
    lost: bool = False
    """The lease could not be renewed: another worker may hold the job now."""


R = TypeVar("R", bound=LeasedRun)


class LeaseWorker(Generic[R]):
    """Works jobs of `kind` from the store, one at a time, until stopped."""

    kind = "batch"

    def __init__(
        self,
        store: JobStore,
        *,
        worker: str | None,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
        lease_ttl: float,
        heartbeat: float,
    ) -> None:
        self.store = store
        self.worker = worker or f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        self.sleep = sleep
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.heartbeat = heartbeat
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self._run: R | None = None

    def _new_run(self, job: Job) -> R:
        """The run of a job just claimed."""
        raise NotImplementedError

    async def _work(self, run: R) -> None:
        """Work the job as far as it goes (raising Handback or LeaseLost to stop)."""
        raise NotImplementedError

    async def run_forever(self) -> None:
        """Take jobs until `stop()`; a failure in one job fails that job, not the loop."""
        while not self.stopping.is_set():
            try:
                job = await self.store.claim(self.worker, self.lease_ttl, kind=self.kind)
            except Exception:
                log.exception("job store unreachable", extra={"event": "job_store_error"})
                job = None
            if job is None:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interrupted(), IDLE_POLL)
                continue
            await self.run_job(job)

    async def _interrupted(self) -> None:
        stop = asyncio.create_task(self.stopping.wait())
        wake = asyncio.create_task(self.wake.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    def stop(self) -> None:
        """Finish the step in hand, hand the job back, and leave the loop."""
        self.stopping.set()

    async def run_job(self, job: Job) -> None:
        """Work one claimed job as far as it goes."""
        run = self._new_run(job)
        self._run = run
        beat = asyncio.create_task(self._heartbeat(run))
        try:
            await self._work(run)
        except Handback:
            await self.store.release(job.id, self.worker)
            log.info("job handed back", extra={"event": "job_handback", "job": job.id})
        except LeaseLost:
            log.info("job no longer ours", extra={"event": "job_lost", "job": job.id})
        except Exception as e:
            log.exception("job failed", extra={"event": "job_failed", "job": job.id})
            await self.store.set_status(
                job.id, JobStatus.FAILED, error=f"internal error ({type(e).__name__})"
            )
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._run = None

    async def _heartbeat(self, run: R) -> None:
        while True:
            await self.sleep(self.heartbeat)
            try:
                if not await self.store.renew(run.job.id, self.worker, self.lease_ttl):
                    run.lost = True
                    return
            except Exception:  # the store is away for a moment: the lease has slack
                log.warning("lease renewal failed", extra={"event": "lease_renew_failed"})

    def _check(self, run: R) -> None:
        if run.lost:
            raise LeaseLost
        if self.stopping.is_set():
            raise Handback
