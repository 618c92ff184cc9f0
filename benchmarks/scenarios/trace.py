"""Scenario 3: a seeded signup trace; provider calls against the lower bound, credits saved.

The trace (benchmarks.corpus.signup_trace) mixes fresh addresses, repeats, double submits,
case and whitespace variants, typos, disposables, dead domains, role addresses and junk. It is
sent to one `emailgate serve` wired to the fake providers (limits far above the load, so only
deduplication is measured, not pacing) by a few concurrent callers.

The lower bound is computed here, independently of the service: the distinct addresses, after
the service's normalisation (trimmed, IDNA, domain lower-cased; case-folded as the cache key
is), that pass the local checks (valid syntax per emailgate's parser, not on the disposable
list, a domain that takes mail in the benchmark's DNS zone). Each of them misses the (empty)
cache once, so no service can ask the providers fewer times. Provider calls come from the
fakes' call logs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmarks import corpus, loadgen
from benchmarks.context import Bench
from benchmarks.scenarios import providers
from benchmarks.stats import percentile, ratio
from emailgate.verify.domains import DomainLists
from emailgate.verify.syntax import InvalidAddress, parse_address


def lower_bound(events: list[str]) -> dict[str, Any]:
    """Distinct normalised addresses that pass the local checks (the provider-call floor)."""
    lists = DomainLists()
    folded: set[str] = set()
    exact: set[str] = set()
    for raw in events:
        try:
            address = parse_address(raw)
        except InvalidAddress:
            continue
        if lists.facts(address.ascii_domain).disposable:
            continue
        if not corpus.takes_mail(address.ascii_domain):
            continue
        folded.add(address.email.casefold())
        exact.add(address.email)
    return {"casefolded": len(folded), "case_kept": len(exact), "keys": folded}


async def run(bench: Bench) -> dict[str, Any]:
    """Scenario 3's figures."""
    sizes, say = bench.sizes, bench.progress.say
    fakes = await bench.fakes(
        *providers.fake_args(
            latency_ms=sizes.provider_latency_ms, jitter_ms=sizes.provider_jitter_ms,
            seed=sizes.seed, rate_limit=10**6, window_s=60, interval_ms=1,
        )
    )  # fmt: skip
    settings = providers.provider_settings(
        fakes, rate="1000000/60s", interval_ms=1, deadline_ms=sizes.deadline_ms
    )
    service = await bench.service("trace", settings)
    trace = corpus.signup_trace(sizes.trace_events, seed=sizes.seed)
    bound = lower_bound(trace.events)
    say(
        f"{len(trace.events):,} events (seed {sizes.seed}), {sizes.trace_concurrency} concurrent "
        f"callers; lower bound {bound['casefolded']:,} provider calls"
    )
    answers = await loadgen.closed_loop([service.url], trace.events, sizes.trace_concurrency)
    calls = await providers.calls(fakes)
    asked = Counter(
        (c.email or "").strip().casefold() for c in calls.listcleanser + calls.cleanmylist
    )
    lc_asked = Counter((c.email or "").strip().casefold() for c in calls.listcleanser)
    outside = sum(n for email, n in asked.items() if email not in bound["keys"])
    spent = calls.answered()
    seconds = [a.seconds for a in answers]
    sources = Counter(a.source for a in answers)
    result: dict[str, Any] = {
        "events": len(trace.events),
        "seed": trace.seed,
        "kinds": trace.counts(),
        "concurrency": sizes.trace_concurrency,
        "lower_bound": bound["casefolded"],
        "lower_bound_case_kept": bound["case_kept"],
        "calls_listcleanser": len(calls.listcleanser),
        "calls_cleanmylist": len(calls.cleanmylist),
        "calls_total": calls.total,
        "ratio": ratio(calls.total, bound["casefolded"]),
        "repeat_asks_listcleanser": sum(n - 1 for n in lc_asked.values()),
        "calls_outside_bound": outside,
        "credits_spent": spent,
        "credits_naive": len(trace.events),
        "credits_saved": len(trace.events) - spent,
        "credits_saved_share": ratio(len(trace.events) - spent, len(trace.events)),
        "sources": dict(sources),
        "cached_answers": sum(1 for a in answers if a.data and a.data.get("cached")),
        "non_200": sum(1 for a in answers if a.status != 200),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "max_ms": max(seconds, default=0.0) * 1000,
        "provider_latency_ms": f"{sizes.provider_latency_ms:g} ± {sizes.provider_jitter_ms:g}",
    }
    if calls.total == 0:
        result["note"] = (
            "the service made no provider call: the provider chain is not active in this build"
        )
        bench.progress.warn("trace: no provider call reached the fakes (chain not wired?)")
    say(
        f"  provider calls {calls.total:,} vs lower bound {bound['casefolded']:,}; "
        f"credits spent {spent:,} of {len(trace.events):,} checks"
    )
    await service.stop()
    return result
