"""Fuzzing from the served OpenAPI document with schemathesis: at least 5,000 generated
requests (valid and invalid by the document, with every kind of client key), no 5xx, and every
answer as the document says: status, content type, headers and body schema."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emailgate.http.openapi import document
from tests.conftest import ZONES
from tests.live import live_app

PUBLIC = "pk_fuzz_public_key"
PRIVATE = "sk_fuzz_private_key"
TEST = "tk_fuzz_test_key"
SHOP = "https://shop.example"

MINIMUM = 5000
"""Generated requests the run must make (the issue's figure)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Who calls: each generated request goes out as one of these clients, the good ones more often.
CLIENTS: list[dict[str, str]] = [
    *[{"X-API-Key": PRIVATE}] * 3,
    {"Authorization": f"Bearer {PRIVATE}"},
    *[{"X-API-Key": TEST}] * 2,
    *[{"X-API-Key": PUBLIC, "Origin": SHOP}] * 2,
    {"X-API-Key": PUBLIC, "Origin": "https://evil.example"},
    {"X-API-Key": PUBLIC},
    {"X-API-Key": "sk_not_a_key"},
    {},
]

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (path, method, mode, examples): most of the budget where the inputs are.
PLAN: list[tuple[str, str, GenerationMode, int]] = [
    ("/api/v1/verify", "GET", POSITIVE, 1700),
    ("/api/v1/verify", "GET", NEGATIVE, 600),
    ("/api/v1/verify", "POST", POSITIVE, 1700),
    ("/api/v1/verify", "POST", NEGATIVE, 800),
    ("/api/v1/verify", "OPTIONS", POSITIVE, 250),
    ("/api/v1/verify", "OPTIONS", NEGATIVE, 100),
    ("/api/v1/credits", "GET", POSITIVE, 250),
    ("/api/v1/credits", "OPTIONS", POSITIVE, 100),
    ("/healthz", "GET", POSITIVE, 20),
    ("/readyz", "GET", POSITIVE, 20),
    ("/metrics", "GET", POSITIVE, 20),
    ("/openapi.json", "GET", POSITIVE, 20),
    ("/static/emailgate.js", "GET", POSITIVE, 30),
    ("/demo", "GET", POSITIVE, 20),
    ("/demo", "POST", POSITIVE, 100),
    ("/demo", "POST", NEGATIVE, 60),
    # Batch jobs: uploads (JSON and files), listing, status, download, start and delete; ids
    # are small numbers, so many of them are jobs the uploads before made.
    ("/api/v1/batch", "POST", POSITIVE, 200),
    ("/api/v1/batch", "POST", NEGATIVE, 150),
    ("/api/v1/batch", "GET", POSITIVE, 60),
    ("/api/v1/batch", "GET", NEGATIVE, 40),
    ("/api/v1/batch/{id}", "GET", POSITIVE, 120),
    ("/api/v1/batch/{id}", "GET", NEGATIVE, 60),
    ("/api/v1/batch/{id}/download", "GET", POSITIVE, 80),
    ("/api/v1/batch/{id}/download", "GET", NEGATIVE, 40),
    ("/api/v1/batch/{id}/start", "POST", POSITIVE, 60),
    ("/api/v1/batch/{id}/start", "POST", NEGATIVE, 40),
    ("/api/v1/batch/{id}", "DELETE", POSITIVE, 60),
]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app with a keys file (public, private and test keys), limits high enough that
    most answers are answers, and its loopback DNS."""
    keys = Path(tmp_path_factory.mktemp("keys")) / "keys.toml"
    keys.write_text(
        f"""
[[key]]
name = "page"
kind = "public"
sha256 = "{digest(PUBLIC)}"
origins = ["{SHOP}"]
rate = "1000000/60s"

[[key]]
name = "backend"
kind = "private"
sha256 = "{digest(PRIVATE)}"
rate = "1000000/60s"

[[key]]
name = "sandbox"
kind = "test"
sha256 = "{digest(TEST)}"
rate = "1000000/60s"
"""
    )
    env = {"EMAILGATE_LOG_LEVEL": "error", "EMAILGATE_API_KEYS_FILE": str(keys),
           "EMAILGATE_DATA_DIR": str(tmp_path_factory.mktemp("jobs")),
           "EMAILGATE_BATCH_UPLOAD_RATE": "1000000/60s"}  # fmt: skip
    with live_app(env, ZONES) as url:
        yield url


def test_the_served_document_is_the_one_fuzzed_from(base_url: str) -> None:
    """/openapi.json serves exactly the document the service describes itself with."""
    assert requests.get(f"{base_url}/openapi.json", timeout=10).json() == document()


@pytest.mark.slow
def test_generated_requests_get_no_5xx_and_match_the_document(base_url: str) -> None:
    """At least 5,000 requests generated from /openapi.json: no 5xx, every answer conforms."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    http = requests.Session()
    sent: dict[tuple[str, str, str], int] = {}
    statuses: dict[int, int] = {}
    start = time.monotonic()
    for path, method, mode, examples in PLAN:
        operation = schema[path][method]
        tally = (path, method, mode.value)
        sent[tally] = 0

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), client=st.sampled_from(CLIENTS))
        def one(case: Any, client: dict[str, str]) -> None:
            response = case.call(base_url=base_url, session=http, headers=dict(client), timeout=10)
            sent[tally] += 1  # noqa: B023 — the tally of this operation, run right here
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)
            headers = response.headers  # lower-case names, lists of values
            assert "x-request-id" in headers
            # `*` only on the public script, which carries nothing a key could unlock.
            allowed = [["*"]] if path == "/static/emailgate.js" else [None, [SHOP]]  # noqa: B023
            assert headers.get("access-control-allow-origin") in allowed

        one()
    elapsed = time.monotonic() - start
    total = sum(sent.values())
    print(
        f"\nschemathesis: {total} requests in {elapsed:.1f} s; statuses {sorted(statuses.items())}"
    )
    for (path, method, mode), count in sorted(sent.items()):
        print(f"  {method:7} {path:20} {mode:8} {count}")
    assert total >= MINIMUM, sent
    # The run reached the answers that matter, not only refusals.
    assert {200, 400, 401, 403} <= set(statuses), statuses
    assert statuses[200] > 1000, statuses
