"""Bulk providers in a running app: built from settings, their credits in GET /api/v1/credits,
their outcomes and pauses in /metrics, all against the local fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emailgate import appkeys
from emailgate.bulk.base import find_list, paused_for
from emailgate.providers.errors import Unauthorized
from tests import openapi_check
from tests.fakes.emailconsul import FakeEmailConsul
from tests.fakes.listcleaner import CREDITS, FakeListcleaner
from tests.fakes.listcleanser import FakeListCleanser

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def bulk_env(
    lcn: FakeListcleaner | None = None, ec: FakeEmailConsul | None = None, **extra: str
) -> dict[str, str]:
    """Settings pointing the bulk providers at the fakes (a fake left out is not configured)."""
    env: dict[str, str] = {}
    if lcn is not None:
        env |= {"EMAILGATE_LISTCLEANER_URL": lcn.url,
                "EMAILGATE_LISTCLEANER_API_KEY": lcn.api_key,
                "EMAILGATE_LISTCLEANER_USER_EMAIL": lcn.config.user_email}  # fmt: skip
    if ec is not None:
        env |= {"EMAILGATE_EMAILCONSUL_URL": ec.url, "EMAILGATE_EMAILCONSUL_API_KEY": ec.api_key}
    return env | extra


async def credits(client: Client) -> dict[str, Any]:
    """GET /api/v1/credits, checked against the OpenAPI document; its data."""
    response = await client.get("/api/v1/credits")
    body = await response.json()
    openapi_check.check("GET", "/api/v1/credits", response.status, body)
    assert response.status == 200
    data: dict[str, Any] = body["data"]
    return data


async def test_credits_keep_the_old_keys_and_add_the_bulk_providers(
    make_client: MakeClient,
) -> None:
    """With nothing configured every provider is a key with null (old clients keep theirs)."""
    client = await make_client()
    assert await credits(client) == {
        "listcleanser": None, "cleanmylist": None, "listcleaner": None, "emailconsul": None,
    }  # fmt: skip


async def test_listcleaner_credits_are_polled_into_the_credits_answer(
    make_client: MakeClient, fake_listcleaner: FakeListcleaner, fake_emailconsul: FakeEmailConsul
) -> None:
    """Listcleaner's get_credits lands in /api/v1/credits and the credits gauge; EmailConsul,
    which has no credits call, stays null and is never asked."""
    fake_listcleaner.configure(credits=4321)
    client = await make_client(**bulk_env(fake_listcleaner, fake_emailconsul))
    async with asyncio.timeout(5):
        while (await credits(client))["listcleaner"] is None:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.02)
    data = await credits(client)
    assert data["listcleaner"] == 4321
    assert data["emailconsul"] is None
    assert fake_listcleaner.calls.statuses(CREDITS) == [200]
    assert len(fake_emailconsul.calls) == 0
    text = await (await client.get("/metrics")).text()
    assert 'emailgate_provider_credits{provider="listcleaner"} 4321.0' in text
    assert 'emailgate_bulk_requests_total{outcome="ok",provider="listcleaner"} 1.0' in text


async def test_the_roster_follows_the_order_setting_and_paused_providers_show(
    make_client: MakeClient,
    fake_listcleaner: FakeListcleaner,
    fake_emailconsul: FakeEmailConsul,
    fake_listcleanser: FakeListCleanser,
) -> None:
    """EMAILGATE_BATCH_PROVIDERS orders the roster; a refused key pauses that provider, which
    then drops out of `available()` and shows as 1 in emailgate_bulk_provider_paused."""
    env = bulk_env(
        fake_listcleaner, fake_emailconsul,
        EMAILGATE_BATCH_PROVIDERS="emailconsul,listcleaner,listcleanser",
        EMAILGATE_LISTCLEANSER_URL=fake_listcleanser.url,
        EMAILGATE_LISTCLEANSER_API_KEY=fake_listcleanser.api_key,
    )  # fmt: skip
    client = await make_client(**env)
    roster = client.app[appkeys.SERVICES].bulk
    assert roster is not None
    assert roster.names == ("emailconsul", "listcleaner", "listcleanser")
    text = await (await client.get("/metrics")).text()
    for name in roster.names:
        assert f'emailgate_bulk_provider_paused{{provider="{name}"}} 0.0' in text
    fake_emailconsul.fail(401)
    ec = roster.get("emailconsul")
    assert ec is not None
    with pytest.raises(Unauthorized):
        await ec.upload(["a@good.com"], reference="job-1")
    assert [p.name for p in await roster.available()] == ["listcleaner", "listcleanser"]
    assert await paused_for(ec) > 800  # a refused key: 15 minutes
    assert await find_list(roster.providers[2], "any") is None  # ListCleanser cannot look
    assert not hasattr(roster.providers[2], "find_list")
    text = await (await client.get("/metrics")).text()
    assert 'emailgate_bulk_provider_paused{provider="emailconsul"} 1.0' in text
    assert (
        'emailgate_bulk_requests_total{outcome="unauthorized",provider="emailconsul"} 1.0' in text
    )
