"""`/static/emailgate.js` and `/demo` over HTTP: headers, revalidation, the demo switch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
WIDGET = resources.files("emailgate").joinpath("static", "emailgate.js").read_bytes()


async def test_widget_is_served_with_validator_and_cors(make_client: MakeClient) -> None:
    """The script comes with its media type, an ETag, a cache lifetime and CORS for any page."""
    client = await make_client()
    r = await client.get("/static/emailgate.js")
    assert r.status == 200
    assert await r.read() == WIDGET
    assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert r.headers["ETag"].startswith('"') and len(r.headers["ETag"]) == 34
    assert "max-age=3600" in r.headers["Cache-Control"]
    assert r.headers["Access-Control-Allow-Origin"] == "*"


async def test_widget_revalidates_with_304(make_client: MakeClient) -> None:
    """A matching If-None-Match (strong, weak, in a list) gets 304 and no body; others 200."""
    client = await make_client()
    etag = (await client.get("/static/emailgate.js")).headers["ETag"]
    for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = await client.get("/static/emailgate.js", headers={"If-None-Match": given})
        assert r.status == 304, given
        assert await r.read() == b""
        assert r.headers["ETag"] == etag
    r = await client.get("/static/emailgate.js", headers={"If-None-Match": '"stale"'})
    assert r.status == 200 and await r.read() == WIDGET


async def test_widget_needs_no_key_when_keys_are_required(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """With a keys file, the script and the demo page stay reachable without a key."""
    keys = tmp_path / "keys.toml"
    keys.write_text("")
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys))
    assert (await client.get("/static/emailgate.js")).status == 200
    assert (await client.get("/api/v1/verify", params={"email": "a@good.com"})).status == 401


async def test_demo_page_loads_only_its_own_script(make_client: MakeClient) -> None:
    """The demo page uses the widget from /static and a CSP without inline script."""
    client = await make_client()
    r = await client.get("/demo")
    assert r.status == 200
    page = await r.text()
    assert '<script src="/static/emailgate.js" defer></script>' in page
    assert "data-emailgate" in page
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert r.headers["Cache-Control"] == "no-store"


async def test_demo_submit_echoes_escaped_and_keeps_nothing(make_client: MakeClient) -> None:
    """The demo's form handler shows what it got, HTML-escaped."""
    client = await make_client()
    r = await client.post("/demo", data={"email": "<b>x</b>@good.com"})
    assert r.status == 200
    page = await r.text()
    assert "&lt;b&gt;x&lt;/b&gt;@good.com" in page and "<b>x</b>" not in page
    assert (await client.post("/demo", data={})).status == 200


async def test_demo_is_off_by_setting(make_client: MakeClient) -> None:
    """EMAILGATE_DEMO=0 removes /demo; the widget itself is still served."""
    client = await make_client(EMAILGATE_DEMO="0")
    assert (await client.get("/demo")).status == 404
    assert (await client.post("/demo", data={"email": "a@good.com"})).status in (404, 405)
    assert (await client.get("/static/emailgate.js")).status == 200


async def test_static_routes_accept_nothing_else(make_client: MakeClient) -> None:
    """Unknown static files are 404 and other methods 405, never a 5xx."""
    client = await make_client()
    assert (await client.get("/static/other.js")).status == 404
    assert (await client.get("/static/../pyproject.toml")).status == 404
    r: Any = await client.post("/static/emailgate.js")
    assert r.status == 405
