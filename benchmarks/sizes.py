"""How big and long each scenario is: the full run, `--quick`, and command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Sizes:
    """Every knob of a run (the report prints them all)."""

    rounds: int = 5
    """wrk runs per target, alternated; medians are reported."""
    seconds: float = 5.0
    """Length of one wrk run."""
    connections: int = 32
    threads: int = 1
    profile_seconds: float = 8.0
    """py-spy sampling time on the cache-hit path (0: no profile)."""
    local_addresses: int = 20_000
    """Corpus size for the in-process cost of the local checks."""
    trace_events: int = 3_000
    trace_concurrency: int = 8
    overload_rate: str = "20/6s"
    """EMAILGATE_LISTCLEANSER_RATE during the overload runs (shortened from 200/60s)."""
    overload_windows: int = 6
    """Length of each overload run, in windows of that rate."""
    overload_factor: float = 10.0
    """Offered load as a multiple of the ListCleanser rate."""
    cml_interval_ms: int = 300
    provider_latency_ms: float = 80.0
    provider_jitter_ms: float = 40.0
    deadline_ms: int = 1500
    memory_entries: int = 1_000_000
    memory_bound: int = 100_000
    """EMAILGATE_CACHE_MAX_ENTRIES for the memory scenario (the service's default)."""
    seed: int = 20261122

    def with_overrides(self, overrides: dict[str, Any]) -> Sizes:
        """A copy with the given (non-None) fields replaced."""
        names = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in overrides.items() if k in names and v is not None})


FULL = Sizes()
QUICK = Sizes(
    rounds=2,
    seconds=2.0,
    profile_seconds=3.0,
    local_addresses=3_000,
    trace_events=600,
    overload_windows=2,
    memory_entries=200_000,
    memory_bound=20_000,
)
