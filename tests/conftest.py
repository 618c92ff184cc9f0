"""Fixtures shared by every test: a private Redis server and a FakeClock."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from emailgate.app import create_app
from emailgate.clock import FakeClock
from emailgate.config import Settings
from tests.fakes.dns_server import NXDOMAIN, SERVFAIL, SILENT, DNSServer, Zone

pytest_plugins = ["tests.fakes.fixtures"]  # the fake providers' fixtures

# The zone every test's DNS server starts with. Real top-level domains only: the syntax stage
# refuses special-use names such as .test or .example, as a signup form should.
ZONES: dict[str, Zone | str] = {
    "good.com": Zone(mx=[(20, "mx2.good.com"), (10, "mx1.good.com")]),
    "gmail.com": Zone(mx=[(5, "gmail-smtp-in.l.google.com")]),
    "gamil.com": Zone(mx=[(10, "mx.gamil.com")]),
    "mailinator.com": Zone(mx=[(10, "mail.mailinator.com")]),
    "xn--mnchen-3ya.de": Zone(mx=[(10, "mx.xn--mnchen-3ya.de")]),
    "nullmx.com": Zone(mx=[(0, ".")]),
    "aonly.com": Zone(a=["192.0.2.10"]),
    "aaaaonly.net": Zone(aaaa=["2001:db8::10"]),
    "empty.com": Zone(),
    "gone.com": NXDOMAIN,
    "sick.com": SERVFAIL,
    "mute.com": SILENT,
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process of our own, on a free loopback port, keeping nothing on disk."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: run scripts/test, which installs it")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private Redis for the session; tests that stop it must start it again."""
    server = RedisServer(port=free_port(), workdir=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    """The private Redis's URL; the database is emptied after each test."""
    if redis_server.proc is None:
        redis_server.start()
    yield redis_server.url
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.proc = None
        redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def dns_server() -> AsyncIterator[DNSServer]:
    """A DNS server on loopback answering from ZONES (tests may change its table)."""
    server = DNSServer(ZONES)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings_env(dns_server: DNSServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a test service: our DNS server, a job store in tmp_path, everything
    else embedded."""
    return {
        "EMAILGATE_DNS_SERVERS": dns_server.address,
        "EMAILGATE_LOG_LEVEL": "info",
        "EMAILGATE_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def make_client(
    aiohttp_client: Any, settings_env: dict[str, str]
) -> Callable[..., Awaitable[TestClient[web.Request, web.Application]]]:
    """Start an emailgate app on loopback: `await make_client(EMAILGATE_X="…", chain=…)`."""

    async def make(**overrides: Any) -> TestClient[web.Request, web.Application]:
        env = dict(settings_env)
        deps = {}
        for name, value in overrides.items():
            if name.startswith("EMAILGATE_"):
                env[name] = value
            else:
                deps[name] = value
        settings = Settings.from_env(env)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(settings, **deps)
        )
        return client

    return make


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the test advances it."""
    return FakeClock()
