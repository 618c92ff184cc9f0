"""The body of POST /api/v1/enrich: what is accepted, and a clear message for what is not."""

from __future__ import annotations

from typing import Any

import pytest

from emailgate.enrich.cleanlist import Contact
from emailgate.enrich.request import (
    MAX_CONTACTS,
    InvalidRequest,
    TooManyContacts,
    parse_request,
)

ADA = {"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"}


def test_a_full_request() -> None:
    """Every field read; contacts trimmed; context defaults to marketing."""
    req = parse_request(
        {
            "enrichment_type": "full",
            "contacts": [{**ADA, "first_name": " Ada "}, {"linkedin_url": "https://x/in/j"}],
            "callback_url": "https://hooks.example.com/e",
            "name": "Q3 signups",
        }
    )
    assert req.enrichment_type == "full" and req.context == "marketing"
    assert req.contacts[0] == Contact(first_name="Ada", last_name="Lovelace",
                                      company_domain="acme.com")  # fmt: skip
    assert req.callback_url == "https://hooks.example.com/e" and req.name == "Q3 signups"
    assert parse_request({"contacts": [ADA]}).enrichment_type == "partial"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"contacts": [ADA], "enrichment": "full"}, r"unknown field\(s\): enrichment"),
        ({"contacts": [ADA], "enrichment_type": "everything"}, "must be one of"),
        ({"contacts": []}, "non-empty list"),
        ({"contacts": "Ada"}, "non-empty list"),
        ({"contacts": [42]}, r"contacts\[0\] must be an object"),
        ({"contacts": [{**ADA, "company_domian": "x.com"}]}, "unknown field"),
        ({"contacts": [{**ADA, "last_name": 7}]}, r"contacts\[0\].last_name must be a string"),
        ({"contacts": [{"first_name": "Ada", "company_domain": "a.com"}]}, "needs a linkedin_url"),
        ({"contacts": [{**ADA, "last_name": "  "}]}, "needs a linkedin_url"),
        ({"contacts": [{**ADA, "first_name": "A" * 501}]}, "longer than 500"),
        ({"contacts": [ADA], "callback_url": 1}, "'callback_url' must be a string"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: Any, message: str) -> None:
    """Each malformed body is refused with a message naming the problem."""
    with pytest.raises(InvalidRequest, match=message):
        parse_request(body)


def test_over_ten_thousand_contacts_is_too_large() -> None:
    """10,000 contacts are fine; 10,001 is TooManyContacts (a 413)."""
    assert len(parse_request({"contacts": [ADA] * MAX_CONTACTS}).contacts) == MAX_CONTACTS
    with pytest.raises(TooManyContacts, match="at most 10,000"):
        parse_request({"contacts": [ADA] * (MAX_CONTACTS + 1)})
