"""The Markdown report: a summary table of side-by-side ratios, then one section per scenario."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks import profile as prof
from benchmarks.sizes import Sizes

SECTIONS = (
    "## Summary",
    "## 1. Cache hit against a bare aiohttp handler",
    "## Where the time goes on the cache-hit path",
    "## 2. Cold local path",
    "## 3. Signup trace: provider calls against the lower bound",
    "## 4. Overload: limits, rate used, deadline",
    "## 5. Memory under a flood of unique addresses",
    "## Machine",
    "## Settings",
    "## Plots",
)


def _n(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _r(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _ms(us: float | None) -> str:
    return "–" if us is None else f"{us / 1000:.2f} ms"


def _mib(b: float | None) -> str:
    return "–" if b is None else f"{b / 2**20:,.1f} MiB"


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _not_run(lines: list[str], why: str = "not selected in this run") -> None:
    lines += [f"_Not measured: {why}._", ""]


MET, MISSED, NO_TARGET = "met", "**missed**", "–"

# What "flat" memory means: RSS after the flood at most this multiple of RSS at the bound.
MEMORY_FLAT = 1.10


def least(*xs: float | None) -> float | None:
    """The smallest of the figures that were measured (None when none was)."""
    measured = [x for x in xs if x is not None]
    return min(measured) if measured else None


def _at_least(x: float | None, target: float) -> bool | None:
    return None if x is None else x >= target


def _below(*ratios: float | None) -> bool | None:
    """Every ratio under 1 (None when one was not measured)."""
    return None if any(r is None for r in ratios) else all(r < 1.0 for r in ratios if r)


def _mark(met: bool | None) -> str:
    return NO_TARGET if met is None else MET if met else MISSED


def summary_rows(res: dict[str, Any]) -> list[list[Any]]:
    """[scenario, figure, emailgate, reference, ratio, target, met/missed] rows: every row
    with a target says whether this run met it."""
    return [[*row[:6], _mark(row[6])] for row in _rows(res)]


def targets_line(rows: list[list[Any]]) -> str:
    """How many targets this run met and missed, naming the missed ones."""
    missed = [f"{r[0]}: {r[1]}" for r in rows if r[6] == MISSED]
    named = f" ({'; '.join(missed)})." if missed else "."
    return f"**Targets.** {sum(r[6] == MET for r in rows)} met, {len(missed)} missed{named}"


def capacity(res: dict[str, Any]) -> str | None:
    """One plain sentence on what to expect of one replica on the machine that ran this."""
    t = res.get("http", {}).get("targets", {})
    hit, cold = t.get("hit"), t.get("cold")
    if not hit:
        return None
    machine = res.get("machine", {})
    where = ", ".join(str(machine[k]) for k in ("cpu", "cores") if k in machine)
    sentence = (
        f"One replica answers about {_round(hit['rps_median']):,} cache hits per second on this "
        f"machine ({where} cores)" if where else
        f"One replica answers about {_round(hit['rps_median']):,} cache hits per second on this "
        "machine"
    )  # fmt: skip
    if cold:
        sentence += (
            f", and about {_round(cold['rps_median']):,} first-time checks per second that "
            "need only local checks and DNS"
        )
    return (
        sentence + "; checks that need a provider are bounded by the providers' limits "
        "(ListCleanser 200 per minute, CleanMyList one call per 300 ms, for the whole fleet), "
        "not by the replica."
    )


def _round(x: float) -> int:
    """Two significant figures: a capacity is an order of magnitude, not a measurement."""
    if x < 100:
        return round(x)
    digits = len(str(int(x))) - 2
    return int(round(x, -digits))


HIT_TARGET = 0.60
"""Cache-hit throughput as a share of the faster bare aiohttp app: the target."""
HIT_GOAL = 0.90
"""The same, the longer-term goal (docs/benchmarks.md says what it would take)."""


def _rows(res: dict[str, Any]) -> list[list[Any]]:
    """[scenario, figure, emailgate, reference, ratio, target, met (None: no target)] rows."""
    rows: list[list[Any]] = []
    http = res.get("http", {})
    t = http.get("targets", {})
    name = http.get("yardstick") or "bare"
    bare = t.get(name)
    if bare and "hit" in t:
        hit = t["hit"]
        yard = f"{name} {_n(bare['rps_median'])} req/s"
        for figure, target in (
            ("cache-hit throughput", HIT_TARGET),
            ("cache-hit throughput, longer-term goal", HIT_GOAL),
        ):
            rows.append(["1", figure, f"{_n(hit['rps_median'])} req/s", yard,
                         _r(hit["ratio_to_bare"]), f"≥ {target:.2f}",
                         hit["ratio_to_bare"] >= target])  # fmt: skip
        for other, r in hit.get("ratio_to", {}).items():
            if other != name:
                rows.append(["1", "cache-hit throughput against the other bare app",
                             f"{_n(hit['rps_median'])} req/s",
                             f"{other} {_n(t[other]['rps_median'])} req/s", _r(r),
                             "(diagnostic)", None])  # fmt: skip
        if hit.get("cpu_us_per_request") and bare.get("cpu_us_per_request"):
            rows.append(["1", "cache-hit CPU time per request",
                         f"{hit['cpu_us_per_request']:.0f} µs",
                         f"{name} {bare['cpu_us_per_request']:.0f} µs",
                         _r(bare["cpu_us_per_request"] / hit["cpu_us_per_request"]),
                         "(diagnostic)", None])  # fmt: skip
        rows.append(["1", "cache-hit latency p50 / p99",
                     f"{_ms(hit['p50_us'])} / {_ms(hit['p99_us'])}",
                     f"{name} {_ms(bare['p50_us'])} / {_ms(bare['p99_us'])}",
                     f"{_r(hit['p50_us'] / bare['p50_us'])} / {_r(hit['p99_us'] / bare['p99_us'])}",
                     "–", None])  # fmt: skip
        if "hit-quiet" in t:
            q = t["hit-quiet"]
            rows.append(["1", "cache-hit throughput, EMAILGATE_LOG_LEVEL=warning",
                         f"{_n(q['rps_median'])} req/s", f"bare {_n(bare['rps_median'])} req/s",
                         _r(q["ratio_to_bare"]), "(diagnostic)", None])  # fmt: skip
    if bare and "cold" in t:
        c = t["cold"]
        rows.append(
            [
                "2",
                "cold local path throughput",
                f"{_n(c['rps_median'])} req/s",
                f"bare {_n(bare['rps_median'])} req/s",
                _r(c["ratio_to_bare"]),
                "–",
                None,
            ]
        )
        rows.append(["2", "cold local path latency p50 / p99",
                     f"{_ms(c['p50_us'])} / {_ms(c['p99_us'])}",
                     f"bare {_ms(bare['p50_us'])} / {_ms(bare['p99_us'])}",
                     f"{_r(c['p50_us'] / bare['p50_us'])} / {_r(c['p99_us'] / bare['p99_us'])}",
                     "–", None])  # fmt: skip
    local = http.get("localcost", {}).get("local")
    if local and bare:
        request_us = 1e6 / bare["rps_median"]
        rows.append(["2", "local checks per address (in-process)", f"{local['total_us']:.1f} µs",
                     f"one bare request {request_us:.0f} µs",
                     _r(local["total_us"] / request_us), "–", None])  # fmt: skip
    tr = res.get("trace")
    if tr:
        rows.append(
            [
                "3",
                "provider calls on the signup trace",
                f"{tr['calls_total']:,}",
                f"lower bound {tr['lower_bound']:,}",
                _r(tr["ratio"]),
                "1.00",
                tr["calls_total"] <= tr["lower_bound"],
            ]
        )
        rows.append(["3", "credits spent", f"{tr['credits_spent']:,}",
                     f"a call per check {tr['credits_naive']:,}",
                     f"{_r(tr['credits_saved_share'])} saved", "–", None])  # fmt: skip
    over = res.get("overload", {})
    for key, label in (("one", "one replica"), ("two", "two replicas, Redis")):
        o = over.get(key)
        if not o:
            continue
        rows.append(["4", f"ListCleanser most calls in any {o['lc_window_s']:g}s ({label})",
                     f"{o['lc_max_in_window']}", f"limit {o['lc_limit']}",
                     _r(o["lc_max_in_window"] / o["lc_limit"]), "≤ 1.00",
                     o["lc_max_in_window"] <= o["lc_limit"]])  # fmt: skip
        gap = o["cml_min_gap_s"]
        rows.append(["4", f"CleanMyList smallest gap ({label})",
                     "–" if gap is None else f"{gap * 1000:.0f} ms",
                     f"interval {o['cml_interval_s'] * 1000:.0f} ms",
                     "–" if gap is None else _r(gap / o["cml_interval_s"]), "≥ 1.00",
                     None if gap is None else gap >= o["cml_interval_s"]])  # fmt: skip
        rows.append(["4", f"share of the allowed rate used ({label})",
                     f"ListCleanser {_r(o['lc_share'])}, CleanMyList {_r(o['cml_share'])}",
                     "the limits", _r(least(o["lc_share"], o["cml_share"])), "≥ 0.95 (each)",
                     _at_least(least(o["lc_share"], o["cml_share"]), 0.95)])  # fmt: skip
        rows.append(["4", f"answer time p99 / p99.9 ({label})",
                     f"{o['p99_ms']:.0f} / {o['p999_ms']:.0f} ms",
                     f"deadline {o['deadline_ms']} ms",
                     f"{_r(o['p99_vs_deadline'])} / {_r(o['p999_vs_deadline'])}",
                     "< 1.00", _below(o["p99_vs_deadline"], o["p999_vs_deadline"])])  # fmt: skip
    m = res.get("memory")
    if m:
        growth = m["rss_final"] - m["rss_baseline"]
        at_bound = m["rss_at_bound"] - m["rss_baseline"]
        rows.append(["5", f"RSS growth after {m['entries']:,} unique addresses", _mib(growth),
                     f"at the bound ({m['bound']:,} entries) {_mib(at_bound)}",
                     _r(m["growth_ratio"]), f"flat: ≤ {MEMORY_FLAT:.2f}",
                     m["growth_ratio"] <= MEMORY_FLAT])  # fmt: skip
        rows.append(["5", "cache entries held", f"{m['held']:,}", f"bound {m['bound']:,}",
                     _r(m["held"] / m["bound"]), "≤ 1.00", m["held"] <= m["bound"]])  # fmt: skip
    return rows


def _http_section(lines: list[str], http: dict[str, Any]) -> None:
    t = http.get("targets", {})
    if "hit" not in t:
        _not_run(lines)
        return
    lines += [
        f"Same wrk settings for every target (`{http['wrk']}`, `lua/report.lua` for the "
        f"percentiles), {t['hit']['rounds']} rounds, targets alternated (the order rotates each "
        f"round), medians. The bare handler answers the service's own {http.get('body_bytes', 0)}"
        f"-byte answer for `{http['address']}`. Services run on embedded defaults with the "
        "benchmark's DNS server and no provider key; `hit-quiet` only adds "
        "EMAILGATE_LOG_LEVEL=warning.",
        "",
    ]
    rows = []
    for name, s in t.items():
        cpu = s.get("cpu_us_per_request")
        rows.append([name, _n(s["rps_median"]), _r(s.get("ratio_to_bare")),
                     " / ".join(_n(x) for x in s["rps_all"]),
                     f"{cpu:.0f} µs" if cpu else "–", _ms(s["p50_us"]), _ms(s["p90_us"]),
                     _ms(s["p99_us"]), _ms(s["p999_us"]), _ms(s["max_us"]),
                     s["errors"]])  # fmt: skip
    if http.get("yardstick"):
        lines += [f"The yardstick is the faster bare app, `{http['yardstick']}`: every ratio "
                  "below is taken against it.", ""]  # fmt: skip
    lines += _table(["target", "req/s (median)", "ratio to bare", "req/s per round",
                     "CPU per request", "p50", "p90", "p99", "p99.9", "max", "errors"],
                    rows)  # fmt: skip
    lookups = http.get("hit_cache_lookups")
    if lookups:
        lines += [f"Cache lookups counted by the hit service: {_lookups(lookups)}.", ""]


BEFORE = Path(__file__).with_name("results") / "hit-breakdown-before.json"
"""The cache-hit breakdown before the work on the cache-hit path (py-spy, µs per request)."""


def _before_after(lines: list[str], costs: list[dict[str, Any]]) -> None:
    """The breakdown beside the one measured before the work on the hit path, cost by cost."""
    try:
        before = json.loads(BEFORE.read_text())
    except (OSError, ValueError):
        return
    now = {c["cost"]: c["us"] for c in costs}
    was = {c["cost"]: c["us"] for c in before["costs"]}
    names = [*was, *(n for n in now if n not in was)]
    rows = [[n, f"{was[n]:.1f}" if n in was else "–", f"{now[n]:.1f}" if n in now else "–"]
            for n in names]  # fmt: skip
    rows.append(["**time per request**", f"{before['us_per_request']:.0f}",
                 f"{sum(now.values()):.0f}"])  # fmt: skip
    lines += [f"Before and after, µs per request (before: {before['measured']}):", ""]
    lines += _table(["cost", "before", "now"], rows)


def _lookups(samples: dict[str, float]) -> str:
    hit = sum(v for k, v in samples.items() if 'result="hit"' in k)
    miss = sum(v for k, v in samples.items() if 'result="miss"' in k)
    return f"{hit:,.0f} hits, {miss:,.0f} misses"


def _profile_section(lines: list[str], http: dict[str, Any]) -> None:
    p = http.get("profile")
    t = http.get("targets", {})
    if not p:
        lines += ["_No py-spy profile in this run (--no-profile)._", ""]
    elif "skipped" in p:
        lines += [f"_No py-spy profile: {p['skipped']}._", ""]
    else:
        lines += [
            f"py-spy sampled the `hit` service at 100 Hz for its whole request path "
            f"({p['samples']:,} samples at {_n(p['rps_while_sampling'])} req/s under the same "
            "wrk load; py-spy pauses the process to sample, so microseconds are shares of the "
            f"unprofiled time per request, {1e6 / p['rps_unprofiled']:.0f} µs). Each sample is "
            "charged to the log line or the metrics wherever they appear in the stack, else to "
            "the innermost emailgate frame, else to aiohttp/asyncio.",
            "",
        ]
        rows = [[c["cost"], f"{c['share']:.1%}", f"{c['us']:.1f}"] for c in p["costs"]]
        lines += _table(["cost", "share of samples", "µs per request"], rows)
        name = http.get("yardstick") or "bare"
        if "hit" in t and name in t:
            extra = 1e6 / t["hit"]["rps_median"] - 1e6 / t[name]["rps_median"]
            lines += [
                f"Time per request: emailgate {1e6 / t['hit']['rps_median']:.0f} µs, {name} "
                f"{1e6 / t[name]['rps_median']:.0f} µs, so the service adds {extra:.0f} µs "
                "to each cache hit.",
                "",
            ]
        if http.get("yardstick"):  # runs since that work (two bare apps), not older ones
            _before_after(lines, p["costs"])
        own = [c for c in p["costs"] if c["cost"] != prof.AIOHTTP]
        if own:
            top = own[0]
            lines += [
                f"**Largest remaining cost:** {top['cost']}, {top['share']:.1%} of the samples "
                f"(about {top['us']:.0f} µs per request).",
                "",
            ]
        lines += ["Package functions with the most samples of their own:", ""]
        lines += _table(["function", "share"],
                        [[f"`{o['function']}`", f"{o['share']:.1%}"]
                         for o in p["own"]])  # fmt: skip
    pieces = http.get("localcost", {}).get("pieces")
    if pieces:
        lines += [
            "In-process price of each piece of the cache-hit path (`benchmarks.localcost`, best "
            "of 3 timeit runs, one call each):",
            "",
        ]
        lines += _table(["piece", "µs per call"], [[k, f"{v:.2f}"] for k, v in pieces.items()])


def _cold_section(lines: list[str], http: dict[str, Any]) -> None:
    t = http.get("targets", {})
    local = http.get("localcost", {}).get("local")
    if "cold" not in t and not local:
        _not_run(lines)
        return
    if "cold" in t:
        c = t["cold"]
        lines += [
            "A unique address per request (`lua/unique.lua`) on 21 domains whose DNS answers "
            "were cached before the runs: syntax, domain facts, cache miss, single flight, DNS "
            "cache, local verdict, cache store. Same wrk settings as above, in the same rounds.",
            "",
        ]
        lines += _table(
            ["req/s (median)", "ratio to bare", "ratio to cache hit", "p50", "p99", "p99.9"],
            [[_n(c["rps_median"]), _r(c.get("ratio_to_bare")),
              _r(c["rps_median"] / t["hit"]["rps_median"]) if "hit" in t else "–",
              _ms(c["p50_us"]), _ms(c["p99_us"]), _ms(c["p999_us"])]],
        )  # fmt: skip
        lookups = http.get("cold_cache_lookups")
        lines += [
            f"The cold service answered {http.get('cold_requests', 0):,} unique addresses "
            f"({_lookups(lookups) if lookups else 'no lookup counts'}); its resident size went "
            f"from {_mib(http.get('cold_rss_before'))} to {_mib(http.get('cold_rss_after'))}.",
            "",
        ]
    if local:
        lines += [
            f"Local checks in-process (`benchmarks.localcost`), per address over "
            f"{local['addresses']:,} unique addresses on {local['distinct_domains']} domains of "
            "every kind; syntax memo cleared first (unique traffic misses it):",
            "",
        ]
        lines += _table(
            ["syntax (email-validator)", "domain facts + role (memoised)",
             "local verdict + decision", "total", "domain facts uncached, per new domain"],
            [[f"{local['syntax_us']:.1f} µs", f"{local['facts_role_us']:.2f} µs",
              f"{local['verdict_decision_us']:.2f} µs", f"**{local['total_us']:.1f} µs**",
              f"{local['facts_uncached_per_domain_us']:.0f} µs"]],
        )  # fmt: skip


def _trace_section(lines: list[str], tr: dict[str, Any] | None) -> None:
    if not tr:
        _not_run(lines)
        return
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(tr["kinds"].items()))
    lines += [
        f"{tr['events']:,} checks (seed {tr['seed']}: {kinds}) sent by {tr['concurrency']} "
        f"concurrent callers to one service wired to the fake providers (latency "
        f"{tr['provider_latency_ms']} ms, limits far above the load). The lower bound is "
        "computed by the benchmark, not the service: distinct addresses after normalisation "
        "(case-folded, as the cache key is) that pass the local checks, each of which misses "
        "the empty cache once.",
        "",
    ]
    if tr.get("note"):
        lines += [f"**Note:** {tr['note']}.", ""]
    lines += _table(
        ["figure", "value"],
        [
            ["provider calls (ListCleanser + CleanMyList)",
             f"{tr['calls_total']:,} ({tr['calls_listcleanser']:,} + {tr['calls_cleanmylist']:,})"],
            ["lower bound (case-folded) / with case kept",
             f"{tr['lower_bound']:,} / {tr['lower_bound_case_kept']:,}"],
            ["ratio calls / lower bound", _r(tr["ratio"])],
            ["same address asked again at ListCleanser", f"{tr['repeat_asks_listcleanser']:,}"],
            ["calls for addresses outside the bound", f"{tr['calls_outside_bound']:,}"],
            ["credits spent / a call per check",
             f"{tr['credits_spent']:,} / {tr['credits_naive']:,}"],
            ["credits saved", f"{tr['credits_saved']:,} ({_r(tr['credits_saved_share'])})"],
            ["answers from the cache", f"{tr['cached_answers']:,}"],
            ["answer sources", ", ".join(f"{k} {v:,}" for k, v in sorted(tr["sources"].items()))],
            ["answer time p50 / p99 / max",
             f"{tr['p50_ms']:.1f} / {tr['p99_ms']:.1f} / {tr['max_ms']:.1f} ms"],
            ["non-200 answers", f"{tr['non_200']:,}"],
        ],
    )  # fmt: skip


def _overload_section(lines: list[str], over: dict[str, Any]) -> None:
    if not over.get("one"):
        _not_run(lines)
        return
    o1 = over["one"]
    lines += [
        f"EMAILGATE_LISTCLEANSER_RATE={over['rate']} (shortened from 200/60s for benchmark "
        f"time: the same per-second rate, windows ten times shorter), "
        f"EMAILGATE_CLEANMYLIST_INTERVAL_MS={o1['cml_interval_s'] * 1000:.0f}, "
        f"EMAILGATE_DEADLINE_MS={o1['deadline_ms']}. Open-loop load of unique addresses that "
        f"pass the local checks at {over['factor']:g}x the ListCleanser rate "
        f"({o1['offered_per_s']:.1f}/s for {o1['seconds']:g}s); the fakes enforce both limits "
        "(429 past them) and log every call. Two replicas share a private redis-server "
        "(EMAILGATE_REDIS_URL, EMAILGATE_REPLICAS=2) and get alternate requests.",
        "",
    ]
    for key in ("one", "two"):
        o = over.get(key)
        if o and o.get("note"):
            lines += [f"**Note ({key}):** {o['note']}.", ""]
    runs = [(k, over[k]) for k in ("one", "two") if over.get(k)]

    def row(label: str, fn: Any) -> list[Any]:
        return [label, *(fn(o) for _, o in runs)]

    def gap(o: dict[str, Any]) -> str:
        g = o["cml_min_gap_s"]
        return "–" if g is None else f"{g * 1000:.0f} ms ({g / o['cml_interval_s']:.2f}x)"

    lines += _table(
        ["figure", *("one replica" if k == "one" else "two replicas, Redis" for k, _ in runs)],
        [
            row("requests", lambda o: f"{o['requests']:,}"),
            row("ListCleanser calls", lambda o: f"{o['lc_calls']:,}"),
            row(f"most in any {o1['lc_window_s']:g}s window / limit",
                lambda o: f"{o['lc_max_in_window']} / {o['lc_limit']}"),
            row("ListCleanser 429s", lambda o: o["lc_429"]),
            row("ListCleanser share of the allowed rate", lambda o: _r(o["lc_share"])),
            row("CleanMyList calls", lambda o: f"{o['cml_calls']:,}"),
            row("smallest CleanMyList gap (x interval)", gap),
            row("CleanMyList 429s", lambda o: o["cml_429"]),
            row("CleanMyList share of the allowed rate", lambda o: _r(o["cml_share"])),
            row("answer time p50", lambda o: f"{o['p50_ms']:.0f} ms"),
            row("answer time p99 (x deadline)",
                lambda o: f"{o['p99_ms']:.0f} ms ({_r(o['p99_vs_deadline'])})"),
            row("answer time p99.9 (x deadline)",
                lambda o: f"{o['p999_ms']:.0f} ms ({_r(o['p999_vs_deadline'])})"),
            row("answer time max", lambda o: f"{o['max_ms']:.0f} ms"),
            row("answers over the deadline", lambda o: o["over_deadline"]),
            row("non-200 answers", lambda o: o["non_200"]),
            row("answer sources",
                lambda o: ", ".join(f"{k} {v:,}" for k, v in sorted(o["sources"].items()))),
        ],
    )  # fmt: skip


def _memory_section(lines: list[str], m: dict[str, Any] | None) -> None:
    if not m:
        _not_run(lines)
        return
    growth = m["rss_final"] - m["rss_baseline"]
    at_bound = m["rss_at_bound"] - m["rss_baseline"]
    lines += [
        f"In-process, for speed: a child process builds the service's cache (BoundedMemoryCache "
        f"behind VerdictCache, bound read from EMAILGATE_CACHE_MAX_ENTRIES={m['bound']:,} by "
        f"Settings.from_env) and stores {m['entries']:,} unique addresses through "
        "`VerdictCache.key` (keyed hash) and `VerdictCache.set`, each with its own local "
        "verdict, sampling VmRSS. Through HTTP the same flood would take minutes; the HTTP "
        "path's other memos (syntax, domain facts, DNS answers) have small bounds of their own.",
        "",
    ]
    unbounded = at_bound / m["bound"] * m["entries"] if m["bound"] else None
    lines += _table(
        ["figure", "value"],
        [
            ["entries held / bound", f"{m['held']:,} / {m['bound']:,}"],
            ["RSS before / at the bound / after the flood",
             f"{_mib(m['rss_baseline'])} / {_mib(m['rss_at_bound'])} / {_mib(m['rss_final'])}"],
            ["growth after the flood / growth at the bound",
             f"{_mib(growth)} / {_mib(at_bound)} ({_r(m['growth_ratio'])}x)"],
            ["bytes per entry (growth at the bound / bound)", _n(m["bytes_per_entry"])],
            ["growth an unbounded cache would show (projected)", _mib(unbounded)],
        ],
    )  # fmt: skip


def render(
    res: dict[str, Any], *, sizes: Sizes, command: str, date: str, plots: dict[str, Path],
    report_path: Path, elapsed: float,
) -> str:  # fmt: skip
    """The whole report as Markdown."""
    lines = [
        f"# emailgate benchmarks, {date}",
        "",
        f"Command: `{command}` (whole run {elapsed / 60:.1f} min). Every figure is measured in "
        "this one run, beside its reference.",
        "",
        SECTIONS[0],
        "",
    ]
    sentence = capacity(res)
    if sentence is not None:
        lines += [f"**Capacity.** {sentence}", ""]
    rows = summary_rows(res)
    lines += [targets_line(rows), ""]
    lines += _table(["#", "figure", "emailgate", "reference", "ratio", "target", "met?"],
                    rows or [["–", "nothing measured", "", "", "", "", ""]])  # fmt: skip
    http = res.get("http", {})
    lines += [SECTIONS[1], ""]
    _http_section(lines, http)
    lines += [SECTIONS[2], ""]
    _profile_section(lines, http) if "hit" in http.get("targets", {}) else _not_run(lines)
    lines += [SECTIONS[3], ""]
    _cold_section(lines, http)
    lines += [SECTIONS[4], ""]
    _trace_section(lines, res.get("trace"))
    lines += [SECTIONS[5], ""]
    _overload_section(lines, res.get("overload", {}))
    lines += [SECTIONS[6], ""]
    _memory_section(lines, res.get("memory"))
    lines += [SECTIONS[7], ""]
    machine = res.get("machine", {})
    lines += _table(["", ""], [[k, v] for k, v in machine.items()])
    lines += [SECTIONS[8], ""]
    lines += _table(["knob", "value"], [[k, v] for k, v in vars(sizes).items()])
    lines += [SECTIONS[9], ""]
    if not plots:
        lines += ["_No plot: nothing plottable was measured._", ""]
    for name, path in plots.items():
        rel = path.relative_to(report_path.parent)
        lines += [f"![{name}]({rel.as_posix()})", ""]
    return "\n".join(lines)


def rerender(json_path: Path) -> Path:
    """Write the report of a finished run again from its JSON (and the plots beside it), with
    this renderer: `python -m benchmarks.report benchmarks/results/<date>.json`."""
    import json
    import re

    data = json.loads(json_path.read_text())
    report_path = json_path.with_suffix(".md")
    old = report_path.read_text() if report_path.exists() else ""
    took = re.search(r"whole run ([0-9.]+) min", old)
    plot_dir = json_path.with_suffix("")
    found = {p.stem: p for p in sorted(plot_dir.glob("*.png"))}
    order = re.findall(r"!\[(\w+)\]", old)  # keep the order the report had
    plots = {n: found[n] for n in order if n in found} | found
    sizes = Sizes(**data.pop("sizes"))
    command = data.pop("command")
    text = render(data, sizes=sizes, command=command, date=json_path.stem, plots=plots,
                  report_path=report_path,
                  elapsed=float(took.group(1)) * 60 if took else 0.0)  # fmt: skip
    report_path.write_text(text + ("\n" if not text.endswith("\n") else ""))
    return report_path


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        print(rerender(Path(arg)))
