"""Fixtures of the deployment tests: tools that must be installed, and a live service's metrics."""

from __future__ import annotations

import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ZONES
from tests.fakes.server import refused_port
from tests.live import live_app

ROOT = Path(__file__).resolve().parents[2]
# Sample names each family type exposes (the parser strips _total from counter families).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
METRIC_NAME = re.compile(r"\bemailgate_[a-z0-9_]+\b")


def tool(name: str) -> str:
    """The path of a required command; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/test installs it (Debian package)")
    return path


def emailgate_metric_names(text: str) -> set[str]:
    """Every emailgate_* name in a PromQL expression or JSON text."""
    return set(METRIC_NAME.findall(text))


@pytest.fixture(scope="session")
def live_metrics_url() -> Iterator[str]:
    """A live service with both providers configured (at a port that refuses, so calls fail
    fast), after one check has been answered; yields its /metrics URL."""
    with refused_port() as port:
        env = {
            "EMAILGATE_LISTCLEANSER_API_KEY": "lc-key",
            "EMAILGATE_LISTCLEANSER_URL": f"http://127.0.0.1:{port}",
            "EMAILGATE_CLEANMYLIST_API_KEY": "cml-key",
            "EMAILGATE_CLEANMYLIST_URL": f"http://127.0.0.1:{port}",
        }
        with live_app(env, ZONES) as url:
            with urllib.request.urlopen(f"{url}/api/v1/verify?email=ann@good.com", timeout=10) as r:
                assert r.status == 200
            yield f"{url}/metrics"


@pytest.fixture(scope="session")
def exported_names(live_metrics_url: str) -> set[str]:
    """Every sample name the service can export, from its families' names and types."""
    with urllib.request.urlopen(live_metrics_url, timeout=10) as r:
        text = r.read().decode()
    names = set()
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES[family.type]:
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names
