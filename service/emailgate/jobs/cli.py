"""`emailgate batch FILE`: a batch job run in this process (progress on stderr, results as
CSV), or with `--url URL --key KEY` submitted to a running service and followed there."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp

from emailgate.bulk.base import BulkProvider
from emailgate.config import Settings
from emailgate.jobs.export import csv_chunks
from emailgate.jobs.ingest import IngestError, file_batches, kind_of, open_table
from emailgate.jobs.model import Job, JobStatus
from emailgate.jobs.runner import SpareSource
from emailgate.jobs.service import open_jobs
from emailgate.jobs.store import NewJob
from emailgate.metrics import Metrics
from emailgate.verify.decision import UnknownContext
from emailgate.verify.pipeline import Verifier

PROGRESS_EVERY = 0.5  # seconds between progress lines
BAR = 30


class CliError(Exception):
    """A problem to print and exit 2 with."""


def progress_line(job: Job) -> str:
    """`[#####-----]  50%  1,000/2,000 addresses  processing`."""
    done = job.progress
    filled = BAR * done // 100
    return (f"[{'#' * filled}{'-' * (BAR - filled)}] {done:3d}%  "
            f"{job.processed:,}/{job.distinct_total:,} addresses  {job.status.value}")  # fmt: skip


async def run_local(
    settings: Settings,
    path: Path,
    *,
    verifier: Verifier,
    metrics: Metrics,
    chain: object | None,
    bulk: Sequence[BulkProvider],
    column: str | None,
    context: str,
    out: IO[bytes],
    err: IO[str] = sys.stderr,
) -> Job:
    """Ingest `path`, work the job here, write the results to `out`; the finished job.

    The caller (`emailgate batch`) builds the service's parts from the settings; the job lives
    in the configured store while it runs and is deleted once written."""
    try:
        kind = kind_of(path.name)
    except IngestError as e:
        raise CliError(str(e)) from None
    if not await asyncio.to_thread(path.is_file):
        raise CliError(f"{path}: no such file")
    try:
        verifier.threshold(context)
    except UnknownContext as e:
        raise CliError(str(e)) from None
    spare = chain if isinstance(chain, SpareSource) else None
    async with open_jobs(
        settings, verifier=verifier, metrics=metrics, chain=spare, bulk=bulk, work=False
    ) as jobs:
        try:
            table = await asyncio.to_thread(open_table, path, kind, column)
            new = NewJob("cli", path.name, context, False, None, None, table.columns)
            job = await jobs.store.create(
                new, file_batches(table, max_rows=settings.batch_max_rows)
            )
        except IngestError as e:
            raise CliError(str(e)) from None
        claimed = await jobs.store.claim(jobs.runner.worker, settings.job_lease_s, job_id=job.id)
        assert claimed is not None
        work = asyncio.create_task(jobs.runner.run_job(claimed))
        try:
            await _follow(lambda: jobs.store.get(job.id), work, err)
            final = await jobs.store.get(job.id)
            assert final is not None
            if final.status is not JobStatus.PROCESSED:
                raise CliError(f"the job ended {final.status.value}: {final.error}")
            async for chunk in csv_chunks(jobs.store, final):
                out.write(chunk)
            out.flush()
            return final
        finally:
            if not work.done():
                jobs.runner.stop()
                with contextlib.suppress(Exception):
                    await work
            await jobs.store.delete(job.id)


async def _follow(
    read: Callable[[], Any], work: asyncio.Task[None], err: IO[str]
) -> None:  # fmt: skip
    tty = err.isatty()
    while True:
        done = work.done()
        job = await read()
        if job is not None:
            line = progress_line(job)
            err.write(("\r" + line) if tty else (line + "\n"))
            err.flush()
        if done:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(work), PROGRESS_EVERY)
    if tty:
        err.write("\n")
    work.result()


async def run_remote(
    url: str,
    key: str | None,
    path: Path,
    *,
    column: str | None,
    context: str,
    out: IO[bytes],
    err: IO[str] = sys.stderr,
    poll: float = 1.0,
) -> dict[str, Any]:
    """Upload `path` to a running service, follow the job, write its download to `out`."""
    headers = {"X-API-Key": key} if key else {}
    base = url.rstrip("/")
    async with aiohttp.ClientSession(headers=headers) as http:
        form = aiohttp.FormData()
        form.add_field("context", context)
        if column:
            form.add_field("column", column)
        with path.open("rb") as f:
            form.add_field("email_list", f, filename=path.name)
            async with http.post(f"{base}/api/v1/batch", data=form) as r:
                body = await _json(r)
        job_id = body["data"]["id"]
        tty = err.isatty()
        while True:
            async with http.get(f"{base}/api/v1/batch/{job_id}") as r:
                status = await _json(r)
            job = status["job"]
            line = f"{job['progress']:3d}%  {job['processed']:,} processed  {job['status']}"
            err.write(("\r" + line) if tty else (line + "\n"))
            err.flush()
            if job["status"] == "processed":
                break
            if job["status"] in ("failed", "cancelled", "waiting_approval"):
                raise CliError(f"the job is {job['status']}: {job.get('error') or ''}".strip())
            await asyncio.sleep(poll)
        if tty:
            err.write("\n")
        async with http.get(f"{base}/api/v1/batch/{job_id}/download") as r:
            if r.status != 200:
                await _json(r)
            async for chunk in r.content.iter_chunked(64 * 1024):
                out.write(chunk)
        out.flush()
        return dict(job)


async def _json(r: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body: dict[str, Any] = await r.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        raise CliError(f"the service answered {r.status} without JSON") from None
    if r.status >= 400 or not body.get("success", False):
        raise CliError(f"the service answered {r.status}: {body.get('message', body)}")
    return body


@contextlib.contextmanager
def output(out: Path | None) -> Iterator[IO[bytes]]:
    """The results file (written whole or not at all), or standard output."""
    if out is None:
        yield sys.stdout.buffer
        return
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as f:
            yield f
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


__all__ = ["CliError", "output", "progress_line", "run_local", "run_remote"]
