"""Drive a fake over its /_fake/ endpoints, e.g. one running in another process."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fakes.calllog import CallLog
from tests.fakes.faults import Fault, JunkKind


class ControlError(RuntimeError):
    """A /_fake/ endpoint refused the request."""


class FakeControl:
    """The Python API of a fake, spoken over HTTP; the caller owns the session."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self._session = session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(method, f"{self.url}/_fake/{path}", json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise ControlError(f"{method} /_fake/{path}: {resp.status} {data}")
            return data

    async def settings(self) -> dict[str, Any]:
        """Current settings."""
        result: dict[str, Any] = await self._call("GET", "config")
        return result

    async def configure(self, **settings: Any) -> dict[str, Any]:
        """Change settings; returns them all."""
        result: dict[str, Any] = await self._call("POST", "config", settings)
        return result

    async def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Answer the next `times` calls (None: every call) with `fault`."""
        await self._call("POST", "faults", {**fault.to_json(), "times": times})

    async def fail(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """The next `times` calls answer `status`."""
        await self.inject(Fault("status", status, retry_after, message), times)

    async def junk(self, kind: JunkKind = "html", *, times: int | None = 1) -> None:
        """The next `times` calls answer a junk body."""
        await self.inject(Fault("junk", junk=kind), times)

    async def drop_connections(self, *, times: int | None = 1) -> None:
        """The next `times` calls get their connection reset."""
        await self.inject(Fault("reset"), times)

    async def hang(self, *, times: int | None = 1) -> None:
        """The next `times` calls never get an answer."""
        await self.inject(Fault("hang"), times)

    async def clear_faults(self) -> None:
        """Drop queued faults."""
        await self._call("DELETE", "faults")

    async def set_answer(self, email: str, **fields: Any) -> None:
        """Lay these fields over the conventional answer for `email`."""
        await self._call("POST", "answers", {email: fields})

    async def clear_answers(self) -> None:
        """Empty the per-address table."""
        await self._call("DELETE", "answers")

    async def calls(self, endpoint: str | None = None) -> CallLog:
        """The call log (compare logs of several processes with `clock="wall"`)."""
        params = {"endpoint": endpoint} if endpoint else None
        async with self._session.get(f"{self.url}/_fake/calls", params=params) as resp:
            data = await resp.json()
        return CallLog.from_json(data["calls"])

    async def clear_calls(self) -> None:
        """Forget the calls."""
        await self._call("DELETE", "calls")

    async def reset(self) -> None:
        """Settings, counters, faults, table and calls back to the start."""
        await self._call("POST", "reset")
