"""`emailgate serve` as a real child process on a free loopback port, for multi-process tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Self

import aiohttp

from tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


class ServiceError(RuntimeError):
    """The service process did not come up."""


class ServiceProcess:
    """A running `python -m emailgate serve`; its JSON log lines go to `log_path`."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    @classmethod
    async def start(
        cls, env: dict[str, str], log_path: Path, *, timeout: float = 20.0, port: int = 0
    ) -> Self:
        """Start it with `env` (EMAILGATE_* only) on `port` (0: a free one chosen here, else
        one the caller chose with `free_port` to put in a setting); wait for /healthz."""
        port = port or free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
        # Each service keeps its job store beside its log unless the test gives one.
        data = {"EMAILGATE_DATA_DIR": str(log_path.parent / f"data-{port}")}
        full = base | data | env | {"EMAILGATE_HOST": "127.0.0.1", "EMAILGATE_PORT": str(port)}
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emailgate", "serve",
                env=full, cwd=REPO_ROOT, stdout=log, stderr=log,
            )  # fmt: skip
        service = cls(proc, port, log_path)
        try:
            await service._wait_healthy(timeout)
        except BaseException:
            await service.stop()
            raise
        return service

    async def _wait_healthy(self, timeout: float) -> None:
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while loop.time() < end:
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.05)
        log = self.log_path.read_text(errors="replace")[-2000:]
        raise ServiceError(f"emailgate serve did not become healthy on {self.url}:\n{log}")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig`, wait for the exit (SIGKILL after `timeout`); the exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode
