"""What reached a fake provider, when, and what it answered; with the pacing arithmetic.

Each call keeps two arrival times: `mono` (time.monotonic, for gaps inside one process) and
`wall` (time.time, to line up logs from separate processes). Helpers take `clock="wall"` for
logs merged from several processes.

A window of W seconds is half-open, [s, s + W): calls exactly W apart never share one. The
ListCleanser fake's rate limiter counts the same way, so `max_in_window(60) <= 200` is exactly
"no call was over the limit".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, overload

ClockName = Literal["mono", "wall"]


@dataclass(slots=True)
class Call:
    """One request that reached a fake (control endpoints under /_fake/ are not logged)."""

    provider: str
    method: str
    endpoint: str
    """The request path, e.g. `/api/v1/verify`."""
    mono: float
    wall: float
    remote: str | None = None
    email: str | None = None
    status: int | None = None
    """The status answered; None when nothing was (hang, reset, or still in progress)."""
    fault: str | None = None
    """The injected fault that shaped the answer, if any (`status`, `junk`, `reset`, `hang`)."""
    delay: float = 0.0
    """Seconds of injected latency before answering."""
    done_mono: float | None = None
    """When the answer was produced (or the connection dropped)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Call:
        """Rebuild a call from `to_json()` output (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def gaps(times: Iterable[float]) -> list[float]:
    """Seconds between consecutive times, after sorting."""
    ts = sorted(times)
    return [b - a for a, b in itertools.pairwise(ts)]


def min_gap(times: Iterable[float]) -> float | None:
    """The smallest gap between consecutive times; None with fewer than two."""
    return min(gaps(times), default=None)


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most times that fall in any half-open window [s, s + window)."""
    ts = sorted(times)
    best = 0
    first = 0
    for last, t in enumerate(ts):
        # Two pointers: ts[first..last] is the run of times within `window` before t.
        while ts[first] <= t - window:
            first += 1
        best = max(best, last - first + 1)
    return best


def per_second(
    times: Iterable[float], bucket: float = 1.0, start: float | None = None
) -> list[tuple[float, float]]:
    """Calls per second in consecutive buckets: (bucket start relative to `start`, rate).

    `start` defaults to the first time; empty buckets are included so a plot shows pauses.
    """
    ts = sorted(times)
    if not ts:
        return []
    origin = ts[0] if start is None else start
    counts = [0] * (math.floor((ts[-1] - origin) / bucket) + 1)
    for t in ts:
        index = math.floor((t - origin) / bucket)
        if index >= 0:
            counts[index] += 1
    return [(i * bucket, n / bucket) for i, n in enumerate(counts)]


class CallLog(Sequence[Call]):
    """The calls a fake received, in arrival order, with filters and pacing helpers."""

    def __init__(self, calls: Iterable[Call] = ()) -> None:
        self._calls: list[Call] = list(calls)

    def add(self, call: Call) -> None:
        """Append a call (the fakes do this when a request arrives)."""
        self._calls.append(call)

    def clear(self) -> None:
        """Forget every call."""
        self._calls.clear()

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[Call]:
        return iter(self._calls)

    @overload
    def __getitem__(self, index: int) -> Call: ...
    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...
    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        return self._calls[index]

    def __repr__(self) -> str:
        return f"CallLog({len(self._calls)} calls)"

    def select(
        self, endpoint: str | None = None, status: int | None = None, email: str | None = None
    ) -> list[Call]:
        """The calls matching every given filter."""
        return [
            c
            for c in self._calls
            if (endpoint is None or c.endpoint == endpoint)
            and (status is None or c.status == status)
            and (email is None or c.email == email)
        ]

    def times(self, endpoint: str | None = None, clock: ClockName = "mono") -> list[float]:
        """Arrival times, oldest first."""
        return sorted(getattr(c, clock) for c in self.select(endpoint))

    def statuses(self, endpoint: str | None = None) -> list[int | None]:
        """Answered statuses in arrival order."""
        return [c.status for c in self.select(endpoint)]

    def emails(self, endpoint: str | None = None) -> list[str | None]:
        """Addresses asked about, in arrival order."""
        return [c.email for c in self.select(endpoint)]

    def gaps(self, endpoint: str | None = None, clock: ClockName = "mono") -> list[float]:
        """Seconds between consecutive arrivals."""
        return gaps(self.times(endpoint, clock))

    def min_gap(self, endpoint: str | None = None, clock: ClockName = "mono") -> float | None:
        """The smallest gap between consecutive arrivals; None with fewer than two calls."""
        return min_gap(self.times(endpoint, clock))

    def max_in_window(
        self, window: float, endpoint: str | None = None, clock: ClockName = "mono"
    ) -> int:
        """The most arrivals in any half-open window of `window` seconds."""
        return max_in_window(self.times(endpoint, clock), window)

    def per_second(
        self, bucket: float = 1.0, endpoint: str | None = None, clock: ClockName = "mono"
    ) -> list[tuple[float, float]]:
        """Calls per second over time, in buckets of `bucket` seconds (for plots)."""
        return per_second(self.times(endpoint, clock), bucket)

    def to_json(self) -> list[dict[str, Any]]:
        """JSON-ready list of calls."""
        return [c.to_json() for c in self._calls]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> CallLog:
        """Rebuild a log from `to_json()` output, e.g. from `GET /_fake/calls`."""
        return cls(Call.from_json(d) for d in data)

    @classmethod
    def merged(cls, *logs: Iterable[Call]) -> CallLog:
        """One log of several (e.g. from several processes), ordered by wall-clock arrival."""
        return cls(sorted((c for log in logs for c in log), key=lambda c: c.wall))
