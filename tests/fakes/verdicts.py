"""What the fakes say about an address: a table a test sets, else the local part, else deliverable.

Order of decision:
  (a) the fake's explicit per-address table (`fake.set_answer(email, **fields)`; keys are the
      address trimmed and lower-cased), whose fields are laid over (b) or (c);
  (b) the first of these prefixes that the local part starts with (case-insensitive), after
      any fault marker (`slow.`, `hang-`, ... see faults.py) is stripped;
  (c) the default: a deliverable address.

| local part       | ListCleanser state reason score flags  | CleanMyList valid score extras       |
|------------------|----------------------------------------|--------------------------------------|
| (default)        | deliverable accepted_email 90          | true 90 last_delivery                |
| `deliverable…`   | deliverable accepted_email 95          | true 95 last_activity last_delivered |
| `undeliverable…` | undeliverable rejected_email 5         | false 5                              |
| `risky…`         | risky low_deliverability 45            | true 40                              |
| `unknown…`       | unknown unknown 50 accept_all=null ¹   | true 35                              |
| `spamtrap…`      | risky low_quality 10 possible_spamtrap | false 0 spamtrap spamtrap_detail     |
| `role…`/`admin@` | deliverable accepted_email 70 role     | true 60 risk=role                    |
| `acceptall…`     | risky low_deliverability 60 accept_all | true 55                              |
| `disposable…`    | risky low_quality 15 disposable        | true 10                              |
| `nodomain…`      | undeliverable invalid_domain 0 ¹       | false 0 error=NODOMAIN               |
| `nomx…`          | undeliverable invalid_domain 0 ¹       | false 0 error=NOMX                   |
| `bounce…`        | undeliverable rejected_email 0         | false 0 error=hard_bounce ²          |
| `abuse…`         | risky low_quality 20                   | true 20 risk=abuse_reporter abuse    |
| `spamreporter…`  | risky low_quality 25                   | true 25 risk=spam_reporter           |
| `lowscore…`      | risky low_deliverability 20            | true 20                              |
| `testko…`        | as the default                         | test=1: false 0 error=test_ko        |
| no `@` at all    | undeliverable invalid_email 0 ¹        | false 0 error=NODOMAIN               |

¹ no MX: `mx_record` and `smtp_provider` are null.  ² with `hard_bounce_detected` (a date).

Role names (whole local part before any `+tag`): admin, contact, info, noreply, no-reply,
postmaster, sales, support, webmaster. (`abuse@` follows the `abuse…` prefix instead.)

Domain facts, whatever the verdict: `free` for a few free mailbox domains, `did_you_mean` for a
few typos of them (`gmial.com` → `gmail.com`), `smtp_provider` for a few known hosts, else null;
`mx_record` is `mx.<domain>` unless the row says there is none.

CleanMyList's page documents `last_delivered` but its example answer shows `last_delivery`:
the default answer carries the example's name, `deliverable…` the documented ones, so a client
must tolerate both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.faults import split_marker

# The example's date (CleanMyList's page), and two more fixed dates so answers are reproducible.
LAST_DELIVERY = "2018-11-26 08:10:50"
LAST_ACTIVITY = "2024-05-02 10:11:12"
HARD_BOUNCE_DETECTED = "2023-09-14 16:20:05"

ROLE_NAMES = frozenset(
    {"admin", "contact", "info", "noreply", "no-reply", "postmaster", "sales", "support",
     "webmaster"}
)  # fmt: skip
FREE_DOMAINS = frozenset(
    {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "orange.fr", "free.fr",
     "laposte.net", "gmx.de"}
)  # fmt: skip
TYPOS = {"gmial.com": "gmail.com", "gmai.com": "gmail.com", "hotmial.com": "hotmail.com",
         "yaho.com": "yahoo.com"}  # fmt: skip
SMTP_PROVIDERS = {"gmail.com": "Google", "hotmail.com": "Microsoft", "outlook.com": "Microsoft",
                  "yahoo.com": "Yahoo", "example.com": "ExampleProvider"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    """One row of the table: how both fakes render a kind of address."""

    name: str
    state: str
    reason: str
    score: int
    flags: Mapping[str, Any] = field(default_factory=dict)
    """Overrides on the ListCleanser record (accept_all, role, mx_record, ...)."""
    valid: bool = True
    cml_score: int = 90
    cml_extra: Mapping[str, Any] = field(default_factory=dict)
    """Optional CleanMyList fields, in answer order."""


_NO_MX: Mapping[str, Any] = {"mx_record": None, "smtp_provider": None}

DEFAULT = Profile(
    "default", "deliverable", "accepted_email", 90, cml_extra={"last_delivery": LAST_DELIVERY}
)
INVALID = Profile(
    "invalid", "undeliverable", "invalid_email", 0, _NO_MX, False, 0, {"error": "NODOMAIN"}
)
ROLE = Profile("role", "deliverable", "accepted_email", 70, {"role": True}, True, 60,
               {"risk": "role"})  # fmt: skip

# Checked in this order; no prefix is a prefix of another, so the order only reads well.
PROFILES: tuple[Profile, ...] = (
    Profile("deliverable", "deliverable", "accepted_email", 95, {}, True, 95,
            {"last_activity": LAST_ACTIVITY, "last_delivered": LAST_DELIVERY}),
    Profile("undeliverable", "undeliverable", "rejected_email", 5, {}, False, 5),
    Profile("risky", "risky", "low_deliverability", 45, {}, True, 40),
    Profile("unknown", "unknown", "unknown", 50, {"accept_all": None, **_NO_MX}, True, 35),
    Profile("spamtrap", "risky", "low_quality", 10, {"possible_spamtrap": True}, False, 0,
            {"spamtrap": True, "spamtrap_detail": "pristine trap"}),
    ROLE,
    Profile("acceptall", "risky", "low_deliverability", 60, {"accept_all": True}, True, 55),
    Profile("disposable", "risky", "low_quality", 15, {"disposable": True}, True, 10),
    Profile("nodomain", "undeliverable", "invalid_domain", 0, _NO_MX, False, 0,
            {"error": "NODOMAIN"}),
    Profile("nomx", "undeliverable", "invalid_domain", 0, _NO_MX, False, 0, {"error": "NOMX"}),
    Profile("bounce", "undeliverable", "rejected_email", 0, {}, False, 0,
            {"error": "hard_bounce", "hard_bounce_detected": HARD_BOUNCE_DETECTED}),
    Profile("abuse", "risky", "low_quality", 20, {}, True, 20,
            {"risk": "abuse_reporter", "abuse": True}),
    Profile("spamreporter", "risky", "low_quality", 25, {}, True, 25, {"risk": "spam_reporter"}),
    Profile("lowscore", "risky", "low_deliverability", 20, {}, True, 20),
)  # fmt: skip

TEST_KO = Profile("testko", "undeliverable", "rejected_email", 0, {}, False, 0,
                  {"error": "test_ko"})  # fmt: skip


def split_address(email: str) -> tuple[str, str] | None:
    """(local part, domain) split at the last `@`; None when either side is empty."""
    user, at, domain = email.rpartition("@")
    if not at or not user or not domain:
        return None
    return user, domain


def profile_for(local: str) -> Profile:
    """The table row for a local part (fault markers already stripped)."""
    lowered = local.lower()
    for profile in PROFILES:
        if lowered.startswith(profile.name):
            return profile
    if lowered.split("+", 1)[0] in ROLE_NAMES:
        return ROLE
    return DEFAULT


def profile_for_address(email: str, *, sending_test: bool = False) -> Profile:
    """The row for a whole address: INVALID without `@`, else by local part (marker stripped).

    `sending_test` is CleanMyList's `test=1`, the only case where `testko…` fails.
    """
    parts = split_address(email)
    if parts is None:
        return INVALID
    local = split_marker(parts[0])[1]
    if sending_test and local.lower().startswith(TEST_KO.name):
        return TEST_KO
    return profile_for(local)


def listcleanser_record(
    email: str, profile: Profile, duration: float, table: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `data` of a ListCleanser verify answer, in the documented field order."""
    parts = split_address(email)
    user, domain = parts if parts is not None else (email, "")
    domain = domain.lower()
    suggestion = TYPOS.get(domain)
    record: dict[str, Any] = {
        "email_address": email,
        "score": profile.score,
        "state": profile.state,
        "reason": profile.reason,
        "accept_all": False,
        "disposable": False,
        "free": domain in FREE_DOMAINS,
        "role": False,
        "possible_spamtrap": False,
        "did_you_mean": f"{user}@{suggestion}" if suggestion else None,
        "user": user,
        "domain": domain,
        "mx_record": f"mx.{domain}" if domain else None,
        "smtp_provider": SMTP_PROVIDERS.get(domain),
        "duration": round(duration, 3),
    }
    record.update(profile.flags)
    record.update(table or {})
    return record


def cleanmylist_record(
    email: str, profile: Profile, quota: int, table: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A CleanMyList answer; a None in `table` removes that field (its fields are optional)."""
    record: dict[str, Any] = {
        "quota": str(quota),  # a string of digits, as the real API sends it
        "score": profile.cml_score,
        "email": email,
        "valid": profile.valid,
    }
    record.update(profile.cml_extra)
    record.update(table or {})
    return {k: v for k, v in record.items() if v is not None}
