"""The client keys file: parsed into digests, every problem listed at once, matched in
constant time; browser origins in one normal form."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from emailgate.access import read_settings
from emailgate.access.keys import ClientKey, KeyKind, KeysFileError, digest_of, parse_keys
from emailgate.access.origins import OriginError, normalise_origin, origin_of
from emailgate.config import SettingsError
from emailgate.rate import Rate


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


GOOD = f"""
[[key]]
name = "signup-form"
kind = "public"
sha256 = "{sha("pk_signup")}"
origins = ["https://shop.example", "HTTP://Localhost:8000/"]
rate = "30/60s"

[[key]]
name = "backend"
kind = "private"
sha256 = "{sha("sk_backend").upper()}"
ips = ["10.0.0.0/8", "192.0.2.7"]

[[key]]
name = "integration"
kind = "test"
sha256 = "{sha("tk_sandbox")}"
"""


def test_a_good_file_gives_its_keys() -> None:
    """Every field lands parsed: kinds, normalised origins, networks, rates (None: default)."""
    ring = parse_keys(GOOD)
    signup, backend, integration = ring.keys
    assert (signup.name, signup.kind, signup.rate) == ("signup-form", KeyKind.PUBLIC, Rate(30, 60))
    assert signup.origins == {"https://shop.example", "http://localhost:8000"}
    assert backend.kind is KeyKind.PRIVATE and backend.rate is None
    assert [str(n) for n in backend.ips] == ["10.0.0.0/8", "192.0.2.7/32"]
    assert integration.kind is KeyKind.TEST and integration.origins == frozenset()
    assert ring.origins == {"https://shop.example", "http://localhost:8000"}


def test_a_presented_key_matches_by_its_digest() -> None:
    """The key whose SHA-256 is stored matches (hex case does not matter); others do not."""
    ring = parse_keys(GOOD)
    assert ring.match("pk_signup") is ring.keys[0]
    assert ring.match("sk_backend") is ring.keys[1]
    assert ring.match("tk_sandbox") is ring.keys[2]
    assert ring.match("pk_signup ") is None
    assert ring.match("") is None
    assert ring.match("\udc80\ud800 lone surrogates") is None  # never raises


def test_every_problem_is_listed_at_once_without_echoing_secrets() -> None:
    """A broken file names every mistake; a key pasted in place of its digest is not echoed."""
    a, b = sha("a"), sha("b")
    text = f"""
[[key]]
name = "bad name!"
kind = "public"
sha256 = "sk_live_PASTED_BY_MISTAKE"
ips = ["10.0.0.0/8"]

[[key]]
name = "server"
kind = "private"
sha256 = "{a}"
origins = ["https://shop.example"]
rate = "often"
colour = "blue"

[[key]]
name = "server"
kind = "robot"
sha256 = "{a}"
origins = ["https://*.shop.example", "ftp://x.example", "https://shop.example/path"]

