"""Run both fakes in a child process (`python -m tests.fakes.providers`), for benchmarks and
multi-process tests; drive it with control.FakeControl over its URLs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeProcessError(RuntimeError):
    """The fake providers' process did not start."""


class FakeProvidersProcess:
    """A running `python -m tests.fakes.providers`; `start()` returns once it is ready."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc = proc
        self.pid = int(ready["pid"])
        self.listcleanser_url = str(ready["listcleanser"])
        self.cleanmylist_url = str(ready["cleanmylist"])

    @classmethod
    async def start(cls, *args: str, timeout: float = 15.0) -> Self:
        """Start it with these command-line arguments and wait for its ready line."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes.providers", *args,
            cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            ready = json.loads(line)
            if not ready.get("ready"):
                raise ValueError(line)
        except (TimeoutError, ValueError) as e:
            await _kill(proc)
            raise FakeProcessError(f"no ready line from the fake providers: {e!r}") from e
        return cls(proc, ready)

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait for the exit (SIGKILL after `timeout`); the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                await _kill(self.proc)
        await _drain(self.proc)
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
    await _drain(proc)


async def _drain(proc: asyncio.subprocess.Process) -> None:
    # Read to EOF so the pipe transport closes inside the loop (no ResourceWarning later).
    if proc.stdout is not None:
        await proc.stdout.read()
