"""Client keys, origins and CORS, client addresses, rate limits, the credit budget of public
keys and the sandbox of test keys: through HTTP against the running app (DNS on loopback,
a fake ListCleanser on loopback where providers matter, time on a FakeClock)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emailgate.clock import FakeClock
from tests import openapi_check
from tests.fakes.listcleanser import FakeListCleanser

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

PUBLIC = "pk_live_0a1b2c3d4e5f"
PRIVATE = "sk_live_9f8e7d6c5b4a"
TEST = "tk_test_00112233"
SHOP = "https://shop.example"

VERIFY = "/api/v1/verify"
CREDITS = "/api/v1/credits"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write_keys(path: Path, *, public_rate: str = "30/60s", private: str = "") -> Path:
    """The README's example file: a public key for SHOP, a private key, a test key."""
    path.write_text(
        f"""
[[key]]
name = "signup-form"
kind = "public"
sha256 = "{digest(PUBLIC)}"
origins = ["{SHOP}", "http://localhost:8000"]
rate = "{public_rate}"

[[key]]
name = "backend"
kind = "private"
sha256 = "{digest(PRIVATE)}"
rate = "600/60s"
{private}

[[key]]
name = "integration"
kind = "test"
sha256 = "{digest(TEST)}"
rate = "100/60s"
"""
    )
    return path


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return write_keys(tmp_path / "keys.toml")


