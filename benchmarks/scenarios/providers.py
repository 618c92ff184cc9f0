"""What scenarios 3 and 4 share: the service wired to the fake providers, and their call logs."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from tests.fakes.calllog import Call, CallLog
from tests.fakes.cleanmylist import REQUEST as CML_REQUEST
from tests.fakes.control import FakeControl
from tests.fakes.listcleanser import VERIFY as LC_VERIFY
from tests.fakes.process import FakeProvidersProcess

LC_KEY = "lc-test-key"  # the fakes' default keys (tests/fakes/listcleanser.py, cleanmylist.py)
CML_KEY = "cml-test-key"
PLENTY = str(10**9)  # credits and quota: the benchmarks measure spend, they never run out


def fake_args(
    *, latency_ms: float, jitter_ms: float, seed: int, rate_limit: int, window_s: float,
    interval_ms: float,
) -> list[str]:  # fmt: skip
    """Command line of the fakes: latency, the limits they enforce (429 past them)."""
    return [
        "--latency-ms", f"{latency_ms:g}", "--jitter-ms", f"{jitter_ms:g}", "--seed", str(seed),
        "--credits", PLENTY, "--quota", PLENTY,
        "--rate-limit", str(rate_limit), "--rate-window-s", f"{window_s:g}",
        "--min-interval-ms", f"{interval_ms:g}", "--enforce-interval",
    ]  # fmt: skip


def provider_settings(
    fakes: FakeProvidersProcess, *, rate: str, interval_ms: int, deadline_ms: int
) -> dict[str, str]:
    """EMAILGATE_* settings that point the service at the fakes (the contract's names)."""
    return {
        "EMAILGATE_LISTCLEANSER_URL": fakes.listcleanser_url,
        "EMAILGATE_LISTCLEANSER_API_KEY": LC_KEY,
        "EMAILGATE_CLEANMYLIST_URL": fakes.cleanmylist_url,
        "EMAILGATE_CLEANMYLIST_API_KEY": CML_KEY,
        "EMAILGATE_LISTCLEANSER_RATE": rate,
        "EMAILGATE_CLEANMYLIST_INTERVAL_MS": str(interval_ms),
        "EMAILGATE_DEADLINE_MS": str(deadline_ms),
    }


@dataclass
class Calls:
    """The verify calls each fake received (credits polls left out)."""

    listcleanser: list[Call]
    cleanmylist: list[Call]

    @property
    def total(self) -> int:
        return len(self.listcleanser) + len(self.cleanmylist)

    def answered(self) -> int:
        """Calls answered 200: the credits spent."""
        return sum(1 for c in (*self.listcleanser, *self.cleanmylist) if c.status == 200)


async def calls(fakes: FakeProvidersProcess) -> Calls:
    """Both fakes' verify calls so far."""
    async with aiohttp.ClientSession() as session:
        lc: CallLog = await FakeControl(fakes.listcleanser_url, session).calls(LC_VERIFY)
        cml: CallLog = await FakeControl(fakes.cleanmylist_url, session).calls(CML_REQUEST)
    return Calls(list(lc), list(cml))


async def reset(fakes: FakeProvidersProcess) -> None:
    """Both fakes back to their start: settings, limits' windows, counters, call logs."""
    async with aiohttp.ClientSession() as session:
        await FakeControl(fakes.listcleanser_url, session).reset()
        await FakeControl(fakes.cleanmylist_url, session).reset()
