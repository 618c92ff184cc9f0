"""Fixtures shared by the integration tests of the clients (bulk providers' among them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emailgate.metrics import Metrics
from emailgate.providers.http import make_session


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The production client session."""
    async with make_session() as s:
        yield s


@pytest.fixture
def metrics() -> Metrics:
    """A registry of this test's own."""
    return Metrics()