async def get(
    client: Client, path: str = VERIFY, *, email: str = "someone@good.com", **headers: str
) -> tuple[int, dict[str, Any], Any]:
    """GET with headers (`_` in names becomes `-`); status, headers, body checked against
    the OpenAPI document."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    params = {"email": email} if path == VERIFY else {}
    response = await client.get(path, params=params, headers=sent)
    body = await response.json()
    openapi_check.check("GET", path, response.status, body)
    return response.status, dict(response.headers), body


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text exposition."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            series, _, value = line.rpartition(" ")
            got = series[len(name) :].strip("{}")
            if ",".join(sorted(got.split(","))) == wanted:
                return float(value)
    raise AssertionError(f"no sample {name}{{{wanted}}}")


async def metrics_text(client: Client) -> str:
    response = await client.get("/metrics")
    return await response.text()


# -- running open ---------------------------------------------------------------------------


async def test_open_service_limits_each_client_address(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """No keys file: no key needed, EMAILGATE_OPEN_RATE per client IP, 429 with Retry-After."""
    client = await make_client(
        EMAILGATE_OPEN_RATE="3/60s", EMAILGATE_TRUSTED_PROXIES="127.0.0.1", clock=clock
    )
    a = {"X_Forwarded_For": "203.0.113.5"}
    seen = [await get(client, **a) for _ in range(3)]
    assert [s for s, _, _ in seen] == [200, 200, 200]
    assert [h["RateLimit-Remaining"] for _, h, _ in seen] == ["2", "1", "0"]
    assert {(h["RateLimit-Limit"], h["RateLimit-Reset"]) for _, h, _ in seen} == {("3", "60")}
    clock.advance(15)
    status, headers, body = await get(client, **a)
    assert status == 429 and body["success"] is False
    assert headers["Retry-After"] == "45" and headers["RateLimit-Remaining"] == "0"
    # Another client has its own window.
    assert (await get(client, X_Forwarded_For="203.0.113.6"))[0] == 200
    clock.advance(45)
    assert (await get(client, **a))[0] == 200
    # The document and health probes are never limited.
    for path in ("/healthz", "/openapi.json", "/metrics", "/healthz"):
        assert (await client.get(path, headers={"X-Forwarded-For": "203.0.113.5"})).status == 200
    text = await metrics_text(client)
    assert metric(text, "emailgate_client_rejections_total", why="rate_limited") == 1
    assert metric(text, "emailgate_client_requests_total", key="open", grant="providers") == 5


async def test_open_service_believes_no_forwarded_for_from_strangers(
    make_client: MakeClient,
) -> None:
    """Without trusted proxies a client cannot escape its limit by inventing X-Forwarded-For."""
    client = await make_client(EMAILGATE_OPEN_RATE="2/60s")
    statuses = [(await get(client, X_Forwarded_For=f"198.51.100.{i}"))[0] for i in range(3)]
    assert statuses == [200, 200, 429]


async def test_open_service_answers_no_browser_origin(make_client: MakeClient) -> None:
    """Running open, no origin gets CORS: a preflight is 403 and answers carry no CORS header."""
    client = await make_client()
    preflight = await client.options(
        VERIFY, headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    status, headers, _ = await get(client, Origin=SHOP)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


# -- keys -----------------------------------------------------------------------------------


async def test_missing_or_unknown_key_is_401(make_client: MakeClient, keys_file: Path) -> None:
    """With a keys file every API request needs a key: none or an unknown one is a 401."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    status, headers, body = await get(client)
    assert status == 401 and "X-API-Key" in body["message"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert (await get(client, X_API_Key="pk_live_guess"))[0] == 401
    assert (await get(client, Authorization="Bearer " + PRIVATE.upper()))[0] == 401
    assert (await get(client, Authorization="Basic " + PRIVATE))[0] == 401
    assert (await get(client, CREDITS))[0] == 401
    text = await metrics_text(client)
    assert metric(text, "emailgate_client_rejections_total", why="no_key") == 3
    assert metric(text, "emailgate_client_rejections_total", why="unknown_key") == 2
    assert PRIVATE not in text and PRIVATE.upper() not in text and "pk_live_guess" not in text


async def test_a_key_goes_in_x_api_key_or_bearer(make_client: MakeClient, keys_file: Path) -> None:
    """`X-API-Key: KEY` and `Authorization: Bearer KEY` (any case of the scheme) both work."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    assert (await get(client, X_API_Key=PRIVATE))[0] == 200
    assert (await get(client, Authorization=f"Bearer {PRIVATE}"))[0] == 200
    assert (await get(client, Authorization=f"bearer  {PRIVATE} "))[0] == 200
    status, _, body = await get(client, CREDITS, X_API_Key=PRIVATE)
    assert status == 200 and set(body["data"]) >= {"listcleanser", "cleanmylist"}
    text = await metrics_text(client)
    assert metric(text, "emailgate_client_requests_total", key="backend", grant="providers") == 4


async def test_a_private_key_only_from_its_addresses(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """`ips` limits a private key to client addresses, found through trusted proxies only."""
    path = write_keys(tmp_path / "keys.toml", private='ips = ["10.0.0.0/8", "192.0.2.7"]')
    client = await make_client(
        EMAILGATE_API_KEYS_FILE=str(path), EMAILGATE_TRUSTED_PROXIES="127.0.0.0/8"
    )
    key = {"X_API_Key": PRIVATE}
    status, _, body = await get(client, **key)  # the peer, 127.0.0.1, is not listed
    assert status == 403 and "not allowed" in body["message"]
    assert (await get(client, **key, X_Forwarded_For="10.1.2.3"))[0] == 200
    assert (await get(client, **key, X_Forwarded_For="192.0.2.7"))[0] == 200
    # The client put 10.1.2.3 on the left; the proxy appended the real address on the right.
    assert (await get(client, **key, X_Forwarded_For="10.1.2.3, 198.51.100.1"))[0] == 403
    text = await metrics_text(client)
    assert metric(text, "emailgate_client_rejections_total", why="client_address") == 2


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The loopback peer is not a trusted proxy here: its X-Forwarded-For counts for nothing."""
    path = write_keys(tmp_path / "keys.toml", private='ips = ["10.0.0.0/8"]')
    client = await make_client(
        EMAILGATE_API_KEYS_FILE=str(path), EMAILGATE_TRUSTED_PROXIES="192.0.2.0/24"
    )
    assert (await get(client, X_API_Key=PRIVATE, X_Forwarded_For="10.1.2.3"))[0] == 403


# -- public keys, origins and CORS ----------------------------------------------------------


async def test_a_public_key_only_from_its_origins(make_client: MakeClient, keys_file: Path) -> None:
    """No Origin or another origin: 403; one of its origins: the answer, with CORS for it."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    status, headers, body = await get(client, X_API_Key=PUBLIC)
    assert status == 403 and "Origin" in body["message"]
    status, headers, _ = await get(client, X_API_Key=PUBLIC, Origin="https://evil.example")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, headers, body = await get(client, X_API_Key=PUBLIC, Origin=SHOP)
    assert status == 200 and body["data"]["email_address"] == "someone@good.com"
    assert headers["Access-Control-Allow-Origin"] == SHOP
    assert headers["Vary"] == "Origin"
    exposed = headers["Access-Control-Expose-Headers"]
    for name in ("X-Request-Id", "Retry-After", "RateLimit-Remaining"):
        assert name in exposed
    assert "Access-Control-Allow-Credentials" not in headers
    # The same origin written with its default port is the same origin.
    assert (await get(client, X_API_Key=PUBLIC, Origin="https://shop.example:443"))[0] == 200
    assert (await get(client, X_API_Key=PUBLIC, Origin="http://localhost:8000"))[0] == 200
    assert (await get(client, X_API_Key=PUBLIC, Origin="null"))[0] == 403


async def test_an_error_to_an_allowed_origin_is_readable_by_its_page(
    make_client: MakeClient, keys_file: Path
) -> None:
    """A 400 or 401 to a page of a public key's origin carries CORS, so the page can show why."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    response = await client.post(
        VERIFY, data=b"{not json", headers={"X-API-Key": PUBLIC, "Origin": SHOP}
    )
    assert response.status == 400
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    status, headers, _ = await get(client, Origin=SHOP)
    assert status == 401 and headers["Access-Control-Allow-Origin"] == SHOP


