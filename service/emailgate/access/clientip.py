"""Who the client is: the peer address, or what trusted proxies say in `X-Forwarded-For`.

Anyone can send `X-Forwarded-For`; only the entries our own proxies appended can be believed.
Each proxy appends the address it received from, so the list is read from the right: trusted
hops are skipped, and the first address not ours is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = ipaddress.IPv6Address("::")
"""Stands for a peer without an IP address (a Unix socket): all such clients share limits."""

# A whole IPv6 /64 usually belongs to one customer line: limiting single addresses in it would
# hand one client 2**64 fresh budgets.
IPV6_PREFIX = 64
# And a /48 is one site (RIRs hand out /48s to end sites): it holds 65,536 /64s, each of them
# a fresh budget to whoever holds the /48, so credit budgets also count per /48.
IPV6_SITE_PREFIX = 48


def parse_ip(text: str) -> IPAddress | None:
    """An address from `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`; None if not one."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:1.2.3.4 is 1.2.3.4 (dual-stack sockets)
    return ip


def is_trusted(ip: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    """Whether `ip` is one of our proxies."""
    return any(ip.version == net.version and ip in net for net in trusted)


def client_ip(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> IPAddress:
    """The client's address: the peer, unless the peer is trusted and forwarded for someone."""
    current = parse_ip(peer) if peer else None
    if current is None:
        return UNKNOWN
    if not trusted or not is_trusted(current, trusted):
        return current
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            # Our proxy wrote garbage, or the client did and nothing trusted is left of it:
            # the last address we could believe is the best we have.
            return current
        current = ip
        if not is_trusted(ip, trusted):
            return ip
    return current  # every hop is ours: the request came from inside


def bucket_of(ip: IPAddress) -> str:
    """The limit bucket of an address: itself for IPv4, its /64 for IPv6."""
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def site_of(ip: IPAddress) -> str | None:
    """The site of an IPv6 address (its /48); None for IPv4, where one address is the unit."""
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_SITE_PREFIX), strict=False))
    return None
