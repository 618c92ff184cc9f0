"""Scenarios 1 and 2 over HTTP with wrk: cache hits and the cold local path, beside a bare handler.

Targets, all driven with the same wrk settings, one after the other in each round (the order
rotates every round), medians over rounds, with the CPU time each process spent per request
(less sensitive than throughput to what else the machine is running):

- `bare`, `bare-uvloop`: a bare aiohttp handler answering a constant JSON (the service's own
  answer), on asyncio's default event loop and on uvloop; the faster of the two is the
  yardstick every ratio is taken against;
- `hit`: `emailgate serve` answering one cached address (embedded defaults: log level info);
- `hit-quiet`: the same with EMAILGATE_LOG_LEVEL=warning (prices the per-check log line);
- `cold`: `emailgate serve` answering a unique address per request on 21 domains whose DNS
  answers are cached (warmed first): syntax, lists, cache miss, DNS cache, local verdict, store.

No provider keys: these are the local paths. Then py-spy samples the `hit` service under the
same load, and a child process prices the local checks in-process (benchmarks.localcost).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from benchmarks import corpus, procs, profile, wrk
from benchmarks.context import Bench, scrape
from benchmarks.stats import median, ratio

BARES = ("bare", "bare-uvloop")

HIT_ADDRESS = "alice.martin@gmail.com"
COLD_DOMAINS = (*corpus.MAIL_DOMAINS, *corpus.IMPLICIT_DOMAINS)


async def _get_json(session: aiohttp.ClientSession, url: str, email: str) -> dict[str, Any]:
    async with session.get(url + "/api/v1/verify", params={"email": email}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
        data: dict[str, Any] = await resp.json()
        return data


async def _warm_hit(session: aiohttp.ClientSession, url: str) -> bytes:
    """Make sure the hit address is cached; the answer's bytes."""
    await _get_json(session, url, HIT_ADDRESS)
    async with session.get(url + "/api/v1/verify", params={"email": HIT_ADDRESS}) as resp:
        body = await resp.read()
    if not json.loads(body)["data"]["cached"]:
        raise RuntimeError(f"{url} did not answer {HIT_ADDRESS} from its cache")
    return body


