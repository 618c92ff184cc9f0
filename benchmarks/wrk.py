"""Run Debian's `wrk` and read its figures: throughput, errors and latency percentiles.

`lua/report.lua` makes wrk print one `BENCH_JSON {...}` line with the summary and the latency
percentiles (up to 99.99 %, for the distribution plot); `lua/unique.lua` sends a unique address
per request. wrk takes one script, so the two are joined into the run's work directory.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).with_name("lua")


class WrkError(RuntimeError):
    """wrk is missing, failed, or the server answered errors."""


@dataclass(frozen=True)
class WrkSettings:
    """One set of wrk settings, the same for every target compared."""

    threads: int = 1
    connections: int = 32
    seconds: float = 5.0
    timeout_s: float = 5.0

    def describe(self) -> str:
        return (
            f"wrk -t{self.threads} -c{self.connections} -d{self.seconds:g}s "
            f"--timeout {self.timeout_s:g}s"
        )


@dataclass
class WrkResult:
    """One wrk run."""

    target: str
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, Any]
    non_2xx: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": self.rps,
            "errors": self.errors,
            "non_2xx": self.non_2xx,
            "latency_us": self.latency_us,
            **self.extra,
        }


def wrk_version() -> str:
    """The installed wrk's version line (wrk prints it on any bad invocation)."""
    exe = shutil.which("wrk")
    if exe is None:
        return "not installed"

    out = subprocess.run([exe, "-v"], capture_output=True, text=True, check=False)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "wrk"


def script(workdir: Path, *, unique: bool) -> Path:
    """The Lua script for a run: the report, plus the unique-address generator if asked."""
    path = workdir / ("wrk-unique.lua" if unique else "wrk-report.lua")
    if not path.exists():
        parts = [(LUA / "report.lua").read_text()]
        if unique:
            parts.append((LUA / "unique.lua").read_text())
        path.write_text("\n".join(parts))
    return path


async def run(
    target: str,
    url: str,
    settings: WrkSettings,
    lua: Path,
    args: tuple[str, ...] = (),
) -> WrkResult:
    """Run wrk against `url` with `settings` and the script `lua` (arguments after `--`)."""
    exe = shutil.which("wrk")
    if exe is None:
        raise WrkError("wrk is not installed (Debian package wrk)")
    argv = [
        exe, f"-t{settings.threads}", f"-c{settings.connections}", f"-d{settings.seconds:g}s",
        "--timeout", f"{settings.timeout_s:g}s", "-s", str(lua), url,
    ]  # fmt: skip
    if args:
        argv += ["--", *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise WrkError(f"wrk failed ({proc.returncode}): {err.decode(errors='replace')}{text}")
    line = next((x for x in text.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise WrkError(f"no BENCH_JSON line in wrk's output:\n{text}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    return WrkResult(
        target=target,
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_us=data["latency_us"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )
