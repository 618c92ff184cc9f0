"""The Kubernetes readiness probe (deploy/k8s/deployment.yaml), run as the kubelet would run it.

/readyz answers 503 while Redis is unreachable, although the replica still answers checks; the
probe must keep such a replica in the Service (else a Redis outage empties it) and take out a
replica that really cannot answer.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ZONES, free_port
from tests.fakes.dns_server import NXDOMAIN
from tests.fakes.server import refused_port
from tests.live import live_app

ROOT = Path(__file__).resolve().parents[2]


def probe_argv() -> list[str]:
    """The probe's command, with this interpreter for the image's `python`."""
    deployment = yaml.safe_load((ROOT / "deploy/k8s/deployment.yaml").read_text())
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    command: list[str] = c["readinessProbe"]["exec"]["command"]
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def run_probe(port: int) -> int:
    """Exit status of the probe against 127.0.0.1:port, as the container's env sets it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
    done = subprocess.run(
        probe_argv(), env=env | {"EMAILGATE_PORT": str(port)}, capture_output=True, timeout=20,
        check=False,
    )  # fmt: skip
    return done.returncode


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextmanager
def answering(status: int, body: bytes) -> Iterator[int]:
    """A loopback HTTP server answering every GET with `status` and `body`; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_ready_service_passes() -> None:
    """A ready service (200 on /readyz) passes the probe."""
    with live_app({}, ZONES) as url:
        assert run_probe(port_of(url)) == 0


def test_service_without_redis_stays_in_the_service() -> None:
    """A real service whose Redis refuses connections answers 503 on /readyz (redis failing)
    and still passes the probe: it answers checks, so it keeps receiving traffic."""
    with refused_port() as dead, live_app({"EMAILGATE_REDIS_URL": f"redis://127.0.0.1:{dead}/0"},
                                          ZONES) as url:  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        assert caught.value.code == 503
        failing = {n for n, c in json.load(caught.value)["checks"].items() if not c["ok"]}
        assert "redis" in failing
        with urllib.request.urlopen(f"{url}/api/v1/verify?email=ann@good.com", timeout=5) as r:
            assert r.status == 200
        assert run_probe(port_of(url)) == 0


def test_service_with_a_lying_resolver_stays_in_the_service() -> None:
    """A real service whose resolver denies gmail.com answers 503 on /readyz (dns failing) and
    still passes the probe: it answers every check, failing open on DNS."""
    lying = {**ZONES, "gmail.com": NXDOMAIN}
    with live_app({}, lying) as url:
        with urllib.request.urlopen(f"{url}/api/v1/verify?email=jo@gmail.com", timeout=5) as r:
            assert json.load(r)["data"]["reason"] == "dns_error"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        assert caught.value.code == 503
        failing = {n for n, c in json.load(caught.value)["checks"].items() if not c["ok"]}
        assert failing == {"dns"}
        assert run_probe(port_of(url)) == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"success": False, "checks": {"lists": {"ok": False, "detail": "0 loaded"},
                                            "redis": {"ok": True, "detail": "reachable"}}}),
        (503, {"success": False, "checks": {"lists": {"ok": False, "detail": "0 loaded"},
                                            "redis": {"ok": False, "detail": "unreachable"}}}),
        (503, {"success": False, "message": "no checks in this body"}),
        (500, {"success": False, "checks": {"redis": {"ok": False, "detail": "unreachable"}}}),
    ],
    ids=["lists-not-loaded", "lists-and-redis", "unknown-body", "status-500"],
)  # fmt: skip
def test_replica_that_cannot_answer_is_taken_out(status: int, body: dict[str, Any]) -> None:
    """Any other failure fails the probe: lists not loaded (with or without Redis), a body
    without checks, a status other than 503."""
    with answering(status, json.dumps(body).encode()) as port:
        assert run_probe(port) == 1


def test_nothing_listening_fails() -> None:
    """No answer at all fails the probe."""
    assert run_probe(free_port()) == 1
