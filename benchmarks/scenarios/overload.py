"""Scenario 4: unique addresses at 10x the provider rate; limits kept, rate used, deadline held.

The ListCleanser rate is shortened for benchmark time (EMAILGATE_LISTCLEANSER_RATE=20/6s
instead of 200/60s: the same 3.3 calls per second, windows ten times shorter); CleanMyList
keeps its 300 ms interval. The fakes enforce both limits (429 past them) and log every call.
Load is open-loop: unique addresses that pass the local checks, sent at 10x the ListCleanser
rate whatever the answers do, first to one replica, then to two replicas sharing a private
Redis (EMAILGATE_REDIS_URL, EMAILGATE_REPLICAS=2), alternating between them.

Figures: the most calls in any window against the limit; the smallest CleanMyList gap against
its interval; the share of the allowed rate used (ListCleanser: calls in whole windows from
its first call, over the limit times those windows; CleanMyList: interval over mean gap); and
p99 and p99.9 of the answer time seen by the callers against the deadline.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from tests.fakes.calllog import max_in_window, min_gap

from benchmarks import corpus, loadgen
from benchmarks.context import Bench
from benchmarks.scenarios import providers
from benchmarks.stats import percentile, ratio
from emailgate.rate import Rate

# Percentiles for the distribution plot: 0 %, then ever more nines up to 99.9 %.
CURVE = [100 * (1 - 10 ** (-k / 10)) for k in range(31)]


def rate_share(times: list[float], limit: int, window: float, end: float) -> float | None:
    """Calls in the whole windows from the first call up to `end`, over `limit` per window."""
    if not times:
        return None
    whole = math.floor((end - times[0]) / window)
    if whole < 1:
        return None
    inside = sum(1 for t in times if t < times[0] + whole * window)
    return inside / (whole * limit)


def gap_share(times: list[float], interval: float) -> float | None:
    """The interval over the mean gap between calls: 1.0 is every slot used."""
    if len(times) < 2:
        return None
    return interval * (len(times) - 1) / (times[-1] - times[0])


async def one_run(
    bench: Bench, name: str, urls: list[str], fakes: Any, rate: Rate, tag: str
) -> dict[str, Any]:
    """One overload run against `urls`; its figures."""
    sizes, say = bench.sizes, bench.progress.say
    offered = sizes.overload_factor * rate.count / rate.period
    seconds = sizes.overload_windows * rate.period
    emails = corpus.unique_addresses(round(offered * seconds), seed=sizes.seed, tag=tag)
    await providers.reset(fakes)
    say(f"{name}: {len(emails):,} unique addresses at {offered:.1f}/s for {seconds:g}s")

    def tick(done: int, total: int) -> None:
        say(f"  {name}: {done:,}/{total:,} sent")

    answers = await loadgen.open_loop(urls, emails, offered, progress=tick)
    start = min(a.sent for a in answers)
    end = max(a.sent for a in answers)
    calls = await providers.calls(fakes)
    lc = sorted(c.mono for c in calls.listcleanser)
    cml = sorted(c.mono for c in calls.cleanmylist)
    interval = sizes.cml_interval_ms / 1000
    deadline = sizes.deadline_ms / 1000
    took = [a.seconds for a in answers]
    result: dict[str, Any] = {
        "replicas": len(urls),
        "requests": len(answers),
        "offered_per_s": offered,
        "seconds": seconds,
        "lc_calls": len(lc),
        "lc_max_in_window": max_in_window(lc, rate.period) if lc else 0,
        "lc_limit": rate.count,
        "lc_window_s": rate.period,
        "lc_429": sum(1 for c in calls.listcleanser if c.status == 429),
        "lc_share": rate_share(lc, rate.count, rate.period, end),
        "cml_calls": len(cml),
        "cml_min_gap_s": min_gap(cml),
        "cml_interval_s": interval,
        "cml_429": sum(1 for c in calls.cleanmylist if c.status == 429),
        "cml_share": gap_share(cml, interval),
        "p50_ms": percentile(took, 50) * 1000,
        "p99_ms": percentile(took, 99) * 1000,
        "p999_ms": percentile(took, 99.9) * 1000,
        "max_ms": max(took) * 1000,
        "curve_ms": [(p, percentile(took, p) * 1000) for p in CURVE],
        "deadline_ms": sizes.deadline_ms,
        "p99_vs_deadline": ratio(percentile(took, 99), deadline),
        "p999_vs_deadline": ratio(percentile(took, 99.9), deadline),
        "over_deadline": sum(1 for t in took if t > deadline),
        "non_200": sum(1 for a in answers if a.status != 200),
        "sources": dict(Counter(a.source for a in answers)),
        # For the plot: call times relative to the first request.
        "lc_times": [t - start for t in lc],
        "cml_times": [t - start for t in cml],
        "load_seconds": end - start,
    }
    say(
        f"  {name}: ListCleanser {len(lc)} calls, max {result['lc_max_in_window']} in "
        f"{rate.period:g}s (limit {rate.count}); CleanMyList {len(cml)} calls; "
        f"p99 {result['p99_ms']:.0f} ms"
    )
    if not lc and not cml:
        result["note"] = "no provider call: the provider chain is not active in this build"
        bench.progress.warn(f"overload {name}: no provider call reached the fakes")
    return result


async def run(bench: Bench) -> dict[str, Any]:
    """Scenario 4: one replica, then two sharing Redis."""
    sizes = bench.sizes
    rate = Rate.parse(sizes.overload_rate)
    fakes = await bench.fakes(
        *providers.fake_args(
            latency_ms=sizes.provider_latency_ms, jitter_ms=sizes.provider_jitter_ms,
            seed=sizes.seed, rate_limit=rate.count, window_s=rate.period,
            interval_ms=sizes.cml_interval_ms,
        )
    )  # fmt: skip
    settings = providers.provider_settings(
        fakes, rate=sizes.overload_rate, interval_ms=sizes.cml_interval_ms,
        deadline_ms=sizes.deadline_ms,
    )  # fmt: skip
    out: dict[str, Any] = {"rate": sizes.overload_rate, "factor": sizes.overload_factor}
    one = await bench.service("overload-1", settings)
    out["one"] = await one_run(bench, "one replica", [one.url], fakes, rate, "o1")
    await one.stop()
    redis_url = await bench.redis()
    shared = {**settings, "EMAILGATE_REDIS_URL": redis_url, "EMAILGATE_REPLICAS": "2"}
    a = await bench.service("overload-2a", shared)
    b = await bench.service("overload-2b", shared)
    out["two"] = await one_run(bench, "two replicas", [a.url, b.url], fakes, rate, "o2")
    await a.stop()
    await b.stop()
    return out
