"""The values a check produces: a normalised address, a verdict, and the RESULT of the contract."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Contract `state`."""

    DELIVERABLE = "deliverable"
    UNDELIVERABLE = "undeliverable"
    RISKY = "risky"
    UNKNOWN = "unknown"


class Reason(StrEnum):
    """Contract `reason`."""

    ACCEPTED_EMAIL = "accepted_email"
    INVALID_EMAIL = "invalid_email"
    INVALID_DOMAIN = "invalid_domain"
    REJECTED_EMAIL = "rejected_email"
    LOW_QUALITY = "low_quality"
    LOW_DELIVERABILITY = "low_deliverability"
    DNS_ERROR = "dns_error"
    TIMEOUT = "timeout"
    UNAVAILABLE_PROVIDER = "unavailable_provider"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """Contract `source`: who produced the verdict."""

    LOCAL = "local"
    LISTCLEANSER = "listcleanser"
    CLEANMYLIST = "cleanmylist"
    SANDBOX = "sandbox"
    # Bulk providers behind batch jobs (docs/bulk-providers.md): their verdicts reach the cache too.
    LISTCLEANER = "listcleaner"
    EMAILCONSUL = "emailconsul"


class Decision(StrEnum):
    """Contract `decision`."""

    ACCEPT = "accept"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Address:
    """A syntactically valid address, normalised."""

    email: str
    """`user@ascii-domain`: trimmed, domain lower-cased, IDNA (contract `email_address`)."""
    user: str
    """The local part, as given (case kept: mailbox names may be case-sensitive)."""
    domain: str
    """The domain in Unicode form, lower-cased."""
    ascii_domain: str
    """The domain in IDNA (ASCII) form, what DNS and providers are asked about."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What is known about an address, independent of the caller's context; this is cached."""

    state: State
    reason: Reason
    score: int
    source: Source
    accept_all: bool | None = None
    disposable: bool = False
    free: bool = False
    role: bool = False
    possible_spamtrap: bool = False
    did_you_mean: str | None = None
    mx_record: str | None = None
    smtp_provider: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-ready values (for the cache)."""
        return {
            "state": self.state.value,
            "reason": self.reason.value,
            "score": self.score,
            "source": self.source.value,
            "accept_all": self.accept_all,
            "disposable": self.disposable,
            "free": self.free,
            "role": self.role,
            "possible_spamtrap": self.possible_spamtrap,
            "did_you_mean": self.did_you_mean,
            "mx_record": self.mx_record,
            "smtp_provider": self.smtp_provider,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Rebuild a stored verdict; KeyError, ValueError or TypeError if it is damaged."""
        score = data["score"]
        if not isinstance(score, int) or not 0 <= score <= 100:
            raise ValueError("score out of range")
        return cls(
            state=State(data["state"]),
            reason=Reason(data["reason"]),
            score=score,
            source=Source(data["source"]),
            accept_all=_opt_bool(data.get("accept_all")),
            disposable=bool(data.get("disposable", False)),
            free=bool(data.get("free", False)),
            role=bool(data.get("role", False)),
            possible_spamtrap=bool(data.get("possible_spamtrap", False)),
            did_you_mean=_opt_str(data.get("did_you_mean")),
            mx_record=_opt_str(data.get("mx_record")),
            smtp_provider=_opt_str(data.get("smtp_provider")),
        )


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
