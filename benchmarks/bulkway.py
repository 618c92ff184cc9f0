"""The bulk way: N addresses through each bulk provider against its local fake.

    python -m benchmarks.bulkway [--rows 100000] [--job] [--quick] [--out benchmarks/results]

For ListCleanser batch, Listcleaner and EmailConsul in turn, against fakes that take a
realistic time per list (below; `--quick` divides it by 10):

- by default, the production client (its production pacers) takes the provider step as the
  job runner does: every list of `max_upload` uploaded, then all polled side by side at the
  waits the client asks for, fetched and deleted;
- with `--job`, the whole batch job: a CSV of N distinct addresses uploaded to a real
  `emailgate serve` (SQLite job store, the benchmark DNS zone) whose only paid way is that
  provider, followed to `processed`; the report adds the seconds before the first upload at
  the provider (free stages) and after its last call (storing the results).

Figures: wall time, uploads and calls per endpoint, each against its lower bound
(`lower_bound`: uploads ceil(N / 50,000); wall one list's processing, plus for ListCleanser
its upload and result-page pacing). Targets: uploads at the bound, every address answered
once, wall within 1.25 × its bound. Prints a table and writes OUT/bulkway.md (OUT/bulkway-job.md
with `--job`). `python -m benchmarks.batch` runs the `--job` way as its bulk section (`section`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from tests.fakes.emailconsul import FakeEmailConsul
from tests.fakes.listcleaner import FakeListcleaner
from tests.fakes.listcleanser import FakeListCleanser

from benchmarks import corpus
from benchmarks.procs import start_dns, start_service
from emailgate.bulk.assemble import RATES
from emailgate.bulk.base import BulkProvider, BulkState
from emailgate.bulk.emailconsul import EmailConsul
from emailgate.bulk.listcleaner import Listcleaner
from emailgate.bulk.listcleanser import MAX_UPLOAD, PAGE_SIZE, ListCleanserBatch
from emailgate.config import Secret
from emailgate.metrics import Metrics
from emailgate.pacing.bucket import BucketSpec
from emailgate.pacing.local import LocalPacer
from emailgate.providers.http import make_session
from emailgate.rate import Rate

# Seconds a list takes at the provider: a fixed queue time plus a time per 1,000 addresses.
# Our assumption of "minutes, growing slowly with size" (none of the documents gives figures).
DELAYS = {
    "listcleanser": (30.0, 0.3),
    "listcleaner": (45.0, 0.4),
    "emailconsul": (40.0, 0.3),  # pre-processing 10 s of it
}
WALL_TARGET = 1.25  # wall within this factor of the lower bound
RESULTS = Path(__file__).with_name("results")


@dataclass
class Figures:
    """One provider's run."""

    provider: str
    rows: int
    wall: float
    wall_bound: float
    uploads: int
    upload_bound: int
    answered: int
    calls: dict[str, int]
    before: float | None = None
    """Job mode: seconds from our upload to the first upload at the provider (free stages)."""
    after: float | None = None
    """Job mode: seconds from the provider's last answer to `processed` (reading and storing
    the results; with ListCleanser and Listcleaner storing overlaps the pages and the delete)."""

    def met(self) -> dict[str, bool]:
        return {
            "uploads at the bound": self.uploads == self.upload_bound,
            "every address answered once": self.answered == self.rows,
            f"wall within {WALL_TARGET} x bound": self.wall <= WALL_TARGET * self.wall_bound,
        }


def pacer(rate: Rate) -> LocalPacer:
    return LocalPacer(BucketSpec.for_rate(rate))


def make_fake(name: str, rows: int, scale: float) -> Any:
    """The provider's fake with its realistic delays (× `scale`), not started."""
    base, per_1000 = (d * scale for d in DELAYS[name])
    if name == "listcleanser":
        return FakeListCleanser(
            credits=10 * rows,
            batch_processing_s=base,
            batch_per_1000_s=per_1000,
            batch_max_per_page=PAGE_SIZE,
        )
    if name == "listcleaner":
        return FakeListcleaner(credits=10 * rows, processing_s=base, per_1000_s=per_1000)
    return FakeEmailConsul(credits=10 * rows, preprocess_s=base / 4,
                           processing_s=base * 3 / 4, per_1000_s=per_1000)  # fmt: skip


