"""A strict sliding-window limiter, as the fakes enforce a provider's published limit.

Every arrival counts, refused ones included: the limit is on what arrives, so a client that
keeps knocking while refused stays refused. The window is half-open, (now - W, now], the same
arithmetic as `CallLog.max_in_window`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer for one arrival."""

    allowed: bool
    limit: int
    remaining: int
    """Calls still allowed in the current window after this one."""
    reset_s: float
    """Seconds until the oldest call in the window leaves it."""
    retry_after_s: float
    """When refused: seconds until a call would be allowed again (0 when allowed)."""

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-*` headers (the names express-rate-limit and GitHub use)."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_s)),
        }


class SlidingWindow:
    """At most `limit` arrivals per key in any window of `window` seconds."""

    def __init__(self) -> None:
        self._arrivals: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable, now: float, limit: int, window: float) -> Decision:
        """Count an arrival at `now` (monotonic seconds) and say whether it is within the limit."""
        arrivals = self._arrivals.setdefault(key, deque())
        while arrivals and arrivals[0] <= now - window:
            arrivals.popleft()
        arrivals.append(now)
        count = len(arrivals)
        allowed = count <= limit
        retry_after = 0.0
        if not allowed:
            # A call at now + d is allowed once the (count - limit) oldest have left the window.
            retry_after = window - (now - arrivals[count - limit])
        return Decision(
            allowed=allowed,
            limit=limit,
            remaining=max(0, limit - count),
            # Not `arrivals[0] + window - now`: that sum rounds, and for a call just made it
            # can come out a hair above the window, which the header rounds up to 61.
            reset_s=window - (now - arrivals[0]),
            retry_after_s=retry_after,
        )

    def clear(self) -> None:
        """Forget every arrival."""
        self._arrivals.clear()
