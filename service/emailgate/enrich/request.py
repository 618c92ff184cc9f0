"""The body of `POST /api/v1/enrich`, checked: every problem a clear message for a 4xx.

    {"enrichment_type": "none"|"partial"|"phone_only"|"full",
     "contacts": [{"first_name", "last_name", "company_domain"|"company_name",
                   "linkedin_url"?, "email"?}, …],            1 to 10,000
     "callback_url"?: str, "name"?: str, "context"?: str}

A contact must carry what the provider needs to find anyone: a LinkedIn URL, or a first and a
last name and a company (domain or name). Unknown fields of a contact are refused rather than
silently dropped (a misspelt `company_domian` would otherwise cost a credit for nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emailgate.enrich.cleanlist import ENRICHMENT_TYPES, Contact

MAX_CONTACTS = 10_000
MAX_FIELD = 500  # characters in one contact field: names, domains and URLs are far shorter
MAX_NAME = 200
CONTACT_FIELDS = ("first_name", "last_name", "company_domain", "company_name", "linkedin_url",
                  "email")  # fmt: skip
DEFAULT_CONTEXT = "marketing"  # found emails are for outreach, like a list cleaned for a campaign


class InvalidRequest(ValueError):
    """The body is not an enrichment request; the message says why (a 400)."""


class TooManyContacts(InvalidRequest):
    """Over `MAX_CONTACTS` contacts (a 413)."""


@dataclass(frozen=True, slots=True)
class EnrichRequest:
    """A checked request."""

    enrichment_type: str
    contacts: tuple[Contact, ...]
    callback_url: str | None = None
    name: str = ""
    context: str = DEFAULT_CONTEXT


def parse_request(body: Any) -> EnrichRequest:
    """Check the JSON body; InvalidRequest (or TooManyContacts) naming the first problem."""
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be a JSON object like {"enrichment_type": "partial", '
                             '"contacts": [...]}')  # fmt: skip
    unknown = sorted(set(body) - {"enrichment_type", "contacts", "callback_url", "name", "context"})
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    kind = body.get("enrichment_type", "partial")
    if kind not in ENRICHMENT_TYPES:
        raise InvalidRequest(f"'enrichment_type' must be one of {', '.join(ENRICHMENT_TYPES)}")
    raw = body.get("contacts")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'contacts' must be a non-empty list of contact objects")
    if len(raw) > MAX_CONTACTS:
        raise TooManyContacts(f"at most {MAX_CONTACTS:,} contacts per job, got {len(raw):,}")
    contacts = tuple(_contact(i, c) for i, c in enumerate(raw))
    callback = _optional_text(body, "callback_url", 2048)
    name = _optional_text(body, "name", MAX_NAME) or ""
    context = _optional_text(body, "context", 64) or DEFAULT_CONTEXT
    return EnrichRequest(kind, contacts, callback, name, context)


def _contact(i: int, raw: Any) -> Contact:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"contacts[{i}] must be an object")
    unknown = sorted(set(raw) - set(CONTACT_FIELDS))
    if unknown:
        raise InvalidRequest(f"contacts[{i}]: unknown field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(CONTACT_FIELDS)}")  # fmt: skip
    values: dict[str, str | None] = {}
    for field in CONTACT_FIELDS:
        value = raw.get(field)
        if value is None:
            values[field] = None
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"contacts[{i}].{field} must be a string")
        value = value.strip()
        if len(value) > MAX_FIELD:
            raise InvalidRequest(f"contacts[{i}].{field} is longer than {MAX_FIELD} characters")
        values[field] = value or None
    contact = Contact(**values)
    if not contact.identifiable:
        raise InvalidRequest(
            f"contacts[{i}] needs a linkedin_url, or first_name, last_name and company_domain "
            "or company_name"
        )
    return contact


def _optional_text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string")
    value = value.strip()
    if len(value) > limit:
        raise InvalidRequest(f"'{key}' is longer than {limit} characters")
    return value or None
