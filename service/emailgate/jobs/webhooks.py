"""Webhooks: signed, delivered from an outbox, retried with growing delays, never to private
addresses.

A status change writes its webhook into the outbox in the same transaction (store.py); this
loop delivers the oldest waiting one of each job (in order per job), signs it like Stripe does
(`Emailgate-Signature: t=UNIX_SECONDS,v1=HEX`, HEX = HMAC-SHA256(secret, "{t}.{body}")), and on
a non-2xx answer or a timeout tries again later, for up to a day.

SSRF: a callback must be https and resolve to public addresses only, checked when the job is
submitted and again when connecting (a name that later resolves to 127.0.0.1 is refused too).
`EMAILGATE_WEBHOOK_ALLOW_PRIVATE=1` (tests) lifts both and allows plain http.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from emailgate.jobs.store import Delivery, JobStore
from emailgate.metrics import Metrics

log = logging.getLogger("emailgate.webhooks")

SIGNATURE_HEADER = "Emailgate-Signature"
GIVE_UP_AFTER = 24 * 3600.0  # seconds after the event
FIRST_DELAY = 5.0  # seconds before the first retry; doubled each time
MAX_DELAY = 3600.0
TIMEOUT = 10.0  # seconds for one delivery
POLL = 1.0  # seconds between looks at the outbox


class CallbackRefused(ValueError):
    """A callback URL that emailgate will not call; the message says why (a 400)."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Emailgate-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, body: bytes, header: str, *, now: float, tolerance: float = 300
                     ) -> bool:  # fmt: skip
    """What a receiver does: check the HMAC and that the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 5 s, 10 s, 20 s … 1 h."""
    return float(min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, attempts)))


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified or not ip.is_global
    )  # fmt: skip


async def check_callback(url: str, *, allow_private: bool, timeout: float = 3.0) -> str:
    """The URL if emailgate may call it; CallbackRefused with the reason otherwise."""
    if len(url) > 2000:
        raise CallbackRefused("callback_url is too long")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise CallbackRefused("callback_url is not a URL") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed or not host:
        raise CallbackRefused("callback_url must be an https:// URL")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url must not carry credentials")
    if allow_private:
        return url
    try:
        ips = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM),
                timeout,
            )
        except (OSError, TimeoutError):
            raise CallbackRefused("callback_url's host does not resolve") from None
        ips = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not ips or not all(_public(ip) for ip in ips):
        raise CallbackRefused(
            "callback_url resolves to a loopback, private, link-local or multicast address"
        )
    return url


class PublicOnlyResolver(ThreadedResolver):
    """Resolves like aiohttp's default and drops every non-public address (DNS rebinding)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        kept = [r for r in found if _public(ipaddress.ip_address(r["host"]))]
        if not kept:
            raise OSError(f"{host} resolves to no public address")
        return kept


class Deliverer:
    """Delivers the outbox until stopped."""

    def __init__(
        self,
        store: JobStore,
        *,
        secret: str | None,
        metrics: Metrics,
        allow_private: bool,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll: float = POLL,
    ) -> None:
        self.store = store
        self.secret = secret
        self.metrics = metrics
        self.allow_private = allow_private
        self.wall = wall
        self.sleep = sleep
        self.poll = poll
        self.stopping = asyncio.Event()

    def __repr__(self) -> str:
        return f"Deliverer(allow_private={self.allow_private})"

    def stop(self) -> None:
        """Leave the loop after the delivery in hand."""
        self.stopping.set()

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client for deliveries: its resolver drops non-public addresses."""
        resolver: Any = ThreadedResolver() if self.allow_private else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, limit=20)
        return aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        )

    async def run_forever(self) -> None:
        """Deliver what is due, then wait a moment, until stopped."""
        async with self.client() as session:
            while not self.stopping.is_set():
                try:
                    sent = await self.deliver_due(session)
                except Exception:
                    log.exception("webhook outbox unreadable", extra={"event": "webhook_error"})
                    sent = 0
                if sent == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), self.poll)

    async def deliver_due(self, session: aiohttp.ClientSession) -> int:
        """One pass over the outbox; how many deliveries were attempted."""
        due = await self.store.due_deliveries()
        await asyncio.gather(*(self._deliver(session, d) for d in due))
        return len(due)

    async def _deliver(self, session: aiohttp.ClientSession, d: Delivery) -> None:
        now = self.wall()
        # The outbox's times are the store's; the signature's is this clock's.
        if self.store.wall() - d.created_at > GIVE_UP_AFTER:
            await self.store.delivered(d.id, "gave_up")
            self.metrics.webhook_deliveries.labels("gave_up").inc()
            log.warning("webhook given up after a day of failures",
                        extra={"event": "webhook_gave_up", "job": d.job_id})  # fmt: skip
            return
        if self.secret is None:
            await self.store.delivered(d.id, "gave_up")
            self.metrics.webhook_deliveries.labels("gave_up").inc()
            return
        ok = False
        outcome = "failed"
        try:
            await check_callback(d.url, allow_private=self.allow_private)
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, d.body, int(now)),
                "User-Agent": "emailgate-webhooks",
            }
            async with session.post(d.url, data=d.body, headers=headers,
                                          allow_redirects=False) as response:  # fmt: skip
                ok = 200 <= response.status < 300
        except CallbackRefused:
            outcome = "refused"
        except (aiohttp.ClientError, OSError, TimeoutError):
            ok = False
        if ok:
            await self.store.delivered(d.id, "delivered")
            self.metrics.webhook_deliveries.labels("delivered").inc()
            return
        self.metrics.webhook_deliveries.labels(outcome).inc()
        await self.store.retry_later(d.id, retry_delay(d.attempts))
