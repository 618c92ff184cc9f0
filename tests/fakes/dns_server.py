"""A DNS server on 127.0.0.1 that answers from a table: the real wire, our own zone.

    zone = {
        "good.com": Zone(mx=[(10, "mx1.good.com"), (20, "mx2.good.com")]),
        "nullmx.com": Zone(mx=[(0, ".")]),          # RFC 7505 null MX
        "aonly.com": Zone(a=["192.0.2.1"]),          # no MX: implicit MX
        "empty.com": Zone(),                          # exists, no records at all
        "gone.com": NXDOMAIN, "sick.com": SERVFAIL, "mute.com": SILENT,
    }

Names not in the table answer NXDOMAIN. Every query is logged in `queries`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class Zone:
    """Records of one domain; empty lists answer NOERROR with no data."""

    mx: list[tuple[int, str]] = field(default_factory=list)
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    ttl: int = 300


NXDOMAIN: Final = "nxdomain"
SERVFAIL: Final = "servfail"
SILENT: Final = "silent"

Entry = Zone | str


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DNSServer:
    """UDP DNS server on a free loopback port, answering from `zones` (mutable at any time)."""

    def __init__(self, zones: dict[str, Entry] | None = None) -> None:
        self.zones: dict[str, Entry] = dict(zones or {})
        self.queries: list[tuple[str, str]] = []
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        """`127.0.0.1:port`, as EMAILGATE_DNS_SERVERS takes it."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        qtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, qtype))
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        entry = self.zones.get(name, NXDOMAIN)
        if entry == SILENT:
            return None
        if entry == NXDOMAIN:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif entry == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif isinstance(entry, Zone):
            records = {
                "MX": [f"{p} {h if h == '.' else h.rstrip('.') + '.'}" for p, h in entry.mx],
                "A": entry.a,
                "AAAA": entry.aaaa,
            }.get(qtype, [])
            if records:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, entry.ttl, "IN", qtype, records)
                )
        return response.to_wire()
