"""Property: no request, however malformed, gets a 5xx (hypothesis over raw HTTP)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ZONES
from tests.live import live_app

PATHS = ["/api/v1/verify", "/api/v1/credits", "/healthz", "/readyz", "/metrics", "/openapi.json"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
KNOWN_STATUSES = {200, 400, 401, 403, 404, 405, 413, 429, 503}

# RFC 9110 §5.6.2 tokens: a name outside them is not HTTP at all (see the test at the end).
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
header_name = st.text(alphabet=TOKEN, min_size=1, max_size=20)
header_value = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=100)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"email": st.one_of(st.text(max_size=80), json_values)},
        optional={"context": st.one_of(st.sampled_from(["signup", "marketing"]), json_values)},
    ).map(lambda v: json.dumps(v).encode()),
)
queries = st.lists(
    st.tuples(
        st.sampled_from(["email", "context", "x", ""]),
        st.text(max_size=60),
    ),
    max_size=4,
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """One app for all examples, embedded defaults and the loopback DNS zone."""
    with live_app({"EMAILGATE_LOG_LEVEL": "error"}, ZONES) as url:
        yield url


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS),
    query=queries,
    headers=st.dictionaries(header_name, header_value, max_size=5),
    body=st.one_of(st.none(), bodies),
)
def test_no_request_gets_a_5xx(
    base_url: str,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    """Arbitrary methods, queries, headers and bodies get a documented status below 500."""
    target = path
    if query:
        target += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
    for name in list(headers):
        if name.lower() in {"content-length", "transfer-encoding", "host", "connection", "expect"}:
            del headers[name]  # framing headers would make the request itself unreadable
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    assert response.status < 500, (response.status, payload[:300])
    assert response.status in KNOWN_STATUSES, response.status
    if response.status >= 400 and method != "HEAD":
        error = json.loads(payload)
        assert error["success"] is False and isinstance(error["message"], str)


def test_a_message_that_is_not_http_gets_a_400(base_url: str) -> None:
    """An invalid header name is refused by the HTTP parser itself with a 400, never a 5xx."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", "/healthz")
        conn.putheader("{bad", "x")
        conn.endheaders()
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 400
