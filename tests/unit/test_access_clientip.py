"""The client's address: `X-Forwarded-For` believed only from trusted proxies, read from the
right; IPv6 clients limited by their /64."""

from __future__ import annotations

import ipaddress

import pytest

from emailgate.access.clientip import UNKNOWN, bucket_of, client_ip, parse_ip

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    ("peer", "xff", "client"),
    [
        # An untrusted peer is the client, whatever it claims.
        ("198.51.100.9", ["203.0.113.5"], "198.51.100.9"),
        # A trusted proxy forwarding for a client.
        ("10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
        # Two of our proxies in a row: both skipped.
        ("10.0.0.2", ["203.0.113.5, 10.0.0.7"], "203.0.113.5"),
        # The client forged an entry on the left; our proxy appended the real one.
        ("10.0.0.2", ["1.1.1.1, 203.0.113.5"], "203.0.113.5"),
        # Several header lines are one list.
        ("10.0.0.2", ["1.1.1.1", "203.0.113.5"], "203.0.113.5"),
        # Ports and brackets as some proxies write them.
        ("10.0.0.2", ["203.0.113.5:4711"], "203.0.113.5"),
        ("10.0.0.2", ["[2001:db8::5]:4711"], "2001:db8::5"),
        # Garbage from the client, left of what our proxy appended: ignored.
        ("10.0.0.2", ["not-an-ip, 203.0.113.5"], "203.0.113.5"),
        # Garbage where our proxy should have written: the proxy is the client we know.
        ("10.0.0.2", ["203.0.113.5, bogus"], "10.0.0.2"),
        # A trusted peer with no header: the request came from the proxy itself.
        ("10.0.0.2", [], "10.0.0.2"),
        # Everything is ours: the leftmost hop.
        ("10.0.0.2", ["10.9.9.9, 10.0.0.7"], "10.9.9.9"),
        # IPv4-mapped IPv6 peers are their IPv4 address.
        ("::ffff:10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
        ("2001:db8:ffff::1", ["2001:db8:1:2::3"], "2001:db8:1:2::3"),
    ],
)
def test_client_ip(peer: str, xff: list[str], client: str) -> None:
    """The rightmost address not ours is the client."""
    assert client_ip(peer, xff, TRUSTED) == ipaddress.ip_address(client)


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    """No EMAILGATE_TRUSTED_PROXIES: the peer, always."""
    assert client_ip("10.0.0.2", ["203.0.113.5"], ()) == ipaddress.ip_address("10.0.0.2")


def test_a_peer_without_an_address_is_unknown() -> None:
    """A Unix socket peer has no address: one shared bucket."""
    assert client_ip(None, ["203.0.113.5"], TRUSTED) == UNKNOWN
    assert client_ip("", [], TRUSTED) == UNKNOWN


def test_parse_ip_refuses_what_is_not_an_address() -> None:
    """Hostnames and junk are not addresses."""
    for text in ("example.com", "", "1.2.3", "unknown", "_hidden"):
        assert parse_ip(text) is None


def test_ipv6_clients_share_their_64() -> None:
    """Two addresses of one /64 are one bucket; IPv4 addresses are their own."""
    a = ipaddress.ip_address("2001:db8:1:2::1")
    b = ipaddress.ip_address("2001:db8:1:2:ffff::9")
    c = ipaddress.ip_address("2001:db8:1:3::1")
    assert bucket_of(a) == bucket_of(b) == "2001:db8:1:2::/64"
    assert bucket_of(c) != bucket_of(a)
    assert bucket_of(ipaddress.ip_address("192.0.2.1")) == "192.0.2.1"
