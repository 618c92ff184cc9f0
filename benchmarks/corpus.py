"""The benchmark's world: the DNS zone it serves, and seeded address corpora and signup traces.

Every domain the benchmarks use is in ZONE (served by `benchmarks.dnsd` on loopback), so the
service never asks the real DNS. Local parts avoid the fake providers' verdict prefixes
(`unknown…`, `risky…`, `slow.`, ...: tests/fakes/verdicts.py), so a provider answers each
fresh address conclusively, once.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.fakes.dns_server import NXDOMAIN, Entry, Zone

# Domains that take mail: mailbox providers and a few company domains.
MAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me",
    "orange.fr", "gmx.de", "web.de", "free.fr", "laposte.net", "aol.com",
    "acme-widgets.com", "northwind.io", "contoso-bank.com", "blue-harbor.org", "kestrel.dev",
    "lumen-labs.co.uk", "fernwood.net", "tidal-analytics.com",
)  # fmt: skip
# Domains whose mail goes to the address record (no MX): legal, a little suspicious.
IMPLICIT_DOMAINS = ("parkedhost.com",)
# Typos of popular domains. Some typo-squats take mail (the provider gets asked), some do not
# exist; two are on the disposable list (typo-squats often are).
TYPO_MAIL_DOMAINS = ("gmai.com", "gnail.com", "hotmal.com")
TYPO_DEAD_DOMAINS = ("outlok.com", "yahooo.com", "gmail.co")
TYPO_DISPOSABLE_DOMAINS = ("gmial.com", "hotmial.com")
DISPOSABLE_DOMAINS = ("mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com")
# Dead domains: no such domain, a null MX (RFC 7505), or no records at all.
NXDOMAIN_DOMAINS = ("nosuchcompany-4821.com", "expired-startup.io", "old-isp-mail.net")
NULL_MX_DOMAINS = ("nomail-corp.com",)
EMPTY_DOMAINS = ("bare-domain.org",)

ROLE_USERS = ("admin", "info", "support", "sales", "contact", "noreply", "webmaster")
INVALID_INPUTS = (
    "john..doe@gmail.com", "no-at-sign.example.com", "someone@localhost", "a@b",
    "@gmail.com", "user@gmail..com", "spaces in@gmail.com", '"quoted"@gmail.com',
    "user@[192.0.2.1]", "user@123.123",
)  # fmt: skip

FIRST = (
    "alice", "bruno", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas",
    "karin", "liam", "maya", "noah", "olga", "paul", "quinn", "rosa", "sami", "tara",
    "ugo", "vera", "will", "xenia", "yann", "zoe", "amir", "bea", "carlos", "dana",
)  # fmt: skip
LAST = (
    "martin", "bernard", "dubois", "thomas", "robert", "petit", "durand", "leroy", "moreau",
    "simon", "laurent", "lefebvre", "michel", "garcia", "david", "bertrand", "muller",
    "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "hoffmann",
    "smith", "jones", "taylor", "brown", "wilson",
)  # fmt: skip


@functools.cache
def zone() -> dict[str, Entry]:
    """The DNS table of every benchmark domain (one shared dict: do not change it)."""
    table: dict[str, Entry] = {}
    for d in (*MAIL_DOMAINS, *TYPO_MAIL_DOMAINS, *DISPOSABLE_DOMAINS, *TYPO_DISPOSABLE_DOMAINS):
        table[d] = Zone(mx=[(10, f"mx1.{d}"), (20, f"mx2.{d}")], ttl=3600)
    for d in IMPLICIT_DOMAINS:
        table[d] = Zone(a=["192.0.2.25"], ttl=3600)
    for d in (*NXDOMAIN_DOMAINS, *TYPO_DEAD_DOMAINS):
        table[d] = NXDOMAIN
    for d in NULL_MX_DOMAINS:
        table[d] = Zone(mx=[(0, ".")], ttl=3600)
    for d in EMPTY_DOMAINS:
        table[d] = Zone(ttl=3600)
    return table


def takes_mail(domain: str) -> bool:
    """Whether ZONE says `domain` (ASCII, lower case) takes mail (MX, or A as implicit MX)."""
    entry = zone().get(domain, NXDOMAIN)
    return isinstance(entry, Zone) and (
        any(host != "." for _, host in entry.mx) or (not entry.mx and bool(entry.a or entry.aaaa))
    )


def local_part(rng: random.Random, serial: int) -> str:
    """A plausible, unique local part (`serial` makes it unique)."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    style = rng.randrange(4)
    if style == 0:
        return f"{first}.{last}{serial}"
    if style == 1:
        return f"{first[0]}{last}{serial}"
    if style == 2:
        return f"{first}_{last}.{serial}"
    return f"{first}{serial}+news"


