"""The HTTP API of CONTRACT.md against a running app, DNS on loopback, no provider configured."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate as validate_spec

from emailgate import appkeys
from tests import openapi_check
from tests.conftest import RedisServer
from tests.fakes.dns_server import DNSServer

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    """An app on embedded defaults, but for the loopback DNS server."""
    return await make_client()


async def verify(client: Client, email: str, context: str | None = None) -> dict[str, Any]:
    """GET /api/v1/verify, checked against the OpenAPI document; the RESULT."""
    params = {"email": email} if context is None else {"email": email, "context": context}
    response = await client.get("/api/v1/verify", params=params)
    body = await response.json()
    openapi_check.check("GET", "/api/v1/verify", response.status, body)
    assert response.status == 200, body
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    data: dict[str, Any] = body["data"]
    return data


async def test_the_readme_example(client: Client) -> None:
    """someone@gmail.com: a valid free address with MX, accepted at signup, fail-open unknown."""
    r = await verify(client, "someone@gmail.com")
    assert r["email_address"] == "someone@gmail.com"
    assert (r["user"], r["domain"]) == ("someone", "gmail.com")
    assert (r["state"], r["reason"], r["source"]) == ("unknown", "unknown", "local")
    assert r["score"] >= 30 and r["decision"] == "accept"
    assert (r["context"], r["threshold"], r["cached"]) == ("signup", 30, False)
    assert r["free"] is True and r["disposable"] is False
    assert r["mx_record"] == "gmail-smtp-in.l.google.com"
    assert r["accept_all"] is None and r["smtp_provider"] is None
    assert 0 <= r["duration"] < 1.5


async def test_post_with_context(client: Client) -> None:
    """POST takes the same check; marketing has threshold 50."""
    response = await client.post(
        "/api/v1/verify", json={"email": "someone@good.com", "context": "marketing"}
    )
    body = await response.json()
    openapi_check.check("POST", "/api/v1/verify", response.status, body)
    assert response.status == 200
    assert (body["data"]["context"], body["data"]["threshold"]) == ("marketing", 50)


@pytest.mark.parametrize(
    ("email", "state", "reason", "decision"),
    [
        ("a..b@good.com", "undeliverable", "invalid_email", "reject"),
        ("someone@gone.com", "undeliverable", "invalid_domain", "reject"),
        ("someone@nullmx.com", "undeliverable", "invalid_domain", "reject"),
        ("someone@empty.com", "undeliverable", "invalid_domain", "reject"),
        ("someone@aonly.com", "unknown", "unknown", "accept"),
        ("someone@mailinator.com", "risky", "low_quality", "reject"),
        ("someone@sick.com", "unknown", "dns_error", "accept"),
        ("someone@gamil.com", "unknown", "unknown", "accept"),
    ],
)
async def test_local_checks_answer_as_the_contract_says(
    client: Client, email: str, state: str, reason: str, decision: str
) -> None:
    """Each row of CONTRACT.md's "How the local checks answer" table."""
    r = await verify(client, email)
    assert (r["state"], r["reason"], r["decision"]) == (state, reason, decision)
    if reason == "invalid_email":
        assert r["score"] == 0


async def test_typo_suggestion_is_advisory(client: Client) -> None:
    """A typo domain that takes mail is accepted with did_you_mean set."""
    r = await verify(client, "Jane@gamil.com")
    assert r["did_you_mean"] == "Jane@gmail.com"
    assert r["decision"] == "accept"


async def test_a_typo_domain_without_mail_is_rejected_with_a_suggestion(client: Client) -> None:
    """gmail.con has no mail: invalid_domain, and the suggestion helps the user fix it."""
    r = await verify(client, "jane@gmail.con")
    assert (r["reason"], r["did_you_mean"]) == ("invalid_domain", "jane@gmail.com")


async def test_disposable_is_decided_without_dns(client: Client, dns_server: DNSServer) -> None:
    """A disposable domain is known locally: no DNS query is spent on it."""
    await verify(client, "someone@mailinator.com")
    assert not any(name == "mailinator.com" for name, _ in dns_server.queries)


