"""deploy/compose: the many-replicas stack has the shape the issue asks for.

No Docker engine runs here, so the stack is not started: the compose file is parsed (YAML
anchors and merge keys resolved as Compose does) and checked for its shape, and every file it
mounts or builds from is checked to exist. promtool checks its Prometheus configuration
(test_prometheus_config.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from emailgate.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy/compose"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    return data


def replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The emailgate services: the ones built from the repository's Dockerfile."""
    return {n: s for n, s in compose["services"].items() if "build" in s}


def test_two_identical_emailgate_replicas(compose: dict[str, Any]) -> None:
    """Two emailgate services from the repository's Dockerfile, identical but for the host
    port, each published on loopback only."""
    services = replicas(compose)
    assert len(services) == 2
    first, second = (dict(s) for s in services.values())
    assert first.pop("ports") != second.pop("ports")
    assert first == second
    build = first["build"]
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    for service in services.values():
        (port,) = service["ports"]
        assert port.startswith("127.0.0.1:") and port.endswith(":8080")


def test_replicas_share_redis_and_agree_on_the_replica_count(compose: dict[str, Any]) -> None:
    """Both replicas use the Redis service, wait for it to be healthy, say EMAILGATE_REPLICAS=2
    and take one hash key (shared cache keys) that must be supplied, not defaulted."""
    services = replicas(compose)
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert "healthcheck" in redis
    for service in services.values():
        env = service["environment"]
        assert env["EMAILGATE_REDIS_URL"].startswith("redis://redis:6379")
        assert env["EMAILGATE_REPLICAS"] == str(len(services))
        assert env["EMAILGATE_HASH_KEY"].startswith("${EMAILGATE_HASH_KEY:?")
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_replica_environment_is_valid_settings(compose: dict[str, Any]) -> None:
    """The replicas' environment, with the shell's values filled in, is a valid Settings: no
    misspelt name, no bad value; pass-through names (no value) are provider keys only."""
    for service in replicas(compose).values():
        env = service["environment"]
        passthrough = {k for k, v in env.items() if v is None}
        assert passthrough <= {"EMAILGATE_LISTCLEANSER_API_KEY", "EMAILGATE_CLEANMYLIST_API_KEY"}
        given = {k: str(v) for k, v in env.items() if v is not None}
        given["EMAILGATE_HASH_KEY"] = "a-long-enough-hash-key-0123456789"
        settings = Settings.from_env(given)
        assert settings.host == "0.0.0.0" and settings.port == 8080
        assert settings.replicas == 2


def test_replicas_run_hardened_with_room_to_shut_down(compose: dict[str, Any]) -> None:
    """Read-only root with a /tmp tmpfs, no capabilities, no new privileges, a health check,
    and a stop grace period longer than EMAILGATE_SHUTDOWN_TIMEOUT_S."""
    for service in replicas(compose).values():
        assert service["read_only"] is True
        assert any(t.startswith("/tmp") for t in service["tmpfs"])
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert "/healthz" in " ".join(service["healthcheck"]["test"])
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > float(service["environment"]["EMAILGATE_SHUTDOWN_TIMEOUT_S"])


def test_prometheus_scrapes_both_replicas_with_the_alert_rules(compose: dict[str, Any]) -> None:
    """Prometheus' config (mounted from this directory) has a job "emailgate" whose targets are
    exactly the two replicas on their container port, and loads the repository's alert rules."""
    prometheus = compose["services"]["prometheus"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in prometheus["volumes"])
    config_in_container = next(
        a.removeprefix("--config.file=") for a in prometheus["command"] if "config.file" in a
    )
    host_config = next(h for h, c in mounts.items() if c == config_in_container)
    config = yaml.safe_load((COMPOSE_DIR / host_config).read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "emailgate"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert sorted(targets) == sorted(f"{name}:8080" for name in replicas(compose))
    # The rule path in the config resolves, inside the container, to the mounted rules file.
    container_dir = Path(config_in_container).parent
    for rule_file in config["rule_files"]:
        in_container = os.path.normpath(container_dir / rule_file)
        host = next(h for h, c in mounts.items() if c == in_container)
        assert (COMPOSE_DIR / host).resolve() == ROOT / "deploy/prometheus/alerts.yml"


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    """Every bind mount's source is a file in the repository (a typo would mount an empty
    directory instead)."""
    sources = [
        v.split(":", 1)[0]
        for service in compose["services"].values()
        for v in service.get("volumes", [])
    ]
    assert sources
    for source in sources:
        assert (COMPOSE_DIR / source).is_file(), source


def test_grafana_provisions_the_dashboard_from_the_prometheus_service(
    compose: dict[str, Any],
) -> None:
    """Grafana's datasource is the compose Prometheus, with the uid the dashboard defaults to,
    and its dashboard provider reads the directory the dashboard JSON is mounted in."""
    grafana = compose["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    datasources = yaml.safe_load((COMPOSE_DIR / "grafana/datasources.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    providers = yaml.safe_load((COMPOSE_DIR / "grafana/dashboards.yml").read_text())
    (provider,) = providers["providers"]
    dashboard_in_container = mounts["../grafana/emailgate-dashboard.json"]
    assert str(Path(dashboard_in_container).parent) == provider["options"]["path"]
