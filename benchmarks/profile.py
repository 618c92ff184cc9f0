"""Where the time goes on the cache-hit path: py-spy samples of the running service, by cost.

py-spy (a sampling profiler, from PyPI) attaches to the `emailgate serve` process while wrk
drives cache hits, and records raw stacks. Each sample is charged to one cost: the JSON log
line or the metrics wherever they appear in the stack, otherwise the innermost emailgate frame
(handler, middleware, pipeline, cache, hash...), otherwise aiohttp and asyncio themselves (the
part the bare handler pays too). Shares times the time per request give microseconds.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import emailgate

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

LOG = "JSON log line per check (logging + JsonFormatter)"
METRICS = "Prometheus metrics (counters, histogram, in-flight gauge)"
PLUMBING = "aiohttp's middleware plumbing (the bare handler has no middleware)"
AIOHTTP = "aiohttp + asyncio: parse request, route, write response (the bare handler pays it too)"

# Innermost emailgate frame (file suffix, function prefix or "") -> cost.
_OWNERS: tuple[tuple[str, str, str], ...] = (
    ("privacy.py", "", "keyed BLAKE2b hashes of the address (cache key, log)"),
    ("cache.py", "", "cache lookup (LRU peek, Verdict load)"),
    ("verify/syntax.py", "", "syntax (memoised parse)"),
    ("verify/domains.py", "", "domain facts and role (memoised)"),
    ("verify/pipeline.py", "CheckResult.to_dict", "RESULT as a dict (to_dict)"),
    ("verify/pipeline.py", "_with_user", "RESULT as a dict (to_dict)"),
    ("verify/", "", "pipeline steps (check, _verdict, _finish, decide)"),
    ("metrics.py", "", METRICS),
    ("http/handlers.py", "", "verify handler (query, orjson.dumps, Response)"),
    ("http/middlewares.py", "", "errors middleware (request id, extra headers)"),
    ("access/", "", "access layer (keys, origins, client rate limit)"),
    ("", "", "emailgate, other"),
)
ROOTS = ("__main__.py", "http/server.py")
"""Files of the frames every sample starts with (the CLI, the server's event loop)."""
# py-spy names a frame's file relative to its sys.path entry (`emailgate/cache.py`), or in
# full when it cannot; both forms are recognised.
PACKAGE = str(Path(emailgate.__file__).resolve().parent) + "/"


def package_file(file: str) -> str | None:
    """The path of `file` inside the emailgate package, or None if it is not one of ours."""
    for prefix in (PACKAGE, "emailgate/"):
        if file.startswith(prefix):
            return file[len(prefix) :]
    return None


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def parse_frame(text: str) -> tuple[str, str]:
    """(function, file) of one raw py-spy frame."""
    m = _FRAME.match(text)
    if m is None:
        return text, ""
    return m.group("func"), m.group("file")


def classify(stack: list[tuple[str, str]]) -> str:
    """The cost one sample (frames root first) is charged to."""
    if any(f.endswith("logging/__init__.py") or package_file(f) == "log.py" for _, f in stack):
        return LOG
    if any(f.startswith("prometheus_client/") or "/prometheus_client/" in f for _, f in stack):
        return METRICS
    for func, file in reversed(stack):
        if file.endswith("aiohttp/web_middlewares.py"):
            return PLUMBING
        inside = package_file(file)
        if inside is None or inside in ROOTS:  # the process's root frames, not a cost
            continue
        for start, prefix, cost in _OWNERS:
            if inside.startswith(start) and func.startswith(prefix):
                return cost
    return AIOHTTP


@dataclass
class Profile:
    """Samples by cost, and the functions of the package with the most samples of their own."""

    samples: int = 0
    by_cost: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    rps: float = 0.0
    """Throughput while sampling (py-spy pauses the process to sample, so a little lower)."""

    def rows(self, rps: float | None = None) -> list[dict[str, Any]]:
        """Costs, largest first, with share and microseconds per request at `rps` (default:
        the throughput while sampling; pass the unprofiled one to undo py-spy's slowdown)."""
        rps = rps or self.rps
        per_request_us = 1e6 / rps if rps else 0.0
        return [
            {"cost": cost, "share": n / self.samples, "us": n / self.samples * per_request_us}
            for cost, n in self.by_cost.most_common()
        ]

    def top_own(self, count: int = 12) -> list[dict[str, Any]]:
        """The package's functions by their own samples."""
        return [
            {"function": name, "share": n / self.samples} for name, n in self.own.most_common(count)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "rps_while_sampling": self.rps,
            "costs": self.rows(),
            "own": self.top_own(),
        }


def aggregate(raw: str) -> Profile:
    """Read py-spy's raw (collapsed stack) output; threads other than the loop are left out."""
    profile = Profile()
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        frames = [parse_frame(f) for f in stack_text.split(";")]
        if any(func.endswith("_bootstrap") for func, _ in frames):
            continue  # a helper thread (c-ares shutdown, executor): not the request path
        n = int(count_text)
        profile.samples += n
        profile.by_cost[classify(frames)] += n
        func, file = frames[-1]
        inside = package_file(file)
        if inside is not None:
            profile.own[f"{func} ({inside})"] += n
    return profile


async def record(pid: int, seconds: float, out: Path, rate: int = 100) -> str:
    """Sample `pid` for `seconds` with py-spy; the raw stacks."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy; `make bench` does)")
    proc = await asyncio.create_subprocess_exec(
        exe, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", str(rate),
        "-f", "raw", "-o", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await proc.communicate()
    try:
        raw = await asyncio.to_thread(out.read_text)
    except OSError:
        raw = None
    if proc.returncode != 0 or raw is None:
        message = (stderr or stdout).decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"py-spy failed: {message[-1] if message else proc.returncode}")
    return raw
