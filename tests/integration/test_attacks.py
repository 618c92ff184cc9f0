"""Attacks on a service facing the open internet, each against a real `emailgate serve` (real
sockets; the fake providers and the DNS server on loopback): nobody holding only the public
key of a web page can switch provider verification off for others, drain the credits, poison
another person's verdict, learn who was checked before, or read secrets in the log."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.dns_server import DNSServer, Zone
from tests.fakes.listcleanser import VERIFY, FakeListCleanser
from tests.serviceproc import ServiceProcess

PUBLIC = "pk_live_attackable_page_key"
CAPPED = "pk_live_capped_page_key"
PRIVATE = "sk_live_backend_secret_key"
SHOP = "https://shop.example"

Launch = Callable[..., Awaitable[ServiceProcess]]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


KEYS = f"""
[[key]]
name = "signup-form"
kind = "public"
sha256 = "{digest(PUBLIC)}"
origins = ["{SHOP}"]
rate = "100000/60s"

[[key]]
name = "capped-form"
kind = "public"
sha256 = "{digest(CAPPED)}"
origins = ["{SHOP}"]
rate = "100000/60s"
credits_per_hour = 5

[[key]]
name = "backend"
kind = "private"
sha256 = "{digest(PRIVATE)}"
rate = "100000/60s"
"""


@pytest.fixture
async def launch(
    tmp_path: Path, dns_server: DNSServer, fake_listcleanser: FakeListCleanser
) -> AsyncIterator[Launch]:
    """Start `emailgate serve` with the keys above, our DNS server and the ListCleanser fake;
    keyword arguments are more EMAILGATE_* settings (without the prefix)."""
    started: list[ServiceProcess] = []
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)

    async def start(**settings: str) -> ServiceProcess:
        env = {
            "EMAILGATE_DNS_SERVERS": dns_server.address,
            "EMAILGATE_API_KEYS_FILE": str(keys),
            "EMAILGATE_LISTCLEANSER_URL": fake_listcleanser.url,
            "EMAILGATE_LISTCLEANSER_API_KEY": fake_listcleanser.api_key,
            "EMAILGATE_LISTCLEANSER_RATE": "100000/60s",
            "EMAILGATE_PROVIDERS": "listcleanser",
            "EMAILGATE_LOG_LEVEL": "debug",
        } | {f"EMAILGATE_{k.upper()}": v for k, v in settings.items()}
        service = await ServiceProcess.start(env, tmp_path / f"serve-{len(started)}.log")
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


async def check(
    http: aiohttp.ClientSession,
    service: ServiceProcess,
    email: str,
    key: str,
    *,
    forwarded_for: str | None = None,
) -> dict[str, Any]:
    """GET /api/v1/verify with `key` (from SHOP when public); the RESULT."""
    headers = {"X-API-Key": key}
    if key.startswith("pk_"):
        headers["Origin"] = SHOP
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    async with http.get(
        f"{service.url}/api/v1/verify", params={"email": email}, headers=headers
    ) as r:
        body = await r.json()
        assert r.status == 200, body
        data: dict[str, Any] = body["data"]
        return data


def provider_calls(fake: FakeListCleanser) -> int:
    return len(fake.calls.emails(VERIFY))


# -- 1. Switching provider verification off for everyone ----------------------------------


async def test_stalling_addresses_sent_with_a_public_key_do_not_switch_providers_off(
    launch: Launch, dns_server: DNSServer, fake_listcleanser: FakeListCleanser
) -> None:
    """Bursts of 5 addresses whose mail side stalls (never answered), sent with the page's key
    on names of one attacker's wildcard zone, leave the circuit closed: a backend's ordinary
    checks meanwhile are answered by the provider (>= 95 %)."""
    for i in range(40):
        dns_server.zones[f"w{i}.slow-mail.net"] = Zone(mx=[(10, "mx.slow-mail.net")])
    fake_listcleanser.configure(rate_limit=100_000)  # the backend's pace is not the point here
    service = await launch(public_credits_per_hour="1000")
    sources: list[str] = []
    stop = asyncio.Event()

    async def backend(http: aiohttp.ClientSession) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            result = await check(http, service, f"customer{n}@good.com", PRIVATE)
            sources.append(result["source"])
            await asyncio.sleep(0.05)

    async def attacker(http: aiohttp.ClientSession) -> None:
        for burst in range(6):
            await asyncio.gather(
                *(
                    check(http, service, f"hang.{burst}.{i}@w{burst * 5 + i}.slow-mail.net", PUBLIC)
                    for i in range(5)
                )
            )
            await asyncio.sleep(0.5)
        stop.set()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(backend(http), attacker(http))
    stalled = [e for e in fake_listcleanser.calls.emails(VERIFY) if e and e.startswith("hang.")]
    assert len(stalled) == 30  # every attack reached the provider and timed out
    share = sources.count("listcleanser") / len(sources)
    assert len(sources) > 50
    assert share >= 0.95, f"{share:.0%} of the backend's checks answered by the provider"
    async with aiohttp.ClientSession() as http, http.get(f"{service.url}/metrics") as r:
        assert 'emailgate_circuit_open{provider="listcleanser"} 0.0' in await r.text()


async def test_failed_provider_calls_count_against_the_callers_budget(
    launch: Launch, dns_server: DNSServer, fake_listcleanser: FakeListCleanser
) -> None:
    """A public client whose addresses make the provider time out pays for each timeout: past
    its hourly budget (3) its checks no longer reach the provider."""
    dns_server.zones["slow-mail.net"] = Zone(mx=[(10, "mx.slow-mail.net")])
    service = await launch(public_credits_per_hour="3", deadline_ms="400")
    async with aiohttp.ClientSession() as http:
        for i in range(8):
            result = await check(http, service, f"hang.{i}@slow-mail.net", PUBLIC)
            assert result["decision"] == "accept"  # fail-open, as for any timeout
    assert provider_calls(fake_listcleanser) == 3


# -- 2. Draining credits by rotating client addresses ------------------------------------


async def test_rotating_ipv6_prefixes_does_not_multiply_a_public_keys_budget(
    launch: Launch, fake_listcleanser: FakeListCleanser
) -> None:
    """With 3 credits per client and hour: rotating /64s inside one /48 buys 4 x 3 answers
    (the /48's budget); rotating /48s stops at the key's own budget (10 x 3); a key with
    `credits_per_hour = 5` stops at 5."""
    service = await launch(public_credits_per_hour="3", trusted_proxies="127.0.0.1")
    site = ipaddress.IPv6Network("2001:db8:7::/48")

    def in_site(n: int) -> str:
        return str(site.network_address + (n << 64) + 1)  # the n-th /64 of the site

    def own_site(n: int) -> str:
        return str(ipaddress.IPv6Address("2001:db8::") + (n << 80) + 1)  # the n-th /48

    async with aiohttp.ClientSession() as http:
        for n in range(40):
            await check(http, service, f"a{n}@good.com", PUBLIC, forwarded_for=in_site(n))
        assert provider_calls(fake_listcleanser) == 12
        for n in range(1, 60):
            await check(http, service, f"b{n}@good.com", PUBLIC, forwarded_for=own_site(n))
        assert provider_calls(fake_listcleanser) == 30
        result = await check(http, service, "c@good.com", PUBLIC, forwarded_for=own_site(99))
        assert result["source"] == "local"
        for n in range(100, 120):
            await check(http, service, f"d{n}@good.com", CAPPED, forwarded_for=own_site(n))
        assert provider_calls(fake_listcleanser) == 35


# -- 3. Poisoning another person's verdict through the cache -----------------------------


@pytest.mark.parametrize(
    ("attacker", "victim"),
    [("ſam.smith@gmail.com", "sam.smith@gmail.com"), ("STRAßE@gmail.com", "strasse@gmail.com")],
)
async def test_a_unicode_case_variant_does_not_poison_the_real_mailbox(
    launch: Launch, fake_listcleanser: FakeListCleanser, attacker: str, victim: str
) -> None:
    """An undeliverable verdict for `ſam@` (long s) or `STRAßE@` is not served for `sam@` or
    `strasse@`: those are other mailboxes, checked on their own; ASCII case still shares."""
    service = await launch()
    fake_listcleanser.set_answer(attacker, state="undeliverable", reason="rejected_email", score=5)
    async with aiohttp.ClientSession() as http:
        poisoned = await check(http, service, attacker, PRIVATE)
        assert (poisoned["state"], poisoned["source"]) == ("undeliverable", "listcleanser")
        result = await check(http, service, victim, PRIVATE)
        assert (result["state"], result["decision"], result["cached"]) == (
            "deliverable", "accept", False
        )  # fmt: skip
        assert provider_calls(fake_listcleanser) == 2
        upper = await check(
            http, service, victim.upper().replace("@GMAIL.COM", "@gmail.com"), PRIVATE
        )
        assert (upper["state"], upper["cached"]) == ("deliverable", True)
    assert provider_calls(fake_listcleanser) == 2


# -- 6. Memory growing with unique domains ------------------------------------------------


async def test_the_dns_librarys_own_cache_keeps_no_more_domains_than_ours(
    launch: Launch, dns_server: DNSServer
) -> None:
    """Unique domains of a wildcard zone whose answers live a day: once this service's own
    bounded DNS cache (here 100 domains) has forgotten one, asking about it again reaches the
    name server: c-ares did not keep it either, so its memory cannot grow with the flood."""
    for i in range(250):
        dns_server.zones[f"u{i}.wild-mail.net"] = Zone(mx=[(10, "mx.wild-mail.net")], ttl=86400)
    service = await launch(cache_max_entries="100")
    sem = asyncio.Semaphore(8)

    async def one(http: aiohttp.ClientSession, email: str) -> None:
        async with sem:
            await check(http, service, email, PRIVATE)

    def asked(domain: str) -> int:
        return dns_server.queries.count((domain, "MX"))

    async with aiohttp.ClientSession() as http:
        await check(http, service, "first@u0.wild-mail.net", PRIVATE)
        assert asked("u0.wild-mail.net") == 1
        await asyncio.gather(*(one(http, f"a@u{i}.wild-mail.net") for i in range(1, 250)))
        await check(http, service, "second@u0.wild-mail.net", PRIVATE)
    assert asked("u0.wild-mail.net") == 2


# -- 7. A history oracle -----------------------------------------------------------------


async def test_a_public_key_cannot_tell_whether_an_address_was_checked_before(
    launch: Launch, fake_listcleanser: FakeListCleanser
) -> None:
    """After a backend checked bob, the page's key sees `cached: false` and a duration (and an
    answer time) like a fresh check's; past its budget it gets the local verdict, not bob's
    stored provider verdict."""
    fake_listcleanser.configure(latency_ms=300)
    service = await launch(public_credits_per_hour="4")
    async with aiohttp.ClientSession() as http:
        await check(http, service, "bob@good.com", PRIVATE)
        fresh = await check(http, service, "alice@good.com", PUBLIC)
        assert (fresh["cached"], fresh["source"]) == (False, "listcleanser")
        assert fresh["duration"] >= 0.3
        began = time.monotonic()
        seen = await check(http, service, "bob@good.com", PUBLIC)
        took = time.monotonic() - began
        assert (seen["cached"], seen["source"]) == (False, "listcleanser")
        assert seen["duration"] >= 0.3 and took >= 0.3
        backend = await check(http, service, "bob@good.com", PRIVATE)
        assert backend["cached"] is True  # private keys see the real value
        for n in range(4):
            await check(http, service, f"spend{n}@good.com", PUBLIC)
        past_budget = await check(http, service, "bob@good.com", PUBLIC)
        assert (past_budget["cached"], past_budget["source"]) == (False, "local")


# -- 4. Secrets in the log from requests the HTTP parser refuses -------------------------

VICTIM = "victim.person"
MALFORMED = [
    # A key read from a file with a Windows line ending: a CR left in the header value.
    b"GET /api/v1/verify?email=a%40good.com HTTP/1.1\r\nHost: x\r\n"
    b"X-API-Key: " + PRIVATE.encode() + b"\r\r\n\r\n",
    # An over-long URL carrying an address.
    b"GET /api/v1/verify?email=" + VICTIM.encode() + b"%40good.com&pad=" + b"a" * 5000
    + b" HTTP/1.1\r\nHost: x\r\nX-API-Key: " + PRIVATE.encode() + b"\r\n\r\n",
    # An unencoded space in the URL.
    b"GET /api/v1/verify?email=" + VICTIM.encode() + b" smith@good.com HTTP/1.1\r\nHost: x\r\n"
    b"X-API-Key: " + PRIVATE.encode() + b"\r\n\r\n",
    # A header line without a colon, a NUL in a value, a bad method, bad chunks.
    b"GET /api/v1/verify HTTP/1.1\r\nHost: x\r\nX-API-Key " + PRIVATE.encode() + b"\r\n\r\n",
    b"GET /api/v1/verify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + PRIVATE.encode() + b"\x00\r\n\r\n",
    b"G\x01T /api/v1/verify?email=" + VICTIM.encode() + b"%40good.com HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /api/v1/verify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + PRIVATE.encode()
    + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{\"email\": \"" + VICTIM.encode()
    + b"@good.com\"}\r\n0\r\n\r\n",
    # A header line over the server's limit, holding the key.
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + PRIVATE.encode()
    + b"b" * 9000 + b"\r\n\r\n",
]  # fmt: skip


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes after an error)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_requests_the_parser_refuses_leave_no_secret_in_log_or_answer(
    launch: Launch,
) -> None:
    """Malformed requests (CR in a key, over-long or unencoded URLs, bad headers, methods and
    chunks) get the contract's JSON 400 without echoing anything; the debug log holds no key,
    no address and no client address."""
    service = await launch()
    for raw in MALFORMED:
        status, headers, body = await exchange(service.port, raw)
        assert status == 400, (raw[:60], status, body)
        assert headers["content-type"].startswith("application/json")
        answer = json.loads(body)
        assert answer["success"] is False and isinstance(answer["message"], str)
        assert PRIVATE.encode() not in body and VICTIM.encode() not in body
    async with aiohttp.ClientSession() as http, http.get(f"{service.url}/healthz") as r:
        assert r.status == 200  # still serving
    await asyncio.sleep(0.2)
    log = service.log_path.read_text(errors="replace")
    assert PRIVATE not in log and VICTIM not in log
    after_start = log.split('"event":"start"', 1)[1].partition("\n")[2]
    assert "127.0.0.1" not in after_start
    refused = [json.loads(line) for line in log.splitlines() if '"bad_http"' in line]
    assert len(refused) == len(MALFORMED)
