"""What the pipeline needs from the outside, declared here so that the adapters depend on
`verify/` and never the other way round: a resolver (stage 5), a verdict store (stages 3 and
8: the cache) and a verdict source (stage 6: the provider chain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from emailgate.verify.mail import MailDomain
from emailgate.verify.result import Address, Reason, Verdict


class DomainResolver(Protocol):
    """Stage 5's seam: `verify/dns.py`'s MXResolver, tests and other resolvers plug in here."""

    async def lookup(self, domain: str, timeout: float, *, fresh: bool = False) -> MailDomain:
        """Classify `domain` (ASCII) within `timeout` seconds; never raises for DNS trouble.
        `fresh`: ask the name server even when a cached answer is there."""
        ...

    def forget_negative(self) -> None:
        """Drop cached answers that say a domain takes no mail (the resolver may have lied)."""
        ...

    async def close(self) -> None:
        """Release sockets."""
        ...


class VerdictStore(Protocol):
    """Stages 3 and 8: verdicts kept between checks (`cache.py`'s VerdictCache). A store
    fails open: any trouble reads as a miss and a write that fails is dropped."""

    def key(self, address: Address) -> str:
        """The store's key of `address` (a keyed hash: addresses are personal data)."""
        ...

    async def get(self, key: str, *, budget: float) -> Verdict | None:
        """The stored verdict, or None on a miss or any failure, within `budget` seconds."""
        ...

    @property
    def in_process(self) -> bool:
        """True when the verdicts are in this process: `get_now` reads them."""
        ...

    def get_now(self, key: str) -> Verdict | None:
        """`get` without awaiting, for a store that is `in_process`."""
        ...

    async def set(self, key: str, verdict: Verdict) -> None:
        """Keep `verdict` for as long as its state and source allow."""
        ...


@dataclass(frozen=True, slots=True)
class ChainOutcome:
    """What the provider chain produced: a verdict, or why there is none."""

    verdict: Verdict | None
    why_none: Reason = Reason.UNAVAILABLE_PROVIDER
    """`timeout` when the deadline ran out, `unavailable_provider` when every provider was
    skipped or failed, `unknown` when no provider is configured."""
    calls: int = 0
    """Provider calls made for it, answered or not: what the caller is charged."""


class VerdictSource(Protocol):
    """The pipeline's seam for stage 6: the provider chain, or anything that acts like it."""

    async def verify(self, address: Address, deadline: float) -> ChainOutcome:
        """A verdict for `address` before `deadline` (a reading of the app's clock)."""
        ...


@runtime_checkable
class SpareVerdictSource(Protocol):
    """A verdict source that also serves background work (batch jobs, enrichment) from the
    slots interactive checks leave unused (`providers.chain.Chain`)."""

    async def verify_spare(self, address: Address, timeout: float) -> ChainOutcome | None:
        """A verdict from a spare slot right now, or None when no provider was asked."""
        ...
