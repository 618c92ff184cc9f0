"""The client keys file (TOML, docs/access.md) and matching a presented key.

Only digests are stored; a presented key is hashed and compared with every digest in constant
time, so neither the answer nor its timing says which stored key came close.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from emailgate.access.origins import OriginError, normalise_origin
from emailgate.rate import Rate, RateSyntaxError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names go into log lines; keep them to characters that cannot forge or break one.
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_FIELDS = frozenset({"name", "kind", "sha256", "origins", "ips", "rate", "credits_per_hour"})


class KeyKind(StrEnum):
    """What a key may do."""

    PUBLIC = "public"
    """Sits in a web page: only from its origins, rate per client IP, credit budget per IP."""
    PRIVATE = "private"
    """Held by a backend: optionally only from some addresses, rate per key."""
    TEST = "test"
    """For integrators: answers from the sandbox, never calls a provider, rate per key."""


class KeysFileError(Exception):
    """The keys file cannot be used; `problems` lists every one (never a key or digest)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid keys file:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ClientKey:
    """One `[[key]]` of the file."""

    name: str
    kind: KeyKind
    digest: bytes
    origins: frozenset[str] = frozenset()
    """Normalised browser origins (`scheme://host[:port]`); public keys need at least one."""
    ips: tuple[IPNetwork, ...] = ()
    """Client addresses a private or test key is honoured from; empty: anywhere."""
    rate: Rate | None = None
    """Per client IP (public) or per key (private, test); None: EMAILGATE_OPEN_RATE."""
    credits_per_hour: int | None = None
    """Public keys: provider-backed answers per hour for the whole key, over every client;
    None: ten times EMAILGATE_PUBLIC_CREDITS_PER_HOUR."""

    def __repr__(self) -> str:
        # The digest is not the key, but nothing about a key needs to reach a log.
        return f"ClientKey(name={self.name!r}, kind={self.kind.value!r})"


def digest_of(key: str) -> bytes:
    """The SHA-256 of a key as sent (what `emailgate hash-key` prints, as bytes)."""
    # surrogatepass: a header can decode to lone surrogates; hashing must never raise.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """The keys in force; replaced whole on reload."""

    def __init__(self, keys: Iterable[ClientKey]) -> None:
        self.keys: tuple[ClientKey, ...] = tuple(keys)
        self.origins: frozenset[str] = frozenset(o for k in self.keys for o in k.origins)
        """Every origin any key allows: the origins CORS answers for."""

    def __len__(self) -> int:
        return len(self.keys)

    def match(self, presented: str) -> ClientKey | None:
        """The key whose digest is that of `presented`, compared in constant time."""
        digest = digest_of(presented)
        found: ClientKey | None = None
        for key in self.keys:  # no early exit: every digest is compared
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def load_keys(path: Path) -> KeyRing:
    """Read and check the keys file; raise KeysFileError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KeysFileError([f"{path}: cannot be read ({type(e).__name__})"]) from None
    return parse_keys(text)


def parse_keys(text: str) -> KeyRing:
    """Parse the TOML of a keys file; raise KeysFileError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib's message names the line and column, not the text around it.
        raise KeysFileError([f"not valid TOML: {e}"]) from None
    problems: list[str] = []
    extra = sorted(set(data) - {"key"})
    if extra:
        problems.append(f"unknown top-level entries {extra}; keys are [[key]] tables")
    entries = data.get("key", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KeysFileError([*problems, "'key' must be an array of tables ([[key]])"])
    keys: list[ClientKey] = []
    for number, entry in enumerate(entries, start=1):
        key = _parse_entry(entry, f"key #{number}", problems)
        if key is not None:
            keys.append(key)
    names = [e.get("name") for e in entries if isinstance(e.get("name"), str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"the name {name!r} is used by more than one key")
    digests = [e["sha256"].lower() for e in entries if isinstance(e.get("sha256"), str)]
    if len(set(digests)) != len(digests):
        problems.append("two keys have the same sha256 (the same key given twice)")
    if problems:
        raise KeysFileError(problems)
    return KeyRing(keys)


def _parse_entry(entry: Mapping[str, Any], where: str, problems: list[str]) -> ClientKey | None:
    before = len(problems)

    def bad(why: str) -> None:
        problems.append(f"{where}: {why}")

    name = entry.get("name")
    if isinstance(name, str) and _NAME.match(name):
        where = f"{where} ({name})"
    else:
        bad("'name' must be 1-64 characters of letters, digits, '.', '_' or '-'")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        bad(f"unknown field(s) {unknown}; known: {sorted(_FIELDS)}")

    kind: KeyKind | None
    try:
        kind = KeyKind(str(entry.get("kind")))
    except ValueError:
        bad(f"'kind' must be one of {[k.value for k in KeyKind]}")
        kind = None  # the other fields are still checked, as far as they go without it

    sha = entry.get("sha256")
    if not (isinstance(sha, str) and _SHA256.match(sha)):
        # Never echo it: a key pasted here by mistake is a secret.
        bad("'sha256' must be 64 hex characters: the output of `emailgate hash-key KEY`")
        sha = "0" * 64

    origins = _origins(entry.get("origins"), kind, bad)
    ips = _ips(entry.get("ips"), kind, bad)
    rate: Rate | None = None
    if "rate" in entry:
        try:
            rate = Rate.parse(entry["rate"]) if isinstance(entry["rate"], str) else None
        except RateSyntaxError:
            rate = None
        if rate is None:
            bad("'rate' must be a string like '30/60s'")
    credits = entry.get("credits_per_hour")
    if credits is not None:
        if kind is not KeyKind.PUBLIC:
            bad("'credits_per_hour' is for public keys; private and test keys have no budget")
        elif isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            bad("'credits_per_hour' must be a whole number, 0 or more")
    if len(problems) > before or kind is None:
        return None
    assert isinstance(name, str)
    return ClientKey(name, kind, bytes.fromhex(sha), frozenset(origins), tuple(ips), rate, credits)


def _origins(value: object, kind: KeyKind | None, bad: Any) -> list[str]:
    if value is None:
        if kind is KeyKind.PUBLIC:
            bad("a public key needs 'origins': the pages allowed to use it")
        return []
    if kind is KeyKind.PRIVATE:
        bad("'origins' is for public and test keys; a private key must never be in a page")
        return []
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        bad("'origins' must be a list of strings like 'https://shop.example'")
        return []
    if kind is KeyKind.PUBLIC and not value:
        bad("a public key needs at least one origin")
    origins = []
    for text in value:
        try:
            origins.append(normalise_origin(text))
        except OriginError as e:
            bad(f"origin {text!r}: {e}")
    return origins


def _ips(value: object, kind: KeyKind | None, bad: Any) -> list[IPNetwork]:
    if value is None:
        return []
    if kind is KeyKind.PUBLIC:
        bad("'ips' is for private and test keys; a public key is used from any browser")
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        bad("'ips' must be a list of addresses or CIDRs like '10.0.0.0/8'")
        return []
    nets = []
    for text in value:
        try:
            nets.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            bad(f"{text!r} is not an IP address or CIDR")
    return nets