[[key]]
name = "open-page"
kind = "public"
sha256 = "{b}"
"""
    with pytest.raises(KeysFileError) as info:
        parse_keys(text)
    problems = "\n".join(info.value.problems)
    for expected in (
        "'name' must be",
        "'sha256' must be 64 hex characters",
        "'ips' is for private and test keys",
        "'origins' is for public and test keys",
        "'rate' must be a string like '30/60s'",
        "unknown field(s) ['colour']",
        "'kind' must be one of",
        "wildcards are not supported",
        "the scheme must be http or https",
        "without path, query or user",
        "a public key needs 'origins'",
        "the name 'server' is used by more than one key",
        "two keys have the same sha256",
    ):
        assert expected in problems, expected
    assert "PASTED_BY_MISTAKE" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[key]\nname=", "not valid TOML"),
        ('key = "x"', "'key' must be an array of tables"),
        ("[server]\nport = 1", "unknown top-level entries ['server']"),
    ],
)
def test_malformed_files_are_refused(text: str, problem: str) -> None:
    """TOML errors and a wrong shape are problems, not crashes."""
    with pytest.raises(KeysFileError) as info:
        parse_keys(text)
    assert problem in str(info.value)


def test_an_empty_file_is_a_ring_without_keys() -> None:
    """No [[key]] at all: valid, and every API request will be refused."""
    assert len(parse_keys("")) == 0


def test_settings_report_keys_file_problems_with_the_others(tmp_path: Path) -> None:
    """A bad keys file is reported at start together with every other bad setting."""
    path = tmp_path / "keys.toml"
    path.write_text('[[key]]\nname = "x"\nkind = "public"\nsha256 = "00"\n')
    with pytest.raises(SettingsError) as info:
        read_settings({"EMAILGATE_API_KEYS_FILE": str(path), "EMAILGATE_PORT": "0"})
    problems = info.value.problems
    assert any(p.startswith("EMAILGATE_PORT") for p in problems)
    assert any(p.startswith("EMAILGATE_API_KEYS_FILE") and "sha256" in p for p in problems)
    assert any(p.startswith("EMAILGATE_API_KEYS_FILE") and "origins" in p for p in problems)


def test_read_settings_gives_the_keys_it_checked(tmp_path: Path) -> None:
    """The keys file is read once at start: the settings check hands over the ring it parsed."""
    path = tmp_path / "keys.toml"
    path.write_text(GOOD)
    settings, ring = read_settings({"EMAILGATE_API_KEYS_FILE": str(path)})
    assert settings.api_keys_file == path
    assert ring is not None and ring.match("pk_signup") is not None
    assert read_settings({})[1] is None


def test_a_key_repr_shows_no_digest() -> None:
    """repr of a key says its name and kind only."""
    key = ClientKey("k", KeyKind.PRIVATE, digest_of("secret-key"))
    assert repr(key) == "ClientKey(name='k', kind='private')"
    assert digest_of("secret-key").hex() not in repr(key)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://shop.example", "https://shop.example"),
        ("HTTPS://Shop.Example:443", "https://shop.example"),
        ("http://localhost:80/", "http://localhost"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_origins_compare_in_one_normal_form(given: str, normal: str) -> None:
    """Scheme and host lower-cased, the default port dropped (RFC 6454 serialisation)."""
    assert normalise_origin(given) == normal


@pytest.mark.parametrize(
    "bad", ["shop.example", "https://", "https://a.example/x", "https://u@a.example", "https://a:x"]
)
def test_what_is_not_an_origin(bad: str) -> None:
    """Not scheme://host[:port]: refused in a keys file, ignored in a request."""
    with pytest.raises(OriginError):
        normalise_origin(bad)
    assert origin_of(bad) is None


def test_null_and_missing_origins_are_none() -> None:
    """`Origin: null` (sandboxed frames, file://) is no origin at all."""
    assert origin_of(None) is None and origin_of("null") is None and origin_of("") is None


def test_credits_per_hour_is_a_public_keys_own_budget() -> None:
    """`credits_per_hour` parses for public keys (None when absent); elsewhere, or not a whole
    number of 0 or more, it is a problem named with its key."""
    ring = parse_keys(GOOD.replace('rate = "30/60s"', 'rate = "30/60s"\ncredits_per_hour = 500'))
    assert ring.keys[0].credits_per_hour == 500
    assert parse_keys(GOOD).keys[0].credits_per_hour is None
    for value, where in [("-1", "signup-form"), ('"500"', "signup-form"), ("1.5", "signup-form"),
                         ("true", "signup-form")]:  # fmt: skip
        text = GOOD.replace('rate = "30/60s"', f'rate = "30/60s"\ncredits_per_hour = {value}')
        with pytest.raises(KeysFileError) as e:
            parse_keys(text)
        assert any(where in p and "credits_per_hour" in p for p in e.value.problems)
    private = GOOD.replace('ips = ["10.0.0.0/8", "192.0.2.7"]', "credits_per_hour = 5")
    with pytest.raises(KeysFileError) as e:
        parse_keys(private)
    assert any("backend" in p and "public keys" in p for p in e.value.problems)
