"""Both fake providers, and a command that runs them as a process for benchmarks.

    python -m tests.fakes.providers [--listcleanser-port P] [--cleanmylist-port Q]
        [--latency-ms 80 --jitter-ms 40 --seed 1] [--credits N] [--quota N]
        [--rate-limit 200 --rate-window-s 60] [--min-interval-ms 300 --enforce-interval]

Ports default to 0 (any free port). When both listen it prints one JSON line on stdout,
`{"ready": true, "pid": …, "listcleanser": "http://127.0.0.1:P", "cleanmylist": "http://…"}`,
then serves until SIGTERM or SIGINT, and exits 0. Drive it over /_fake/ (see server.py and
control.FakeControl). Run it from the repository root, so `tests` is importable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from tests.fakes.calllog import Call, CallLog
from tests.fakes.cleanmylist import CleanMyListConfig, FakeCleanMyList
from tests.fakes.control import FakeControl
from tests.fakes.faults import Fault
from tests.fakes.listcleanser import FakeListCleanser, ListCleanserConfig
from tests.fakes.server import refused_port

__all__ = [
    "Call",
    "CallLog",
    "CleanMyListConfig",
    "FakeCleanMyList",
    "FakeControl",
    "FakeListCleanser",
    "Fault",
    "ListCleanserConfig",
    "main",
    "refused_port",
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    lc, cml = ListCleanserConfig(), CleanMyListConfig()  # slotted: defaults live on instances
    p = argparse.ArgumentParser(prog="python -m tests.fakes.providers", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--listcleanser-port", type=int, default=0)
    p.add_argument("--cleanmylist-port", type=int, default=0)
    p.add_argument("--listcleanser-key", default=lc.api_key)
    p.add_argument("--cleanmylist-key", default=cml.api_key)
    p.add_argument("--latency-ms", type=float, default=0.0, help="both fakes")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="both fakes, uniform ±")
    p.add_argument("--seed", type=int, default=None, help="jitter seed (both fakes)")
    p.add_argument("--slow-ms", type=float, default=lc.slow_ms, help="extra for slow… addresses")
    p.add_argument("--credits", type=int, default=lc.credits)
    p.add_argument("--rate-limit", type=int, default=lc.rate_limit)
    p.add_argument("--rate-window-s", type=float, default=lc.rate_window_s)
    p.add_argument("--quota", type=int, default=cml.quota)
    p.add_argument("--min-interval-ms", type=float, default=cml.min_interval_ms)
    p.add_argument("--enforce-interval", action="store_true", help="429 when calls come sooner")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[FakeListCleanser, FakeCleanMyList]:
    """The two fakes the command line describes (not started)."""
    common: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "jitter_ms": args.jitter_ms,
        "seed": args.seed,
        "slow_ms": args.slow_ms,
    }
    lc = FakeListCleanser(
        host=args.host,
        port=args.listcleanser_port,
        api_key=args.listcleanser_key,
        credits=args.credits,
        rate_limit=args.rate_limit,
        rate_window_s=args.rate_window_s,
        **common,
    )
    cml = FakeCleanMyList(
        host=args.host,
        port=args.cleanmylist_port,
        api_key=args.cleanmylist_key,
        quota=args.quota,
        min_interval_ms=args.min_interval_ms,
        enforce_interval=args.enforce_interval,
        **common,
    )
    return lc, cml


async def serve(args: argparse.Namespace) -> None:
    """Run both fakes until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lc, cml = build(args)
    async with lc, cml:
        ready = {"ready": True, "pid": os.getpid(), "listcleanser": lc.url, "cleanmylist": cml.url}
        print(json.dumps(ready), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m tests.fakes.providers`."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
