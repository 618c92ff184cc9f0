"""A whole session of mixed traffic against `emailgate serve` at debug level: its log never
holds an address, a client address or a secret, every request's lines carry its id, and the
metrics name no address, domain or key."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import free_port
from tests.fakes.cleanmylist import FakeCleanMyList
from tests.fakes.dns_server import DNSServer
from tests.fakes.listcleanser import FakeListCleanser

EXE = str(Path(sys.executable).with_name("emailgate"))

# Secrets: provider keys, the hash key, client keys (one never registered), a key pasted by
# mistake into the keys file.
LC_KEY = "lc-SECRET-4c15e7a9b2"
CML_KEY = "cml-SECRET-77d0f1e3aa"
HASH_KEY = "hk-SECRET-0f1e2d3c4b5a6978"
PUBLIC = "pk_SECRET_public_5521"
PRIVATE = "sk_SECRET_private_9034"
TEST = "tk_SECRET_test_1188"
GUESSED = "sk_SECRET_guessed_4410"
PASTED = "sk_SECRET_pasted_6262"
SECRETS = [LC_KEY, CML_KEY, HASH_KEY, PUBLIC, PRIVATE, TEST, GUESSED, PASTED]

SHOP = "https://shop.example"
# Every address carries a token found nowhere else, so any trace of one is found.
ADDRESSES = [
    "privtok.alpha@good.com",
    "Privtok.Bravo@GMAIL.com",
    "privtok.charlie@gmial.com",  # typo suggestion
    "privtok.delta@mailinator.com",  # disposable
    "privtok.echo@gone.com",  # no such domain
    "privtok.foxtrot@sick.com",  # DNS failure
    "privtok.golf@münchen.de",  # IDN
    "  privtok.hotel@good.com\t",  # whitespace
    "privtok.india@@good.com",  # bad syntax
    "privtok.juliet" + "x" * 70 + "@good.com",  # local part too long
    "deliverable.privtok.kilo@mytest.com",  # sandbox
    "undeliverable.privtok.lima@mytest.com",  # sandbox
    "privtok.mike@good.com",  # provider fails
    "privtok.november@good.com",  # provider hangs
]
TOKENS = ["privtok", "münchen", "xn--mnchen-3ya"]
CLIENT_IPS = ["203.0.113.77", "198.51.100.88", "2001:db8:42::99"]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_toml() -> str:
    return f"""
[[key]]
name = "signup-form"
kind = "public"
sha256 = "{digest(PUBLIC)}"
origins = ["{SHOP}"]
rate = "5/60s"

[[key]]
name = "backend"
kind = "private"
sha256 = "{digest(PRIVATE)}"

