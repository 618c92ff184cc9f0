"""The one in-process memo with a bound and a time to live per entry: the verdict cache
without Redis, the DNS answers and the client counting windows use it.

An ordered dict, in order of use: a read or a write moves an entry to the end, and an entry
past its time reads as absent. A write first drops the entries whose time is over (a heap by
expiry finds them), then, past the bound, the least recently used. It is on every request's
path (a cache hit reads it, the client limit counts in it), so a read is kept to a dict
lookup and a move; cachetools' TLRUCache, which did this before, cost several times more.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from emailgate.clock import Clock, monotonic

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlLru(Generic[K, V]):
    """At most `max_entries` values, each kept for its own time to live on `clock`; past the
    bound the least recently used goes first. Expired entries read as absent."""

    def __init__(self, max_entries: int, *, clock: Clock = monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._data: OrderedDict[K, tuple[V, float]] = OrderedDict()
        """key -> (value, the clock's reading when it expires)."""
        self._expiries: list[tuple[float, int, K]] = []
        """A heap of (expiry, order, key) of finite entries; stale ones (rewritten or gone
        since) are skipped when they come up."""
        self._order = 0

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def get(self, key: K) -> V | None:
        """The live value under `key` (now the most recently used), or None."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, ttl: float | None) -> None:
        """Keep `value` for `ttl` seconds (None or 0: until evicted)."""
        data = self._data
        now = self.clock()
        self._drop_expired(now)
        expires = now + ttl if ttl else math.inf
        data[key] = (value, expires)
        data.move_to_end(key)
        if expires != math.inf:
            self._order += 1
            heapq.heappush(self._expiries, (expires, self._order, key))
            if len(self._expiries) > 2 * self.max_entries + 16:  # mostly stale: rebuild it
                self._expiries = [(e, i, k) for i, (k, (_, e)) in enumerate(data.items())
                                  if e != math.inf]  # fmt: skip
                heapq.heapify(self._expiries)
        while len(data) > self.max_entries:
            data.popitem(last=False)

    def _drop_expired(self, now: float) -> None:
        heap, data = self._expiries, self._data
        while heap and heap[0][0] <= now:
            expires, _, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry[1] == expires:
                del data[key]

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value if it was live."""
        entry = self._data.pop(key, None)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    def clear(self) -> None:
        self._data.clear()