def unique_addresses(count: int, *, seed: int, tag: str = "u") -> list[str]:
    """`count` distinct valid addresses on domains that take mail, none of them disposable."""
    rng = random.Random(seed)
    domains = (*MAIL_DOMAINS, *IMPLICIT_DOMAINS)
    return [f"{tag}{local_part(rng, i)}@{rng.choice(domains)}" for i in range(count)]


def variant(rng: random.Random, address: str) -> str:
    """The same address as a person might type it again: case changed, spaces around."""
    user, _, domain = address.rpartition("@")
    user = "".join(c.upper() if rng.random() < 0.3 else c for c in user)
    domain = domain.upper() if rng.random() < 0.5 else domain.capitalize()
    pad = rng.choice((" ", "  ", "\t", "\n", " \t", ""))
    tail = rng.choice((" ", "\n", "\r\n", "\t", ""))
    if not pad and not tail:
        tail = " "
    return f"{pad}{user}@{domain}{tail}"


# The signup trace's mix (weights): what a busy signup form sees in an hour.
TRACE_MIX: dict[str, float] = {
    "fresh": 40,  # a new person signing up
    "repeat": 14,  # the same address again (page reload, second form, retry)
    "double_submit": 6,  # the same address twice at once (double click): single flight
    "variant": 10,  # a repeat typed differently (case, whitespace)
    "typo": 7,  # a popular domain mistyped
    "disposable": 7,  # a throwaway mailbox
    "dead": 6,  # a domain that does not exist or takes no mail
    "role": 6,  # admin@, support@ ...
    "invalid": 4,  # not an address
}


@dataclass
class Trace:
    """A seeded signup trace: the raw inputs in order, and what kind each one is."""

    seed: int
    events: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Events per kind."""
        return dict(Counter(self.kinds))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(zip(self.kinds, self.events, strict=True))


def signup_trace(events: int, *, seed: int) -> Trace:
    """`events` inputs drawn from TRACE_MIX with a seeded generator (same seed, same trace)."""
    rng = random.Random(seed)
    trace = Trace(seed)
    seen: list[str] = []
    kinds, weights = zip(*TRACE_MIX.items(), strict=True)
    serial = 0

    def add(kind: str, raw: str) -> None:
        trace.kinds.append(kind)
        trace.events.append(raw)

    while len(trace.events) < events:
        kind = rng.choices(kinds, weights)[0]
        if kind in ("repeat", "variant", "double_submit") and not seen:
            kind = "fresh"
        serial += 1
        if kind == "fresh":
            raw = f"{local_part(rng, serial)}@{rng.choice((*MAIL_DOMAINS, *IMPLICIT_DOMAINS))}"
            seen.append(raw)
            add(kind, raw)
        elif kind == "repeat":
            add(kind, rng.choice(seen))
        elif kind == "double_submit":
            raw = rng.choice(seen[-20:])
            add(kind, raw)
            add(kind, raw)
        elif kind == "variant":
            add(kind, variant(rng, rng.choice(seen)))
        elif kind == "typo":
            domain = rng.choice((*TYPO_MAIL_DOMAINS, *TYPO_DEAD_DOMAINS, *TYPO_DISPOSABLE_DOMAINS))
            add(kind, f"{local_part(rng, serial)}@{domain}")
        elif kind == "disposable":
            add(kind, f"{local_part(rng, serial)}@{rng.choice(DISPOSABLE_DOMAINS)}")
        elif kind == "dead":
            domain = rng.choice((*NXDOMAIN_DOMAINS, *NULL_MX_DOMAINS, *EMPTY_DOMAINS))
            add(kind, f"{local_part(rng, serial)}@{domain}")
        elif kind == "role":
            raw = f"{rng.choice(ROLE_USERS)}@{rng.choice(MAIL_DOMAINS)}"
            seen.append(raw)
            add(kind, raw)
        else:
            add(kind, rng.choice(INVALID_INPUTS))
    del trace.events[events:], trace.kinds[events:]
    return trace
