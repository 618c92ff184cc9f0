"""Injected trouble for the fakes: latency, scripted statuses, junk bodies, resets and hangs.

Faults are queued (`FaultPlan`): each API call takes the first queued fault, which is used up
after `times` calls (None: every call until cleared). Per-address markers do the same for one
address: a prefix of the local part, optionally followed by `.`, `-` or `_`, before the verdict
prefix of verdicts.py (`slow.undeliverable@x.test` is slow, then undeliverable).

| marker  | effect                                                           |
|---------|------------------------------------------------------------------|
| `slow`  | answers `slow_ms` later than the configured latency              |
| `hang`  | never answers (until the fake stops, which resets the connection) |
| `reset` | the connection is reset (TCP RST) once the request is read       |
| `junk`  | 200 with an HTML page instead of JSON                            |
| `fail`  | 500 with the provider's error body                               |

Junk kinds: `html` (200 text/html page, as a proxy in front of the API would send),
`wrong_shape` (200 JSON that is not the documented shape), `truncated` (200 JSON cut in the
middle), `empty` (200 with an empty body).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

FaultKind = Literal["status", "junk", "reset", "hang"]
JunkKind = Literal["html", "wrong_shape", "truncated", "empty"]


class FaultSpecError(ValueError):
    """A fault description (from Python or JSON) that makes no sense."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One way to answer badly."""

    kind: FaultKind
    status: int = 500
    """For `status`: the HTTP status to answer."""
    retry_after: float | None = None
    """For `status`: a `Retry-After` header (seconds, rounded up), or none."""
    message: str | None = None
    """For `status`: the error message; default: the status's reason phrase."""
    junk: JunkKind = "html"
    """For `junk`: which kind of junk body."""

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise FaultSpecError(f"unknown fault kind {self.kind!r}")
        if self.junk not in get_args(JunkKind):
            raise FaultSpecError(f"unknown junk kind {self.junk!r}")
        if not 100 <= self.status <= 599:
            raise FaultSpecError(f"status {self.status} is not an HTTP status")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build from JSON such as `{"kind": "status", "status": 503, "retry_after": 2}`."""
        unknown = set(data) - {"kind", "status", "retry_after", "message", "junk", "times"}
        if unknown:
            raise FaultSpecError(f"unknown fault fields: {sorted(unknown)}")
        try:
            return cls(
                kind=data["kind"],
                status=int(data.get("status", 500)),
                retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
                message=data.get("message"),
                junk=data.get("junk", "html"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FaultSpecError(f"bad fault {dict(data)!r}: {e}") from e


MARKERS: Mapping[str, Fault | None] = {
    "slow": None,  # only a delay; the answer itself is normal
    "hang": Fault("hang"),
    "reset": Fault("reset"),
    "junk": Fault("junk"),
    "fail": Fault("status", 500),
}
_SEPARATORS = ".-_"


def split_marker(local: str) -> tuple[str | None, str]:
    """(fault marker or None, the rest of the local part for the verdict table)."""
    lowered = local.lower()
    for marker in MARKERS:
        if lowered.startswith(marker):
            rest = local[len(marker) :]
            return marker, rest[1:] if rest[:1] and rest[0] in _SEPARATORS else rest
    return None, local


class FaultPlan:
    """Faults waiting for the next calls, first queued first used."""

    def __init__(self) -> None:
        self._queue: list[tuple[Fault, int | None]] = []

    def add(self, fault: Fault, times: int | None = 1) -> None:
        """Use `fault` for the next `times` calls (None: every call until cleared)."""
        if times is not None and times < 1:
            raise FaultSpecError("times must be at least 1, or None for every call")
        self._queue.append((fault, times))

    def take(self) -> Fault | None:
        """The fault for this call, if any; spends one use of it."""
        if not self._queue:
            return None
        fault, times = self._queue[0]
        if times is not None:
            if times <= 1:
                self._queue.pop(0)
            else:
                self._queue[0] = (fault, times - 1)
        return fault

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queue.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The queue, JSON-ready: each fault with its remaining `times`."""
        return [{**f.to_json(), "times": t} for f, t in self._queue]


def draw_delay(rng: random.Random, latency_ms: float, jitter_ms: float) -> float:
    """Seconds to wait: latency ± a uniform jitter from the seeded generator, never negative."""
    jitter = rng.uniform(-jitter_ms, jitter_ms) if jitter_ms > 0 else 0.0
    return max(0.0, latency_ms + jitter) / 1000.0
