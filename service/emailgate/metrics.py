"""Prometheus metrics on an injected registry, so every test app has its own.

The families docs/api.md ("Metrics") lists. No label ever carries an
address, a domain or a key: every label value comes from a small closed set.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

# Checks are bounded by the deadline (1.5 s by default); buckets resolve both the cache path
# (sub-millisecond) and the provider path (hundreds of milliseconds).
CHECK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0,
                 1.25, 1.5, 2.0, 3.0, 5.0)  # fmt: skip
PROVIDER_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 5.0)

PROVIDER_OUTCOMES = ("ok", "timeout", "rate_limited", "no_credits", "unauthorized",
                     "bad_response", "error")  # fmt: skip
SKIP_REASONS = ("no_token", "circuit_open", "deadline", "paused")
# One per HTTP call to a bulk provider: the real-time outcomes, plus `not_ready` (a result
# download asked for too early) and `failed` (the provider ended the list as failed).
BULK_OUTCOMES = (*PROVIDER_OUTCOMES, "not_ready", "failed")
JOB_STATUSES = ("processing", "waiting_approval", "processed", "failed", "cancelled")
JOB_STAGES = ("invalid", "duplicate", "local", "cached", "provider")
WEBHOOK_OUTCOMES = ("delivered", "failed", "gave_up", "refused")


class Tally:
    """Counts and observations of the per-request families kept as plain numbers, added to
    their prometheus-client children whenever the registry is collected (a scrape,
    `get_sample_value`): the exposition is the children's own, unchanged.

    A child's `inc` takes a lock and checks its argument, a histogram's `observe` also walks
    its buckets: about 0.7 µs each, five of them on every cache hit. The event loop is the
    only writer, so the hot path needs neither. Registered first on its registry, so that
    it is collected (and folds) before the families it feeds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counts: dict[Counter, int] = {}
        self.observed: dict[Histogram, list[float]] = {}
        """Per histogram child: the sum of its pending observations, then a count per bucket."""
        registry.register(self)

    def inc(self, child: Counter) -> None:
        """Count one for `child` (a labelled Counter)."""
        counts = self.counts
        counts[child] = counts.get(child, 0) + 1

    def observe(self, child: Histogram, value: float) -> None:
        """One observation of `value` for `child` (a labelled Histogram)."""
        bounds = child._upper_bounds  # +Inf last; `observe` counts in the first bound >= value
        pending = self.observed.get(child)
        if pending is None:
            pending = self.observed[child] = [0.0] * (len(bounds) + 1)
        pending[0] += value
        pending[bisect_left(bounds, value) + 1] += 1

    def fold(self) -> None:
        """Add the pending numbers to their children."""
        counts, self.counts = self.counts, {}
        for counter, n in counts.items():
            counter.inc(n)
        observed, self.observed = self.observed, {}
        for hist, pending in observed.items():
            # The child's own values (what its `observe` adds to): no public call adds many.
            hist._sum.inc(pending[0])
            for value, seen in zip(hist._buckets, pending[1:], strict=True):
                if seen:
                    value.inc(seen)

    def describe(self) -> list[Metric]:
        """No family of its own (the registry asks)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Fold, and yield nothing: the children yield the numbers."""
        self.fold()
        return iter(())


