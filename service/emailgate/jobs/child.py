"""`EMAILGATE_JOB_WORKER=process`: `emailgate serve` works its batch jobs in a child process.

A job's CPU work (parsing, local checks, store writes, its provider calls) on the serving event
loop makes every signup behind it wait; in a child at a lower CPU priority (nice) the kernel
runs the service first. The child shares the cache and the provider pacing through Redis (the
setting requires it) and the job store through the database or the data dir. It is restarted
when it dies, stopped with the service (its job handed back), and ends with its parent even
when the parent is killed (it asks the kernel for a signal when its parent dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping

log = logging.getLogger("emailgate.jobs")

WORKER_NICE = 10  # the child's CPU priority below the service's (0 is the default)
RESTART_FIRST = 1.0  # seconds before a dead child is started again, doubling up to RESTART_MAX
RESTART_MAX = 30.0
STEADY = 60.0  # seconds a child must live for the restart delay to start over


def worker_argv(parent: int) -> list[str]:
    """The child's command line: this interpreter, `emailgate worker`, tied to `parent`."""
    return [sys.executable, "-m", "emailgate", "worker", "--nice", str(WORKER_NICE),
            "--parent", str(parent)]  # fmt: skip


@contextlib.asynccontextmanager
async def worker_child(
    env: Mapping[str, str], *, stop_timeout: float, argv: list[str] | None = None
) -> AsyncIterator[None]:
    """Keep one worker child running while the context is open."""
    stopping = asyncio.Event()
    current: list[asyncio.subprocess.Process] = []
    task = asyncio.create_task(
        _supervise(argv or worker_argv(os.getpid()), dict(env), stopping, current),
        name="jobs-worker-child",
    )
    try:
        yield
    finally:
        stopping.set()
        for proc in current:
            await _stop(proc, stop_timeout)
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _supervise(
    argv: list[str],
    env: dict[str, str],
    stopping: asyncio.Event,
    current: list[asyncio.subprocess.Process],
) -> None:
    delay = RESTART_FIRST
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        started = loop.time()
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        current[:] = [proc]
        log.info("job worker started", extra={"event": "worker_started", "pid": proc.pid})
        code = await proc.wait()
        if stopping.is_set():
            return
        delay = RESTART_FIRST if loop.time() - started > STEADY else min(RESTART_MAX, delay * 2)
        log.warning(
            "job worker exited; starting another",
            extra={"event": "worker_exited", "code": code, "restart_in_s": delay},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)


async def _stop(proc: asyncio.subprocess.Process, timeout: float) -> None:
    """SIGTERM (the child hands its job back), then SIGKILL after `timeout` seconds."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def tie_to_parent(parent: int) -> bool:
    """In the child: SIGTERM when `parent` dies (Linux); False if it is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent
