"""Stage 2: disposable and free lists with parent domains, role accounts, typo suggestions."""

from __future__ import annotations

import pytest

from emailgate.verify.domains import DomainLists, osa_distance, suggest_domain


@pytest.fixture(scope="module")
def lists() -> DomainLists:
    """The real lists from the PyPI packages and our data files."""
    return DomainLists()


def test_the_package_lists_are_loaded(lists: DomainLists) -> None:
    """Thousands of disposable and free domains come from the maintained packages."""
    assert len(lists.disposable) > 1000
    assert len(lists.free) > 1000


@pytest.mark.parametrize(
    ("domain", "disposable", "free"),
    [
        ("gmail.com", False, True),
        ("mailinator.com", True, False),  # on both lists: disposable wins over free
        ("a.b.mailinator.com", True, False),  # parents match too
        ("mail.gmail.com", False, True),
        ("example.com", False, False),
    ],
)
def test_disposable_and_free(lists: DomainLists, domain: str, disposable: bool, free: bool) -> None:
    """Flags follow the lists, matching parent domains, disposable winning over free."""
    facts = lists.facts(domain)
    assert (facts.disposable, facts.free) == (disposable, free)


def test_mailinator_is_on_both_lists(lists: DomainLists) -> None:
    """The precedence test above is meaningful: the free list really has mailinator.com."""
    assert "mailinator.com" in lists.free and "mailinator.com" in lists.disposable


@pytest.mark.parametrize(
    ("user", "role"),
    [("admin", True), ("Support", True), ("info+news", True), ("postmaster", True),
     ("jane", False), ("adminx", False), ("", False)],
)  # fmt: skip
def test_role_accounts(lists: DomainLists, user: str, role: bool) -> None:
    """Role accounts match the curated list, case-insensitively, ignoring a +tag."""
    assert lists.is_role(user) is role


@pytest.mark.parametrize(
    ("domain", "suggestion"),
    [
        ("gamil.com", "gmail.com"),  # swapped letters
        ("gmial.com", "gmail.com"),  # a typo-squat listed as disposable still gets a suggestion
        ("gmail.con", "gmail.com"),  # top-level domain typo
        ("hotmal.com", "hotmail.com"),  # missing letter
        ("outlok.com", "outlook.com"),
        ("yahooo.com", "yahoo.com"),  # extra letter
        ("gmail.com", None),  # a valid popular domain is never rewritten
        ("mail.com", None),  # a real provider one edit from gmail.com: no suggestion
        ("example.com", None),  # nothing close
        ("gmx.at", None),  # real (on the free list)
    ],
)
def test_typo_suggestions(lists: DomainLists, domain: str, suggestion: str | None) -> None:
    """Suggestions are conservative: one likely popular domain, or none."""
    assert lists.facts(domain).suggestion == suggestion


def test_ties_give_no_suggestion() -> None:
    """A domain equally close to two popular domains gets no suggestion."""
    popular = frozenset({"abc.com", "abd.com"})
    assert suggest_domain("abx.com", popular, popular) is None
    assert suggest_domain("abcc.com", popular, popular) == "abc.com"


def test_osa_distance() -> None:
    """One edit of each kind counts 1; the cap stops early."""
    assert osa_distance("gmail.com", "gmail.com", 2) == 0
    assert osa_distance("gmial.com", "gmail.com", 2) == 1  # transposition
    assert osa_distance("gmai.com", "gmail.com", 2) == 1  # deletion
    assert osa_distance("gmaill.com", "gmail.com", 2) == 1  # insertion
    assert osa_distance("gnail.com", "gmail.com", 2) == 1  # substitution
    assert osa_distance("zzzzz.com", "gmail.com", 1) == 2  # capped at limit + 1
