"""`python -m benchmarks.layers [--requests N] [--repeats R] [--out DIR]`: the cache-hit path
layer by layer, in-process, in microseconds of CPU per request.

Each stack answers the same raw `GET /api/v1/verify` through aiohttp's own server protocol (the
`SafeServer` that `emailgate serve` runs, with its limits) on uvloop, over a transport that
hands the bytes straight back: no sockets, no load generator, so the figures are steady to a
few percent where wrk's move by ten. The stacks add emailgate's layers one at a time:

1. `bare`: an aiohttp app whose handler sends a constant answer (the wrk yardstick, in-process);
2. `+ empty middleware`: the same with one aiohttp middleware that only passes the request on
   (aiohttp's own cost of having any middleware);
3. `+ request id, error shape`: emailgate's middleware, its access step passing straight on;
4. `+ access gate`: emailgate's middleware around the access gate (open mode), as served;
5. `emailgate`: the whole app as `emailgate serve` builds it: the verify handler, the check
   (an in-process cache hit), its JSON log line and metrics, behind layers 3 and 4;
6. `emailgate, no log line`: the same with the per-check line off (it prices the line).

The differences between neighbours price each layer; 0.6 of `bare` is the budget the cache-hit
target leaves. The interpreter is tuned once as `emailgate serve` tunes it (latency.tune), for
every stack alike. Writes DIR/layers-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from tests.fakes.dns_server import DNSServer

from benchmarks import machine
from benchmarks.corpus import zone
from benchmarks.procs import service_env
from emailgate import latency
from emailgate import log as logsetup
from emailgate.access.gate import Gate
from emailgate.app import create_app
from emailgate.config import Settings
from emailgate.http import server
from emailgate.http.errors import JSON
from emailgate.http.limits import server_options
from emailgate.http.middlewares import middleware
from emailgate.metrics import Metrics

RESULTS = Path(__file__).with_name("results")
ADDRESS = "alice.martin@gmail.com"
REQUEST = f"GET /api/v1/verify?email={ADDRESS} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".encode()
TARGET = 0.6
STACKS = (
    "bare",
    "+ empty middleware",
    "+ request id, error shape",
    "+ access gate",
    "emailgate",
    "emailgate, no log line",
)


class Loopback(asyncio.Transport):
    """A connection whose peer is this benchmark: writes are kept, and signal an answer."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.answered = asyncio.Event()
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))
        self.answered.set()

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