async def test_silent_dns_answers_within_the_deadline(make_client: MakeClient) -> None:
    """A name server that never answers: dns_error, accepted, inside the deadline."""
    client = await make_client(EMAILGATE_DEADLINE_MS="400")
    start = time.monotonic()
    r = await verify(client, "someone@mute.com")
    elapsed = time.monotonic() - start
    assert (r["state"], r["reason"], r["decision"]) == ("unknown", "dns_error", "accept")
    assert elapsed < 0.4 + 0.2


async def test_normalisation_in_the_result(client: Client) -> None:
    """Trimmed, domain lower-cased and IDNA in email_address, Unicode in domain."""
    r = await verify(client, "  Jörg+news@MÜNCHEN.de \n")
    assert r["email_address"] == "Jörg+news@xn--mnchen-3ya.de"
    assert (r["user"], r["domain"]) == ("Jörg+news", "münchen.de")
    assert r["state"] == "unknown" and r["decision"] == "accept"


async def test_role_flag(client: Client) -> None:
    """Role accounts are flagged and still accepted at signup."""
    r = await verify(client, "admin@good.com")
    assert r["role"] is True and r["decision"] == "accept"


async def test_repeat_is_cached_and_spends_nothing(client: Client, dns_server: DNSServer) -> None:
    """A repeat (case variants included) answers cached: true without asking DNS."""
    first = await verify(client, "someone@good.com")
    asked = len(dns_server.queries)
    second = await verify(client, "SomeOne@good.com")
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["email_address"] == "SomeOne@good.com"
    assert len(dns_server.queries) == asked


async def test_identical_checks_in_flight_run_once(client: Client, dns_server: DNSServer) -> None:
    """Fifty concurrent checks of one fresh address run the pipeline once."""
    results = await asyncio.gather(*(verify(client, "fresh@good.com") for _ in range(50)))
    assert {r["decision"] for r in results} == {"accept"}
    registry = client.app[appkeys.METRICS].registry
    assert registry.get_sample_value("emailgate_dns_lookups_total", {"status": "mx"}) == 1
    assert dns_server.queries.count(("good.com", "MX")) == 1


BAD_REQUESTS = [
    ("GET", "/api/v1/verify", {}, None, 400),
    ("GET", "/api/v1/verify?email=a@b.com&email=c@d.com", {}, None, 400),
    ("GET", "/api/v1/verify?email=a@good.com&context=nope", {}, None, 400),
    ("GET", "/api/v1/verify?email=a@good.com&context=signup&context=marketing", {}, None, 400),
    ("POST", "/api/v1/verify", {}, b"", 400),
    ("POST", "/api/v1/verify", {}, b"{not json", 400),
    ("POST", "/api/v1/verify", {}, b'["a@b.com"]', 400),
    ("POST", "/api/v1/verify", {}, b"{}", 400),
    ("POST", "/api/v1/verify", {}, b'{"email": 42}', 400),
    ("POST", "/api/v1/verify", {}, b'{"email": null}', 400),
    ("POST", "/api/v1/verify", {}, b'{"email": "a@good.com", "context": 7}', 400),
    ("POST", "/api/v1/verify", {}, b'{"email": "a@good.com", "context": "nope"}', 400),
    ("POST", "/api/v1/verify", {}, b'{"email": "\\ud800@good.com"}', 400),
    ("POST", "/api/v1/verify", {}, b"x" * 20 * 1024, 413),
    ("POST", "/api/v1/verify", {}, b'{"email": "' + b"a" * 9000 + b'@b.com"}', 413),
    ("PUT", "/api/v1/verify", {}, b"{}", 405),
    ("DELETE", "/api/v1/verify", {}, None, 405),
    ("POST", "/api/v1/credits", {}, b"{}", 405),
    ("GET", "/no/such/path", {}, None, 404),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), BAD_REQUESTS)
async def test_bad_input_gets_a_clear_4xx(
    client: Client, method: str, path: str, headers: dict[str, str], body: bytes | None, status: int
) -> None:
    """Every malformed request gets its contract status and a JSON message."""
    response = await client.request(method, path, headers=headers, data=body)
    assert response.status == status
    payload = await response.json()
    assert payload["success"] is False and payload["message"]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    if status == 405:
        assert "Allow" in response.headers


