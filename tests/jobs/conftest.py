"""Job store fixtures: a SQLite file per test, and a PostgreSQL database per test run (on the
server at 127.0.0.1:5432), dropped after."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from emailgate.jobs.store import JobStore, open_store

PG_ADMIN = os.environ.get("EMAILGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_run(url: str, sql: str) -> list[asyncpg.Record]:
    """Run `sql` on `url` (on a thread with its own loop: fixtures may run inside one)."""

    async def go() -> list[asyncpg.Record]:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError) as e:
            pytest.fail(f"PostgreSQL is not reachable at {url} ({e}): run scripts/test")
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; dropped at the end."""
    name = f"emailgate_test_{os.getpid()}_{os.urandom(3).hex()}"
    pg_run(PG_ADMIN, f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    pg_run(PG_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_clean(pg_url: str) -> Iterator[str]:
    """The run's database, every job table emptied after the test."""
    yield pg_url
    tables = [
        r["tablename"]
        for r in pg_run(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
        if r["tablename"] != "emailgate_schema"
    ]
    if tables:
        pg_run(pg_url, f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """None (SQLite) or the run's PostgreSQL database."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_clean")
        return url
    return None


@pytest.fixture
async def store(store_url: str | None, tmp_path: Path) -> AsyncIterator[JobStore]:
    """A migrated job store on SQLite (a file in tmp_path) or PostgreSQL."""
    async with open_store(store_url, tmp_path / "data") as s:
        yield s
