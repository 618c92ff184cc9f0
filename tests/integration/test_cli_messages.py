"""What a newcomer reads from the `emailgate` command: start-up failures as one line naming the
variable (exit 2, no "ready" before the port is bound), `serve --help`, `check`'s documented
exit codes and an output that is only the RESULT."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.dns_server import DNSServer
from tests.integration.test_cli import EXE, run
from tests.serviceproc import ServiceProcess


def one_line(err: str) -> str:
    """stderr holds exactly one line, that line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def test_a_port_in_use_is_one_line_exit_2_and_no_ready(dns_server: DNSServer) -> None:
    """Another process holds the port: one line naming EMAILGATE_PORT and the address, exit
    2, and never an "emailgate ready" line (nor a traceback) before it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"EMAILGATE_PORT": str(port), "EMAILGATE_DNS_SERVERS": dns_server.address}
        code, out, err = await run(EXE, "serve", env=env)
    line = one_line(out + err)
    assert code == 2
    assert line.startswith("emailgate: EMAILGATE_PORT:") and f"127.0.0.1:{port}" in line
    assert "in use" in line and "emailgate ready" not in out + err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMAILGATE_REDIS_URL", "redis://h:notaport"),
        ("EMAILGATE_REDIS_URL", "redis://:s3cr3t@h:99999/0"),
        ("EMAILGATE_LISTCLEANSER_URL", "http://127.0.0.1:notaport"),
        ("EMAILGATE_CLEANMYLIST_URL", "https://app.example.org:70000"),
        ("EMAILGATE_DNS_SERVERS", "[::1]:x53"),
        ("EMAILGATE_DNS_SERVERS", "127.0.0.1:"),
    ],
)
async def test_a_bad_port_in_a_setting_is_one_line_naming_it(name: str, value: str) -> None:
    """A port that is not a number (or is out of range) in a URL or a name server is refused
    at start: one line that names the variable, exit 2, no secret, no traceback."""
    code, out, err = await run(EXE, "serve", env={name: value})
    line = one_line(out + err)
    assert code == 2
    assert line.startswith(f"emailgate: {name}:") and "port" in line
    assert "s3cr3t" not in line


async def test_serve_help_lists_the_settings() -> None:
    """`emailgate serve --help` explains itself: what it does and the settings it reads."""
    code, out, _ = await run(EXE, "serve", "--help")
    assert code == 0
    for text in ("usage: emailgate serve", "EMAILGATE_PORT", "EMAILGATE_REDIS_URL",
                 "EMAILGATE_HASH_KEY", "SIGHUP"):  # fmt: skip
        assert text in out, text


async def test_check_help_documents_the_exit_codes() -> None:
    """`emailgate check --help` states the exit codes: 0 accept, 1 reject, 2 usage."""
    code, out, _ = await run(EXE, "check", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for text in ("0 accept", "1 reject", "2 "):
        assert text in flat, text


async def test_check_output_is_the_result_alone_and_exits_2_on_misuse(
    dns_server: DNSServer,
) -> None:
    """At the default log level, stdout and stderr together are one JSON document (no log
    line); an unknown context or a missing address exits 2."""
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address}
    code, out, err = await run(EXE, "check", "someone@good.com", env=env)
    assert code == 0 and err == ""
    assert json.loads(out + err)["decision"] == "accept"
    code, out, err = await run(EXE, "check", "x@gone.com", env=env)
    assert code == 1 and json.loads(out + err)["decision"] == "reject"
    code, _, err = await run(EXE, "check", "someone@good.com", "--context", "nope", env=env)
    assert code == 2 and "nope" in one_line(err)
    code, _, _ = await run(EXE, "check", env=env)
    assert code == 2


async def test_the_demo_takes_a_multipart_post(dns_server: DNSServer, tmp_path: Path) -> None:
    """A real `emailgate serve`: /demo answers a multipart form (what `curl -F` sends) like an
    urlencoded one, a broken multipart body with a 400, and never a 500 or a traceback."""
    service = await ServiceProcess.start(
        {"EMAILGATE_DNS_SERVERS": dns_server.address}, tmp_path / "svc.log"
    )
    try:
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("email", "<i>jo</i>@good.com")
            form.add_field("note", b"\x00\x01", filename="note.bin")
            async with http.post(f"{service.url}/demo", data=form) as r:
                assert r.status == 200
                assert "&lt;i&gt;jo&lt;/i&gt;@good.com" in await r.text()
            broken = {"Content-Type": "multipart/form-data; boundary=nope"}
            async with http.post(f"{service.url}/demo", data=b"garbage", headers=broken) as r:
                assert r.status == 400
                assert (await r.json())["success"] is False
    finally:
        assert await service.stop() == 0
    assert "Traceback" not in (tmp_path / "svc.log").read_text()
