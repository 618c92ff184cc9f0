"""The `emailgate` command as users run it: real processes, real signals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import free_port
from tests.fakes.dns_server import DNSServer

EXE = str(Path(sys.executable).with_name("emailgate"))


async def run(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ["PATH"], **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_hash_key_prints_the_sha256() -> None:
    """`emailgate hash-key KEY` prints the hex SHA-256 to put in a keys file."""
    code, out, _ = await run(EXE, "hash-key", "pk_live_123")
    assert code == 0
    assert out.strip() == hashlib.sha256(b"pk_live_123").hexdigest()
    code, out, _ = await run(EXE, "hash-key", "-", stdin=b"pk_live_123\n")
    assert out.strip() == hashlib.sha256(b"pk_live_123").hexdigest()


async def test_check_prints_the_result(dns_server: DNSServer) -> None:
    """`emailgate check` runs the pipeline once; exit 0 on accept, 1 on reject."""
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_LOG_LEVEL": "error"}
    code, out, _ = await run(EXE, "check", "someone@good.com", "--context", "marketing", env=env)
    result = json.loads(out)
    assert (code, result["context"], result["mx_record"]) == (0, "marketing", "mx1.good.com")
    code, out, _ = await run(sys.executable, "-m", "emailgate", "check", "x@gone.com", env=env)
    assert (code, json.loads(out)["reason"]) == (1, "invalid_domain")


async def test_bad_settings_exit_non_zero_listing_every_problem() -> None:
    """Every bad setting is named on stderr; the secret in a bad URL is not."""
    env = {
        "EMAILGATE_PORT": "eighty",
        "EMAILGATE_REDIS_URL": "mysql://root:s3cr3t@db/0",
        "EMAILGATE_DEADLINE_MS": "0",
    }
    code, out, err = await run(EXE, "serve", env=env)
    assert code == 2 and out == ""
    for name in ("EMAILGATE_PORT", "EMAILGATE_REDIS_URL", "EMAILGATE_DEADLINE_MS"):
        assert name in err
    assert "s3cr3t" not in err


async def test_serve_answers_then_stops_on_sigterm(dns_server: DNSServer) -> None:
    """`emailgate serve` logs its defaults, answers the README's curl, exits 0 on SIGTERM."""
    port = free_port()
    env = {"EMAILGATE_PORT": str(port), "EMAILGATE_DNS_SERVERS": dns_server.address}
    proc = await asyncio.create_subprocess_exec(
        EXE, "serve", env={"PATH": os.environ["PATH"], **env}, stderr=asyncio.subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/verify?email=someone@gmail.com"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(url) as response:
                        body = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the service did not start")
        assert body["success"] is True and body["data"]["decision"] == "accept"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        assert proc.stderr is not None
        lines = [json.loads(line) for line in (await proc.stderr.read()).decode().splitlines()]
        start = next(line for line in lines if line.get("event") == "start")
        assert "providers: none configured, local checks only" in start["notes"]
        assert start["client_authentication"].startswith("none")
        assert "deadline_ms" in start["embedded_defaults"]
        assert not any("someone@gmail.com" in json.dumps(line) for line in lines)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