async def test_the_preflight_of_a_public_origin(make_client: MakeClient, keys_file: Path) -> None:
    """OPTIONS from a key's origin: 204 with methods and headers; from others: 403, no CORS."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    for path in (VERIFY, CREDITS):
        response = await client.options(
            path,
            headers={
                "Origin": SHOP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        )
        assert response.status == 204, await response.text()
        h = response.headers
        assert h["Access-Control-Allow-Origin"] == SHOP and h["Vary"] == "Origin"
        assert {"GET", "POST"} <= {m.strip() for m in h["Access-Control-Allow-Methods"].split(",")}
        allowed = {x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "x-api-key", "authorization"} <= allowed
        assert int(h["Access-Control-Max-Age"]) > 0
    other = await client.options(
        VERIFY, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers
    openapi_check.check("OPTIONS", VERIFY, 403, await other.json())
    # Without an Origin it is no preflight: the method is not allowed.
    assert (await client.options(VERIFY)).status == 405


async def test_never_a_wildcard_origin(make_client: MakeClient, keys_file: Path) -> None:
    """No answer of any kind carries `Access-Control-Allow-Origin: *`."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    answers = [
        await client.get(VERIFY, params={"email": "a@good.com"}, headers=h)
        for h in (
            {"X-API-Key": PUBLIC, "Origin": SHOP},
            {"X-API-Key": PRIVATE, "Origin": "https://evil.example"},
            {"X-API-Key": PRIVATE},
            {"Origin": "*"},
        )
    ]
    answers.append(await client.options(VERIFY, headers={"Origin": "*"}))
    for response in answers:
        assert response.headers.get("Access-Control-Allow-Origin") in (None, SHOP)


