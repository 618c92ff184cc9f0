"""`python -m benchmarks.bare PORT BODY_FILE [asyncio|uvloop]`: the yardstick, a bare aiohttp
handler.

It answers `GET /api/v1/verify` with a constant JSON body (the service's own answer for the
benchmark address, captured at start, so both send the same bytes), with `web.run_app`, no
access log, on the default asyncio event loop or on uvloop (the one `emailgate serve` runs):
the benchmark measures both and holds the service to the faster.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvloop
from aiohttp import web

JSON = "application/json; charset=utf-8"


def main() -> None:
    """Serve until SIGTERM."""
    port, body = int(sys.argv[1]), Path(sys.argv[2]).read_bytes()
    loop = sys.argv[3] if len(sys.argv) > 3 else "asyncio"

    async def verify(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": JSON})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"success":true}', headers={"Content-Type": JSON})

    app = web.Application()
    app.router.add_get("/api/v1/verify", verify)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop() if loop == "uvloop" else None)  # fmt: skip


if __name__ == "__main__":
    main()
