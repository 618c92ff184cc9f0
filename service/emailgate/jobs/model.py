"""A job as the API shows it: statuses, the JOB object, and the completed answer's stats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MAX_INT = 2**31 - 1  # the largest INTEGER of PostgreSQL's columns (ids, max_credits)
MAX_CREDITS = MAX_INT


def job_id(raw: str) -> int | None:
    """A job id from a URL path, or None: ASCII digits only (str.isdigit passes "²", which
    int() refuses) and within the id column's range (a larger number is an error in
    PostgreSQL, not a miss)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        return None
    value = int(raw)
    return value if value <= MAX_INT else None


class JobStatus(StrEnum):
    """The contract's job `status`."""

    PROCESSING = "processing"
    WAITING_APPROVAL = "waiting_approval"
    PROCESSED = "processed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        """No more work will be done on it."""
        return self in (JobStatus.PROCESSED, JobStatus.FAILED, JobStatus.CANCELLED)


class Stage(StrEnum):
    """Where the worker stands; each stage is idempotent and recorded before the next."""

    FREE = "free"  # ingested: syntax done, the free checks and the cache still to run
    PAYING = "paying"  # free checks done: the billable rest goes to a provider
    DONE = "done"


STATES = ("deliverable", "undeliverable", "risky", "unknown")
ADDRESS_STAGES = ("invalid", "duplicate", "local", "cached", "provider")
"""`emailgate_job_addresses_total{stage}`."""


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the jobs table."""

    id: int
    owner: str
    kind: str
    name: str
    context: str
    sandbox: bool
    status: JobStatus
    stage: Stage
    callback_url: str | None
    max_credits: int | None
    number_of_total: int
    duplicates: int
    invalid_format: int
    domains: int
    distinct_total: int
    billable: int
    credits_spent: int
    processed: int
    counts: dict[str, int]
    provider: str | None
    error: str | None
    columns: list[str]
    created_at: float
    updated_at: float
    ended_at: float | None
    notified_at: float | None

    @property
    def progress(self) -> int:
        """0–100 over distinct addresses; 100 only once processed."""
        if self.status is JobStatus.PROCESSED:
            return 100
        if self.distinct_total == 0:
            return 0
        return min(99, self.processed * 100 // self.distinct_total)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JOB."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "context": self.context,
            "number_of_total": self.number_of_total,
            "duplicates": self.duplicates,
            "invalid_format": self.invalid_format,
            "domains": self.domains,
            "billable": self.billable,
            "credits_spent": self.credits_spent,
            "processed": self.processed,
            "progress": self.progress,
            "counts": dict(self.counts),
            "provider": self.provider,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "error": self.error,
        }

    def stats(self) -> dict[str, Any]:
        """The completed answer's `stats`: duplicates over rows, states over distinct ones."""
        distinct = max(1, self.distinct_total)
        total = self.number_of_total
        stats: dict[str, Any] = {
            "total": total,
            "duplicate": round(100 * self.duplicates / total, 2) if total else 0.0,
        }
        for state in STATES:
            stats[state] = round(100 * self.counts.get(state, 0) / distinct, 2)
        return stats


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
