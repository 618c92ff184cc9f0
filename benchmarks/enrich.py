"""`python -m benchmarks.enrich`: enrich 5,000 contacts against the Cleanlist.ai fake.

The fake runs in its own process with the provider's published limit (60 requests per fixed,
clock-aligned 60-second window; 429 with Retry-After past it) and a realistic processing time
per workflow. emailgate's side is an enrichment job as `POST /api/v1/enrich` stores it (the job
store on SQLite in a temporary directory) worked by the enrichment worker: requests recorded
before they go, workflow ids stored, the fixed-window pacer, the real verify pipeline (local
checks against a loopback DNS server; no paid provider) and every found email verified.

Figures, each with its target:
- wall time against the window's lower bound: requests needed (one submission and one final
  poll per request of 250) ÷ 60 per window. A fixed window lets a whole allowance go at once,
  so a run can beat that bound; the processing bound (the fake's time for one workflow) is
  printed beside it and the ratio is against the larger of the two (target ≤ 1.25);
- 429s the fake answered (target 0: emailgate never exceeds the window);
- most requests in one clock window (target ≤ the limit).

`--window-s` shortens the window (and the workflow time and emailgate's poll cadence with it,
by the same factor) for a quicker run; the ratio is what to compare then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.fakes.calllog import CallLog
from tests.fakes.dns_server import DNSServer

from benchmarks.corpus import FIRST, LAST, MAIL_DOMAINS, NXDOMAIN_DOMAINS, zone
from benchmarks.machine import describe
from emailgate.clock import wall
from emailgate.config import Secret, Settings
from emailgate.enrich.cleanlist import CleanlistClient, Contact
from emailgate.enrich.engine import FIRST_POLL, POLL_EVERY
from emailgate.jobs.enrich_runner import EnrichRunner
from emailgate.jobs.enrich_store import EnrichStore, NewEnrichJob
from emailgate.jobs.store import open_store
from emailgate.metrics import Metrics
from emailgate.pacing.window import LocalWindowPacer, WindowSpec
from emailgate.providers.http import make_session
from emailgate.rate import Rate
from emailgate.services import open_services

REPO = Path(__file__).resolve().parents[1]
LIMIT = 60  # requests per window (the provider's published limit)
WINDOW = 60.0  # seconds
WORKFLOW = 30.0  # seconds the fake takes for one request of 250 at the real window
RATIO_TARGET = 1.25


def contacts(n: int, seed: int = 18) -> list[Contact]:
    """Seeded contacts: mostly findable, some with nothing to find, some failing, some on dead
    domains (their found email is rejected by the verify pipeline)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST).title(), rng.choice(LAST).title()
        domain = rng.choice(MAIL_DOMAINS[12:])  # the company domains
        roll = rng.random()
        if roll < 0.05:
            first = "Nobody" + first
        elif roll < 0.07:
            first = "Failtask" + first
        elif roll < 0.10:
            domain = rng.choice(NXDOMAIN_DOMAINS)
        out.append(Contact(first_name=first, last_name=f"{last}{i}", company_domain=domain))
    return out


