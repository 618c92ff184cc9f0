"""Load for the trace and overload scenarios: POST /api/v1/verify, answers timed one by one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass(slots=True)
class Answer:
    """One request as the caller saw it."""

    index: int
    sent: float
    """time.monotonic() when sent (comparable with the fakes' `mono`: one clock per machine)."""
    seconds: float
    status: int
    data: dict[str, Any] | None

    @property
    def source(self) -> str:
        return str(self.data.get("source")) if self.data else f"http {self.status}"


async def ask(session: aiohttp.ClientSession, url: str, index: int, email: str) -> Answer:
    """One verify, timed from send to the whole answer read; errors become status 0."""
    start = time.monotonic()
    try:
        async with session.post(
            url + "/api/v1/verify",
            data=orjson.dumps({"email": email}),
            headers={"Content-Type": "application/json"},
        ) as resp:
            body = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError):
        return Answer(index, start, time.monotonic() - start, 0, None)
    elapsed = time.monotonic() - start
    data = orjson.loads(body).get("data") if status == 200 else None
    return Answer(index, start, elapsed, status, data)


def session(limit: int = 0) -> aiohttp.ClientSession:
    """A client session with no connection limit (open-loop load must not queue in the client)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def closed_loop(urls: Sequence[str], emails: Sequence[str], workers: int) -> list[Answer]:
    """Send `emails` in order with `workers` concurrent callers (round-robin over `urls`)."""
    answers: list[Answer | None] = [None] * len(emails)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(emails)):
        queue.put_nowait(i)
    async with session() as s:

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                answers[i] = await ask(s, urls[i % len(urls)], i, emails[i])

        await asyncio.gather(*(worker() for _ in range(workers)))
    return [a for a in answers if a is not None]


async def open_loop(
    urls: Sequence[str], emails: Sequence[str], rate: float, *, progress: Any = None
) -> list[Answer]:
    """Send `emails` at `rate` per second whatever the answers do (round-robin over `urls`)."""
    tasks: list[asyncio.Task[Answer]] = []
    loop = asyncio.get_running_loop()
    async with session() as s:
        start = loop.time()
        for i, email in enumerate(emails):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(ask(s, urls[i % len(urls)], i, email)))
            if progress is not None and i and i % max(1, int(rate * 5)) == 0:
                progress(i, len(emails))
        return list(await asyncio.gather(*tasks))
