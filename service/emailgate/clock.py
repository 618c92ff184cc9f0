"""Injected time: everything that waits, expires or paces takes a clock, so tests step it."""

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Monotonic seconds; only differences between two readings mean anything."""

monotonic: Clock = time.monotonic

wall: Clock = time.time
"""Epoch seconds: for limits that a provider counts per clock window (a fixed window)."""


class FakeClock:
    """A clock that moves only when told to; public so tests of any layer can use it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds
