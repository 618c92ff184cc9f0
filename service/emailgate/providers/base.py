"""What the chain needs from a verification provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from emailgate.verify.result import Address, Reason, Verdict


class Provider(Protocol):
    """One paid verification API, called for one address at a time."""

    name: str
    """Stable label for metrics and logs: `listcleanser` or `cleanmylist`."""

    async def verify(self, address: Address, timeout: float) -> Verdict:
        """Ask about `address` within `timeout` seconds; raise a ProviderError when no verdict."""
        ...

    async def credits(self, timeout: float) -> int | None:
        """Credits left on the account, or None when this provider cannot tell on its own."""
        ...


@dataclass(frozen=True, slots=True)
class ChainOutcome:
    """What the provider chain produced: a verdict, or why there is none."""

    verdict: Verdict | None
    why_none: Reason = Reason.UNAVAILABLE_PROVIDER
    """`timeout` when the deadline ran out, `unavailable_provider` when every provider was
    skipped or failed, `unknown` when no provider is configured."""


class VerdictSource(Protocol):
    """The pipeline's seam for stage 6: the provider chain, or anything that acts like it."""

    async def verify(self, address: Address, deadline: float) -> ChainOutcome:
        """A verdict for `address` before `deadline` (a reading of the app's clock)."""
        ...