class Metrics:
    """Every metric family the service exports, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.tally = Tally(r)
        """The hot path's counts, folded into their families whenever the registry is read."""
        self.enrich = EnrichMetrics(r)
        """Enrichment's families (docs/enrich.md), on this registry."""
        self.checks = Counter(
            "emailgate_checks_total", "Verify checks answered.",
            ["context", "decision", "source"], registry=r,
        )  # fmt: skip
        self.check_duration = Histogram(
            "emailgate_check_duration_seconds", "Time to answer a verify check.",
            ["source"], buckets=CHECK_BUCKETS, registry=r,
        )  # fmt: skip
        self.cache_lookups = Counter(
            "emailgate_cache_lookups_total", "Verdict cache lookups.", ["result"], registry=r
        )
        self.cache_errors = Counter(
            "emailgate_cache_errors_total",
            "Cache operations that failed and were treated as misses.",
            ["op"],
            registry=r,
        )
        self.provider_requests = Counter(
            "emailgate_provider_requests_total", "Calls to verification providers.",
            ["provider", "outcome"], registry=r,
        )  # fmt: skip
        self.provider_skips = Counter(
            "emailgate_provider_skips_total", "Providers skipped without a call.",
            ["provider", "why"], registry=r,
        )  # fmt: skip
        self.provider_duration = Histogram(
            "emailgate_provider_request_duration_seconds", "Time of one provider call.",
            ["provider"], buckets=PROVIDER_BUCKETS, registry=r,
        )  # fmt: skip
        self.provider_credits = Gauge(
            "emailgate_provider_credits", "Last known credits left at a provider.",
            ["provider"], registry=r,
        )  # fmt: skip
        self.circuit_open = Gauge(
            "emailgate_circuit_open", "1 while a provider's circuit breaker is open.",
            ["provider"], registry=r,
        )  # fmt: skip
        self.provider_paused = Gauge(
            "emailgate_provider_paused",
            "1 while a provider is not called (no credits, key refused, Retry-After).",
            ["provider"], registry=r,
        )  # fmt: skip
        self.bulk_requests = Counter(
            "emailgate_bulk_requests_total", "Calls to bulk (list-cleaning) providers.",
            ["provider", "outcome"], registry=r,
        )  # fmt: skip
        self.bulk_paused = Gauge(
            "emailgate_bulk_provider_paused",
            "1 while a bulk provider is not given lists (no credits, key refused, Retry-After).",
            ["provider"], registry=r,
        )  # fmt: skip
        self.dns_lookups = Counter(
            "emailgate_dns_lookups_total", "Mail domain classifications by outcome.",
            ["status"], registry=r,
        )  # fmt: skip
        self.dns_unreliable = Gauge(
            "emailgate_dns_resolver_unreliable",
            "1 while the DNS resolver is known to deny real mail domains: its negative answers "
            "count as DNS errors (fail open).",
            registry=r,
        )
        self.redis_degraded = Gauge(
            "emailgate_redis_degraded",
            "1 while Redis fails one of its users (cache, client limits, pacing) and an "
            "in-process fallback is in force.",
            registry=r,
        )
        self._redis_down: set[str] = set()
        self.cache_writes_paused = Gauge(
            "emailgate_cache_writes_paused",
            "1 while verdicts are not written because Redis is near its maxmemory.",
            registry=r,
        )
        self.hash_key_splits = Counter(
            "emailgate_hash_key_splits_total",
            "Times this replica found another hash key in Redis than its own and adopted it.",
            registry=r,
        )
        self.client_rejections = Counter(
            "emailgate_client_rejections_total", "Requests refused before a check.",
            ["why"], registry=r,
        )  # fmt: skip
        self.in_flight = 0
        """Verify checks being answered now: a plain count (the event loop is one thread),
        which the gauge reads at each scrape rather than taking a lock twice per check."""
        self.inflight = Gauge(
            "emailgate_checks_in_flight", "Verify checks being answered now.", registry=r
        )
        self.inflight.set_function(lambda: self.in_flight)
        # Jobs (batch verification).
        self.jobs = Gauge(
            "emailgate_jobs", "Jobs in the job store by kind and status.",
            ["kind", "status"], registry=r,
        )  # fmt: skip
        self.job_addresses = Counter(
            "emailgate_job_addresses_total",
            "Job addresses by the stage that answered them (duplicate: rows repeating one).",
            ["kind", "stage"], registry=r,
        )  # fmt: skip
        self.webhook_deliveries = Counter(
            "emailgate_webhook_deliveries_total",
            "Webhook attempts: delivered, failed (to be retried), gave_up, refused (SSRF).",
            ["outcome"], registry=r,
        )  # fmt: skip
        self._hit = self.cache_lookups.labels("hit")
        self._miss = self.cache_lookups.labels("miss")
        self._check_children: dict[tuple[str, str, str], Counter] = {}
        self._duration_children: dict[str, Histogram] = {}

    def observe_check(self, context: str, decision: str, source: str, seconds: float) -> None:
        """Count one answered check and its duration (children cached: this is the hot path)."""
        key = (context, decision, source)
        child = self._check_children.get(key)
        if child is None:
            child = self._check_children[key] = self.checks.labels(*key)
        tally = self.tally
        tally.inc(child)
        hist = self._duration_children.get(source)
        if hist is None:
            hist = self._duration_children[source] = self.check_duration.labels(source)
        tally.observe(hist, seconds)

    def cache_lookup(self, *, hit: bool) -> None:
        self.tally.inc(self._hit if hit else self._miss)

    def cache_error(self, op: str) -> None:
        self.cache_errors.labels(op).inc()

    def redis_part(self, part: str, *, degraded: bool) -> None:
        """One user of Redis (`cache`, `limits`, `pacing:<provider>`) failed or recovered: the
        gauge is 1 while any of them is degraded, and back to 0 only when all have recovered."""
        down = self._redis_down
        if degraded == (part in down):
            return  # no change: the hot path pays one set lookup
        if degraded:
            down.add(part)
        else:
            down.discard(part)
        self.redis_degraded.set(1 if down else 0)

    def redis_degraded_parts(self) -> list[str]:
        """The users of Redis on their fallback now, sorted."""
        return sorted(self._redis_down)

    def prime(self, contexts: list[str], providers: list[str]) -> None:
        """Create the known label sets at zero, so dashboards and alerts see them from start."""
        for ctx in contexts:
            for decision in ("accept", "reject"):
                for source in ("local", *providers):
                    self.checks.labels(ctx, decision, source)
        for result in ("hit", "miss"):
            self.cache_lookups.labels(result)
        for p in providers:
            for outcome in PROVIDER_OUTCOMES:
                self.provider_requests.labels(p, outcome)
            for why in SKIP_REASONS:
                self.provider_skips.labels(p, why)
            self.circuit_open.labels(p).set(0)
            self.provider_paused.labels(p).set(0)
        self.redis_degraded.set(1 if self._redis_down else 0)
        for status in JOB_STATUSES:
            self.jobs.labels("batch", status).set(0)
        for stage in JOB_STAGES:
            self.job_addresses.labels("batch", stage)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)

    def prime_bulk(self, providers: list[str]) -> None:
        """The bulk providers' label sets at zero."""
        for p in providers:
            for outcome in BULK_OUTCOMES:
                self.bulk_requests.labels(p, outcome)
            self.bulk_paused.labels(p).set(0)