[[key]]
name = "integration"
kind = "test"
sha256 = "{digest(TEST)}"
"""


async def test_a_mixed_session_writes_no_address_and_no_secret(
    tmp_path: Path,
    dns_server: DNSServer,
    fake_listcleanser: FakeListCleanser,
    fake_cleanmylist: FakeCleanMyList,
    redis_url: str,
) -> None:
    """Valid, invalid, typo, disposable, IDN and sandbox addresses; GET and POST; bad JSON;
    unknown keys and origins; 429s; provider errors and hangs; reloads good and broken: the
    log holds none of the addresses, client IPs or secrets, and metrics none of them either."""
    fake_listcleanser.configure(api_key=LC_KEY)
    fake_cleanmylist.configure(api_key=CML_KEY)
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml())
    log_path = tmp_path / "serve.log"
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "EMAILGATE_PORT": str(port),
        "EMAILGATE_LOG_LEVEL": "debug",
        "EMAILGATE_DNS_SERVERS": dns_server.address,
        "EMAILGATE_API_KEYS_FILE": str(keys),
        "EMAILGATE_TRUSTED_PROXIES": "127.0.0.1",
        "EMAILGATE_HASH_KEY": HASH_KEY,
        "EMAILGATE_REDIS_URL": redis_url,
        "EMAILGATE_LISTCLEANSER_API_KEY": LC_KEY,
        "EMAILGATE_LISTCLEANSER_URL": fake_listcleanser.url,
        "EMAILGATE_CLEANMYLIST_API_KEY": CML_KEY,
        "EMAILGATE_CLEANMYLIST_URL": fake_cleanmylist.url,
    }
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(EXE, "serve", env=env, stderr=out)
    statuses: list[int] = []
    request_ids: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{url}/healthz") as r:
                        if r.status == 200:
                            break
                assert proc.returncode is None, log_path.read_text()
                await asyncio.sleep(0.05)

            async def call(method: str, path: str, **kw: Any) -> None:
                async with http.request(method, url + path, **kw) as r:
                    await r.read()
                    statuses.append(r.status)
                    request_ids.append(r.headers["X-Request-Id"])

            async def reload(text: str, event: str) -> None:
                """Write the keys file, SIGHUP the service, wait for its verdict in the log."""
                await asyncio.to_thread(keys.write_text, text)
                os.kill(proc.pid, signal.SIGHUP)
                for _ in range(200):
                    logged = await asyncio.to_thread(log_path.read_text)
                    if f'"event":"{event}"' in logged:
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError(f"no {event} after SIGHUP")

            await session(call, fake_listcleanser, reload)
            async with http.get(f"{url}/metrics") as r:
                metrics = await r.text()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)

    # The session really went through every kind of answer.
    assert {200, 400, 401, 403, 404, 429} <= set(statuses), sorted(set(statuses))
    assert len(set(request_ids)) == len(request_ids)
    assert len(fake_listcleanser.calls) > 0 and len(fake_cleanmylist.calls) > 0

    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert len(lines) > len(ADDRESSES)
    lowered = text.lower()
    for address in ADDRESSES:
        assert address.strip().lower() not in lowered
    for token in TOKENS:
        assert token not in lowered, token
    for ip in CLIENT_IPS:
        assert ip not in text, ip
    for secret in SECRETS:
        assert secret.lower() not in lowered, secret
    events = {line.get("event") for line in lines}
    expected = {"start", "check", "client_refused", "provider_error", "keys_reloaded"}
    assert expected | {"keys_reload_failed"} <= events
    # Every line written on behalf of a request names it, by the id its answer carried.
    for line in lines:
        if line.get("event") in {"check", "client_refused", "provider_error"}:
            assert line.get("request_id") in request_ids, line
        if line.get("event") == "check":
            assert len(line["email_hash"]) == 32
    assert {line["request_id"] for line in lines if "request_id" in line} <= set(request_ids)

    for needle in [*TOKENS, *SECRETS, *CLIENT_IPS, "good.com", "gmail.com", "mytest.com"]:
        assert needle.lower() not in metrics.lower(), needle


async def session(call: Any, lc: FakeListCleanser, reload: Any) -> None:
    """The traffic of the session, in the order a busy morning might bring it."""
    public = {"X-API-Key": PUBLIC, "Origin": SHOP, "X-Forwarded-For": CLIENT_IPS[0]}
    private = {"Authorization": f"Bearer {PRIVATE}", "X-Forwarded-For": CLIENT_IPS[1]}
    test = {"X-API-Key": TEST, "X-Forwarded-For": CLIENT_IPS[2]}
    for address in ADDRESSES[:10]:
        await call("GET", "/api/v1/verify", params={"email": address}, headers=private)
        await call("POST", "/api/v1/verify", json={"email": address}, headers=private)
    for address in ADDRESSES[10:12]:
        await call("GET", "/api/v1/verify", params={"email": address}, headers=test)
    # Provider failures: an error, then a hang past the deadline (CleanMyList answers instead).
    lc.fail(500, times=1)
    await call("GET", "/api/v1/verify", params={"email": ADDRESSES[12]}, headers=private)
    lc.hang(times=1)
    await call("GET", "/api/v1/verify", params={"email": ADDRESSES[13]}, headers=private)
    # Malformed requests that carry an address.
    a = ADDRESSES[0]
    await call("POST", "/api/v1/verify", data=f'{{"email": "{a}"', headers=private)
    await call("POST", "/api/v1/verify", json={"email": a, "context": a}, headers=private)
    await call("GET", "/api/v1/verify", params={"email": a, "context": "x"}, headers=private)
    await call("GET", f"/api/v1/verify/{a}", headers=private)
    await call("GET", f"/nowhere?email={a}")
    # Refusals: no key, a guessed key, a wrong origin, a public key past its rate.
    await call("GET", "/api/v1/verify", params={"email": a})
    await call("GET", "/api/v1/verify", params={"email": a}, headers={"X-API-Key": GUESSED})
    await call(
        "GET",
        "/api/v1/verify",
        params={"email": a},
        headers={**public, "Origin": "https://evil.example"},
    )
    for address in ADDRESSES[:7]:
        await call("GET", "/api/v1/verify", params={"email": address}, headers=public)
    await call("OPTIONS", "/api/v1/verify", headers={"Origin": "https://evil.example"})
    await call("GET", "/api/v1/credits", headers=private)
    await call("GET", "/readyz")
    # A reload with a key pasted where its digest belongs, then a good one.
    await reload(keys_toml().replace(digest(PRIVATE), PASTED), "keys_reload_failed")
    await reload(keys_toml(), "keys_reloaded")
    await call("GET", "/api/v1/verify", params={"email": ADDRESSES[1]}, headers=private)
