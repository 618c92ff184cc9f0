"""Stage 5: does the domain take mail? MX with aiodns, A/AAAA as the implicit MX, bounded cache.

RFC 5321 §5.1: no MX records means the domain's own address records are the mail host.
RFC 7505: a single MX of preference 0 and exchange "." (a null MX) says "no mail here".
c-ares timeouts are adaptive, so the caller's budget is enforced here with `wait_for`.

c-ares keeps its own answer cache, for each answer's TTL (up to an hour), with no bound on
the number of answers; pycares offers no option to turn it off or size it. Anyone can send
addresses on unique domains of a wildcard zone with long TTLs, so that cache would grow
with every one of them. The channel is therefore replaced after `CHANNEL_LOOKUPS` domains (or
this module's own bound, if smaller): its cache goes with it, and this module's bounded cache
is the one that counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiodns
import pycares
from aiodns import error as ares

from emailgate.clock import Clock, monotonic
from emailgate.lru import TtlLru
from emailgate.verify.mail import NEGATIVE, MailDomain, MailStatus
from emailgate.verify.singleflight import SingleFlight

# Cache bounds for domain answers: positive answers follow the record's TTL within these.
MIN_TTL = 60.0
MAX_TTL = 3600.0
NEGATIVE_TTL = (
    300.0  # NXDOMAIN, null MX, nothing at all (RFC 2308 suggests 1–3 h; we re-check sooner)
)
ERROR_TTL = 15.0  # SERVFAIL or timeout: don't hammer a sick server, but look again soon
CHANNEL_LOOKUPS = 2000  # domains resolved on one c-ares channel before it is replaced
DNS_MAX_ENTRIES = 10_000  # domain answers kept by this module


class MXResolver:
    """aiodns-backed DomainResolver with a bounded, TTL-respecting cache and single flight."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        clock: Clock = monotonic,
        max_entries: int = DNS_MAX_ENTRIES,
        query_timeout: float = 0.5,
        tries: int = 2,
        channel_lookups: int | None = None,
    ) -> None:
        self._nameservers = list(nameservers)
        self._query_timeout = query_timeout
        self._tries = tries
        self._resolver: aiodns.DNSResolver | None = None
        self._cache: TtlLru[str, MailDomain] = TtlLru(max_entries, clock=clock)
        self._flight: SingleFlight[MailDomain] = SingleFlight()
        # c-ares never holds answers for more domains than this module's cache does.
        self._channel_lookups = channel_lookups or min(CHANNEL_LOOKUPS, max_entries)
        self._lookups_on_channel = 0
        self._retired: set[asyncio.Task[None]] = set()
        self.channels_opened = 0
        """How many c-ares channels this resolver made (each one's answer cache dies with it)."""

    def _new_channel(self) -> aiodns.DNSResolver:
        """The channel for the next lookup; the current one is retired after its quota."""
        self._lookups_on_channel += 1
        if self._resolver is not None and self._lookups_on_channel > self._channel_lookups:
            old, self._resolver = self._resolver, None
            task = asyncio.create_task(self._retire(old))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        if self._resolver is None:
            self._lookups_on_channel = 1
        return self._channel()

    async def _retire(self, channel: aiodns.DNSResolver) -> None:
        # Lookups still running on it finish first: none outlives its own ceiling.
        try:
            await asyncio.sleep(self._query_timeout * self._tries * 3 + 1)
        finally:
            await channel.close()

    def _channel(self) -> aiodns.DNSResolver:
        if self._resolver is None:
            self.channels_opened += 1
            # Created lazily: aiodns binds to the running loop. NOSEARCH: a typo domain must
            # not be retried with the host's search domains appended.
            self._resolver = aiodns.DNSResolver(
                nameservers=self._nameservers or None,
                timeout=self._query_timeout,
                tries=self._tries,
                flags=pycares.ARES_FLAG_NOSEARCH,
            )
        return self._resolver

    async def close(self) -> None:
        self._flight.cancel_all()
        for task in list(self._retired):
            task.cancel()
        await asyncio.gather(*self._retired, return_exceptions=True)
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def cached(self, domain: str) -> MailDomain | None:
        """The cached answer for `domain` if still fresh."""
        return self._cache.get(domain)

    def forget_negative(self) -> None:
        for domain in list(self._cache):
            answer = self._cache.get(domain)
            if answer is not None and answer.status in NEGATIVE:
                self._cache.pop(domain)

    async def lookup(self, domain: str, timeout: float, *, fresh: bool = False) -> MailDomain:
        hit = None if fresh else self.cached(domain)
        if hit is not None:
            return hit
        if timeout <= 0:
            return MailDomain(MailStatus.ERROR, detail="timeout")
        task, _shared = self._flight.start(domain, lambda: self._resolve_and_keep(domain))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            return MailDomain(MailStatus.ERROR, detail="timeout")

    async def _resolve_and_keep(self, domain: str) -> MailDomain:
        """One lookup shared by every caller asking meanwhile; the answer is cached before
        the shared run ends, so no caller in between starts another."""
        answer, ttl = await self._resolve(domain)
        self._cache.put(domain, answer, ttl)
        return answer

    async def _resolve(self, domain: str) -> tuple[MailDomain, float]:
        """Ask DNS; the answer and how long to keep it."""
        # The whole resolution has its own ceiling so an abandoned lookup cannot linger.
        ceiling = self._query_timeout * self._tries * 3
        try:
            return await asyncio.wait_for(self._resolve_unbounded(domain), ceiling)
        except TimeoutError:
            return MailDomain(MailStatus.ERROR, detail="timeout"), ERROR_TTL

    async def _resolve_unbounded(self, domain: str) -> tuple[MailDomain, float]:
        fqdn = domain.rstrip(".") + "."
        channel = self._new_channel()
        try:
            result = await channel.query_dns(fqdn, "MX")
        except aiodns.error.DNSError as e:
            code = e.args[0] if e.args else None
            if code == ares.ARES_ENOTFOUND:
                return MailDomain(MailStatus.NXDOMAIN, detail="nxdomain"), NEGATIVE_TTL
            if code != ares.ARES_ENODATA:
                return MailDomain(MailStatus.ERROR, detail=_error_name(code)), ERROR_TTL
            return await self._implicit(channel, fqdn, domain)
        records = [
            (r.data, r.ttl) for r in result.answer if isinstance(r.data, pycares.MXRecordData)
        ]
        if not records:
            return await self._implicit(channel, fqdn, domain)
        hosts = [
            (mx.priority, mx.exchange.rstrip(".").lower(), ttl)
            for mx, ttl in records
            if mx.exchange.strip(".")
        ]
        if not hosts:  # only null MX records
            return MailDomain(MailStatus.NO_MAIL, detail="null_mx"), NEGATIVE_TTL
        _, best, _ = min(hosts)
        ttl = min(t for _, _, t in hosts)
        return MailDomain(MailStatus.MX, mx=best), _clamp(ttl)

    async def _implicit(
        self, channel: aiodns.DNSResolver, fqdn: str, domain: str
    ) -> tuple[MailDomain, float]:
        """No MX: the A/AAAA records decide (RFC 5321 §5.1)."""
        answers = await asyncio.gather(
            channel.query_dns(fqdn, "A"),
            channel.query_dns(fqdn, "AAAA"),
            return_exceptions=True,
        )
        ttls = [
            r.ttl
            for a in answers
            if isinstance(a, pycares.DNSResult)
            for r in a.answer
            if r.type in (pycares.QUERY_TYPE_A, pycares.QUERY_TYPE_AAAA)
        ]
        if ttls:
            return MailDomain(MailStatus.IMPLICIT, mx=domain), _clamp(min(ttls))
        codes = [a.args[0] if a.args else None for a in answers if isinstance(a, BaseException)]
        if any(c == ares.ARES_ENOTFOUND for c in codes):
            return MailDomain(MailStatus.NXDOMAIN, detail="nxdomain"), NEGATIVE_TTL
        failures = [c for c in codes if c != ares.ARES_ENODATA]
        if failures:
            return MailDomain(MailStatus.ERROR, detail=_error_name(failures[0])), ERROR_TTL
        return MailDomain(MailStatus.NO_MAIL, detail="no_mx_no_address"), NEGATIVE_TTL


def _clamp(ttl: float) -> float:
    return max(MIN_TTL, min(MAX_TTL, float(ttl)))


def _error_name(code: object) -> str:
    names = {
        ares.ARES_ESERVFAIL: "servfail",
        ares.ARES_ETIMEOUT: "timeout",
        ares.ARES_EREFUSED: "refused",
        ares.ARES_ECONNREFUSED: "refused",
    }
    return names.get(code, "dns_error") if isinstance(code, int) else "dns_error"
