"""A real Prometheus (Debian's package) scrapes a running emailgate on loopback; its HTTP API
gives back emailgate series, loads the alert rules, and evaluates every dashboard query."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.conftest import ZONES, free_port
from tests.deploy.conftest import ROOT, tool
from tests.live import live_app

T = TypeVar("T")
RULES = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/emailgate-dashboard.json"
NEVER = "0001-01-01T00:00:00Z"  # lastEvaluation of a rule not evaluated yet


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `probe` until it returns something, or fail saying `what` never happened."""
    end = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except (OSError, urllib.error.URLError):
            result = None
        if result is not None:
            return result
        if time.monotonic() > end:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.2)


class Prometheus:
    """A `prometheus` process on a free loopback port with its storage in a temp directory."""

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log, stderr=self.log,
        )  # fmt: skip

    def query(self, promql: str) -> Any:
        """Result of an instant query; fails the test on a query error."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            answer = get_json(url)
        except urllib.error.HTTPError as e:
            pytest.fail(f"Prometheus refused {promql!r}: {e.read().decode()[:300]}")
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A live service that answered a few checks, and a Prometheus scraping it every second
    with the repository's alert rules loaded; yields once the first scrape is in."""
    with live_app({}, ZONES) as url:
        for email in ("ann@good.com", "bob@gone.com", "eve@mailinator.com"):
            with urllib.request.urlopen(f"{url}/api/v1/verify?email={email}", timeout=10) as r:
                assert r.status == 200
        target = url.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "emailgate", "static_configs": [{"targets": [target]}]}
            ],
        }
        prometheus = Prometheus(config, tmp_path_factory.mktemp("prometheus"))
        try:
            eventually(
                lambda: True if prometheus.proc.poll() is None and
                get_json(f"{prometheus.url}/api/v1/status/buildinfo") else None,
                30, "Prometheus did not start",
            )  # fmt: skip
            eventually(
                lambda: prometheus.query('up{job="emailgate"} == 1') or None,
                30, "Prometheus did not scrape emailgate",
            )  # fmt: skip
            yield prometheus
        finally:
            prometheus.stop()


def test_prometheus_reads_back_an_emailgate_series(scraped: Prometheus) -> None:
    """The checks the service answered come back through Prometheus's query API, labelled by
    context, decision and source, with the scrape job's labels added."""
    result = scraped.query('sum by (decision) (emailgate_checks_total{job="emailgate"})')
    counts = {r["metric"]["decision"]: float(r["value"][1]) for r in result}
    assert counts == {"accept": 1.0, "reject": 2.0}
    series = scraped.query('emailgate_checks_total{context="signup",decision="accept"}')
    assert {s["metric"]["source"] for s in series} == {"local"}
    assert all(s["metric"]["job"] == "emailgate" for s in series)


def test_prometheus_loads_and_evaluates_the_alert_rules(scraped: Prometheus) -> None:
    """The alert rules load in a real server and evaluate without error against live series;
    with a healthy service none of them is firing."""

    def evaluated() -> list[dict[str, Any]] | None:
        groups = get_json(f"{scraped.url}/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        done = rules and all(r["lastEvaluation"] != NEVER for r in rules)
        return rules if done else None

    rules = eventually(evaluated, 30, "the rules were not all evaluated")
    expected = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert sorted(r["name"] for r in rules) == sorted(expected)
    for rule in rules:
        assert rule["health"] == "ok", rule
        assert rule["state"] != "firing", rule


def test_every_dashboard_query_evaluates(scraped: Prometheus) -> None:
    """Every query of the Grafana dashboard parses and runs in Prometheus (Grafana's variables
    replaced by what they stand for), and the check counters give data."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs
    with_data = 0
    for expr in exprs:
        promql = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
        if scraped.query(promql):
            with_data += 1
    assert with_data >= 1
    assert scraped.query('sum(emailgate_checks_total{instance=~".*"})')
