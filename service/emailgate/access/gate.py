"""The access middleware: key, origin and CORS, client address, rate limit, credit budget.

Order for the API paths (`/api/v1/verify`, `/api/v1/credits`): a CORS preflight is answered
at once; then the key (401), where it may be used from (403), how often (429); then the
grant the handler honours. Everything else (health, metrics, the document, static files)
passes untouched.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Counter as PromCounter

from emailgate.access.clientip import IPAddress, bucket_of, client_ip, site_of
from emailgate.access.counters import Counter, MemoryCounter, RedisCounter, Window
from emailgate.access.grant import (
    CLIENT,
    GRANT,
    OPEN,
    OPEN_CLIENT,
    RESPONSE_HEADERS,
    SPENT,
    Grant,
)
from emailgate.access.keys import ClientKey, KeyKind, KeyRing, KeysFileError, load_keys
from emailgate.access.origins import origin_of
from emailgate.clock import Clock, monotonic
from emailgate.config import Settings
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.rate import Rate

log = logging.getLogger("emailgate.access")

PUBLIC = Grant(history=False)
"""A public key within its budgets: providers, but no history in the answer."""

API = {"/api/v1/verify": "verify", "/api/v1/credits": "credits"}
"""The paths behind the gate, and what they do."""
JOB_APIS = {"/api/v1/batch": "batch", "/api/v1/enrich": "enrich"}
"""Job APIs: private keys (and anyone in open mode); test keys in the sandbox."""


def scope_of(path: str) -> str | None:
    """What an API path does (`verify`, `credits`, `batch`, `enrich`); None outside the gate."""
    scope = API.get(path)
    if scope is None:
        for prefix, job_scope in JOB_APIS.items():
            if path == prefix or path.startswith(prefix + "/"):
                return job_scope
    return scope


METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "X-API-Key, Authorization, Content-Type, X-Request-Id"
EXPOSE_HEADERS = "X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
PREFLIGHT_MAX_AGE = "600"

WHY = ("no_key", "unknown_key", "origin", "client_address", "not_allowed", "rate_limited",
       "slow_body")  # fmt: skip
"""`emailgate_client_rejections_total{why}`: every reason a request is refused."""
GRANTS = ("providers", "local", "sandbox")
"""`emailgate_client_requests_total{grant}`: local = a public key past its credit budget."""
OPEN_NAME = "open"
"""The `key` label of requests admitted without a keys file."""

BUDGET_PERIOD_S = 3600.0
SITE_BUDGET_FACTOR = 4
"""An IPv6 /48 (one site: a household's or an office's lines) gets this many client budgets."""
KEY_BUDGET_FACTOR = 10
"""A public key's own hourly budget, without `credits_per_hour`: this many client budgets."""

CLIENTS_MEMO = 4096
"""Recent (peer, X-Forwarded-For) pairs whose client address and bucket are kept resolved."""

_REFUSALS: dict[int, type[web.HTTPException]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
}

_requests_families: weakref.WeakKeyDictionary[Metrics, PromCounter] = weakref.WeakKeyDictionary()


