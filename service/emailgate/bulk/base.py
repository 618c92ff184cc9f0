"""What a batch job needs from a list-cleaning (bulk) provider.

A job's provider step runs these in order, storing what each returns before the next:

    list_id = await provider.upload(emails, reference=...)   # stored in the job store first
    while (status := await provider.poll(list_id)).state is BulkState.WORKING: sleep(status.wait)
    async for email, verdict in provider.fetch(list_id): ...  # into the job store and the cache
    await provider.delete(list_id)                            # once the results are stored

The job's runner owns the loop (so it can renew its lease, honour cancellation and send
webhooks); a client only speaks its provider's API. Failures raise the `ProviderError` tree of
`emailgate.providers.errors`; a list that the provider ends as failed raises `ListFailed`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from emailgate.clock import Clock, monotonic
from emailgate.providers.errors import ProviderError
from emailgate.verify.result import Verdict


class ListFailed(ProviderError):
    """The provider ended the list as failed (its own processing error)."""

    outcome = "failed"


class BulkState(StrEnum):
    """Where an uploaded list stands at the provider."""

    WORKING = "working"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class BulkStatus:
    """One poll's answer."""

    state: BulkState
    progress: float = 0.0
    """0.0–1.0 as far as the provider tells."""
    wait: float = 5.0
    """Seconds to wait before the next poll (the provider's hint, or the client's default)."""


POLL_FLOOR = 1.0  # seconds: the shortest wait between two polls of one list
PLAN_LISTS = 1_000  # lists whose first sighting a client remembers (a job waits on a few)


class PollPlan:
    """When to ask again how a list stands: from the progress the provider reports, not a
    fixed interval.

    A list that moves gets half its estimated time left (from the progress made since this
    client first saw it), so polls close in on the end and the last lands at most about
    `floor` after it; a list that has not moved yet gets half the time waited so far (a gentle
    back-off: 1, 1, 1.5, 2.25, ... seconds). Never more than `ceiling` (the client's
    `poll_every`), never less than `floor`. A fixed 15 s interval finishes each list 7.5 s
    late on average; this finishes it about a second late, for a few more polls.
    """

    def __init__(self, *, floor: float = POLL_FLOOR, clock: Clock = monotonic) -> None:
        self.floor = floor
        self.clock = clock
        self._first: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, list_id: str, progress: float, ceiling: float) -> float:
        """Seconds before the next poll of `list_id`, now at `progress` (0.0–1.0)."""
        now = self.clock()
        t0, p0 = self._first.setdefault(list_id, (now, progress))
        if len(self._first) > PLAN_LISTS:
            self._first.popitem(last=False)
        waited = now - t0
        if progress > p0 and waited > 0:
            left = (1.0 - progress) * waited / (progress - p0)
            wait = left / 2
        else:
            wait = waited / 2
        return max(min(self.floor, ceiling), min(ceiling, wait))

    def restart(self, list_id: str) -> None:
        """Forget what was seen of `list_id` (it ended, or a new stage began)."""
        self._first.pop(list_id, None)


class BulkProvider(Protocol):
    """One list-cleaning API."""

    name: str
    """Stable label for metrics, logs and the job's `provider`: `listcleanser`, `listcleaner`,
    `emailconsul`."""

    max_upload: int
    """Addresses per upload; a job with more uploads several lists."""

    async def upload(self, emails: Sequence[str], *, reference: str) -> str:
        """Send `emails` as one list; the provider's list id."""
        ...

    async def poll(self, list_id: str) -> BulkStatus:
        """Ask once how the list stands (a client may take a documented next step here, such
        as EmailConsul's run after pre-processing); raise `ListFailed` for a failed list."""
        ...

    def fetch(self, list_id: str) -> AsyncIterator[tuple[str, Verdict]]:
        """Every record of a finished list: the address as uploaded and its verdict."""
        ...

    async def delete(self, list_id: str) -> None:
        """Remove the list at the provider (a no-op where the API has no delete)."""
        ...

    async def credits(self) -> int | None:
        """Credits left, or None when the provider cannot tell."""
        ...


class PausableBulkProvider(BulkProvider, Protocol):
    """A bulk client that also says when it takes lists again (paused after a 429, a 402 or
    a refused key; fleet-wide with Redis)."""

    async def paused_for(self) -> float:
        """Seconds before this provider takes lists again (0: now)."""
        ...


class FindableBulkProvider(BulkProvider, Protocol):
    """A bulk client that can find a list by the reference it was uploaded with.

    After an upload whose answer never came (a timeout, a reset, a crash), the provider may
    hold the list anyway: finding it by reference adopts it instead of paying for it again.
    Listcleaner (`show_lists` carries `reference`) and EmailConsul (`GET /listcleaning/lists`
    carries `title`) can; ListCleanser documents no way to list batches.
    """

    async def find_list(self, reference: str) -> str | None:
        """The id of the list uploaded with `reference`, or None when the provider has none."""
        ...


async def paused_for(provider: BulkProvider) -> float:
    """Seconds before `provider` takes lists again (0 for a client that cannot be paused)."""
    ask = getattr(provider, "paused_for", None)
    return float(await ask()) if ask is not None else 0.0


async def find_list(provider: BulkProvider, reference: str) -> str | None:
    """The id of the list uploaded with `reference`, or None (also when the provider cannot
    look lists up: check `hasattr(provider, "find_list")` to tell the two apart)."""
    find = getattr(provider, "find_list", None)
    return None if find is None else await find(reference)
