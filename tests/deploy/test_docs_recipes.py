"""The recipes a newcomer copies from the docs do what the docs say, run as written (only the
ports, the Redis URL and the executable's path are swapped for this machine's)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.conftest import free_port
from tests.deploy.conftest import ROOT
from tests.fakes.dns_server import DNSServer

EXE = str(Path(sys.executable).with_name("emailgate"))


def shell_blocks(doc: Path, heading: str) -> list[str]:
    """The ```sh blocks of the section of `doc` under `heading` (up to the next heading)."""
    text = doc.read_text()
    start = text.index(f"{heading}\n")
    rest = text[start + len(heading) + 1 :]
    end = re.search(r"^#{1,4} ", rest, flags=re.MULTILINE)
    section = rest[: end.start()] if end else rest
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def env_for(dns: DNSServer) -> dict[str, str]:
    """A clean environment: PATH with the venv's bin first, the loopback DNS server."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
    path = f"{Path(EXE).parent}:{base.get('PATH', '')}"
    return base | {"PATH": path, "EMAILGATE_DNS_SERVERS": dns.address}


async def bash(script: str, cwd: Path, env: dict[str, str], log: Path) -> None:
    """Run `script` with bash; background processes it starts keep writing to `log`."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-euc", script, cwd=cwd, env=env, stdout=out, stderr=out
        )
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, f"the recipe exited {code}; see {log}"


async def healthy(port: int) -> None:
    """Wait for /healthz on `port`."""
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    pytest.fail(f"nothing healthy on port {port}")


@contextlib.asynccontextmanager
async def stopped_after(*pid_files: Path) -> AsyncIterator[None]:
    """SIGTERM the processes named in `pid_files` when the block ends, and wait for them."""
    try:
        yield
    finally:
        pids = [int(p.read_text()) for p in pid_files if p.exists()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in pids:
            for _ in range(200):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                await asyncio.sleep(0.05)


async def test_the_reload_recipe_signals_the_serve_it_started(
    dns_server: DNSServer, tmp_path: Path
) -> None:
    """docs/access.md "Reloading keys": with another `emailgate serve` running, the recipe's
    SIGHUP reaches the process it started (its log says so) and no other."""
    start, reload = shell_blocks(ROOT / "docs/access.md", "## Reloading keys")[0].splitlines()
    env = env_for(dns_server)
    decoy_port, port = free_port(), free_port()
    decoy_log, log = tmp_path / "decoy.log", tmp_path / "svc.log"
    decoy_dir = tmp_path / "decoy"
    decoy_dir.mkdir()
    async with stopped_after(tmp_path / "emailgate.pid", decoy_dir / "emailgate.pid"):
        await bash(start, decoy_dir, env | {"EMAILGATE_PORT": str(decoy_port)}, decoy_log)
        await healthy(decoy_port)
        await bash(start, tmp_path, env | {"EMAILGATE_PORT": str(port)}, log)
        await healthy(port)
        await bash(reload, tmp_path, env, log)
        for _ in range(200):
            if "keys_reload_skipped" in log.read_text():
                break
            await asyncio.sleep(0.05)
    assert "keys_reload_skipped" in log.read_text()
    assert "keys_reload_skipped" not in decoy_log.read_text()


async def test_two_replicas_without_docker_share_the_cache(
    dns_server: DNSServer, redis_url: str, tmp_path: Path
) -> None:
    """docs/deploy.md "Two replicas without Docker": the two `emailgate serve` it starts on one
    Redis with one hash key share verdicts (the second answer is a cache hit)."""
    (block,) = shell_blocks(ROOT / "docs/deploy.md", "### Two replicas without Docker")
    ports = [free_port(), free_port()]
    script = block.replace("redis://127.0.0.1:6379/0", redis_url)
    script = script.replace("8081", str(ports[0])).replace("8082", str(ports[1]))
    script = script.replace(".venv/bin/emailgate", EXE)
    async with stopped_after(tmp_path / "emailgate-1.pid", tmp_path / "emailgate-2.pid"):
        await bash(script, tmp_path, env_for(dns_server), tmp_path / "svc.log")
        for port in ports:
            await healthy(port)
        async with aiohttp.ClientSession() as http:
            answers = []
            for port in ports:
                url = f"http://127.0.0.1:{port}/api/v1/verify?email=pair@good.com"
                async with http.get(url) as r:
                    answers.append((await r.json())["data"]["cached"])
    assert answers == [False, True]


def test_the_readme_names_every_service_of_the_compose_stack() -> None:
    """README's description of the compose stack (from "compose" to the next item, the
    Kubernetes manifests) names each service the compose file runs, Grafana too."""
    compose = yaml.safe_load((ROOT / "deploy/compose/docker-compose.yml").read_text())
    text = " ".join((ROOT / "README.md").read_text().split())
    section = text[text.index("## Deployment") :]
    paragraph = section[section.index("compose") : section.index("Kubernetes manifests")].lower()
    for service in compose["services"]:
        name = re.sub(r"-\d+$", "", service)
        assert (name if name != "emailgate" else "replicas") in paragraph, service


def test_the_readme_documents_the_check_exit_codes() -> None:
    """README states `emailgate check`'s exit statuses: 0 accept, 1 reject, 2 usage."""
    text = (ROOT / "README.md").read_text()
    for row in ("| `0` | accept", "| `1` | reject", "| `2` | usage"):
        assert row in text, row
