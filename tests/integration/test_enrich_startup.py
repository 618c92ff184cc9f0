"""Enrichment at start-up: the Cleanlist.ai key is checked once and the start-up log says
whether enrichment is on."""

from __future__ import annotations

import json
from pathlib import Path

from emailgate.config import Settings
from emailgate.enrich.assemble import open_enrichment
from emailgate.metrics import Metrics
from tests.fakes.cleanlist import VALIDATE, FakeCleanlist
from tests.fakes.dns_server import DNSServer
from tests.serviceproc import ServiceProcess


async def start_note(env: dict[str, str], tmp_path: Path) -> str:
    """The enrichment note of a real `emailgate serve`'s start-up log line."""
    log_path = tmp_path / "serve.log"
    service = await ServiceProcess.start(env, log_path)
    try:
        for line in log_path.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == "start":
                return next(n for n in record["notes"] if n.startswith("enrichment:"))
    finally:
        await service.stop()
    raise AssertionError("no start line")


async def test_serve_with_a_good_key_says_enrichment_is_on(
    fake_cleanlist: FakeCleanlist, dns_server: DNSServer, tmp_path: Path
) -> None:
    """The key is validated once at start-up, and the log says enrichment is on; no key logged."""
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address,
           "EMAILGATE_CLEANLIST_URL": fake_cleanlist.api_url,
           "EMAILGATE_CLEANLIST_API_KEY": fake_cleanlist.api_key}  # fmt: skip
    note = await start_note(env, tmp_path)
    assert note == "enrichment: on (Cleanlist.ai key accepted)"
    assert [c.endpoint for c in fake_cleanlist.calls] == [VALIDATE]
    assert fake_cleanlist.api_key not in (tmp_path / "serve.log").read_text()


async def test_serve_without_a_key_says_enrichment_is_off(
    dns_server: DNSServer, tmp_path: Path
) -> None:
    """No EMAILGATE_CLEANLIST_API_KEY: enrichment is off, and the log says why."""
    note = await start_note({"EMAILGATE_DNS_SERVERS": dns_server.address}, tmp_path)
    assert note == "enrichment: off (no EMAILGATE_CLEANLIST_API_KEY)"


async def test_a_refused_key_turns_enrichment_off(fake_cleanlist: FakeCleanlist) -> None:
    """401 from validate-key: off, and the gauge says 0."""
    settings = Settings.from_env({"EMAILGATE_CLEANLIST_URL": fake_cleanlist.api_url,
                                  "EMAILGATE_CLEANLIST_API_KEY": "clapi_wrong"})  # fmt: skip
    metrics = Metrics()
    async with open_enrichment(settings, metrics=metrics) as enrichment:
        assert not enrichment.enabled
        assert enrichment.note == (
            "enrichment: off (Cleanlist.ai refused EMAILGATE_CLEANLIST_API_KEY)"
        )
        assert metrics.registry.get_sample_value("emailgate_enrich_enabled") == 0


async def test_an_unreachable_provider_leaves_enrichment_on(refused_url: str) -> None:
    """The key cannot be checked (connection refused): on, saying it was not checked."""
    settings = Settings.from_env({"EMAILGATE_CLEANLIST_URL": refused_url,
                                  "EMAILGATE_CLEANLIST_API_KEY": "clapi_any"})  # fmt: skip
    async with open_enrichment(settings, metrics=Metrics()) as enrichment:
        assert enrichment.enabled
        assert enrichment.note == "enrichment: on (Cleanlist.ai key not checked: error)"
