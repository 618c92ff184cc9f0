"""A description of the machine and software the figures were measured on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import profile, wrk


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
    except OSError:
        return None
    return None


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_state() -> str:
    """The commit measured, and whether the service's files differ from it."""
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    if not head:
        return "not a git checkout"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "service"],
                           capture_output=True, text=True, check=False).stdout  # fmt: skip
    changed = len(dirty.splitlines())
    return head + (f" with {changed} uncommitted change(s) under service/" if changed else "")


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def describe() -> dict[str, Any]:
    """CPU, memory, OS and the versions that shape the figures."""
    mem_kib = _first("/proc/meminfo", "MemTotal")
    os_name = _first("/etc/os-release", "PRETTY_NAME=")
    spy = profile.py_spy()
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "cores": os.cpu_count(),
        "memory": f"{int(mem_kib.split()[0]) / 2**20:.1f} GiB" if mem_kib else "?",
        "os": (os_name or platform.system()).strip('"'),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "emailgate": _package("emailgate"),
        "aiohttp": _package("aiohttp"),
        "orjson": _package("orjson"),
        "prometheus-client": _package("prometheus-client"),
        "wrk": wrk.wrk_version(),
        "redis-server": _version(["redis-server", "--version"]),
        "py-spy": _version([spy, "--version"]) if spy else "not installed",
        "git": git_state(),
        "load_before": loadavg(),
    }
