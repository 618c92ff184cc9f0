"""`python -m benchmarks.attacks [--out DIR] [--python PY]`: what an attacker holding a page's
public key can do to everyone else, measured against a real `emailgate serve` on loopback.

1. breaker: 5 concurrent checks every 12 s of addresses whose mail side stalls (the fake
   provider never answers them), on names of one wildcard zone, sent with the public key,
   for 60 s; meanwhile a backend checks ordinary addresses with its private key. Figure:
   the share of the backend's checks answered by the provider (goal >= 95 %).
2. budget: one public key, default budgets (EMAILGATE_PUBLIC_CREDITS_PER_HOUR=20), 1,000
   fresh addresses from 1,000 /64s of one /48, then 1,000 more from 1,000 /48s, through a
   trusted proxy. Figure: provider calls spent (what one hour of abuse costs the owner).
3. memory: 40,000 addresses on 40,000 unique domains of a wildcard zone whose answers live a
   day (the DNS library caches answers for their TTL). Figure: RSS growth of the service
   (goal <= 40 MiB).
4. log: a session of malformed requests carrying a key and an address (CR in a header, long
   and unencoded URLs, bad headers, methods and chunks) at debug level. Figure: occurrences
   of the key, the address and the client address in the log (goal 0), and answers that are
   the contract's JSON error.

`--python` runs the service with another interpreter (e.g. another checkout's venv) to
measure a different version. Writes DIR/attacks-<date>.md and .json; prints each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from tests.fakes.dns_server import DNSServer, Zone
from tests.fakes.listcleanser import VERIFY, FakeListCleanser

from benchmarks.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results")
PUBLIC = "pk_live_bench_page_key"
PRIVATE = "sk_live_bench_backend_key"
SHOP = "https://shop.example"
KEYS = f"""
[[key]]
name = "signup-form"
kind = "public"
sha256 = "{hashlib.sha256(PUBLIC.encode()).hexdigest()}"
origins = ["{SHOP}"]
rate = "1000000/60s"

[[key]]
name = "backend"
kind = "private"
sha256 = "{hashlib.sha256(PRIVATE.encode()).hexdigest()}"
rate = "1000000/60s"
"""


class Serve:
    """`emailgate serve` as a child process."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def rss(self) -> int:
        """Resident set size in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


@contextlib.asynccontextmanager
async def serve(python: str, workdir: Path, name: str, env: dict[str, str]) -> AsyncIterator[Serve]:
    """Start the service with `env` (EMAILGATE_* only), wait for /healthz, stop it after."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
    full = base | env | {"EMAILGATE_HOST": "127.0.0.1", "EMAILGATE_PORT": str(port)}
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            python, "-m", "emailgate", "serve", env=full, cwd=REPO_ROOT, stdout=out, stderr=out
        )
    service = Serve(proc, port, log)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{service.url}/healthz") as r:
                        if r.status == 200:
                            break
                if proc.returncode is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                await asyncio.sleep(0.05)
        yield service
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def base_env(dns: DNSServer, keys: Path, fake: FakeListCleanser | None) -> dict[str, str]:
    env = {"EMAILGATE_DNS_SERVERS": dns.address, "EMAILGATE_API_KEYS_FILE": str(keys)}
    if fake is not None:
        env |= {
            "EMAILGATE_LISTCLEANSER_URL": fake.url,
            "EMAILGATE_LISTCLEANSER_API_KEY": fake.api_key,
            "EMAILGATE_LISTCLEANSER_RATE": "1000000/60s",
            "EMAILGATE_PROVIDERS": "listcleanser",
        }
    return env


async def verify(
    http: aiohttp.ClientSession, url: str, email: str, key: str, forwarded: str | None = None
) -> dict[str, Any]:
    headers = {"X-API-Key": key}
    if key == PUBLIC:
        headers["Origin"] = SHOP
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    async with http.get(f"{url}/api/v1/verify", params={"email": email}, headers=headers) as r:
        body: dict[str, Any] = await r.json()
        return body["data"]


async def breaker(python: str, workdir: Path, keys: Path, seconds: float) -> dict[str, Any]:
    """Scenario 1: the backend's provider share while stalling addresses are sent."""
    dns = DNSServer({"good.com": Zone(mx=[(10, "mx.good.com")])})
    await dns.start()
    for i in range(200):
        dns.zones[f"w{i}.slow-mail.net"] = Zone(mx=[(10, "mx.slow-mail.net")])
    fake = FakeListCleanser()
    fake.configure(hang_s=30.0, rate_limit=10**9)
    await fake.start()
    sources: list[str] = []
    try:
        env = base_env(dns, keys, fake)
        async with serve(python, workdir, "breaker", env) as svc, aiohttp.ClientSession() as http:
            stop = asyncio.Event()

            async def backend() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    result = await verify(http, svc.url, f"customer{n}@good.com", PRIVATE)
                    sources.append(result["source"])
                    await asyncio.sleep(0.1)

            async def attacker() -> None:
                burst = 0
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    emails = [f"hang.{burst}.{i}@w{(burst * 5 + i) % 200}.slow-mail.net"
                              for i in range(5)]  # fmt: skip
                    await asyncio.gather(*(verify(http, svc.url, e, PUBLIC) for e in emails))
                    burst += 1
                    await asyncio.sleep(max(0.0, 12 - 1.5))
                stop.set()

            await asyncio.gather(backend(), attacker())
    finally:
        await fake.stop()
        await dns.stop()
    share = sources.count("listcleanser") / max(1, len(sources))
    stalled = sum(1 for e in fake.calls.emails(VERIFY) if e and e.startswith("hang."))
    return {"backend_checks": len(sources), "provider_share": share,
            "stalled_calls": stalled, "goal": 0.95, "met": share >= 0.95}  # fmt: skip


async def budget(python: str, workdir: Path, keys: Path, count: int) -> dict[str, Any]:
    """Scenario 2: provider calls one public key gets by rotating /64s, then /48s."""
    dns = DNSServer({"good.com": Zone(mx=[(10, "mx.good.com")])})
    await dns.start()
    fake = FakeListCleanser()
    fake.configure(credits=10**9, rate_limit=10**9)
    await fake.start()
    site = ipaddress.IPv6Network("2001:db8:7::/48")
    try:
        env = base_env(dns, keys, fake) | {"EMAILGATE_TRUSTED_PROXIES": "127.0.0.1"}
        async with serve(python, workdir, "budget", env) as svc, aiohttp.ClientSession() as http:
            for n in range(count):
                forwarded = str(site.network_address + (n << 64) + 1)
                await verify(http, svc.url, f"a{n}@good.com", PUBLIC, forwarded)
            by_64 = len(fake.calls.emails(VERIFY))
            for n in range(1, count + 1):
                forwarded = str(ipaddress.IPv6Address("2001:db8::") + (n << 80) + 1)
                await verify(http, svc.url, f"b{n}@good.com", PUBLIC, forwarded)
            total = len(fake.calls.emails(VERIFY))
    finally:
        await fake.stop()
        await dns.stop()
    return {"requests_each": count, "calls_rotating_64s_in_one_48": by_64,
            "calls_after_rotating_48s_too": total}  # fmt: skip


async def memory(python: str, workdir: Path, keys: Path, domains: int) -> dict[str, Any]:
    """Scenario 3: RSS growth over unique long-TTL domains (local checks, no provider)."""
    zone: dict[str, Zone | str] = {
        f"u{i}.wild-mail.net": Zone(mx=[(10, f"mx.u{i}.wild-mail.net")], ttl=86400)
        for i in range(domains)
    }
    dns = DNSServer(zone)
    await dns.start()
    samples: list[tuple[int, int]] = []
    try:
        env = base_env(dns, keys, None)
        async with serve(python, workdir, "memory", env) as svc:
            connector = aiohttp.TCPConnector(limit=32)
            async with aiohttp.ClientSession(connector=connector) as http:
                await verify(http, svc.url, "warm@u0.wild-mail.net", PRIVATE)
                base = svc.rss()
                samples.append((0, base))
                sem = asyncio.Semaphore(32)

                async def one(i: int) -> None:
                    async with sem:
                        await verify(http, svc.url, f"user{i}@u{i}.wild-mail.net", PRIVATE)

                step = max(1, domains // 8)
                for start in range(0, domains, step):
                    await asyncio.gather(
                        *(one(i) for i in range(start, min(domains, start + step)))
                    )
                    samples.append((min(domains, start + step), svc.rss()))
    finally:
        await dns.stop()
    growth = samples[-1][1] - samples[0][1]
    return {"domains": domains, "rss_start_mib": samples[0][1] / 2**20,
            "rss_end_mib": samples[-1][1] / 2**20, "growth_mib": growth / 2**20,
            "samples": samples, "goal_mib": 40, "met": growth <= 40 * 2**20}  # fmt: skip


async def malformed_log(python: str, workdir: Path, keys: Path) -> dict[str, Any]:
    """Scenario 4: the log of a session of malformed requests."""
    from tests.integration.test_attacks import MALFORMED, VICTIM, exchange

    dns = DNSServer({"good.com": Zone(mx=[(10, "mx.good.com")])})
    await dns.start()
    answers = []
    try:
        env = base_env(dns, keys, None) | {"EMAILGATE_LOG_LEVEL": "debug"}
        async with serve(python, workdir, "malformed", env) as svc:
            for raw in [r.replace(b"sk_live_backend_secret_key", PRIVATE.encode())
                        for r in MALFORMED]:  # fmt: skip
                status, headers, body = await exchange(svc.port, raw)
                json_error = headers.get("content-type", "").startswith("application/json")
                echoes = PRIVATE.encode() in body or VICTIM.encode() in body
                answers.append({"status": status, "json": json_error, "echoes": echoes})
            await asyncio.sleep(0.3)
    finally:
        await dns.stop()
    log = (workdir / "malformed.log").read_text(errors="replace")
    after_start = log.split('"event":"start"', 1)[-1].partition("\n")[2]
    found = {"key": log.count(PRIVATE), "address": log.count(VICTIM),
             "client_address": after_start.count("127.0.0.1")}  # fmt: skip
    return {"requests": len(answers), "log_lines": len(log.splitlines()), "found": found,
            "json_400s": sum(a["json"] and a["status"] == 400 for a in answers),
            "echoes": sum(a["echoes"] for a in answers),
            "met": not any(found.values()) and not any(a["echoes"] for a in answers)}  # fmt: skip


def render(results: dict[str, Any], command: str) -> str:
    b, c, m, g = results["breaker"], results["budget"], results["memory"], results["log"]
    met = {True: "met", False: "MISSED"}
    return "\n".join([
        f"# Attacks with a public key ({results['date']})", "",
        f"Command: `{command}`  ",
        f"Service: `{results['python']} -m emailgate serve`", "",
        "| figure | value | goal |", "|---|---|---|",
        f"| backend checks answered by the provider while stalling addresses are sent "
        f"({b['backend_checks']} checks, {b['stalled_calls']} stalled calls) "
        f"| {b['provider_share']:.1%} | >= 95 %: {met[b['met']]} |",
        f"| provider calls of one public key: {c['requests_each']} fresh addresses from as many "
        f"/64s of one /48 | {c['calls_rotating_64s_in_one_48']} | budget of the /48 (4 x 20) |",
        f"| ... then {c['requests_each']} more from as many /48s | "
        f"{c['calls_after_rotating_48s_too']} in all | the key's budget (10 x 20) |",
        f"| RSS growth after {m['domains']:,} unique domains (TTL 1 day) | "
        f"{m['growth_mib']:.1f} MiB ({m['rss_start_mib']:.0f} -> {m['rss_end_mib']:.0f}) "
        f"| <= 40 MiB: {met[m['met']]} |",
        f"| malformed requests: key / address / client address in the log "
        f"({g['requests']} requests, {g['log_lines']} log lines) | "
        f"{g['found']['key']} / {g['found']['address']} / {g['found']['client_address']} "
        f"| 0: {met[g['met']]} |",
        f"| ... answered with the contract's JSON 400, nothing echoed | "
        f"{g['json_400s']} of {g['requests']}, {g['echoes']} echoes | all |", "",
    ])  # fmt: skip


async def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.attacks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--breaker-seconds", type=float, default=60.0)
    p.add_argument("--budget-requests", type=int, default=1000)
    p.add_argument("--domains", type=int, default=40_000)
    p.add_argument("--name", default=f"attacks-{datetime.date.today().isoformat()}")
    p.add_argument("--only", choices=["breaker", "budget", "memory", "log"],
                   help="run one scenario and print it (no report)")  # fmt: skip
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="emailgate-attacks-"))  # the services' logs
    keys = workdir / "keys.toml"
    keys.write_text(KEYS)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results: dict[str, Any] = {"date": now, "python": args.python}
    if args.only:
        run = {"breaker": lambda: breaker(args.python, workdir, keys, args.breaker_seconds),
               "budget": lambda: budget(args.python, workdir, keys, args.budget_requests),
               "memory": lambda: memory(args.python, workdir, keys, args.domains),
               "log": lambda: malformed_log(args.python, workdir, keys)}[args.only]  # fmt: skip
        print(args.only + ":", json.dumps(await run()), flush=True)
        return 0
    results["breaker"] = await breaker(args.python, workdir, keys, args.breaker_seconds)
    print("breaker:", json.dumps(results["breaker"]), flush=True)
    results["budget"] = await budget(args.python, workdir, keys, args.budget_requests)
    print("budget:", json.dumps(results["budget"]), flush=True)
    results["memory"] = await memory(args.python, workdir, keys, args.domains)
    print("memory:", json.dumps({k: v for k, v in results["memory"].items() if k != "samples"}),
          flush=True)  # fmt: skip
    results["log"] = await malformed_log(args.python, workdir, keys)
    print("log:", json.dumps(results["log"]), flush=True)
    command = "python -m benchmarks.attacks " + " ".join(argv or sys.argv[1:])
    text = render(results, command.strip())
    (args.out / f"{args.name}.md").write_text(text)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    print(text)
    print(f"logs of the services: {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
