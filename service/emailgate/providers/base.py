"""What the chain needs from a verification provider."""

from __future__ import annotations

from typing import Protocol

from emailgate.verify.result import Address, Verdict


class Provider(Protocol):
    """One paid verification API, called for one address at a time."""

    name: str
    """Stable label for metrics and logs: its `Source` value (verify/result.py PROVIDERS)."""

    async def verify(self, address: Address, timeout: float) -> Verdict:
        """Ask about `address` within `timeout` seconds; raise a ProviderError when no verdict."""
        ...

    async def credits(self, timeout: float) -> int | None:
        """Credits left on the account, or None when this provider cannot tell on its own."""
        ...
