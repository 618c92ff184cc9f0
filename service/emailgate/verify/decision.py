"""Stage 7: accept or reject for the caller's context. Pure.

`accept` when `score >= threshold` and no hard rule rejects (docs/api.md "Decision"). The hard
rules hold in every context, not only `signup`: a disposable address, a spam trap or an
undeliverable mailbox is never what a marketing list or a custom context wants either.
"""

from __future__ import annotations

from collections.abc import Mapping

from emailgate.verify.result import Decision, State, Verdict


class UnknownContext(ValueError):
    """The caller named a context that has no threshold."""


def hard_rule(verdict: Verdict) -> str | None:
    """The rule that rejects `verdict` whatever its score, or None."""
    if verdict.disposable:
        return "disposable"
    if verdict.possible_spamtrap:
        return "spamtrap"
    if verdict.state is State.UNDELIVERABLE:
        return "undeliverable"
    return None


def decide(verdict: Verdict, threshold: int) -> Decision:
    """The decision for a context whose threshold is `threshold`."""
    if verdict.score >= threshold and hard_rule(verdict) is None:
        return Decision.ACCEPT
    return Decision.REJECT


def threshold_of(context: str, thresholds: Mapping[str, int]) -> int:
    """The threshold of `context`; UnknownContext when there is none."""
    try:
        return thresholds[context]
    except KeyError:
        known = ", ".join(sorted(thresholds))
        raise UnknownContext(f"unknown context {context!r}; known: {known}") from None
