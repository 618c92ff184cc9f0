"""Scenario 5: resident size after a flood of unique addresses through the bounded cache.

In-process, for speed: a child process (`python -m benchmarks.scenarios.memory N BOUND`) builds
the service's own cache (BoundedMemoryCache behind VerdictCache, bound from
EMAILGATE_CACHE_MAX_ENTRIES read by Settings.from_env) and stores N unique addresses through
`VerdictCache.key` and `VerdictCache.set`, each with its own local verdict as the service
makes it, sampling VmRSS as it goes. Over HTTP the same million would take minutes; the HTTP
path's other memos (syntax, domain facts, DNS answers) have bounds of their own and are small.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.context import Bench


def rss() -> int:
    """This process's resident set size, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def flood(entries: int, bound_setting: int) -> dict[str, Any]:
    """Store `entries` unique verdicts; RSS samples along the way."""
    from emailgate.cache import BoundedMemoryCache, VerdictCache
    from emailgate.config import Settings
    from emailgate.metrics import Metrics
    from emailgate.privacy import Hasher
    from emailgate.verify import local
    from emailgate.verify.domains import DomainLists
    from emailgate.verify.mail import MailDomain, MailStatus
    from emailgate.verify.result import Address, Reason

    settings = Settings.from_env({"EMAILGATE_CACHE_MAX_ENTRIES": str(bound_setting)})
    bound = settings.cache_max_entries
    backend = BoundedMemoryCache(bound)
    cache = VerdictCache(backend, hasher=Hasher(procs.HASH_KEY.encode()), metrics=Metrics())
    lists = DomainLists()
    domains = ["gmail.com", "outlook.com", "acme-widgets.com", "orange.fr", "gmai.com"]
    facts = {d: lists.facts(d) for d in domains}
    mail = {d: MailDomain(MailStatus.MX, mx=f"mx1.{d}") for d in domains}
    gc.collect()
    baseline = rss()
    samples: list[tuple[int, int]] = [(0, baseline)]
    step = max(1, entries // 40)
    at_bound = baseline
    for i in range(entries):
        domain = domains[i % len(domains)]
        user = f"user.{i}.signup"
        address = Address(email=f"{user}@{domain}", user=user, domain=domain, ascii_domain=domain)
        verdict = local.domain_verdict(address, facts[domain], False, mail[domain], Reason.UNKNOWN)
        await cache.set(cache.key(address), verdict)
        n = i + 1
        if n == bound:
            at_bound = rss()
        if n % step == 0 or n == entries:
            samples.append((n, rss()))
    gc.collect()
    final = rss()
    return {
        "entries": entries,
        "bound": bound,
        "held": len(backend),
        "rss_baseline": baseline,
        "rss_at_bound": at_bound,
        "rss_final": final,
        "samples": samples,
    }


async def run(bench: Bench) -> dict[str, Any]:
    """Scenario 5 in a child process."""
    sizes = bench.sizes
    bench.progress.say(
        f"{sizes.memory_entries:,} unique addresses through the cache, "
        f"EMAILGATE_CACHE_MAX_ENTRIES={sizes.memory_bound:,} (in-process, child process)"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.scenarios.memory",
        str(sizes.memory_entries), str(sizes.memory_bound),
        cwd=procs.REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"memory scenario failed: {err.decode(errors='replace')}")
    data: dict[str, Any] = json.loads(out)
    growth_bound = data["rss_at_bound"] - data["rss_baseline"]
    growth_final = data["rss_final"] - data["rss_baseline"]
    data["bytes_per_entry"] = growth_bound / data["bound"] if data["bound"] else None
    data["growth_ratio"] = growth_final / growth_bound if growth_bound > 0 else None
    bench.progress.say(
        f"  held {data['held']:,} entries; RSS {data['rss_final'] / 2**20:.0f} MiB "
        f"(+{growth_final / 2**20:.0f} MiB; +{growth_bound / 2**20:.0f} MiB at the bound)"
    )
    return data


if __name__ == "__main__":
    result = asyncio.run(flood(int(sys.argv[1]), int(sys.argv[2])))
    print(json.dumps(result))