async def test_a_public_key_may_only_verify(make_client: MakeClient, keys_file: Path) -> None:
    """The credits of the account are not for pages: a public key there is a 403."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys_file))
    status, _, body = await get(client, CREDITS, X_API_Key=PUBLIC, Origin=SHOP)
    assert status == 403 and "only verify" in body["message"]


# -- rate limits ----------------------------------------------------------------------------


async def test_public_keys_are_limited_per_client_and_private_keys_per_key(
    make_client: MakeClient, tmp_path: Path, clock: FakeClock
) -> None:
    """A public key's rate is per client IP; a private key's is one budget for all callers."""
    path = write_keys(tmp_path / "keys.toml", public_rate="2/60s")
    path.write_text(path.read_text().replace('rate = "600/60s"', 'rate = "2/30s"'))
    client = await make_client(
        EMAILGATE_API_KEYS_FILE=str(path), EMAILGATE_TRUSTED_PROXIES="127.0.0.1", clock=clock
    )
    public = {"X_API_Key": PUBLIC, "Origin": SHOP}
    one, two = "203.0.113.1", "203.0.113.2"
    assert [(await get(client, **public, X_Forwarded_For=one))[0] for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert (await get(client, **public, X_Forwarded_For=two))[0] == 200
    private = {"X_API_Key": PRIVATE}
    assert (await get(client, **private, X_Forwarded_For=one))[0] == 200
    assert (await get(client, **private, X_Forwarded_For=two))[0] == 200
    status, headers, _ = await get(client, **private, X_Forwarded_For="203.0.113.3")
    assert status == 429 and headers["Retry-After"] == "30"
    # The 429 to a page of the key's origin is readable there, Retry-After included.
    status, headers, _ = await get(client, **public, X_Forwarded_For=one)
    assert status == 429 and headers["Access-Control-Allow-Origin"] == SHOP
    clock.advance(30)
    assert (await get(client, **private, X_Forwarded_For=one))[0] == 200


async def test_a_key_without_a_rate_gets_the_open_rate(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """`rate` may be left out: EMAILGATE_OPEN_RATE applies."""
    path = write_keys(tmp_path / "keys.toml")
    path.write_text(path.read_text().replace('rate = "600/60s"\n', ""))
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(path), EMAILGATE_OPEN_RATE="7/10s")
    _, headers, _ = await get(client, X_API_Key=PRIVATE)
    assert (headers["RateLimit-Limit"], headers["RateLimit-Reset"]) == ("7", "10")


# -- the sandbox and the credit budget ------------------------------------------------------


def verify_calls(fake: FakeListCleanser) -> int:
    """Calls to the fake's verify endpoint (its free credits endpoint is polled on its own)."""
    return len(fake.calls.select(endpoint=VERIFY))


def with_provider(fake: FakeListCleanser) -> dict[str, str]:
    """Settings that put the fake ListCleanser in the chain (and no CleanMyList)."""
    return {
        "EMAILGATE_LISTCLEANSER_API_KEY": fake.api_key,
        "EMAILGATE_LISTCLEANSER_URL": fake.url,
        "EMAILGATE_PROVIDERS": "listcleanser",
    }


SANDBOX = {
    "deliverable": ("deliverable", "accepted_email", "accept"),
    "undeliverable": ("undeliverable", "rejected_email", "reject"),
    "risky": ("risky", "low_deliverability", "accept"),
    "unknown": ("unknown", "unknown", "accept"),
    "timeout": ("unknown", "timeout", "accept"),
}


async def test_a_test_key_answers_from_the_sandbox_and_spends_nothing(
    make_client: MakeClient, keys_file: Path, fake_listcleanser: FakeListCleanser
) -> None:
    """The local part decides, on any domain; no provider is called, no credit spent."""
    client = await make_client(
        EMAILGATE_API_KEYS_FILE=str(keys_file), **with_provider(fake_listcleanser)
    )
    credits = fake_listcleanser.credits
    for prefix, (state, reason, decision) in SANDBOX.items():
        for domain in ("mytestdomain.com", "gone.com"):
            status, _, body = await get(client, email=f"{prefix}.1@{domain}", X_API_Key=TEST)
            r = body["data"]
            assert status == 200 and r["source"] == "sandbox"
            assert (r["state"], r["reason"], r["decision"]) == (state, reason, decision), prefix
    response = await client.post(
        VERIFY, json={"email": "not an address"}, headers={"X-API-Key": TEST}
    )
    assert (await response.json())["data"]["reason"] == "invalid_email"
    assert verify_calls(fake_listcleanser) == 0 and fake_listcleanser.credits == credits
    # The same address with the private key does reach the provider: it was there to ask.
    status, _, body = await get(client, email="deliverable.1@good.com", X_API_Key=PRIVATE)
    assert body["data"]["source"] == "listcleanser" and verify_calls(fake_listcleanser) == 1
    text = await metrics_text(client)
    assert metric(text, "emailgate_client_requests_total", key="integration", grant="sandbox") == 11


