"""Uploads read and stored, and downloads written, in a child process
(EMAILGATE_JOB_WORKER=process).

Reading a 100,000-row file and writing its rows is seconds of CPU work, and so is writing the
results as CSV; on the serving event loop every signup in those seconds waits behind it. With
the job worker in a child process these go to a child too, at the worker's lower CPU priority:
the request waits for it (an upload's answer says how many rows were taken, or which 4xx; a
download is streamed from the file the child wrote), the signups beside it do not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from emailgate.jobs.child import WORKER_NICE, tie_to_parent
from emailgate.jobs.export import csv_chunks
from emailgate.jobs.ingest import IngestError, file_batches, list_batches, open_table
from emailgate.jobs.store import NewJob, open_store


@dataclass(frozen=True)
class Upload:
    """What the child needs: the job, and the spooled file or the JSON list."""

    new: NewJob
    max_rows: int
    path: str | None = None
    kind: str | None = None
    column: str | None = None
    emails: list[str] | None = None


class IngestPool:
    """One child process (started now, so the first upload does not wait for its imports)
    that turns uploads into stored jobs."""

    def __init__(self, database_url: str | None, data_dir: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        # spawn: a fork would copy this process's event loop and threads mid-flight.
        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=_start_child,
            initargs=(os.getpid(),),
        )
        self.pool.submit(_warm)

    async def create(self, upload: Upload) -> int:
        """The new job's id; IngestError as the inline path raises it."""
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(
            self.pool, _ingest, self.database_url, str(self.data_dir), upload
        )
        if isinstance(outcome, int):
            return outcome
        raise IngestError(*outcome)

    async def export(self, job_id: int, export: str) -> Path:
        """The job's CSV download, written by the child to a file that the caller deletes."""
        loop = asyncio.get_running_loop()
        path = await loop.run_in_executor(
            self.pool, _export, self.database_url, str(self.data_dir), job_id, export
        )
        return Path(path)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _start_child(parent: int) -> None:
    """In the child: the worker's lower priority, and an end with the service (even killed)."""
    tie_to_parent(parent)
    os.nice(WORKER_NICE)


def _warm() -> None:
    """Nothing: the child has imported this module, and with it the store and the reader."""


def _ingest(database_url: str | None, data_dir: str, upload: Upload) -> int | tuple[int, str]:
    """In the child: the job id, or (status, message) of the IngestError."""

    async def go() -> int:
        async with open_store(database_url, Path(data_dir)) as store:
            if upload.emails is not None:
                return (await store.create(upload.new, list_batches(upload.emails))).id
            assert upload.path is not None
            assert upload.kind is not None
            table = open_table(Path(upload.path), upload.kind, upload.column)
            new = dataclasses.replace(upload.new, columns=table.columns)
            batches = file_batches(table, max_rows=upload.max_rows)
            return (await store.create(new, batches)).id

    try:
        return asyncio.run(go())
    except IngestError as e:
        return e.status, str(e)


def _export(database_url: str | None, data_dir: str, job_id: int, export: str) -> str:
    """In the child: the path of the CSV written for the job."""

    async def go() -> str:
        async with open_store(database_url, Path(data_dir)) as store:
            job = await store.get(job_id)
            assert job is not None  # the caller found it a moment ago; a delete leaves it empty
            folder = Path(data_dir) / "exports"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{os.urandom(12).hex()}.csv"
            with path.open("wb") as f:
                async for chunk in csv_chunks(store, job, export):
                    f.write(chunk)
            return str(path)

    return asyncio.run(go())