async def test_a_chunked_body_over_8_kib_is_413(client: Client) -> None:
    """Without Content-Length the limit still holds while reading."""

    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 1024

    response = await client.post("/api/v1/verify", data=chunks())
    assert response.status == 413


async def test_health_ready_credits_openapi(client: Client) -> None:
    """The side endpoints answer as documented."""
    for path, status in (("/healthz", 200), ("/readyz", 200), ("/api/v1/credits", 200)):
        response = await client.get(path)
        body = await response.json()
        assert response.status == status
        openapi_check.check("GET", path, status, body)
    credits = await (await client.get("/api/v1/credits")).json()
    # The contract's two keys, and (extended compatibly) the bulk providers' beside them.
    assert credits == {
        "success": True,
        "data": {"listcleanser": None, "cleanmylist": None, "listcleaner": None,
                 "emailconsul": None},
    }  # fmt: skip
    doc = await (await client.get("/openapi.json")).json()
    validate_spec(doc)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {
        "/api/v1/verify", "/api/v1/credits", "/healthz", "/readyz", "/metrics", "/openapi.json",
        "/static/emailgate.js", "/demo",
    }  # fmt: skip


async def test_metrics_expose_the_contract_families(client: Client) -> None:
    """Every metric family of CONTRACT.md is registered; checks are counted with labels."""
    await verify(client, "someone@good.com")
    text = await (await client.get("/metrics")).text()
    for family in (
        "emailgate_checks_total",
        "emailgate_check_duration_seconds",
        "emailgate_cache_lookups_total",
        "emailgate_provider_requests_total",
        "emailgate_provider_skips_total",
        "emailgate_provider_request_duration_seconds",
        "emailgate_provider_credits",
        "emailgate_circuit_open",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family
    assert 'emailgate_checks_total{context="signup",decision="accept",source="local"} 1.0' in text
    assert "good.com" not in text and "someone" not in text


async def test_request_id_header(client: Client) -> None:
    """Each answer carries X-Request-Id: the caller's when safe, else a fresh one."""
    mine = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert mine.headers["X-Request-Id"] == "abc-123"
    unsafe = await client.get("/healthz", headers={"X-Request-Id": "x y;<script>"})
    assert unsafe.headers["X-Request-Id"] != "x y;<script>"
    assert len(unsafe.headers["X-Request-Id"]) == 16


async def test_one_log_line_per_check_without_the_address(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Each check logs one line with a keyed hash of the address, never the address."""
    caplog.set_level(logging.INFO, logger="emailgate")
    await verify(client, "private.person@good.com")
    await verify(client, "not an address")
    lines = [r for r in caplog.records if getattr(r, "event", None) == "check"]
    assert len(lines) == 2
    for record in lines:
        assert len(record.email_hash) == 32  # type: ignore[attr-defined]
        text = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert "private.person" not in text and "not an address" not in text


async def test_readyz_reports_redis_down(
    make_client: MakeClient, redis_url: str, redis_server: RedisServer
) -> None:
    """Redis configured but unreachable: /readyz is 503 with the reason; verify still answers."""
    client = await make_client(EMAILGATE_REDIS_URL=redis_url)
    assert (await client.get("/readyz")).status == 200
    redis_server.stop()
    try:
        response = await client.get("/readyz")
        body = await response.json()
        openapi_check.check("GET", "/readyz", 503, body)
        assert response.status == 503
        assert any("redis" in reason for reason in body["reasons"])
        r = await verify(client, "someone@good.com")
        assert r["decision"] == "accept"
    finally:
        redis_server.start()


async def test_replicas_share_the_redis_cache(make_client: MakeClient, redis_url: str) -> None:
    """A verdict stored by one replica is a cache hit at another sharing Redis."""
    env = {"EMAILGATE_REDIS_URL": redis_url, "EMAILGATE_HASH_KEY": "shared-fleet-key-0123456789"}
    one = await make_client(**env)
    two = await make_client(**env)
    assert (await verify(one, "shared@good.com"))["cached"] is False
    assert (await verify(two, "shared@good.com"))["cached"] is True