@contextlib.asynccontextmanager
async def fake_process(args: argparse.Namespace, scale: float) -> AsyncIterator[str]:
    """The Cleanlist fake in a child process; its API URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.cleanlist",
        "--rate-limit", str(LIMIT), "--rate-window-s", str(args.window_s),
        "--workflow-s", str(WORKFLOW * scale), "--latency-ms", str(args.latency_ms),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        yield str(ready["cleanlist"])
    finally:
        proc.terminate()
        await proc.wait()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """One measured run; the figures."""
    scale = args.window_s / WINDOW
    dns = DNSServer(zone())
    await dns.start()
    people = contacts(args.contacts)
    tmp = tempfile.mkdtemp(prefix="emailgate-bench-enrich-")
    try:
        async with fake_process(args, scale) as url, make_session() as session:
            settings = Settings.from_env({"EMAILGATE_DNS_SERVERS": dns.address,
                                          "EMAILGATE_LOG_LEVEL": "warning"})  # fmt: skip
            async with (
                open_services(settings) as services,
                open_store(None, Path(tmp)) as store,
            ):
                pacer = LocalWindowPacer(WindowSpec.for_rate(Rate(LIMIT, args.window_s)))
                client = CleanlistClient(session, url, Secret("clapi_test_key"), pacer)
                runner = EnrichRunner(store, services.verifier, metrics=Metrics(), client=client,
                                      poll_every=POLL_EVERY * scale, first_poll=FIRST_POLL * scale,
                                      lease_ttl=600.0)  # fmt: skip
                enrich = EnrichStore(store)
                # The job as POST /api/v1/enrich stores it; then one worker runs it to the end.
                job = await enrich.create(NewEnrichJob("bench", "bench", "marketing", False, None,
                                                       "partial", people, "cleanlist"))  # fmt: skip
                claimed = await store.claim(runner.worker, 600.0, kind="enrich")
                assert claimed is not None
                start, start_wall = time.monotonic(), time.time()
                await runner.run_job(claimed)
                took = time.monotonic() - start
                rows, _ = await enrich.page(job.id, page=1, per_page=len(people))
                chunks = await enrich.requests(job.id)
            async with session.get(url.split("/api/")[0] + "/_fake/calls") as r:
                calls = CallLog.from_json((await r.json())["calls"])
    finally:
        await dns.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    needed = 2 * len(chunks)
    window_bound = needed / LIMIT * args.window_s
    processing_bound = WORKFLOW * scale
    bound = max(window_bound, processing_bound)
    per_window: dict[int, int] = {}
    for c in calls:
        k = math.floor(c.wall / args.window_s)
        per_window[k] = per_window.get(k, 0) + 1
    # The requests phase ends with the last answer the fake gave; what follows is the
    # verification of the found emails still in flight (CPU-bound, local checks and DNS).
    last_call = max((c.wall for c in calls), default=start_wall) - start_wall
    return {
        "requests_phase_s": last_call,
        "ratio_requests_phase": last_call / bound,
        "verify_tail_s": took - last_call,
        "contacts": len(people),
        "requests_of_250": len(chunks),
        "window_s": args.window_s,
        "limit": LIMIT,
        "scale": scale,
        "wall_s": took,
        "requests_needed": needed,
        "requests_made": len(calls),
        "bulk_requests": len(calls.select("/api/v1/public/enrich/bulk")),
        "status_requests": len(calls.select("/api/v1/public/enrich/status")),
        "window_bound_s": window_bound,
        "processing_bound_s": processing_bound,
        "ratio": took / bound,
        "ratio_to_window_bound": took / window_bound,
        "fake_429": sum(1 for c in calls if c.status == 429),
        "max_in_window": max(per_window.values(), default=0),
        "found": sum(1 for r in rows if r["status"] == "found"),
        "not_found": sum(1 for r in rows if r["status"] == "not_found"),
        "failed": sum(1 for r in rows if r["status"] == "failed"),
        "verified": sum(1 for r in rows if r["result"] is not None),
        "rejected": sum(1 for r in rows if r["email_rejected"]),
        "rows": len(rows),
    }


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(fig: dict[str, Any], machine: dict[str, Any], command: str) -> str:
    """The Markdown report."""
    bound = max(fig["window_bound_s"], fig["processing_bound_s"])
    shortened = "" if fig["scale"] == 1 else (
        f" (times shortened by {fig['scale']:g}: the ratio is what compares)")  # fmt: skip
    ratio_ok = _met(fig["ratio"] <= RATIO_TARGET)
    no_429 = _met(fig["fake_429"] == 0)
    in_window = _met(fig["max_in_window"] <= fig["limit"])
    keys = ("cpu", "cores", "python", "git", "load_before")
    lines = [
        f"# Enrichment benchmark {datetime.date.today().isoformat()}",
        "",
        f"Command: `{command}`",
        "",
        f"{fig['contacts']:,} contacts ({fig['requests_of_250']} requests of 250) against the "
        f"Cleanlist.ai fake: {fig['limit']} requests per fixed {fig['window_s']:g}-second "
        f"window, one workflow taking {fig['processing_bound_s']:g} s{shortened}.",
        "",
        "| figure | emailgate | reference | ratio | target |",
        "|---|---|---|---|---|",
        f"| wall time | {fig['wall_s']:.1f} s | lower bound {bound:.1f} s | "
        f"{fig['ratio']:.2f} | ≤ {RATIO_TARGET} ({ratio_ok}) |",
        f"| time until the last request (pacing and the provider's work) | "
        f"{fig['requests_phase_s']:.1f} s | lower bound {bound:.1f} s | "
        f"{fig['ratio_requests_phase']:.2f} | ≤ {RATIO_TARGET} "
        f"({_met(fig['ratio_requests_phase'] <= RATIO_TARGET)}) |",
        f"| verification after the last request (CPU-bound) | {fig['verify_tail_s']:.1f} s | – | "
        "– | (diagnostic) |",
        f"| wall time against the window bound alone | {fig['wall_s']:.1f} s | "
        f"{fig['requests_needed']} requests ÷ {fig['limit']} per window = "
        f"{fig['window_bound_s']:.1f} s | {fig['ratio_to_window_bound']:.2f} | (diagnostic) |",
        f"| 429s answered by the fake | {fig['fake_429']} | 0 | – | 0 ({no_429}) |",
        f"| most requests in one clock window | {fig['max_in_window']} | limit {fig['limit']} | "
        f"{fig['max_in_window'] / fig['limit']:.2f} | ≤ 1.00 ({in_window}) |",
        f"| requests made | {fig['requests_made']} ({fig['bulk_requests']} bulk, "
        f"{fig['status_requests']} status) | needed {fig['requests_needed']} | "
        f"{fig['requests_made'] / fig['requests_needed']:.2f} | (diagnostic) |",
        "",
        f"Rows: {fig['rows']:,} ({fig['found']:,} found, {fig['not_found']:,} not found, "
        f"{fig['failed']:,} failed); {fig['verified']:,} found emails verified, "
        f"{fig['rejected']:,} rejected and marked.",
        "",
        "Machine: " + ", ".join(f"{k} {machine[k]}" for k in keys if k in machine),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the figures, write the report and its JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.enrich", description=__doc__)
    p.add_argument("--contacts", type=int, default=5000)
    p.add_argument("--window-s", type=float, default=WINDOW)
    p.add_argument("--latency-ms", type=float, default=80.0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--name", default=f"enrich-{datetime.date.today().isoformat()}")
    args = p.parse_args(argv)
    machine = describe()
    fig = asyncio.run(run(args))
    command = "python -m benchmarks.enrich " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(fig, machine, command.strip())
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(text)
    (args.out / f"{args.name}.json").write_text(
        json.dumps({"figures": fig, "machine": machine, "wall_clock": wall()}, indent=2)
    )
    return 0 if fig["fake_429"] == 0 and fig["ratio"] <= RATIO_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