async def test_public_keys_spend_credits_within_an_hourly_budget_per_client(
    make_client: MakeClient,
    keys_file: Path,
    fake_listcleanser: FakeListCleanser,
    clock: FakeClock,
) -> None:
    """Past EMAILGATE_PUBLIC_CREDITS_PER_HOUR provider-backed answers, a client gets local
    checks; answers that cost nothing (invalid, disposable) do not count, a cached provider
    verdict does (it looks fresh to a public key, and a free one would tell it was not)."""
    client = await make_client(
        EMAILGATE_API_KEYS_FILE=str(keys_file),
        EMAILGATE_TRUSTED_PROXIES="127.0.0.1",
        EMAILGATE_PUBLIC_CREDITS_PER_HOUR="2",
        clock=clock,
        **with_provider(fake_listcleanser),
    )
    one = {"X_API_Key": PUBLIC, "Origin": SHOP, "X_Forwarded_For": "203.0.113.1"}

    async def source(email: str, **headers: str) -> tuple[str, bool]:
        status, _, body = await get(client, email=email, **headers)
        assert status == 200, body
        return body["data"]["source"], body["data"]["cached"]

    assert await source("not-an-address", **one) == ("local", False)
    assert await source("x@mailinator.com", **one) == ("local", False)  # disposable
    assert await source("a@good.com", **one) == ("listcleanser", False)
    assert await source("a@good.com", **one) == ("listcleanser", False)  # cached, unsaid
    _, _, body = await get(client, email="c@good.com", **one)
    r = body["data"]
    assert (r["source"], r["state"], r["decision"]) == ("local", "unknown", "accept")
    assert verify_calls(fake_listcleanser) == 1
    # Another client has its own budget, and the local guess above was not cached for it.
    two = {**one, "X_Forwarded_For": "203.0.113.2"}
    assert await source("c@good.com", **two) == ("listcleanser", False)
    # Private keys have no budget.
    assert await source("d@good.com", X_API_Key=PRIVATE) == ("listcleanser", False)
    clock.advance(3600)
    assert await source("e@good.com", **one) == ("listcleanser", False)
    assert verify_calls(fake_listcleanser) == 4
    text = await metrics_text(client)
    assert metric(text, "emailgate_client_requests_total", key="signup-form", grant="local") == 1


async def test_a_zero_budget_keeps_public_keys_off_the_providers(
    make_client: MakeClient, keys_file: Path, fake_listcleanser: FakeListCleanser
) -> None:
    """EMAILGATE_PUBLIC_CREDITS_PER_HOUR=0: pages get local checks only, always."""
    client = await make_client(
        EMAILGATE_API_KEYS_FILE=str(keys_file),
        EMAILGATE_PUBLIC_CREDITS_PER_HOUR="0",
        **with_provider(fake_listcleanser),
    )
    _, _, body = await get(client, email="a@good.com", X_API_Key=PUBLIC, Origin=SHOP)
    assert body["data"]["source"] == "local" and verify_calls(fake_listcleanser) == 0


async def test_an_empty_keys_file_refuses_everyone(make_client: MakeClient, tmp_path: Path) -> None:
    """A keys file without keys is a locked door, not an open one."""
    path = tmp_path / "keys.toml"
    path.write_text("# no keys yet\n")
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(path))
    assert (await get(client))[0] == 401
    assert (await client.get("/healthz")).status == 200


async def test_a_test_key_with_origins_works_from_those_pages(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A test key may list origins, so a page can try the widget for free: then only there."""
    path = write_keys(tmp_path / "keys.toml")
    path.write_text(
        path.read_text().replace(
            'kind = "test"\n', 'kind = "test"\norigins = ["http://localhost:3000"]\n'
        )
    )
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(path))
    dev = "http://localhost:3000"
    status, headers, body = await get(client, email="risky@mytest.com", X_API_Key=TEST, Origin=dev)
    assert status == 200 and body["data"]["source"] == "sandbox"
    assert headers["Access-Control-Allow-Origin"] == dev
    assert (await get(client, X_API_Key=TEST, Origin=SHOP))[0] == 403
    assert (await get(client, X_API_Key=TEST))[0] == 403


async def test_sighup_on_an_open_service_does_not_end_it(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Running open, SIGHUP (a routine `reload`) is logged and ignored, not fatal."""
    client = await make_client()
    # Only send it when a handler is really in place: the default action would end pytest.
    assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None)
    with caplog.at_level(logging.INFO, logger="emailgate.access"):
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if any(getattr(r, "event", "") == "keys_reload_skipped" for r in caplog.records):
                break
            await asyncio.sleep(0.01)
    assert any(getattr(r, "event", "") == "keys_reload_skipped" for r in caplog.records)
    assert (await get(client))[0] == 200
