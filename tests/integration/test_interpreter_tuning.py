"""A real `emailgate serve` tunes its interpreter for answer times once it has started: the
start-up heap frozen out of the collector's full passes, a short GIL switch interval."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from emailgate.latency import SWITCH_INTERVAL_S, YOUNG_THRESHOLD
from tests.fakes.dns_server import DNSServer
from tests.serviceproc import ServiceProcess


async def tuned_line(log_path: Path) -> dict[str, Any]:
    """The serve log's interpreter_tuned record (written just after the listeners open)."""
    for _ in range(100):
        for line in (await asyncio.to_thread(log_path.read_text)).splitlines():
            record: dict[str, Any] = json.loads(line)
            if record.get("event") == "interpreter_tuned":
                return record
        await asyncio.sleep(0.05)
    raise AssertionError("no interpreter_tuned line")


async def test_serve_freezes_its_start_up_heap_and_shortens_the_switch_interval(
    dns_server: DNSServer, tmp_path: Path
) -> None:
    """The line reports what the interpreter says: tens of thousands of start-up objects
    frozen, young collections every YOUNG_THRESHOLD allocations, the switch interval at
    SWITCH_INTERVAL_S; the service still answers."""
    log_path = tmp_path / "serve.log"
    service = await ServiceProcess.start({"EMAILGATE_DNS_SERVERS": dns_server.address}, log_path)
    try:
        record = await tuned_line(log_path)
        assert record["frozen_objects"] > 10_000
        assert record["switch_interval_s"] == SWITCH_INTERVAL_S
        assert record["gc_threshold"][0] == YOUNG_THRESHOLD
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{service.url}/api/v1/verify", params={"email": "ann@good.com"}) as r,
        ):
            assert r.status == 200
    finally:
        await service.stop()