def make_client(name: str, fake: Any, session: aiohttp.ClientSession) -> BulkProvider:
    """The production client against `fake`, with its production pacers."""
    metrics = Metrics()
    if name == "listcleanser":
        return ListCleanserBatch(
            session, fake.url, Secret(fake.api_key), metrics=metrics,
            results_pacer=pacer(RATES["listcleanser-batch"]),
            upload_pacer=pacer(RATES["listcleanser-upload"]),
        )  # fmt: skip
    if name == "listcleaner":
        return Listcleaner(
            session,
            fake.url,
            Secret(fake.config.user_email),
            Secret(fake.api_key),
            pacer=pacer(RATES[name]),
            metrics=metrics,
        )
    return EmailConsul(session, fake.url, Secret(fake.api_key), pacer=pacer(RATES[name]),
                       metrics=metrics)  # fmt: skip


def lower_bound(name: str, rows: int, scale: float) -> tuple[float, int]:
    """(wall seconds, uploads) no client could beat against this fake.

    Uploads: ceil(rows / 50,000). Wall: every list is cleaned side by side, so one list's
    processing time (base + per-1000 × its size; EmailConsul's pre-processing included),
    plus for ListCleanser the upload pacing (the n-th list cannot go up before (n - 1) × 12 s,
    its 6 a minute) and the last list's result pages at its 200 a minute (50 pages of 1,000,
    15 s). Polls, transfers, parsing and storing are all counted as excess over it.
    """
    base, per_1000 = (d * scale for d in DELAYS[name])
    lists = math.ceil(rows / MAX_UPLOAD)
    list_size = min(rows, MAX_UPLOAD)
    bound = base + per_1000 * list_size / 1000
    if name == "listcleanser":
        bound += max(0, lists - 1) * 60.0 / 5  # the upload bucket: one slot every 12 s
        bound += math.ceil(list_size / PAGE_SIZE) * 60.0 / 200  # the last list's pages
    return bound, lists


async def run_provider(name: str, rows: int, scale: float) -> Figures:
    """Start the fake, push `rows` addresses through the client, measure."""
    emails = [f"user{i}@good.com" for i in range(rows)]
    fake = make_fake(name, rows, scale)
    await fake.start()
    try:
        async with make_session() as session:
            client = make_client(name, fake, session)
            start = time.monotonic()
            answered = await push(client, emails)
            wall = time.monotonic() - start
    finally:
        await fake.stop()
    bound, lists = lower_bound(name, rows, scale)
    calls = Counter(endpoint_key(c.endpoint) for c in fake.calls)
    return Figures(name, rows, wall, bound, len(fake.uploads()), lists, answered, dict(calls))


async def run_job(name: str, rows: int, scale: float, workdir: Path) -> Figures:
    """A batch job of `rows` distinct addresses (a CSV upload) through a real `emailgate
    serve` whose only paid way is this provider's fake: upload to `processed`."""
    fake = make_fake(name, rows, scale)
    await fake.start()
    dns, dns_address = await start_dns(workdir)
    settings = {
        "EMAILGATE_DNS_SERVERS": dns_address,
        "EMAILGATE_LOG_LEVEL": "warning",
        "EMAILGATE_PROVIDERS": "cleanmylist",  # no real-time key: the bulk way only
        "EMAILGATE_BATCH_PROVIDERS": name,
        "EMAILGATE_BATCH_REALTIME_MAX": "0",
        "EMAILGATE_CACHE_MAX_ENTRIES": str(max(100_000, 2 * rows)),
        f"EMAILGATE_{name.upper()}_URL": fake.url,
        f"EMAILGATE_{name.upper()}_API_KEY": fake.api_key,
    }
    if name == "listcleaner":
        settings["EMAILGATE_LISTCLEANER_USER_EMAIL"] = fake.config.user_email
    service = await start_service(f"bulk-{name}", workdir, settings)
    csv_body = "email\n" + "\n".join(corpus.unique_addresses(rows, seed=17, tag="b")) + "\n"
    try:
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("email_list", csv_body.encode(), filename="list.csv",
                           content_type="text/csv")  # fmt: skip
            start = time.monotonic()
            async with http.post(f"{service.url}/api/v1/batch", data=form) as r:
                created = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"upload refused: {r.status} {created}")
            job = await follow(http, f"{service.url}/api/v1/batch/{created['data']['id']}")
            wall = time.monotonic() - start
    finally:
        await service.stop()
        await dns.stop()
        await fake.stop()
    bound, lists = lower_bound(name, rows, scale)
    calls = Counter(endpoint_key(c.endpoint) for c in fake.calls)
    answered = int(job["processed"]) if job.get("provider") == name else 0
    uploads = [c.mono for c in fake.uploads()]
    return Figures(name, rows, wall, bound, len(uploads), lists, answered, dict(calls),
                   before=min(uploads, default=start) - start,
                   after=start + wall - max(c.done_mono or c.mono for c in fake.calls))  # fmt: skip


