"""Stages 2 and 7 without I/O: local scores and the decision per context."""

from __future__ import annotations

import dataclasses

import pytest

from emailgate.verify import local
from emailgate.verify.decision import UnknownContext, decide, threshold_of
from emailgate.verify.domains import DomainFacts
from emailgate.verify.mail import MailDomain, MailStatus
from emailgate.verify.result import Address, Decision, Reason, Source, State, Verdict

ADDRESS = Address("jane@example.com", "jane", "example.com", "example.com")
PLAIN = DomainFacts(disposable=False, free=False, suggestion=None)
TYPO = DomainFacts(disposable=False, free=False, suggestion="gmail.com")
MX = MailDomain(MailStatus.MX, mx="mx.example.com")
IMPLICIT = MailDomain(MailStatus.IMPLICIT, mx="example.com")


@pytest.mark.parametrize("facts", [PLAIN, TYPO])
@pytest.mark.parametrize("role", [False, True])
@pytest.mark.parametrize("mail", [MX, IMPLICIT])
@pytest.mark.parametrize("why", [Reason.UNKNOWN, Reason.UNAVAILABLE_PROVIDER, Reason.TIMEOUT])
def test_fail_open_never_blocks_a_signup(
    facts: DomainFacts, role: bool, mail: MailDomain, why: Reason
) -> None:
    """Valid syntax, a domain that takes mail, not disposable: score >= 30 and accepted."""
    verdict = local.domain_verdict(ADDRESS, facts, role, mail, why)
    assert verdict.state is State.UNKNOWN and verdict.reason is why
    assert verdict.score >= 30
    assert decide(verdict, 30) is Decision.ACCEPT


def test_typo_is_advisory_only() -> None:
    """A typo-looking domain that takes mail gets did_you_mean but is still accepted."""
    verdict = local.domain_verdict(ADDRESS, TYPO, False, MX, Reason.UNKNOWN)
    assert verdict.did_you_mean == "jane@gmail.com"
    assert decide(verdict, 30) is Decision.ACCEPT


@pytest.mark.parametrize("status", [MailStatus.NXDOMAIN, MailStatus.NO_MAIL])
def test_no_mail_domain_is_undeliverable(status: MailStatus) -> None:
    """NXDOMAIN, null MX, or nothing at all: undeliverable, invalid_domain, rejected."""
    verdict = local.domain_verdict(ADDRESS, PLAIN, False, MailDomain(status), Reason.UNKNOWN)
    assert (verdict.state, verdict.reason) == (State.UNDELIVERABLE, Reason.INVALID_DOMAIN)
    assert decide(verdict, 0) is Decision.REJECT  # a hard rule, whatever the threshold


def test_dns_error_fails_open() -> None:
    """SERVFAIL or timeout: unknown, dns_error, accepted at signup."""
    verdict = local.domain_verdict(
        ADDRESS, PLAIN, False, MailDomain(MailStatus.ERROR), Reason.UNKNOWN
    )
    assert (verdict.state, verdict.reason) == (State.UNKNOWN, Reason.DNS_ERROR)
    assert decide(verdict, 30) is Decision.ACCEPT


def test_disposable_is_rejected_by_hard_rule_in_every_context() -> None:
    """Disposable: risky, low_quality, rejected even at threshold 0."""
    facts = DomainFacts(disposable=True, free=False, suggestion=None)
    verdict = local.disposable_verdict(ADDRESS, facts, False)
    assert (verdict.state, verdict.reason) == (State.RISKY, Reason.LOW_QUALITY)
    assert decide(verdict, 0) is Decision.REJECT
    assert decide(dataclasses.replace(verdict, score=100), 30) is Decision.REJECT


def test_spamtrap_is_rejected_whatever_its_score() -> None:
    """A provider's possible_spamtrap is a hard reject."""
    verdict = Verdict(
        State.RISKY, Reason.LOW_QUALITY, 99, Source.LISTCLEANSER, possible_spamtrap=True
    )
    assert decide(verdict, 30) is Decision.REJECT


@pytest.mark.parametrize(("score", "threshold", "decision"), [
    (30, 30, Decision.ACCEPT), (29, 30, Decision.REJECT), (50, 50, Decision.ACCEPT),
    (49, 50, Decision.REJECT),
])  # fmt: skip
def test_threshold_is_inclusive(score: int, threshold: int, decision: Decision) -> None:
    """accept when score >= threshold."""
    verdict = Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, score, Source.LISTCLEANSER)
    assert decide(verdict, threshold) is decision


def test_unknown_context() -> None:
    """A context without a threshold raises UnknownContext."""
    assert threshold_of("signup", {"signup": 30}) == 30
    with pytest.raises(UnknownContext, match="signup"):
        threshold_of("nope", {"signup": 30})
