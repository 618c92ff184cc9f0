"""`emailgate batch` as a user runs it: in-process with progress and a results file, and
submitted to a running service with --url and --key."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import sys
from pathlib import Path

import pytest

from tests.fakes.dns_server import DNSServer
from tests.jobs.helpers import write_csv
from tests.serviceproc import ServiceProcess

REPO = Path(__file__).resolve().parents[2]
ROWS = [["name", "email"], ["Ann", "ann@good.com"], ["Bob", "bob@gone.com"], ["Cy", "nope"],
        ["Ann again", "ANN@good.com"]]  # fmt: skip


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emailgate", "batch", *args, env=base | env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


async def test_batch_in_process_writes_results_and_shows_progress(
    dns_server: DNSServer, tmp_path: Path
) -> None:
    """The file comes back with its columns and results, row for row; progress goes to
    stderr; the job is removed from the store afterwards."""
    src = write_csv(tmp_path / "list.csv", ROWS)
    out = tmp_path / "results.csv"
    data = tmp_path / "data"
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_DATA_DIR": str(data),
           "EMAILGATE_LOG_LEVEL": "error"}  # fmt: skip
    code, stdout, stderr = await cli(str(src), "--out", str(out), env=env)
    assert code == 0, stderr
    assert "100%" in stderr and "processed" in stderr
    rows = read(out)
    assert [r["name"] for r in rows] == ["Ann", "Bob", "Cy", "Ann again"]
    assert [r["reason"] for r in rows[1:3]] == ["invalid_domain", "invalid_email"]
    assert rows[0]["state"] == rows[3]["state"]
    assert stdout == ""
    import sqlite3

    with sqlite3.connect(data / "jobs.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM job_rows").fetchone() == (0,)


async def test_batch_cli_refuses_bad_files(dns_server: DNSServer, tmp_path: Path) -> None:
    """A file that is not CSV/TXT/XLSX, or has no address column: exit 2 with the reason."""
    env = {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_DATA_DIR": str(tmp_path)}
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF")
    code, _, stderr = await cli(str(pdf), env=env)
    assert code == 2 and ".csv, .txt or .xlsx" in stderr
    nocol = write_csv(tmp_path / "n.csv", [["a", "b"], ["1", "2"]])
    code, _, stderr = await cli(str(nocol), env=env)
    assert code == 2 and "no address column" in stderr


@pytest.mark.slow
async def test_batch_submitted_to_a_running_service(dns_server: DNSServer, tmp_path: Path) -> None:
    """--url and --key: uploaded to the service, followed, the download written; a wrong key
    is exit 2 with the service's message."""
    key = "sk_cli_private_key"
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[key]]\nname = "ops"\nkind = "private"\n'
                    f'sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n')  # fmt: skip
    service = await ServiceProcess.start(
        {"EMAILGATE_DNS_SERVERS": dns_server.address, "EMAILGATE_API_KEYS_FILE": str(keys)},
        tmp_path / "serve.log",
    )
    try:
        src = write_csv(tmp_path / "list.csv", ROWS)
        out = tmp_path / "results.csv"
        code, _, stderr = await cli(str(src), "--url", service.url, "--key", key, "--out",
                                    str(out), env={})  # fmt: skip
        assert code == 0, stderr
        assert [r["name"] for r in read(out)] == ["Ann", "Bob", "Cy", "Ann again"]
        code, _, stderr = await cli(str(src), "--url", service.url, "--key", "wrong", env={})
        assert code == 2 and "401" in stderr
    finally:
        await service.stop()
