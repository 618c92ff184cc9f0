"""Verdicts from local checks alone: what the service answers with no provider. Pure.

Scores are chosen so that a valid address on a domain that takes mail, not disposable, stays at
or above the signup threshold (30) whatever its other flags (docs/api.md "Fail-open"), while
marketing (50) takes only the plainest of them unverified.
"""

from __future__ import annotations

from emailgate.verify.domains import DomainFacts
from emailgate.verify.mail import MailDomain, MailStatus
from emailgate.verify.result import Address, Reason, Source, State, Verdict

FAIL_OPEN_FLOOR = 30  # the default signup threshold: fail-open must never block a signup
BASE_SCORE = 60  # valid syntax on a domain with MX records, nothing known about the mailbox
DNS_ERROR_SCORE = 40  # we could not even tell whether the domain takes mail
DISPOSABLE_SCORE = 10
ROLE_PENALTY = 10  # shared mailboxes bounce and complain more often
IMPLICIT_MX_PENALTY = 10  # mail via A/AAAA only: legal but unusual, often parked domains
TYPO_PENALTY = 15  # the domain looks like a typo of a popular one


def suggestion(address: Address, facts: DomainFacts) -> str | None:
    """The full suggested address when the domain looks like a typo."""
    return f"{address.user}@{facts.suggestion}" if facts.suggestion else None


def _local(
    address: Address,
    facts: DomainFacts,
    role: bool,
    state: State,
    reason: Reason,
    score: int,
    mx: str | None = None,
) -> Verdict:
    return Verdict(
        state=state,
        reason=reason,
        score=score,
        source=Source.LOCAL,
        disposable=facts.disposable,
        free=facts.free,
        role=role,
        did_you_mean=suggestion(address, facts),
        mx_record=mx,
    )


def disposable_verdict(address: Address, facts: DomainFacts, role: bool) -> Verdict:
    """A disposable domain: risky, low quality; rejected by a hard rule."""
    return _local(address, facts, role, State.RISKY, Reason.LOW_QUALITY, DISPOSABLE_SCORE)


def domain_verdict(
    address: Address, facts: DomainFacts, role: bool, mail: MailDomain, no_provider: Reason
) -> Verdict:
    """The verdict from DNS and the lists; `no_provider` says why no provider answered."""
    if mail.status in (MailStatus.NXDOMAIN, MailStatus.NO_MAIL):
        return _local(address, facts, role, State.UNDELIVERABLE, Reason.INVALID_DOMAIN, 0)
    if mail.status is MailStatus.ERROR:
        return _local(address, facts, role, State.UNKNOWN, Reason.DNS_ERROR, DNS_ERROR_SCORE)
    score = fail_open_score(facts, role, implicit=mail.status is MailStatus.IMPLICIT)
    return _local(address, facts, role, State.UNKNOWN, no_provider, score, mail.mx)


def timeout_verdict(address: Address, facts: DomainFacts, role: bool) -> Verdict:
    """The deadline passed before DNS or a provider could tell: fail open."""
    return _local(address, facts, role, State.UNKNOWN, Reason.TIMEOUT, fail_open_score(facts, role))


def fail_open_score(facts: DomainFacts, role: bool, *, implicit: bool = False) -> int:
    """The score of an address nobody could verify: never below the signup threshold."""
    score = BASE_SCORE
    if role:
        score -= ROLE_PENALTY
    if implicit:
        score -= IMPLICIT_MX_PENALTY
    if facts.suggestion:
        score -= TYPO_PENALTY
    return max(FAIL_OPEN_FLOOR, score)
