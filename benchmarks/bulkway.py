"""The bulk way: N addresses through each bulk provider's client against its local fake.

    python -m benchmarks.bulkway [--rows 100000] [--quick] [--out benchmarks/results]

For ListCleanser batch, Listcleaner and EmailConsul in turn: the production client (its real
pacers) uploads the addresses in lists of `max_upload`, polls each list as a job would, fetches
every verdict and deletes the list. The fakes take a realistic time per list (below; `--quick`
divides it by 10). Figures: wall time, uploads and calls per endpoint, each against its lower
bound (uploads: ceil(N / max_upload); wall: one list's processing, plus for ListCleanser the
upload pacing at 6 a minute and the last list's result pages at 200 a minute). Targets:
uploads at the bound, every address answered once, wall within 1.25 × its bound. Prints a
table and writes OUT/bulkway.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.emailconsul import FakeEmailConsul
from tests.fakes.listcleaner import FakeListcleaner
from tests.fakes.listcleanser import FakeListCleanser

from emailgate.bulk.base import BulkProvider, BulkState
from emailgate.bulk.emailconsul import EmailConsul
from emailgate.bulk.listcleaner import Listcleaner
from emailgate.bulk.listcleanser import PAGE_SIZE, ListCleanserBatch
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

    def met(self) -> dict[str, bool]:
        return {
            "uploads at the bound": self.uploads == self.upload_bound,
            "every address answered once": self.answered == self.rows,
            f"wall within {WALL_TARGET} x bound": self.wall <= WALL_TARGET * self.wall_bound,
        }


def pacer(rate: Rate) -> LocalPacer:
    return LocalPacer(BucketSpec.for_rate(rate))


async def run_provider(name: str, rows: int, scale: float) -> Figures:
    """Start the fake, push `rows` addresses through the client, measure."""
    base, per_1000 = (d * scale for d in DELAYS[name])
    emails = [f"user{i}@good.com" for i in range(rows)]
    fake: Any
    async with make_session() as session:
        metrics = Metrics()
        client: BulkProvider
        if name == "listcleanser":
            fake = FakeListCleanser(
                credits=10 * rows,
                batch_processing_s=base,
                batch_per_1000_s=per_1000,
                batch_max_per_page=PAGE_SIZE,
            )
            await fake.start()
            client = ListCleanserBatch(
                session, fake.url, Secret(fake.api_key), metrics=metrics,
                results_pacer=pacer(Rate(200, 60.0)), upload_pacer=pacer(Rate(6, 60.0)),
            )  # fmt: skip
        elif name == "listcleaner":
            fake = FakeListcleaner(credits=10 * rows, processing_s=base, per_1000_s=per_1000)
            await fake.start()
            client = Listcleaner(
                session, fake.url, Secret(fake.config.user_email), Secret(fake.api_key),
                pacer=pacer(Rate(60, 60.0)), metrics=metrics,
            )  # fmt: skip
        else:
            fake = FakeEmailConsul(credits=10 * rows, preprocess_s=base / 4,
                                   processing_s=base * 3 / 4, per_1000_s=per_1000)  # fmt: skip
            await fake.start()
            client = EmailConsul(
                session,
                fake.url,
                Secret(fake.api_key),
                pacer=pacer(Rate(60, 60.0)),
                metrics=metrics,
            )
        try:
            start = time.monotonic()
            answered = await push(client, emails)
            wall = time.monotonic() - start
        finally:
            await fake.stop()
    lists = math.ceil(rows / client.max_upload)
    list_size = min(rows, client.max_upload)
    bound = base + per_1000 * list_size / 1000
    if name == "listcleanser":
        bound += max(0, lists - 1) * 60.0 / 5  # the upload bucket: one slot every 12 s
        bound += math.ceil(list_size / PAGE_SIZE) * 60.0 / 200  # the last list's pages
    calls = Counter(endpoint_key(c.endpoint) for c in fake.calls)
    return Figures(name, rows, wall, bound, len(fake.uploads()), lists, answered, dict(calls))


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


def report(figures: list[Figures], rows: int, scale: float) -> str:
    lines = [
        "# The bulk way",
        "",
        f"{rows} addresses through each bulk client against its local fake "
        f"(production poll intervals; list delays × {scale:g}: {', '.join(f'{k} {b:g} s + {p:g} s/1000' for k, (b, p) in DELAYS.items())}).",  # noqa: E501
        "Command: `python -m benchmarks.bulkway"
        + (" --quick" if scale < 1 else "")
        + f" --rows {rows}`.",
        "",
        "| provider | wall s | bound s | uploads | bound | answered | calls | targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        marks = "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in f.met().items())
        calls = ", ".join(f"{k} {v}" for k, v in sorted(f.calls.items()))
        lines.append(f"| {f.provider} | {f.wall:.1f} | {f.wall_bound:.1f} | {f.uploads} | "
                     f"{f.upload_bound} | {f.answered} | {calls} | {marks} |")  # fmt: skip
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> str:
    scale = 0.1 if args.quick else 1.0
    figures = [await run_provider(name, args.rows, scale) for name in DELAYS]
    return report(figures, args.rows, scale)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bulkway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="list delays divided by 10")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    text = asyncio.run(main_async(args))
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bulkway.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
