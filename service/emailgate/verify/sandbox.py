"""Verdicts for test keys: the local part decides, no provider is called, no credit is spent.

| local part starts with | state         | reason         | score |
|------------------------|---------------|----------------|-------|
| `deliverable`          | deliverable   | accepted_email | 95    |
| `undeliverable`        | undeliverable | rejected_email | 5     |
| `risky`                | risky         | low_deliverability | 40 |
| `unknown`              | unknown       | unknown        | 50    |
| `timeout`              | unknown       | timeout        | 40    |
| anything else          | deliverable   | accepted_email | 95    |

The domain plays no part (any domain with valid syntax), so integrators get the same answer
on their own test domains. `undeliverable` is checked before `deliverable` (it contains it).
"""

from __future__ import annotations

from emailgate.verify.result import Address, Reason, Source, State, Verdict

_TABLE: tuple[tuple[str, State, Reason, int], ...] = (
    ("undeliverable", State.UNDELIVERABLE, Reason.REJECTED_EMAIL, 5),
    ("deliverable", State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 95),
    ("risky", State.RISKY, Reason.LOW_DELIVERABILITY, 40),
    ("unknown", State.UNKNOWN, Reason.UNKNOWN, 50),
    ("timeout", State.UNKNOWN, Reason.TIMEOUT, 40),
)


def sandbox_verdict(address: Address) -> Verdict:
    """The deterministic verdict of the sandbox for `address`."""
    user = address.user.lower()
    for prefix, state, reason, score in _TABLE:
        if user.startswith(prefix):
            return Verdict(state=state, reason=reason, score=score, source=Source.SANDBOX)
    return Verdict(
        state=State.DELIVERABLE, reason=Reason.ACCEPTED_EMAIL, score=95, source=Source.SANDBOX
    )
