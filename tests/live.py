"""An emailgate app served on a real loopback port from a background thread.

For tests that are synchronous by nature (hypothesis, a browser, Prometheus scraping) but want
the app in-process, with its own DNS server on loopback.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from emailgate.app import create_app
from emailgate.config import Settings
from tests.fakes.dns_server import DNSServer


@contextmanager
def live_app(env: dict[str, str], zones: dict[str, Any], **deps: Any) -> Iterator[str]:
    """Serve an app built from `env` (plus a DNS server on `zones`); yield its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        dns = DNSServer(zones)
        await dns.start()
        settings = Settings.from_env({**env, "EMAILGATE_DNS_SERVERS": dns.address})
        runner = web.AppRunner(create_app(settings, **deps), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        state.update(dns=dns, runner=runner, url=f"http://127.0.0.1:{port}")

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as e:  # surface start-up failures in the test thread
            state["error"] = e
        ready.set()
        if "error" not in state:
            loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in state:
        raise state["error"]
    try:
        yield str(state["url"])
    finally:

        async def stop() -> None:
            await state["runner"].cleanup()
            await state["dns"].stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
