"""Hardening of the running app: bodies bounded in size and time, JSON nesting bounded, every
answer with a request id. Raw sockets, so the client can misbehave as attackers do."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from emailgate.app import create_app
from emailgate.config import Settings
from emailgate.http.limits import LINGER_S, server_options
from emailgate.http.middlewares import BODY_TIMEOUT
from tests.fakes.dns_server import DNSServer


@pytest.fixture
async def server(dns_server: DNSServer) -> AsyncIterator[TestServer]:
    """The app on loopback with the production server options and a 0.5 s body time limit."""
    app = create_app(Settings.from_env({"EMAILGATE_DNS_SERVERS": dns_server.address}))
    app[BODY_TIMEOUT] = 0.5
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server(**server_options())  # the constructor would drop them
    try:
        yield srv
    finally:
        await srv.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    payload: bytes
    elapsed: float
    """Seconds from sending to the end of the answer's head."""
    closed: bool
    """Whether the server closed the connection within `close_wait` after answering."""


async def exchange(
    server: TestServer,
    head: bytes,
    body: bytes = b"",
    *,
    wait: float = 5.0,
    close_wait: float = 0.2,
) -> Answer:
    """Send raw bytes and read the answer."""
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        start = time.monotonic()
        writer.write(head + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        elapsed = time.monotonic() - start
        lines = raw.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        payload = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), wait)
        try:
            closed = await asyncio.wait_for(reader.read(1), close_wait) == b""
        except TimeoutError:
            closed = False  # kept alive
        return Answer(int(lines[0].split()[1]), headers, payload, elapsed, closed)
    finally:
        writer.close()


def post_head(length: int, path: str = "/api/v1/verify") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_a_body_that_trickles_is_cut_off_with_408(server: TestServer) -> None:
    """A client that sends 10 of its 100 announced bytes and stalls gets 408, then a close."""
    a = await exchange(server, post_head(100), b'{"email": "', close_wait=LINGER_S + 1)
    assert a.status == 408 and 0.4 < a.elapsed < 2
    assert a.closed  # after at most LINGER_S of reading what is left
    assert json.loads(a.payload)["success"] is False and "X-Request-Id" in a.headers


async def test_an_announced_oversized_body_is_refused_unread(server: TestServer) -> None:
    """Content-Length over 8 KiB: 413 at once, without waiting for a byte of the body."""
    a = await exchange(server, post_head(1_000_000))
    assert a.status == 413 and a.elapsed < 0.4  # well before the body time limit
    assert "8192" in json.loads(a.payload)["message"]


async def test_deep_json_nesting_is_a_400(server: TestServer) -> None:
    """JSON nested thousands deep (still under 8 KiB) is refused by the parser's bound: 400."""
    for body in (
        b'{"email": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"email": "a@good.com", "context": ' + b'{"a":' * 1300 + b"1" + b"}" * 1300 + b"}",
    ):
        assert len(body) <= 8192
        a = await exchange(server, post_head(len(body)), body)
        assert a.status == 400, a.payload
        assert json.loads(a.payload)["success"] is False


async def test_moderate_nesting_is_a_clear_400_too(server: TestServer) -> None:
    """Nesting the parser accepts still ends in the contract's 400, never a 5xx."""
    body = b'{"email": ' + b"[" * 500 + b"]" * 500 + b"}"
    a = await exchange(server, post_head(len(body)), body)
    assert a.status == 400 and "string" in json.loads(a.payload)["message"]


async def test_every_answer_carries_a_request_id(server: TestServer) -> None:
    """Success, client error, refusal and unknown path: each has X-Request-Id; a safe one is
    kept, an unsafe one replaced."""
    heads: list[Any] = [
        b"GET /api/v1/verify?email=a@good.com HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /api/v1/verify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    ids = set()
    for head in heads:
        ids.add((await exchange(server, head)).headers["X-Request-Id"])
    assert len(ids) == 3
    kept = await exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: edge-42.a\r\n\r\n"
    )
    assert kept.headers["X-Request-Id"] == "edge-42.a"
    replaced = await exchange(
        server, b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: "}{evil\r\n\r\n'
    )
    rid = replaced.headers["X-Request-Id"]
    assert rid != '"}{evil' and len(rid) == 16


async def test_a_slow_body_does_not_hold_other_clients(server: TestServer) -> None:
    """While one client stalls its body, others are answered at once."""
    stalled = asyncio.create_task(exchange(server, post_head(50), b"{"))
    await asyncio.sleep(0.1)
    other = await exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait=0.3
    )
    assert other.status == 200
    assert (await stalled).status == 408


async def test_headers_that_trickle_are_cut_off(dns_server: DNSServer) -> None:
    """A client sending its request head a byte at a time is disconnected after the idle
    timeout (1 s here; IDLE_TIMEOUT_S in service), while others are served meanwhile."""
    app = create_app(Settings.from_env({"EMAILGATE_DNS_SERVERS": dns_server.address}))
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server(**server_options(idle_timeout=1.0))
    try:
        assert srv.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        start = time.monotonic()
        closed_after = None
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    closed_after = time.monotonic() - start
                    break
            except TimeoutError:
                continue  # still open: keep trickling
            except ConnectionError:
                closed_after = time.monotonic() - start
                break
        writer.close()
        assert closed_after is not None and 0.9 < closed_after < 3
        other = await exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert other.status == 200
    finally:
        await srv.close()