def requests_family(metrics: Metrics) -> PromCounter:
    """`emailgate_client_requests_total{key,grant}` on this Metrics' registry (made once)."""
    family = _requests_families.get(metrics)
    if family is None:
        # Key *names* are labels: the operator chose them in the keys file, a handful at most.
        # Never the key itself, never a client address.
        family = PromCounter(
            "emailgate_client_requests_total",
            "API requests admitted, by key name from the keys file ('open' without one) and "
            "by what they may use.",
            ["key", "grant"],
            registry=metrics.registry,
        )
        _requests_families[metrics] = family
    return family


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused, for the caller, the log and the metric."""

    status: int
    why: str
    message: str


class Gate:
    """Decides, for each API request, whether it is answered and with what grant."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        ring: KeyRing | None,
        clock: Clock = monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.ring = ring
        """None: no keys file, the service runs open."""
        self.path: Path | None = settings.api_keys_file
        self.memory = MemoryCounter(clock)
        self.counter: Counter = self.memory
        self.hasher = Hasher.random()
        self.requests = requests_family(metrics)
        trusted = settings.trusted_proxies

        @functools.lru_cache(maxsize=CLIENTS_MEMO)
        def client_of(peer: str | None, forwarded: tuple[str, ...]) -> tuple[IPAddress, str]:
            ip = client_ip(peer, forwarded, trusted)
            return ip, bucket_of(ip)

        self.client_of = client_of
        """The client address and its limit bucket, from the peer and X-Forwarded-For."""
        for why in WHY:
            metrics.client_rejections.labels(why)
        self._prime()

    def use_shared(self, *, hasher: Hasher, redis: aioredis.Redis | None, clock: Clock) -> None:
        """At start-up: the service's hasher and clock; count in Redis when there is one."""
        self.hasher = hasher
        self.memory.clock = clock
        if redis is not None:
            metrics = self.metrics

            def on_degraded(degraded: bool) -> None:
                metrics.redis_part("limits", degraded=degraded)

            self.counter = RedisCounter(redis, self.memory, on_degraded=on_degraded)

    def reload(self) -> bool:
        """Read the keys file again; on any problem keep the keys in force and log why."""
        if self.path is None:
            log.info(
                "SIGHUP: no keys file to reload (EMAILGATE_API_KEYS_FILE is not set)",
                extra={"event": "keys_reload_skipped"},
            )
            return False
        try:
            ring = load_keys(self.path)
        except KeysFileError as e:
            kept = len(self.ring) if self.ring is not None else 0
            log.error(
                f"keys file not reloaded; the {kept} keys in force stay",
                extra={"event": "keys_reload_failed", "problems": e.problems},
            )
            return False
        self.ring = ring
        self._prime()
        log.info(
            "keys file reloaded",
            extra={"event": "keys_reloaded", "keys": [k.name for k in ring.keys]},
        )
        return True

    def _prime(self) -> None:
        # The children of the key names in force, made once: `labels()` costs each request
        # more than the count itself.
        names = [k.name for k in self.ring.keys] if self.ring is not None else [OPEN_NAME]
        self.admitted = {(n, g): self.requests.labels(n, g) for n in names for g in GRANTS}

    def _count(self, name: str, grant: str) -> None:
        child = self.admitted.get((name, grant))
        if child is None:  # a key the keys file dropped while its request was on its way
            child = self.requests.labels(name, grant)
        self.metrics.tally.inc(child)

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware."""
        scope = scope_of(request.path)
        if scope is None:
            return await handler(request)
        headers: dict[str, str] = {}
        request[RESPONSE_HEADERS] = headers
        origin_header = request.headers.get("Origin")
        origin = origin_of(origin_header)
        ring = self.ring
        if ring is not None:
            headers["Vary"] = "Origin"
            if origin is not None and origin in ring.origins and origin_header is not None:
                headers["Access-Control-Allow-Origin"] = origin_header.strip()
                headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        if request.method == "OPTIONS" and origin_header is not None:
            return self._preflight(request, headers)
        if request.match_info.http_exception is not None:
            return await handler(request)  # 405 and friends: nothing to admit

        ip, bucket = self.client_of(
            request.remote, tuple(request.headers.getall("X-Forwarded-For", ()))
        )
        if ring is None:
            name, rate = self._bucket("open", bucket), self.settings.open_rate
            # In-process counting never waits: no coroutine for it (one hit per request).
            memory = self.counter is self.memory
            window = (
                self.memory.take_now(name, rate) if memory else await self.counter.take(name, rate)
            )
            _rate_headers(headers, window)
            if not window.allowed:
                self._refuse(request, ip, None, _too_many(window, headers))
            self._count(OPEN_NAME, "providers")
            request[GRANT] = OPEN  # set, so that the handler's read does not raise and catch
            request[CLIENT] = OPEN_CLIENT
            return await handler(request)

        key, refusal = self._identify(request, ring, origin, ip, scope)
        if refusal is not None:
            self._refuse(request, ip, key, refusal)
        assert key is not None
        rate = key.rate or self.settings.open_rate
        per = bucket if key.kind is KeyKind.PUBLIC else "*"
        name = self._bucket("key", key.name, per)
        memory = self.counter is self.memory
        window = self.memory.take_now(name, rate) if memory else await self.counter.take(name, rate)
        _rate_headers(headers, window)
        if not window.allowed:
            self._refuse(request, ip, key, _too_many(window, headers))

        if key.kind is KeyKind.TEST:
            return await self._admit(request, handler, key, Grant(False, True), "sandbox")
        if key.kind is KeyKind.PRIVATE:
            return await self._admit(request, handler, key, OPEN, "providers")
        return await self._admit_public(request, handler, key, ip)

    def _identify(
        self,
        request: web.Request,
        ring: KeyRing,
        origin: str | None,
        ip: IPAddress,
        scope: str,
    ) -> tuple[ClientKey | None, Refusal | None]:
        presented = presented_key(request.headers)
        if presented is None:
            return None, Refusal(
                401, "no_key", "a client key is required: send X-API-Key or Authorization: Bearer"
            )
        key = ring.match(presented)
        if key is None:
            return None, Refusal(401, "unknown_key", "unknown client key")
        if key.origins and origin not in key.origins:
            if origin is None:
                text = f"the {key.kind.value} key '{key.name}' is honoured only from its web pages"
                return key, Refusal(403, "origin", f"{text} (no Origin header)")
            return key, Refusal(403, "origin", f"this key is not allowed from {origin}")
        if key.ips and not any(ip.version == n.version and ip in n for n in key.ips):
            return key, Refusal(403, "client_address", "this key is not allowed from here")
        if key.kind is KeyKind.PUBLIC and scope != "verify":
            return key, Refusal(403, "not_allowed", "a public key may only verify addresses")
        return key, None

    async def _admit(
        self,
        request: web.Request,
        handler: Handler,
        key: ClientKey,
        grant: Grant,
        label: str,
    ) -> web.StreamResponse:
        request[GRANT] = grant
        request[CLIENT] = key.name
        self._count(key.name, label)
        return await handler(request)

    def credit_budgets(self, key: ClientKey, ip: IPAddress) -> list[tuple[str, Rate]]:
        """The hourly budgets a public key's provider-backed answer is taken from, all at
        once: the client (an IPv4 address or IPv6 /64), its IPv6 /48, and the whole key.
        Rotating addresses inside a /48 then buys nothing, and rotating /48s stops at the
        key's own budget (docs/access.md, "What a public key can cost its owner")."""
        per_client = self.settings.public_credits_per_hour
        per_key = key.credits_per_hour
        if per_key is None:
            per_key = KEY_BUDGET_FACTOR * per_client
        budgets = [(self._bucket("credits", bucket_of(ip)), Rate(per_client, BUDGET_PERIOD_S))]
        site = site_of(ip)
        if site is not None:
            rate = Rate(SITE_BUDGET_FACTOR * per_client, BUDGET_PERIOD_S)
            budgets.append((self._bucket("credits-site", site), rate))
        budgets.append((self._bucket("credits-key", key.name), Rate(per_key, BUDGET_PERIOD_S)))
        return budgets

    async def _reserve(self, budgets: list[tuple[str, Rate]]) -> list[str] | None:
        """One credit from every budget, or none at all (the ones taken are given back)."""
        taken: list[str] = []
        for bucket, rate in budgets:
            allowed = rate.count > 0 and (await self.counter.take(bucket, rate)).allowed
            if not allowed:
                for done in taken:
                    await self.counter.give_back(done)
                return None
            taken.append(bucket)
        return taken

    async def _admit_public(
        self, request: web.Request, handler: Handler, key: ClientKey, ip: IPAddress
    ) -> web.StreamResponse:
        """A public key's answers are provider-backed only within its hourly budgets; past
        any of them they come from local checks. Its answers never reveal history."""
        taken = await self._reserve(self.credit_budgets(key, ip))
        if taken is None:
            log.debug(
                "credit budget spent: local checks only",
                extra={"event": "credit_budget", "key": key.name, "client": self._client(ip)},
            )
            grant = Grant(use_providers=False, history=False)
            return await self._admit(request, handler, key, grant, "local")
        try:
            return await self._admit(request, handler, key, PUBLIC, "providers")
        finally:
            # Reserved before the check so that a burst cannot overspend; an answer that
            # cost nothing (local verdict, bad input) gives its reservation back.
            if not request.get(SPENT, False):
                for bucket in taken:
                    await self.counter.give_back(bucket)

    def _preflight(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        """A CORS preflight: no key is sent with it, so the origin alone decides."""
        if "Access-Control-Allow-Origin" not in headers:
            why = (
                "no browser origin is allowed: the service runs without a keys file"
                if self.ring is None
                else "this origin is not one of a key's origins"
            )
            self._refuse(request, None, None, Refusal(403, "origin", why))
        headers.pop("Access-Control-Expose-Headers", None)
        headers["Access-Control-Allow-Methods"] = METHODS
        headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return web.Response(status=204, headers={"Allow": METHODS})

    def _refuse(
        self,
        request: web.Request,
        ip: IPAddress | None,
        key: ClientKey | None,
        refusal: Refusal,
    ) -> NoReturn:
        self.metrics.client_rejections.labels(refusal.why).inc()
        # Configuration mistakes are worth a line; floods of 401/429 only at debug.
        level = logging.INFO if refusal.status == 403 else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(
                level,
                "client refused",
                extra={
                    "event": "client_refused",
                    "status": refusal.status,
                    "why": refusal.why,
                    "key": key.name if key is not None else None,
                    "client": self._client(ip) if ip is not None else None,
                    "path": request.path,
                },
            )
        headers = {"WWW-Authenticate": 'Bearer realm="emailgate"'} if refusal.status == 401 else {}
        # The HTTP layer's `errors` middleware gives it the error body every answer shares.
        raise _REFUSALS[refusal.status](text=refusal.message, headers=headers)

    def _bucket(self, *parts: str) -> str:
        # Client addresses are personal data: buckets (Redis keys) carry a keyed hash.
        return self.hasher.hash("|".join(parts))

    def _client(self, ip: IPAddress) -> str:
        return self.hasher.hash("client|" + bucket_of(ip))[:16]


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer`; None when neither."""
    given = headers.get("X-API-Key", "").strip()
    if given:
        return given
    scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _rate_headers(headers: dict[str, str], window: Window) -> None:
    headers["RateLimit-Limit"] = str(window.limit)
    headers["RateLimit-Remaining"] = str(window.remaining)
    headers["RateLimit-Reset"] = str(window.reset_seconds)


def _too_many(window: Window, headers: dict[str, str]) -> Refusal:
    headers["Retry-After"] = str(window.reset_seconds)
    return Refusal(429, "rate_limited", f"too many requests; try again in {window.reset_seconds} s")
