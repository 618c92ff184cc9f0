"""Enrichment metrics, on the app's registry. Labels come from small closed sets: no contact,
address, domain or key ever becomes a label."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REQUEST_OUTCOMES = ("ok", "timeout", "rate_limited", "no_credits", "unauthorized",
                    "bad_response", "rejected", "error")  # fmt: skip
ENDPOINTS = ("validate_key", "bulk", "status")
CONTACT_OUTCOMES = ("found", "not_found", "failed")
CREDIT_KINDS = ("email", "phone")
DECISIONS = ("accept", "reject")


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
        for endpoint in ENDPOINTS:
            for outcome in REQUEST_OUTCOMES:
                self.requests.labels("cleanlist", endpoint, outcome)
        for outcome in CONTACT_OUTCOMES:
            self.contacts.labels(outcome)
        for kind in CREDIT_KINDS:
            self.credits.labels("cleanlist", kind)

    def request(self, path: str, outcome: str) -> None:
        """Count one request by the endpoint its path names."""
        endpoint = "bulk" if path.endswith("/bulk") else "status" if "status" in path else (
            "validate_key")  # fmt: skip
        self.requests.labels("cleanlist", endpoint, outcome).inc()