# Enrichment (docs/enrich.md). No contact, address, domain or key ever becomes a label.
ENRICH_OUTCOMES = ("ok", "timeout", "rate_limited", "no_credits", "unauthorized",
                    "bad_response", "rejected", "error")  # fmt: skip
ENRICH_ENDPOINTS = ("validate_key", "bulk", "status")
ENRICH_CONTACT_OUTCOMES = ("found", "not_found", "failed")
ENRICH_CREDIT_KINDS = ("email", "phone")


class EnrichMetrics:
    """Requests to Cleanlist.ai, contacts by outcome, credits spent, verdicts on found emails."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "emailgate_enrich_requests_total", "Requests to the enrichment provider.",
            ["provider", "endpoint", "outcome"], registry=registry,
        )  # fmt: skip
        self.contacts = Counter(
            "emailgate_enrich_contacts_total", "Enriched contacts by outcome.",
            ["outcome"], registry=registry,
        )  # fmt: skip
        self.credits = Counter(
            "emailgate_enrich_credits_spent_total",
            "Enrichment provider credits spent (1 per email found, 10 per phone found).",
            ["provider", "kind"], registry=registry,
        )  # fmt: skip
        self.emails = Counter(
            "emailgate_enrich_emails_total", "Found emails by the verify pipeline's decision.",
            ["decision", "state"], registry=registry,
        )  # fmt: skip
        self.enabled = Gauge(
            "emailgate_enrich_enabled", "1 when enrichment is configured and its key valid.",
            registry=registry,
        )  # fmt: skip
        for endpoint in ENRICH_ENDPOINTS:
            for outcome in ENRICH_OUTCOMES:
                self.requests.labels("cleanlist", endpoint, outcome)
        for outcome in ENRICH_CONTACT_OUTCOMES:
            self.contacts.labels(outcome)
        for kind in ENRICH_CREDIT_KINDS:
            self.credits.labels("cleanlist", kind)

    def request(self, path: str, outcome: str) -> None:
        """Count one request by the endpoint its path names."""
        endpoint = "bulk" if path.endswith("/bulk") else "status" if "status" in path else (
            "validate_key")  # fmt: skip
        self.requests.labels("cleanlist", endpoint, outcome).inc()
