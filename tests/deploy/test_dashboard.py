"""deploy/grafana: the dashboard JSON is well formed and charts only what the service exports.

Its queries are also run through a real Prometheus in test_prometheus_live.py, which proves
they parse and evaluate.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, emailgate_metric_names

DASHBOARD = ROOT / "deploy/grafana/emailgate-dashboard.json"
# CONTRACT.md "Metrics": the families a dashboard over the contract must show.
CONTRACT_METRICS = {
    "emailgate_checks_total", "emailgate_check_duration_seconds_bucket",
    "emailgate_cache_lookups_total", "emailgate_provider_requests_total",
    "emailgate_provider_skips_total", "emailgate_provider_request_duration_seconds_bucket",
    "emailgate_provider_credits", "emailgate_circuit_open",
}  # fmt: skip


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    """Stable uid, unique panel ids, every chart placed on the grid, with unique query refIds
    and the datasource variable (so it works on any Prometheus)."""
    assert dashboard["uid"] == "emailgate"
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], panel
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_datasource_variable_defaults_to_the_compose_prometheus(dashboard: dict[str, Any]) -> None:
    """The datasource variable defaults to the uid compose provisions, and the replica variable
    lists instances of an emailgate series."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    provisioned = yaml.safe_load((ROOT / "deploy/compose/grafana/datasources.yml").read_text())
    assert variables["datasource"]["current"]["value"] == provisioned["datasources"][0]["uid"]
    assert variables["datasource"]["query"] == "prometheus"
    assert emailgate_metric_names(json.dumps(variables["instance"]))


def test_dashboard_charts_every_contract_metric(dashboard: dict[str, Any]) -> None:
    """Each metric family of the contract appears in at least one chart."""
    used = set().union(*(emailgate_metric_names(q) for q in queries(dashboard)))
    assert used >= CONTRACT_METRICS, CONTRACT_METRICS - used


def test_dashboard_uses_only_metrics_the_service_exports(
    dashboard: dict[str, Any], exported_names: set[str]
) -> None:
    """Every emailgate_* name in the dashboard (queries and variables) is exported by a live
    service's /metrics."""
    used = emailgate_metric_names(DASHBOARD.read_text())
    assert used <= exported_names, used - exported_names
    assert len(used) >= len(CONTRACT_METRICS)


def test_queries_select_the_replica_variable(dashboard: dict[str, Any]) -> None:
    """Every query is filtered by the replica picker, so the picker means something."""
    for expr in queries(dashboard):
        for name in emailgate_metric_names(expr):
            assert f"{name}{{" in expr, (name, expr)
        assert 'instance=~"$instance"' in expr, expr
