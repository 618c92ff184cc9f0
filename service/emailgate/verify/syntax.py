"""Stage 1: normalise and check the syntax of an address, per the signup policy. Pure, no I/O.

Policy (docs/api.md "How the local checks answer"): trim surrounding whitespace; reject quoted
local parts, comments, IP literals, display names, domains without a dot, numeric top-level
domains, leading/trailing/double dots, a local part over 64 octets or an address over 254;
accept plus-addressing, IDN domains and Unicode local parts (SMTPUTF8).
"""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from emailgate.verify.result import Address

MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1, counted in UTF-8 octets (RFC 6531 §3.3)
MAX_ADDRESS_OCTETS = 254  # RFC 5321 §4.5.3.1.3 path limit (256) less the angle brackets
MAX_INPUT_CHARS = 1024  # anything longer is not an address; don't spend a parser on it


class InvalidAddress(ValueError):
    """The input is not an address a signup form should take; the message says why."""


def parse_address(raw: str) -> Address:
    """Normalise `raw` into an Address, or raise InvalidAddress with a human reason."""
    return _parse(raw.strip())


@lru_cache(maxsize=8192)
def _parse(text: str) -> Address:
    # Memoised because the parser costs tens of microseconds and repeats are the common case
    # (the cache-hit path); the bound keeps a flood of unique inputs from growing memory.
    if not text:
        raise InvalidAddress("The address is empty.")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidAddress("The address is too long.")
    try:
        valid = validate_email(
            text,
            check_deliverability=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
            allow_smtputf8=True,
            globally_deliverable=True,
            strict=True,
        )
    except EmailNotValidError as e:
        raise InvalidAddress(str(e)) from None
    user = valid.local_part
    ascii_domain = valid.ascii_domain.lower()
    if len(user.encode()) > MAX_LOCAL_OCTETS:
        raise InvalidAddress(f"The part before the @-sign is over {MAX_LOCAL_OCTETS} octets.")
    email = f"{user}@{ascii_domain}"
    if len(email.encode()) > MAX_ADDRESS_OCTETS:
        raise InvalidAddress(f"The address is over {MAX_ADDRESS_OCTETS} octets.")
    return Address(email=email, user=user, domain=valid.domain.lower(), ascii_domain=ascii_domain)


def split_loosely(raw: str) -> tuple[str, str]:
    """Best-effort user and domain of an invalid input, for the result's fields."""
    text = raw.strip()
    user, sep, domain = text.rpartition("@")
    if not sep:
        return text, ""
    return user, domain.lower()