async def _serve(app: web.Application, requests: int, repeats: int) -> tuple[float, bytes]:
    """Best CPU µs per request over `repeats` runs of `requests`, and the last answer."""
    runner = server.SafeAppRunner(app, access_log=None, **server_options())
    await runner.setup()
    try:
        assert runner.server is not None
        protocol = runner.server()
        transport = Loopback()
        protocol.connection_made(transport)

        async def one() -> bytes:
            transport.written.clear()
            transport.answered.clear()
            protocol.data_received(REQUEST)
            await transport.answered.wait()
            return b"".join(transport.written)

        answer = b""
        for _ in range(max(requests // 10, 200)):  # warm: the cache, the interpreter's caches
            answer = await one()
        gc.collect()
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            for _ in range(requests):
                await one()
            best = min(best, (time.process_time() - start) / requests * 1e6)
        protocol.connection_lost(None)
        return best, answer
    finally:
        await runner.cleanup()


def _constant_app(body: bytes, *middlewares: Middleware) -> web.Application:
    async def verify(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": JSON})

    app = web.Application()
    app.middlewares.extend(middlewares)
    app.router.add_get("/api/v1/verify", verify)
    return app


async def _passes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Passes the request on: an empty middleware, or an access step that admits everyone."""
    return await handler(request)


async def measure(requests: int, repeats: int) -> dict[str, Any]:
    """Every stack, in order; emailgate's own answer is the constant the others send."""
    dns = DNSServer(zone())
    await dns.start()
    scratch = tempfile.TemporaryDirectory(prefix="emailgate-layers-")  # the job store's SQLite
    try:
        settings = Settings.from_env(
            service_env({"EMAILGATE_DNS_SERVERS": dns.address, "EMAILGATE_DATA_DIR": scratch.name})
        )
        latency.tune()  # as `emailgate serve` does once started; for every stack alike
        us: dict[str, float] = {}
        us["emailgate"], answer = await _serve(create_app(settings), requests, repeats)
        checks = logging.getLogger("emailgate.check")
        checks.setLevel(logging.WARNING)
        us["emailgate, no log line"], _ = await _serve(create_app(settings), requests, repeats)
        checks.setLevel(logging.NOTSET)
        body = answer.partition(b"\r\n\r\n")[2]
        if b'"success":true' not in body:
            raise RuntimeError(f"emailgate did not answer the check: {answer[:300]!r}")
        gate = Gate(settings, Metrics(), ring=None)
        layers: dict[str, tuple[Middleware, ...]] = {
            "bare": (),
            "+ empty middleware": (web.middleware(_passes),),
            "+ request id, error shape": (middleware(admit=_passes),),
            "+ access gate": (middleware(admit=gate),),
        }
        for name, stack in layers.items():
            us[name], _ = await _serve(_constant_app(body, *stack), requests, repeats)
    finally:
        await dns.stop()
        scratch.cleanup()
    return {"us_per_request": {name: us[name] for name in STACKS}, "answer_bytes": len(body)}


def report(data: dict[str, Any], command: str) -> str:
    """The Markdown table: each stack, what its layer adds, and the ratio to bare."""
    us = data["us_per_request"]
    bare = us["bare"]
    budget = bare / TARGET
    lines = [
        f"# The cache-hit path layer by layer, {data['date']}",
        "",
        f"Command: `{command}` ({data['requests']:,} requests a run, best of "
        f"{data['repeats']}). CPU per request, in-process: raw HTTP through aiohttp's server "
        "protocol on uvloop over a transport that hands the bytes straight back (no sockets, "
        "no load generator). Every stack sends emailgate's own answer.",
        "",
        "| stack | µs per request | the layer adds | ratio to bare |",
        "|---|---|---|---|",
    ]
    previous = None
    for name in STACKS:
        added = "–" if previous is None else f"{us[name] - us[previous]:+.1f}"
        if name == "emailgate":
            added = f"{us[name] - us['+ access gate']:+.1f} (handler, check, log line, metrics)"
        elif name == "emailgate, no log line":
            added = f"{us[name] - us['emailgate']:+.1f} (the log line's price, negated)"
        lines.append(f"| {name} | {us[name]:.1f} | {added} | {bare / us[name]:.2f} |")
        previous = name
    ratio = bare / us["emailgate"]
    met = "**met**" if ratio >= TARGET else "**missed**"
    lines += [
        "",
        f"Target: emailgate at ≥ {TARGET} of bare, that is ≤ {budget:.1f} µs a request here, "
        f"{budget - bare:.1f} µs for all of emailgate's work. Measured: {ratio:.2f}, {met}; "
        f"emailgate adds {us['emailgate'] - bare:.1f} µs.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in data["machine"].items() if v) + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Measure, print the table, write the report."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.layers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--requests", type=int, default=20_000, help="requests a run (%(default)s)")
    p.add_argument("--repeats", type=int, default=7, help="runs per stack, best kept (%(default)s)")
    p.add_argument("--out", type=Path, default=RESULTS, help="report folder (%(default)s)")
    args = p.parse_args()
    logsetup.setup("info", open(os.devnull, "w"))  # noqa: SIM115 — lives with the process
    data = uvloop.run(measure(args.requests, args.repeats))
    today = datetime.date.today().isoformat()
    info = machine.describe()
    shown = ("cpu", "cores", "python", "aiohttp")
    data.update(date=today, requests=args.requests, repeats=args.repeats,
                machine={k: info.get(k) for k in shown})  # fmt: skip
    command = "python -m benchmarks.layers" + (
        f" --requests {args.requests} --repeats {args.repeats}"
        if (args.requests, args.repeats) != (20_000, 7)
        else ""
    )
    text = report(data, command)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"layers-{today}.md").write_text(text)
    (args.out / f"layers-{today}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
