"""The processes a benchmark run starts on loopback, and stops again whatever happens.

`emailgate serve` (with EMAILGATE_* settings), the bare aiohttp yardstick, the loopback DNS
server, the fake providers (tests/fakes, FakeProvidersProcess) and a private redis-server.
Each process's output goes to a file in the run's work directory; a process that fails to start
raises with the tail of that file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
# A fixed key so that replicas share cache keys (any 16+ characters; not a secret here).
HASH_KEY = "benchmark-hash-key-0123456789abcdef"
# The per-client-IP limit of an open service: every benchmark request comes from 127.0.0.1.
UNLIMITED_OPEN_RATE = "1000000000/1s"


class StartError(RuntimeError):
    """A process the benchmark needs did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file (for error messages)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; close the log."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        self.log_file.close()


async def spawn(
    name: str,
    argv: list[str],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdout_pipe: bool = False,
) -> Proc:
    """Start `argv` from the repository root, stderr (and stdout unless piped) to a log."""
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO_ROOT,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if stdout_pipe else log_file,
        stderr=log_file,
    )
    return Proc(name, proc, log_path, log_file)


async def ready_line(p: Proc, timeout: float = 20.0) -> dict[str, Any]:
    """The JSON ready line a helper process prints on stdout."""
    assert p.proc.stdout is not None
    try:
        line = await asyncio.wait_for(p.proc.stdout.readline(), timeout)
        data: dict[str, Any] = json.loads(line)
        if not data.get("ready"):
            raise ValueError(line)
    except (TimeoutError, ValueError) as e:
        await p.stop()
        raise StartError(f"{p.name} did not start ({e!r}):\n{tail(p.log_path)}") from e
    return data


@dataclass
class HttpProc:
    """An HTTP server process: emailgate or the bare yardstick."""

    process: Proc
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        await self.process.stop()


async def wait_ready(p: Proc, url: str, path: str = "/readyz", timeout: float = 30.0) -> None:
    """Poll `url + path` until it answers 200; raise with the log if the process dies first."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < end:
            if p.proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url + path) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    await p.stop()
    raise StartError(f"{p.name} is not ready at {url}{path}:\n{tail(p.log_path)}")


def service_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of an emailgate process: ours, without the caller's EMAILGATE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
    env.update(
        {
            "EMAILGATE_HOST": "127.0.0.1",
            "EMAILGATE_OPEN_RATE": UNLIMITED_OPEN_RATE,
            "EMAILGATE_HASH_KEY": HASH_KEY,
        }
    )
    env.update(settings)
    return env


def emailgate_argv() -> list[str]:
    """`emailgate serve` from this interpreter's environment."""
    script = Path(sys.executable).with_name("emailgate")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "emailgate", "serve"]


async def start_service(name: str, workdir: Path, settings: Mapping[str, str]) -> HttpProc:
    """`emailgate serve` on a free port with these EMAILGATE_* settings, once ready."""
    port = free_port()
    data = {"EMAILGATE_DATA_DIR": str(workdir / f"{name}-data")}  # its job store, not ./data
    env = service_env({**data, **settings, "EMAILGATE_PORT": str(port)})
    p = await spawn(name, emailgate_argv(), workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(p, url)
    return HttpProc(p, url)


async def start_bare(name: str, workdir: Path, body: bytes, loop: str = "asyncio") -> HttpProc:
    """The bare aiohttp handler answering `body` on `loop` (asyncio or uvloop), once ready."""
    port = free_port()
    body_file = workdir / f"{name}.body.json"
    body_file.write_bytes(body)
    argv = [sys.executable, "-m", "benchmarks.bare", str(port), str(body_file), loop]
    p = await spawn(name, argv, workdir)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(p, url, "/healthz")
    return HttpProc(p, url)


async def start_dns(workdir: Path) -> tuple[Proc, str]:
    """The benchmark zone on a loopback DNS server: (process, `127.0.0.1:port`)."""
    p = await spawn("dns", [sys.executable, "-m", "benchmarks.dnsd"], workdir, stdout_pipe=True)
    ready = await ready_line(p)
    return p, str(ready["address"])


async def start_redis(workdir: Path) -> tuple[Proc, str]:
    """A private redis-server on a free port, nothing on disk: (process, URL)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise StartError("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    data = workdir / "redis"
    data.mkdir(exist_ok=True)
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(data), "--loglevel", "warning"]  # fmt: skip
    p = await spawn("redis", argv, workdir)
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while loop.time() < end and p.proc.returncode is None:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PING\r\n")
            await writer.drain()
            answer = await reader.read(16)
            writer.close()
            if answer.startswith(b"+PONG"):
                return p, f"redis://127.0.0.1:{port}/0"
        await asyncio.sleep(0.05)
    await p.stop()
    raise StartError(f"redis-server did not start on port {port}:\n{tail(p.log_path)}")
