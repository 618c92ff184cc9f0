"""What every scenario shares: the work directory, sizes, progress, and the processes it started."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from tests.fakes.process import FakeProvidersProcess

from benchmarks import procs
from benchmarks.progress import Progress
from benchmarks.sizes import Sizes


@dataclass
class Bench:
    """One benchmark run; every process started through it is stopped when the run ends."""

    workdir: Path
    sizes: Sizes
    progress: Progress
    stack: contextlib.AsyncExitStack
    profile: bool = True
    _dns: str | None = field(default=None, init=False)

    async def dns(self) -> str:
        """The loopback DNS server's `host:port`, started on first use."""
        if self._dns is None:
            proc, address = await procs.start_dns(self.workdir)
            self.stack.push_async_callback(proc.stop)
            self._dns = address
            self.progress.say(f"DNS server on {address} (benchmark zone)")
        return self._dns

    async def service(self, name: str, settings: Mapping[str, str]) -> procs.HttpProc:
        """`emailgate serve` with these settings (the DNS server's address added)."""
        env = {"EMAILGATE_DNS_SERVERS": await self.dns(), **settings}
        service = await procs.start_service(name, self.workdir, env)
        self.stack.push_async_callback(service.stop)
        self.progress.say(f"emailgate serve '{name}' on {service.url} (pid {service.pid})")
        return service

    async def bare(self, body: bytes, name: str = "bare", loop: str = "asyncio") -> procs.HttpProc:
        """The bare aiohttp handler answering `body` on `loop` (asyncio or uvloop)."""
        bare = await procs.start_bare(name, self.workdir, body, loop)
        self.stack.push_async_callback(bare.stop)
        self.progress.say(f"bare aiohttp handler on {loop}, {bare.url} (pid {bare.pid})")
        return bare

    async def redis(self) -> str:
        """A private redis-server's URL."""
        proc, url = await procs.start_redis(self.workdir)
        self.stack.push_async_callback(proc.stop)
        self.progress.say(f"redis-server on {url}")
        return url

    async def fakes(self, *args: str) -> FakeProvidersProcess:
        """The fake ListCleanser and CleanMyList in a process of their own."""
        fakes = await FakeProvidersProcess.start(*args)
        self.stack.push_async_callback(fakes.stop)
        self.progress.say(
            f"fake providers: ListCleanser {fakes.listcleanser_url}, "
            f"CleanMyList {fakes.cleanmylist_url}"
        )
        return fakes


async def scrape(session: aiohttp.ClientSession, url: str, family: str) -> dict[str, float]:
    """Samples of one metric family from a service's /metrics: {label text: value}."""
    async with session.get(url + "/metrics") as resp:
        text = await resp.text()
    pattern = re.compile(rf"^{re.escape(family)}(\{{[^}}]*\}})?\s+(\S+)$", re.M)
    return {m.group(1) or "": float(m.group(2)) for m in pattern.finditer(text)}
