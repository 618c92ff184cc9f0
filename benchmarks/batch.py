"""`python -m benchmarks.batch`: a batch job from upload to download next to a signup load.

For each size (default 10,000 and 100,000 rows) a fresh `emailgate serve` (SQLite job store)
next to the fake providers and the benchmark DNS zone. `--worker process` (the default) runs
it with EMAILGATE_JOB_WORKER=process and a private Redis (shared cache and pacing: the job is
worked in a child at a lower CPU priority); `--worker inline` with the in-process defaults, the
job on the serving event loop. The fakes are the benchmark's: their limits are lifted and
ListCleanser's rate is set to `--rate` (500 a second by default, not the real 200 a minute),
so 100,000 rows take minutes, not days.

1. warm the cache with a share of the list through /api/v1/verify (signups seen before);
2. measure interactive signups alone (fresh addresses at a steady rate): the p99 baseline;
3. upload a CSV with a realistic mix (duplicates typed differently, bad syntax, disposable and
   dead domains, cached addresses, fresh ones), follow it to `processed` while the same signup
   load runs, sampling the service's RSS; download the results;
4. count the provider calls the job made against the lower bound: distinct eligible addresses
   (valid syntax, not disposable, on a domain that takes mail) not in the cache.
5. with `--bulk-rows N` (default 100,000; 0 skips it) the bulk way: a job of N distinct
   addresses through each bulk provider's fake with realistic list delays, wall time and
   provider calls/uploads against their lower bound (benchmarks/bulkway.py `--job`).

Figures, each with its target: the job's time against the provider's pace (lower bound ÷ rate;
target ≤ 1.5×), wall time upload → download, peak RSS per size (service and its children) and
how it grows (target: the largest size's peak ≤ 1.25× the smallest's), provider calls / lower
bound (target 1.00), signup p99 during the job / without (target ≤ 1.2). A report (Markdown
and JSON) goes to `--out` (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from tests.fakes.process import FakeProvidersProcess

from benchmarks import bulkway, corpus
from benchmarks.machine import describe
from benchmarks.procs import rss_bytes, start_dns, start_redis, start_service
from benchmarks.scenarios.providers import calls, fake_args, provider_settings, reset
from benchmarks.stats import percentile

RESULTS = Path(__file__).resolve().parent / "results"
MIX = {"fresh": 0.50, "cached": 0.20, "duplicate": 0.10, "invalid": 0.03, "disposable": 0.07,
       "dead": 0.10}  # fmt: skip
P99_TARGET = 1.2
RSS_GROWTH_TARGET = 1.25  # the largest size's peak RSS over the smallest's
PACE_TARGET = 1.5  # the job's time over the provider-paced minimum


@dataclass
class SizeResult:
    rows: int
    distinct: int
    lower_bound: int
    job_calls: int
    calls_ratio: float | None
    upload_s: float
    job_s: float
    download_s: float
    wall_s: float
    rss_before_mb: float
    peak_rss_mb: float
    p99_alone_ms: float
    p99_during_ms: float
    p99_ratio: float
    signups_alone: int
    signups_during: int
    job: dict[str, Any]


def make_list(rows: int, seed: int) -> tuple[list[str], list[str], set[str]]:
    """The CSV's addresses, the addresses to warm into the cache, and the eligible distinct
    addresses that are not cached (the lower bound's set), all lower-cased for counting."""
    rng = random.Random(seed)
    fresh_n = int(rows * MIX["fresh"])
    cached_n = int(rows * MIX["cached"])
    fresh = corpus.unique_addresses(fresh_n, seed=seed, tag="f")
    cached = corpus.unique_addresses(cached_n, seed=seed + 1, tag="c")
    out: list[str] = [*fresh, *cached]
    serial = 0
    while len(out) < rows:
        serial += 1
        r = rng.random()
        if r < 0.35:
            out.append(corpus.variant(rng, rng.choice(fresh or cached)))
        elif r < 0.45:
            out.append(rng.choice(corpus.INVALID_INPUTS))
        elif r < 0.68:
            out.append(f"{corpus.local_part(rng, serial)}@{rng.choice(corpus.DISPOSABLE_DOMAINS)}")
        else:
            dead = (*corpus.NXDOMAIN_DOMAINS, *corpus.NULL_MX_DOMAINS, *corpus.EMPTY_DOMAINS)
            out.append(f"{corpus.local_part(rng, serial)}@{rng.choice(dead)}")
    rng.shuffle(out)
    return out, cached, {a.lower() for a in fresh}


async def signups(url: str, rate: float, stop: asyncio.Event, tag: str) -> list[float]:
    """Fresh signup checks at `rate` per second until `stop`; each one's latency (s)."""
    latencies: list[float] = []
    rng = random.Random(hash(tag) & 0xFFFF)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as http:

        async def one(email: str) -> None:
            start = time.perf_counter()
            async with http.get(f"{url}/api/v1/verify", params={"email": email}) as r:
                await r.read()
                assert r.status == 200
            latencies.append(time.perf_counter() - start)

        n = 0
        next_at = time.perf_counter()
        while not stop.is_set():
            n += 1
            email = f"{tag}{corpus.local_part(rng, n)}@{rng.choice(corpus.MAIL_DOMAINS)}"
            task = asyncio.create_task(one(email))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)
    return latencies


