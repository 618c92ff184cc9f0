"""Pytest fixtures for the fake providers; tests/conftest.py imports them all.

from tests.fakes.fixtures import *  # noqa: F403
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.cleanlist import FakeCleanlist
from tests.fakes.cleanmylist import FakeCleanMyList
from tests.fakes.emailconsul import FakeEmailConsul
from tests.fakes.listcleaner import FakeListcleaner
from tests.fakes.listcleanser import FakeListCleanser
from tests.fakes.process import FakeProvidersProcess
from tests.fakes.server import refused_port

__all__ = [
    "fake_cleanlist",
    "fake_cleanmylist",
    "fake_emailconsul",
    "fake_listcleaner",
    "fake_listcleanser",
    "fake_providers_process",
    "refused_url",
]


@pytest.fixture
async def fake_listcleanser() -> AsyncIterator[FakeListCleanser]:
    """A ListCleanser fake on a free 127.0.0.1 port, stopped after the test."""
    async with FakeListCleanser() as fake:
        yield fake


@pytest.fixture
async def fake_cleanmylist() -> AsyncIterator[FakeCleanMyList]:
    """A CleanMyList fake on a free 127.0.0.1 port, stopped after the test."""
    async with FakeCleanMyList() as fake:
        yield fake


@pytest.fixture
async def fake_listcleaner() -> AsyncIterator[FakeListcleaner]:
    """A Listcleaner fake on a free 127.0.0.1 port, stopped after the test."""
    async with FakeListcleaner() as fake:
        yield fake


@pytest.fixture
async def fake_emailconsul() -> AsyncIterator[FakeEmailConsul]:
    """An EmailConsul fake on a free 127.0.0.1 port, stopped after the test."""
    async with FakeEmailConsul() as fake:
        yield fake


@pytest.fixture
async def fake_cleanlist() -> AsyncIterator[FakeCleanlist]:
    """A Cleanlist.ai fake on a free 127.0.0.1 port (its API under `fake.api_url`), stopped
    after the test."""
    async with FakeCleanlist() as fake:
        yield fake


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A base URL whose port refuses connections for the whole test."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def fake_providers_process() -> AsyncIterator[FakeProvidersProcess]:
    """Both fakes in a child process (default settings), SIGTERMed after the test."""
    process = await FakeProvidersProcess.start()
    yield process
    await process.stop()
