"""`python -m benchmarks.dnsd`: the benchmark zone on a loopback DNS server, in its own process.

Prints `{"ready": true, "address": "127.0.0.1:P"}` once listening; serves until SIGTERM.
A process of its own keeps DNS answers off the load generator's event loop.
"""

from __future__ import annotations

import asyncio
import json
import signal

from tests.fakes.dns_server import DNSServer

from benchmarks.corpus import zone


async def serve() -> None:
    """Answer from the benchmark zone until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = DNSServer(zone())
    await server.start()
    print(json.dumps({"ready": True, "address": server.address}), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(serve())