async def warm(url: str, emails: list[str], concurrency: int = 32) -> None:
    queue = list(emails)
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while queue:
                email = queue.pop()
                async with http.get(
                    f"{url}/api/v1/verify", params={"email": email, "context": "marketing"}
                ) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_size(rows: int, args: argparse.Namespace, workdir: Path) -> SizeResult:
    emails, cached, eligible = make_list(rows, args.seed)
    path = workdir / f"list-{rows}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "email", "source"])
        for i, e in enumerate(emails):
            w.writerow([i + 1, e, "import"])
    dns_proc, dns_address = await start_dns(workdir)
    redis = await start_redis(workdir) if args.worker == "process" else None
    fakes = await FakeProvidersProcess.start(*fake_args(
        latency_ms=args.latency_ms, jitter_ms=args.latency_ms / 4, seed=args.seed,
        rate_limit=10**9, window_s=60, interval_ms=1,
    ))  # fmt: skip
    settings = provider_settings(fakes, rate=args.rate, interval_ms=300, deadline_ms=1500)
    settings |= {"EMAILGATE_DNS_SERVERS": dns_address, "EMAILGATE_LOG_LEVEL": "warning",
                 "EMAILGATE_CACHE_MAX_ENTRIES": str(max(100_000, rows * 2)),
                 "EMAILGATE_BATCH_UPLOAD_RATE": "100/60s",
                 # This measures the real-time chain's spare slots, not a bulk provider.
                 "EMAILGATE_BATCH_REALTIME_MAX": str(10**6),
                 "EMAILGATE_JOB_WORKER": args.worker}  # fmt: skip
    if redis is not None:  # the worker child shares the cache and the pacing through Redis
        settings["EMAILGATE_REDIS_URL"] = redis[1]
    service = await start_service(f"batch-{rows}", workdir, settings)
    try:
        await warm(service.url, cached)
        # Baseline: signups alone.
        stop = asyncio.Event()
        alone_task = asyncio.create_task(signups(service.url, args.signup_rps, stop, "a"))
        await asyncio.sleep(args.baseline_s)
        stop.set()
        alone = await alone_task
        await reset(fakes)
        rss_before = tree_rss(service.pid)
        # The job, with the same signup load beside it.
        stop = asyncio.Event()
        during_task = asyncio.create_task(signups(service.url, args.signup_rps, stop, "d"))
        peak = [rss_before]

        async def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError, RuntimeError):
                    peak[0] = max(peak[0], tree_rss(service.pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        t0 = time.perf_counter()
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("email_list", path.open("rb"), filename=path.name)
            async with http.post(f"{service.url}/api/v1/batch", data=form) as r:
                body = await r.json()
                assert r.status == 201, body
            job_id = body["data"]["id"]
            t_uploaded = time.perf_counter()
            while True:
                async with http.get(f"{service.url}/api/v1/batch/{job_id}",
                                    params={"per_page": 1}) as r:  # fmt: skip
                    status = await r.json()
                if status["job"]["status"] == "processed":
                    break
                assert status["job"]["status"] == "processing", status
                await asyncio.sleep(0.5)
            t_done = time.perf_counter()
            async with http.get(f"{service.url}/api/v1/batch/{job_id}/download") as r:
                text = await r.text()
            out_rows = sum(1 for _ in csv.reader(io.StringIO(text)))
            del text
            t_end = time.perf_counter()
        stop.set()
        during = await during_task
        await sampler
        assert out_rows == rows + 1, (out_rows, rows)
        seen = await calls(fakes)
        job_emails = [c.email.lower() for c in (*seen.listcleanser, *seen.cleanmylist)
                      if c.email and not c.email.startswith("d")]  # fmt: skip
        job_calls = len(job_emails)
        job = status["job"]
        return SizeResult(
            rows=rows, distinct=job["number_of_total"] - job["duplicates"],
            lower_bound=len(eligible), job_calls=job_calls,
            calls_ratio=round(job_calls / len(eligible), 3) if eligible else None,
            upload_s=round(t_uploaded - t0, 2), job_s=round(t_done - t_uploaded, 2),
            download_s=round(t_end - t_done, 2), wall_s=round(t_end - t0, 2),
            rss_before_mb=round(rss_before / 2**20, 1), peak_rss_mb=round(peak[0] / 2**20, 1),
            p99_alone_ms=round(percentile(alone, 99) * 1000, 1),
            p99_during_ms=round(percentile(during, 99) * 1000, 1),
            p99_ratio=round(percentile(during, 99) / percentile(alone, 99), 2),
            signups_alone=len(alone), signups_during=len(during), job=job,
        )  # fmt: skip
    finally:
        await service.stop()
        await fakes.stop()
        await dns_proc.stop()
        if redis is not None:
            await redis[0].stop()


def tree_rss(pid: int) -> int:
    """The RSS of a process and its children (the job worker child, when there is one)."""
    total = rss_bytes(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError, RuntimeError):
                total += tree_rss(int(child))
    return total


def report(results: list[SizeResult], args: argparse.Namespace, command: str) -> str:
    def met(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        f"# Batch benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"Command: `{command}`", "",
        f"Mix: {', '.join(f'{k} {v:.0%}' for k, v in MIX.items())} (duplicates are earlier "
        "addresses typed again with other case and spaces; cached ones were checked through "
        f"/api/v1/verify first). Provider latency {args.latency_ms:g} ms, ListCleanser rate "
        f"{args.rate} (the benchmark's fake; the real one allows 200 a minute), signups "
        f"{args.signup_rps:g}/s of fresh addresses. EMAILGATE_JOB_WORKER={args.worker}"
        f"{' with a private Redis' if args.worker == 'process' else ' (in-process defaults)'}.",
        "",
        "| rows | wall (upload → download) | upload | job (provider-paced minimum) | download |"
        " peak RSS | RSS before | provider calls / lower bound | signup p99 alone → during |"
        " ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    per_s = _per_second(args.rate)
    for r in results:
        pace = r.lower_bound / per_s
        lines.append(
            f"| {r.rows:,} | {r.wall_s:.1f} s | {r.upload_s:.1f} s | {r.job_s:.1f} s ({pace:.0f}"
            f" s: {r.job_s / pace:.2f}×, {met(r.job_s <= PACE_TARGET * pace)}, target ≤ "
            f"{PACE_TARGET}×) | "
            f"{r.download_s:.1f} s | {r.peak_rss_mb:.0f} MB | {r.rss_before_mb:.0f} MB | "
            f"{r.job_calls:,} / {r.lower_bound:,} = {r.calls_ratio} "
            f"({met(r.calls_ratio == 1.0)}, target 1.00) | {r.p99_alone_ms:.0f} → "
            f"{r.p99_during_ms:.0f} ms | {r.p99_ratio} ({met(r.p99_ratio <= P99_TARGET)}, "
            f"target ≤ {P99_TARGET}) |"
        )
    if len(results) >= 2:
        a, b = results[0], results[-1]
        growth = b.peak_rss_mb - a.peak_rss_mb
        ratio = b.peak_rss_mb / a.peak_rss_mb
        where = ("the verdicts the job learns go to Redis, outside these processes" if
                 args.worker == "process" else "the in-memory verdict cache holds every verdict "
                 "the job learns (bounded by EMAILGATE_CACHE_MAX_ENTRIES, raised here to twice "
                 "the rows)")  # fmt: skip
        lines += ["", f"Peak RSS from {a.rows:,} to {b.rows:,} rows: {a.peak_rss_mb:.0f} → "
                  f"{b.peak_rss_mb:.0f} MB ({growth:+.0f} MB, {ratio:.2f}× for "
                  f"{b.rows / a.rows:.0f}× the rows; {met(ratio <= RSS_GROWTH_TARGET)}, target "
                  f"≤ {RSS_GROWTH_TARGET}×). The job reads and writes the store a chunk at a "
                  f"time; {where}."]  # fmt: skip
    lines += ["", "Machine: " + json.dumps(describe()), ""]
    return "\n".join(lines)


def _per_second(rate: str) -> float:
    """`30000/60s` → 500.0."""
    count, _, period = rate.partition("/")
    return float(count) / float(period.rstrip("s") or 1)


async def main_async(args: argparse.Namespace) -> int:
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="emailgate-batch-bench-") as tmp:
        for rows in args.rows:
            print(f"batch benchmark: {rows:,} rows …", file=sys.stderr, flush=True)
            result = await run_size(rows, args, Path(tmp))
            print(json.dumps({k: v for k, v in asdict(result).items() if k != "job"}),
                  file=sys.stderr, flush=True)  # fmt: skip
            results.append(result)
    command = "python -m benchmarks.batch " + " ".join(sys.argv[1:])
    text = report(results, args, command)
    if args.bulk_rows:  # the bulk way: the same job through each bulk provider's fake
        print(f"batch benchmark: bulk way, {args.bulk_rows:,} rows …", file=sys.stderr, flush=True)
        text += "\n" + await bulkway.section(args.bulk_rows, quick=args.bulk_quick)
    args.out.mkdir(parents=True, exist_ok=True)
    mode = "-inline" if args.worker == "inline" else ""  # process, the default, has no suffix
    stem = args.out / f"batch{mode}-{datetime.now(UTC):%Y-%m-%d}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(text)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__)
    parser.add_argument("--rows", type=lambda s: [int(x) for x in s.split(",")],
                        default=[10_000, 100_000])  # fmt: skip
    parser.add_argument("--rate", default="30000/60s", help="EMAILGATE_LISTCLEANSER_RATE")
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--signup-rps", type=float, default=10.0)
    parser.add_argument("--baseline-s", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--worker", choices=["inline", "process"], default="process",
                        help="EMAILGATE_JOB_WORKER (process: with a private Redis)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--bulk-rows",
        type=int,
        default=100_000,
        help="the bulk way's job size (benchmarks/bulkway.py --job); 0 skips it",
    )
    parser.add_argument("--bulk-quick", action="store_true",
                        help="the bulk providers' list delays divided by 10")  # fmt: skip
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
