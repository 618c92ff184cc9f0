"""Stage 1, table-driven: the signup policy of CONTRACT.md, then the is_email corpus."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emailgate.verify.syntax import InvalidAddress, parse_address

# Our own table: each row is a rule of the contract's signup policy.
VALID = [
    ("someone@gmail.com", "someone@gmail.com"),
    ("  someone@gmail.com\t\n", "someone@gmail.com"),  # surrounding whitespace is trimmed
    ("Some.One+tag@GMail.COM", "Some.One+tag@gmail.com"),  # plus-addressing; domain lower-cased
    ("user@münchen.de", "user@xn--mnchen-3ya.de"),  # IDN domain, IDNA in email_address
    ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),  # Unicode local part (SMTPUTF8)
    ("a@b.co", "a@b.co"),
    ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),  # 64 octets: the limit, accepted
    ("o'brien@example.com", "o'brien@example.com"),
    ("first_last-1@sub.example.co.uk", "first_last-1@sub.example.co.uk"),
]

INVALID = [
    ("", "empty"),
    ("   ", "only whitespace"),
    ("plainaddress", "no @"),
    ("@example.com", "no local part"),
    ("someone@", "no domain"),
    ('"quoted"@example.com', "quoted local part"),
    ("a(comment)@example.com", "comment"),
    ("someone@[192.0.2.1]", "IP literal"),
    ("someone@[IPv6:2001:db8::1]", "IPv6 literal"),
    ("test@io", "domain without a dot"),
    ("someone@localhost", "domain without a dot"),
    ("someone@example.123", "numeric top-level domain"),
    (".someone@example.com", "leading dot"),
    ("someone.@example.com", "trailing dot in local part"),
    ("some..one@example.com", "double dot"),
    ("someone@example..com", "double dot in domain"),
    ("someone@example.com.", "trailing dot in domain"),
    ("x" * 65 + "@example.com", "local part over 64 octets"),
    ("ä" * 33 + "@example.com", "local part of 33 characters but 66 UTF-8 octets"),
    ("x" * 64 + "@" + ".".join(["b" * 62] * 3) + ".com", "address of 257 octets, over 254"),
    ("Some One <someone@example.com>", "display name"),
    ("some one@example.com", "space inside"),
    ("someone@exam ple.com", "space in domain"),
    ("someone@-example.com", "label starting with a hyphen"),
    ("someone@example.test", "special-use domain"),
    ("a@b@example.com", "two @"),
    ("x" * 2000 + "@example.com", "absurdly long input"),
]


@pytest.mark.parametrize(("raw", "normalised"), VALID)
def test_valid_addresses_are_normalised(raw: str, normalised: str) -> None:
    """Addresses the signup policy accepts come back trimmed, domain lower-cased and IDNA."""
    assert parse_address(raw).email == normalised


@pytest.mark.parametrize(("raw", "why"), INVALID)
def test_invalid_addresses_are_refused(raw: str, why: str) -> None:
    """Addresses the signup policy refuses raise InvalidAddress with a message."""
    with pytest.raises(InvalidAddress) as excinfo:
        parse_address(raw)
    assert str(excinfo.value), why


def test_unicode_domain_is_kept_in_unicode_form() -> None:
    """`domain` is Unicode while `email_address` carries the IDNA form (CONTRACT.md RESULT)."""
    address = parse_address("Jörg@MÜNCHEN.de")
    assert (address.user, address.domain, address.ascii_domain) == (
        "Jörg",
        "münchen.de",
        "xn--mnchen-3ya.de",
    )


# --- the is_email corpus -------------------------------------------------------------------
# Dominic Sayers' is_email tests (BSD-3), kept in tests/corpora/ so any clone runs them. An
# address is valid for a signup form iff its category is ISEMAIL_VALID_CATEGORY or
# ISEMAIL_DNSWARN (tests/corpora/README.md).

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
FILES = ("isemail-tests.xml", "isemail-tests-original.xml")
VALID_CATEGORIES = {"ISEMAIL_VALID_CATEGORY", "ISEMAIL_DNSWARN"}

# Principled exceptions, each with its reason. Refused although the corpus says valid:
EXCEPTIONS = {
    "no_dot": "a domain without a dot cannot receive mail from the public internet",
    "numeric_tld": "a top-level domain ending in a digit does not exist (RFC 3696 §2)",
    "bad_punycode": "an invalid punycode label is not a name anyone can register",
}
# Accepted although the corpus says invalid:
TRIMMED = "surrounding whitespace (CR, LF, space) is trimmed first: CONTRACT.md, bad syntax row"


def _exception(address: str) -> str | None:
    domain = address.rpartition("@")[2]
    if "." not in domain:
        return "no_dot"
    if domain.rstrip(".").rpartition(".")[2][-1:].isdigit():
        return "numeric_tld"
    if any(label.startswith("xn--") for label in domain.lower().split(".")):
        return "bad_punycode"
    return None


def _corpus() -> list[tuple[str, str, bool]]:
    rows = []
    for name in FILES:
        root = ET.parse(CORPORA / name).getroot()
        for test in root.iter("test"):
            raw = test.findtext("address") or ""
            # Control characters are stored shifted to U+2400+n: map them back.
            address = "".join(chr(ord(c) - 0x2400) if 0x2400 <= ord(c) < 0x2420 else c for c in raw)
            category = test.findtext("category") or ""
            rows.append((f"{name}#{test.get('id')}", address, category in VALID_CATEGORIES))
    return rows


CORPUS = _corpus()


def test_corpus_is_loaded() -> None:
    """Both is_email files are read: 164 + 279 tests."""
    assert len(CORPUS) == 164 + 279


def _verdict(address: str, valid: bool) -> tuple[bool, str | None]:
    """Whether we accept `address`, and the named exception when we differ from the corpus."""
    try:
        parse_address(address)
        accepted = True
    except InvalidAddress:
        accepted = False
    if accepted == valid:
        return accepted, None
    if valid:
        return accepted, _exception(address)
    if address != address.strip():
        # Trimmed, it must be exactly the address that is valid on its own.
        assert parse_address(address) == parse_address(address.strip())
        return accepted, TRIMMED
    return accepted, None


@pytest.mark.parametrize(("case", "address", "valid"), CORPUS, ids=[c[0] for c in CORPUS])
def test_is_email_corpus(case: str, address: str, valid: bool) -> None:
    """Valid iff the corpus says VALID or DNSWARN, except the named principled exceptions."""
    accepted, exception = _verdict(address, valid)
    if accepted != valid:
        assert exception is not None, f"{case}: {address!r} differs from the corpus, unexplained"
        assert exception == TRIMMED or exception in EXCEPTIONS


def test_every_named_exception_is_needed() -> None:
    """Each exception covers at least one corpus case, so the list cannot silently rot."""
    used = {
        exception for _, address, valid in CORPUS for exception in [_verdict(address, valid)[1]]
    }
    assert set(EXCEPTIONS) | {TRIMMED} <= used


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("Sam.Smith@Gmail.com", "sam.smith@gmail.com", True),  # ASCII case: one mailbox
        ("ſam@gmail.com", "sam@gmail.com", False),  # U+017F long s: casefold() says "s"
        ("STRAßE@gmail.com", "strasse@gmail.com", False),  # casefold() says "strasse"
        ("STRAßE@gmail.com", "straße@gmail.com", True),  # only the ASCII letters fold
        ("ǅ@gmail.com", "ǆ@gmail.com", False),  # titlecase digraph: no Unicode lowering
        ("kelvin@münchen.de", "kelvin@xn--mnchen-3ya.de", True),  # the domain in IDNA form
        ("kelvin@gmail.com", "\u212aelvin@gmail.com", True),  # NFC (RFC 6532): K sign is K
    ],
)
def test_identity_folds_only_ascii_case(one: str, other: str, same: bool) -> None:
    """Two addresses are one mailbox (one cache entry) only up to ASCII case and IDNA."""
    assert (parse_address(one).identity == parse_address(other).identity) is same