async def follow(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """Poll a job until it ends; its JOB."""
    while True:
        async with http.get(url) as r:
            body = await r.json()
        job: dict[str, Any] = body["job"]
        if job["status"] in ("processed", "failed", "cancelled"):
            if job["status"] != "processed":
                raise RuntimeError(f"job ended {job['status']}: {job.get('error')}")
            return job
        await asyncio.sleep(0.25)


def endpoint_key(path: str) -> str:
    """A path with its list id replaced, so calls group by endpoint."""
    parts = path.split("/")
    if path.startswith("/api/v1/batch/"):
        return "/api/v1/batch/{id}"
    if path.startswith("/listcleaning/list/") and not path.endswith("/presigned-url"):
        tail = parts[4:] if len(parts) > 4 else []
        return "/".join(["/listcleaning/list/{id}", *tail])
    if path.startswith("/_storage/"):
        return "PUT /_storage/{key}"
    return path


async def push(client: BulkProvider, emails: Sequence[str]) -> int:
    """A job's provider step, in the runner's order: every list uploaded, then all waited on
    side by side, each polled at the waits the client asks for, fetched and deleted."""
    size = client.max_upload
    ids = [await client.upload(emails[i : i + size], reference=f"bench-{i}")
           for i in range(0, len(emails), size)]  # fmt: skip
    answered: set[str] = set()

    async def finish(list_id: str) -> None:
        while (status := await client.poll(list_id)).state is not BulkState.DONE:  # noqa: ASYNC110
            await asyncio.sleep(status.wait)
        async for email, _ in client.fetch(list_id):
            answered.add(email)
        await client.delete(list_id)

    await asyncio.gather(*(finish(i) for i in ids))
    return len(answered)


def report(figures: list[Figures], rows: int, scale: float, job: bool) -> str:
    way = "a batch job through `emailgate serve`" if job else "the bulk client"
    lines = [
        "# The bulk way" + (": the whole job" if job else ""),
        "",
        f"{rows} addresses through {way} against each local fake (production poll waits; "
        f"list delays × {scale:g}: "
        + ", ".join(f"{k} {b:g} s + {p:g} s/1000" for k, (b, p) in DELAYS.items())
        + "). Lower bound: one list's processing (lists are cleaned side by side), plus for "
        "ListCleanser 12 s per further upload and the last list's 50 result pages at 200 a "
        "minute.",
        "Command: `python -m benchmarks.bulkway"
        + (" --job" if job else "")
        + (" --quick" if scale < 1 else "")
        + f" --rows {rows}`.",
        "",
        "| provider | wall s | bound s | ratio | free stages s | storing s | uploads | bound | "
        "answered | calls | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        marks = "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in f.met().items())
        calls = ", ".join(f"{k} {v}" for k, v in sorted(f.calls.items()))
        before = "–" if f.before is None else f"{f.before:.1f}"
        after = "–" if f.after is None else f"{f.after:.1f}"
        lines.append(f"| {f.provider} | {f.wall:.1f} | {f.wall_bound:.1f} | "
                     f"{f.wall / f.wall_bound:.2f} | {before} | {after} | {f.uploads} | "
                     f"{f.upload_bound} | {f.answered} | {calls} | {marks} |")  # fmt: skip
    return "\n".join(lines) + "\n"


async def section(
    rows: int, *, job: bool = True, quick: bool = False, providers: Sequence[str] = tuple(DELAYS)
) -> str:
    """The report of each provider's run (the batch benchmark's bulk section)."""
    scale = 0.1 if quick else 1.0
    figures = []
    with tempfile.TemporaryDirectory(prefix="emailgate-bulkway-") as tmp:
        for name in providers:
            if job:
                figures.append(await run_job(name, rows, scale, Path(tmp)))
            else:
                figures.append(await run_provider(name, rows, scale))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        report(figures, rows, scale, job) + f"\nMachine load (1, 5, 15 min) at the end: {load}.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bulkway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--job", action="store_true", help="the whole job through emailgate serve")
    p.add_argument("--quick", action="store_true", help="list delays divided by 10")
    p.add_argument("--providers", type=lambda v: v.split(","), default=list(DELAYS),
                   help="comma-separated, of " + ",".join(DELAYS))  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if unknown := set(args.providers) - set(DELAYS):
        p.error(f"unknown providers: {', '.join(sorted(unknown))}")
    text = asyncio.run(section(args.rows, job=args.job, quick=args.quick,
                               providers=args.providers))  # fmt: skip
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("bulkway-job.md" if args.job else "bulkway.md")).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
