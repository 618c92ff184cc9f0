"""The hot path's plain counts (metrics.Tally) expose exactly what prometheus-client's own
`inc` and `observe` would have."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from emailgate.metrics import CHECK_BUCKETS, Metrics

CHECKS = st.lists(
    st.tuples(
        st.sampled_from(["signup", "checkout"]),
        st.sampled_from(["accept", "reject"]),
        st.sampled_from(["local", "zerobounce"]),
        # Bounds themselves included: a value equal to a bound counts in that bound's bucket.
        st.one_of(st.sampled_from(CHECK_BUCKETS), st.floats(0, 10, allow_nan=False)),
    ),
    max_size=40,
)


def _reference(checks: list[tuple[str, str, str, float]], hits: int) -> bytes:
    """The same families counted with prometheus-client's own calls."""
    r = CollectorRegistry()
    counts = Counter("emailgate_checks_total", "Verify checks answered.",
                     ["context", "decision", "source"], registry=r)  # fmt: skip
    durations = Histogram("emailgate_check_duration_seconds", "Time to answer a verify check.",
                          ["source"], buckets=CHECK_BUCKETS, registry=r)  # fmt: skip
    lookups = Counter("emailgate_cache_lookups_total", "Verdict cache lookups.", ["result"],
                      registry=r)  # fmt: skip
    for context, decision, source, seconds in checks:
        counts.labels(context, decision, source).inc()
        durations.labels(source).observe(seconds)
    lookups.labels("miss")
    lookups.labels("hit").inc(hits)
    return generate_latest(r)


def _families(text: bytes, names: tuple[str, ...]) -> list[str]:
    """The exposition's lines of `names`, without the creation times (they differ)."""
    lines = []
    for line in text.decode().splitlines():
        if any(n in line for n in names) and "_created" not in line:
            lines.append(re.sub(r"\s+", " ", line))
    return sorted(lines)


@settings(max_examples=60, deadline=None)
@given(checks=CHECKS, hits=st.integers(0, 5))
def test_tally_exposes_what_inc_and_observe_would(
    checks: list[tuple[str, str, str, float]], hits: int
) -> None:
    """Checks and cache hits counted through the tally read back line for line as the same
    calls made on prometheus-client families, bucket edges included."""
    metrics = Metrics()
    for context, decision, source, seconds in checks:
        metrics.observe_check(context, decision, source, seconds)
    for _ in range(hits):
        metrics.cache_lookup(hit=True)
    names = ("emailgate_checks_total", "emailgate_check_duration_seconds",
             "emailgate_cache_lookups_total")  # fmt: skip
    ours = _families(generate_latest(metrics.registry), names)
    assert ours == _families(_reference(checks, hits), names)


def test_tally_folds_once_and_keeps_counting() -> None:
    """Counts read at one scrape are not added again at the next; later counts are."""
    metrics = Metrics()
    metrics.observe_check("signup", "accept", "local", 0.0007)
    read = metrics.registry.get_sample_value
    assert read("emailgate_checks_total", {"context": "signup", "decision": "accept",
                                           "source": "local"}) == 1  # fmt: skip
    assert read("emailgate_check_duration_seconds_bucket", {"source": "local", "le": "0.001"}) == 1
    assert read("emailgate_check_duration_seconds_bucket", {"source": "local", "le": "0.0005"}) == 0
    generate_latest(metrics.registry)
    metrics.observe_check("signup", "accept", "local", 0.2)
    assert read("emailgate_checks_total", {"context": "signup", "decision": "accept",
                                           "source": "local"}) == 2  # fmt: skip
    assert read("emailgate_check_duration_seconds_count", {"source": "local"}) == 2
    assert read("emailgate_check_duration_seconds_sum", {"source": "local"}) == 0.0007 + 0.2
