"""Identical work in flight runs once; every caller awaits the same task. The one single
flight of the service: checks (pipeline) and DNS lookups (dns) both use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Coalesces concurrent calls by key. The shared run is a task of its own, so one caller
    giving up (timeout, disconnect) does not cancel it for the others."""

    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def start(
        self, key: Hashable, work: Callable[[], Awaitable[T]]
    ) -> tuple[asyncio.Task[T], bool]:
        """The task running `work` for `key`, and whether it was already running (shared)."""
        task = self._tasks.get(key)
        if task is not None:
            return task, True
        task = asyncio.ensure_future(work())
        self._tasks[key] = task
        task.add_done_callback(lambda _t: self._tasks.pop(key, None))
        return task, False

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` once for all concurrent callers with the same key."""
        task, _ = self.start(key, work)
        return await asyncio.shield(task)

    def cancel_all(self) -> None:
        """Cancel every run in flight (closing the resource they use)."""
        for task in list(self._tasks.values()):
            task.cancel()

    async def wait_all(self) -> None:
        """Let every run in flight finish (graceful shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
