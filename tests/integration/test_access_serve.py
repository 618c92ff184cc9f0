"""`emailgate serve` as operators run it: keys reloaded on a real SIGHUP, the server's header
limits and slow-client timeout in force."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emailgate.http.limits import IDLE_TIMEOUT_S, MAX_HEADERS, MAX_REQUEST_LINE
from tests.conftest import free_port
from tests.fakes.dns_server import DNSServer

EXE = str(Path(sys.executable).with_name("emailgate"))
OLD = "sk_live_old_backend_key"
NEW = "sk_live_new_backend_key"


def entry(name: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f'[[key]]\nname = "{name}"\nkind = "private"\nsha256 = "{digest}"\nrate = "600/60s"\n'


@dataclass
class Service:
    proc: asyncio.subprocess.Process
    url: str
    port: int
    keys: Path
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (a line still being written is left out)."""
        complete = self.log.read_text(errors="replace").rpartition("\n")[0]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    async def wait_for_event(self, event: str, count: int = 1, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if sum(1 for line in self.lines() if line.get("event") == event) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event!r} in the log:\n{self.log.read_text()[-3000:]}")


@pytest.fixture
async def service(tmp_path: Path, dns_server: DNSServer) -> AsyncIterator[Service]:
    """`emailgate serve` with a keys file holding OLD, logging to a file."""
    keys = tmp_path / "keys.toml"
    keys.write_text(entry("backend", OLD))
    log = tmp_path / "serve.log"
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "EMAILGATE_PORT": str(port),
        "EMAILGATE_DNS_SERVERS": dns_server.address,
        "EMAILGATE_API_KEYS_FILE": str(keys),
    }
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(EXE, "serve", env=env, stderr=out)
    svc = Service(proc, f"http://127.0.0.1:{port}", port, keys, log)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{svc.url}/healthz") as r:
                        if r.status == 200:
                            break
                assert proc.returncode is None, log.read_text()
                await asyncio.sleep(0.05)
        await svc.wait_for_event("start")
        yield svc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def status_with(url: str, key: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{url}/api/v1/verify", params={"email": "a@good.com"}, headers={"X-API-Key": key}
        ) as r,
    ):
        await r.read()
        return r.status


async def test_sighup_reloads_the_keys_and_a_broken_file_keeps_them(service: Service) -> None:
    """SIGHUP swaps in the edited file without a restart; a broken edit keeps the keys in
    force and the log says why, without the file's secrets."""
    assert await status_with(service.url, OLD) == 200
    assert await status_with(service.url, NEW) == 401
    service.keys.write_text(entry("backend-2", NEW))
    os.kill(service.proc.pid, signal.SIGHUP)
    await service.wait_for_event("keys_reloaded")
    assert await status_with(service.url, NEW) == 200
    assert await status_with(service.url, OLD) == 401

    # A private key pasted where its digest belongs, and a public key without origins.
    service.keys.write_text(
        f'[[key]]\nname = "oops"\nkind = "private"\nsha256 = "{OLD}"\n'
        '[[key]]\nname = "page"\nkind = "public"\n'
        f'sha256 = "{hashlib.sha256(b"x").hexdigest()}"\n'
    )
    os.kill(service.proc.pid, signal.SIGHUP)
    await service.wait_for_event("keys_reload_failed")
    assert await status_with(service.url, NEW) == 200  # still in force
    failed = next(line for line in service.lines() if line.get("event") == "keys_reload_failed")
    assert failed["level"] == "error" and "1 keys in force stay" in failed["msg"]
    assert any("sha256" in p for p in failed["problems"])
    assert any("origins" in p for p in failed["problems"])
    log = service.log.read_text()
    assert OLD not in log and NEW not in log
    assert service.proc.returncode is None  # SIGHUP did not end the process

    service.keys.write_text(entry("backend", OLD) + entry("backend-2", NEW))
    os.kill(service.proc.pid, signal.SIGHUP)
    await service.wait_for_event("keys_reloaded", count=2)
    assert await status_with(service.url, OLD) == 200
    assert await status_with(service.url, NEW) == 200


async def raw_status(port: int, head: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
        return int(line.split()[1])
    finally:
        writer.close()


async def test_the_server_refuses_oversized_request_heads(service: Service) -> None:
    """A request line over MAX_REQUEST_LINE (below aiohttp's own 8190) or more than MAX_HEADERS
    header lines: 400 from the server before the app; a normal head passes."""
    line = b"GET /api/v1/verify?email=" + b"a" * MAX_REQUEST_LINE + b"@good.com HTTP/1.1\r\n"
    assert len(line) < 8190  # aiohttp's default would have let it through
    assert await raw_status(service.port, line + b"Host: x\r\n\r\n") == 400
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS))
    assert await raw_status(service.port, head + many + b"\r\n") == 400
    fine = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS - 1))
    assert await raw_status(service.port, head + fine + b"\r\n") == 200


@pytest.mark.slow
async def test_the_server_disconnects_a_client_trickling_its_head(service: Service) -> None:
    """Slowloris: a head sent a byte per second is cut off after IDLE_TIMEOUT_S."""
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    start = time.monotonic()
    closed_after = None
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    closed_after = time.monotonic() - start
                    break
            except TimeoutError:
                continue
            except ConnectionError:
                closed_after = time.monotonic() - start
                break
    finally:
        writer.close()
    assert closed_after is not None
    assert IDLE_TIMEOUT_S - 1 < closed_after < IDLE_TIMEOUT_S + 3
