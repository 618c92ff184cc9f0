"""The one in-process memo with a bound and a time to live per entry (cachetools' TLRUCache):
the verdict cache without Redis, the DNS answers and the client counting windows use it."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from cachetools import TLRUCache

from emailgate.clock import Clock, monotonic

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _expires(_key: object, entry: tuple[object, float | None], now: float) -> float:
    ttl = entry[1]
    return now + ttl if ttl else math.inf


class TtlLru(Generic[K, V]):
    """At most `max_entries` values, each kept for its own time to live on `clock`; past the
    bound the least recently used goes first. Expired entries read as absent."""

    def __init__(self, max_entries: int, *, clock: Clock = monotonic) -> None:
        self.max_entries = max_entries
        self._data: TLRUCache[K, tuple[V, float | None]] = TLRUCache(
            max_entries, _expires, timer=clock
        )

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def get(self, key: K) -> V | None:
        """The live value under `key` (now the most recently used), or None."""
        try:
            return self._data[key][0]
        except KeyError:
            return None

    def put(self, key: K, value: V, ttl: float | None) -> None:
        """Keep `value` for `ttl` seconds (None or 0: until evicted)."""
        self._data[key] = (value, ttl)

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value if it was live."""
        try:
            return self._data.pop(key)[0]
        except KeyError:
            return None

    def clear(self) -> None:
        self._data.clear()