def summarize(runs: list[wrk.WrkResult]) -> dict[str, Any]:
    """Medians over rounds, and the median run's latency curve for the plot."""
    by_rps = sorted(runs, key=lambda r: r.rps)
    middle = by_rps[len(by_rps) // 2]
    lat = [r.latency_us for r in runs]
    cpu = [r.extra["cpu_us"] for r in runs if "cpu_us" in r.extra]
    return {
        "rounds": len(runs),
        "cpu_us_per_request": median(cpu) if cpu else None,
        "rps_median": median([r.rps for r in runs]),
        "rps_all": [r.rps for r in runs],
        "p50_us": median([x["p50"] for x in lat]),
        "p90_us": median([x["p90"] for x in lat]),
        "p99_us": median([x["p99"] for x in lat]),
        "p999_us": median([x["p999"] for x in lat]),
        "max_us": max(x["max"] for x in lat),
        "curve": middle.latency_us["curve"],
        "errors": sum(sum(r.errors.values()) + r.non_2xx for r in runs),
    }


async def run(bench: Bench, *, hit: bool, cold: bool) -> dict[str, Any]:
    """Run the selected targets; figures for scenarios 1 and/or 2."""
    sizes, say = bench.sizes, bench.progress.say
    settings = wrk.WrkSettings(sizes.threads, sizes.connections, sizes.seconds)
    out: dict[str, Any] = {"wrk": settings.describe(), "address": HIT_ADDRESS}
    targets: dict[str, procs.HttpProc] = {}
    async with aiohttp.ClientSession() as session:
        if hit:
            targets["hit"] = await bench.service("hit", {})
            targets["hit-quiet"] = await bench.service(
                "hit-quiet", {"EMAILGATE_LOG_LEVEL": "warning"}
            )
            body = await _warm_hit(session, targets["hit"].url)
            await _warm_hit(session, targets["hit-quiet"].url)
            out["body_bytes"] = len(body)
            targets["bare"] = await bench.bare(body)
            targets["bare-uvloop"] = await bench.bare(body, "bare-uvloop", "uvloop")
        if cold:
            targets["cold"] = await bench.service("cold", {})
            for domain in COLD_DOMAINS:  # DNS answers cached before the measured runs
                await _get_json(session, targets["cold"].url, f"warm@{domain}")
            out["cold_rss_before"] = procs.rss_bytes(targets["cold"].pid)
        order = [t for t in (*BARES, "hit", "hit-quiet", "cold") if t in targets]
        results: dict[str, list[wrk.WrkResult]] = {t: [] for t in order}
        static = wrk.script(bench.workdir, unique=False)
        unique = wrk.script(bench.workdir, unique=True)
        for r in range(sizes.rounds):
            turn = order[r % len(order) :] + order[: r % len(order)]
            for target in turn:
                service = targets[target]
                say(f"round {r + 1}/{sizes.rounds}: {target} ({settings.describe()})")
                cpu_before = procs.cpu_seconds(service.pid)
                if target == "cold":
                    result = await wrk.run(target, service.url, settings, unique,
                                           (f"r{r}", *COLD_DOMAINS))  # fmt: skip
                else:
                    if target.startswith("hit"):
                        await _warm_hit(session, service.url)
                    url = f"{service.url}/api/v1/verify?email={HIT_ADDRESS}"
                    result = await wrk.run(target, url, settings, static)
                cpu = procs.cpu_seconds(service.pid) - cpu_before
                result.extra["cpu_us"] = 1e6 * cpu / max(result.requests, 1)
                results[target].append(result)
                p99_ms = result.latency_us["p99"] / 1000
                say(f"  {result.rps:,.0f} requests/s, p99 {p99_ms:.2f} ms, "
                    f"{result.extra['cpu_us']:.0f} µs CPU per request")  # fmt: skip
                if result.non_2xx or sum(result.errors.values()):
                    bench.progress.warn(f"{target}: {result.non_2xx} non-2xx, {result.errors}")
        out["targets"] = {t: summarize(results[t]) for t in order}
        out["runs"] = {t: [x.to_json() for x in results[t]] for t in order}
        bares = {b: out["targets"][b]["rps_median"] for b in BARES if b in out["targets"]}
        out["yardstick"] = max(bares, key=lambda b: bares[b]) if bares else None
        for s in out["targets"].values():
            s["ratio_to_bare"] = ratio(s["rps_median"], max(bares.values(), default=0.0))
            s["ratio_to"] = {b: ratio(s["rps_median"], rps) for b, rps in bares.items()}
        for t in ("hit", "cold"):
            if t in targets:
                lookups = await scrape(session, targets[t].url, "emailgate_cache_lookups_total")
                out[f"{t}_cache_lookups"] = lookups
        if cold:
            out["cold_rss_after"] = procs.rss_bytes(targets["cold"].pid)
            out["cold_requests"] = sum(x.requests for x in results["cold"])
        if hit and bench.profile and sizes.profile_seconds > 0:
            unprofiled = out["targets"]["hit"]["rps_median"]
            out["profile"] = await _profile(bench, targets["hit"], settings, static, unprofiled)
    if cold:
        say(f"local checks in-process over {sizes.local_addresses:,} unique addresses")
        out["localcost"] = await localcost(sizes.local_addresses, sizes.seed)
    return out


async def _profile(
    bench: Bench, service: procs.HttpProc, settings: wrk.WrkSettings, lua: Any, rps: float
) -> dict[str, Any]:
    """py-spy on `service` under wrk; costs in µs per request at the unprofiled `rps`."""
    seconds = bench.sizes.profile_seconds
    bench.progress.say(f"py-spy on the hit service for {seconds:g}s under the same wrk load")
    if profile.py_spy() is None:
        bench.progress.warn("py-spy is not installed: no profile (make bench installs it)")
        return {"skipped": "py-spy is not installed"}
    long = wrk.WrkSettings(settings.threads, settings.connections, seconds + 3)
    url = f"{service.url}/api/v1/verify?email={HIT_ADDRESS}"
    load = asyncio.create_task(wrk.run("hit-profiled", url, long, lua))
    await asyncio.sleep(1.0)
    try:
        raw = await profile.record(service.pid, seconds, bench.workdir / "hit.pyspy.txt")
    except RuntimeError as e:
        await load
        bench.progress.warn(str(e))
        return {"skipped": str(e)}
    result = await load
    prof = profile.aggregate(raw)
    prof.rps = result.rps
    data = prof.to_json()
    data["costs"] = prof.rows(rps)
    data["rps_unprofiled"] = rps
    return data


async def localcost(addresses: int, seed: int) -> dict[str, Any]:
    """benchmarks.localcost in a child process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.localcost", str(addresses), str(seed),
        cwd=procs.REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks.localcost failed: {err.decode(errors='replace')}")
    data: dict[str, Any] = json.loads(out)
    return data
