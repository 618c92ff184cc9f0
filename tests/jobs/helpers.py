"""Shared pieces of the batch tests: waiting for a job, reading the download, making files."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]


async def wait_status(
    client: Client, job_id: int, want: str = "processed", *, timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Poll GET /api/v1/batch/{id} until the job's status is `want`; the last answer."""
    body: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"/api/v1/batch/{job_id}", headers=headers or {})
            body = await response.json()
            assert response.status == 200, body
            if body["job"]["status"] == want:
                return body
            assert body["job"]["status"] not in ("failed", "cancelled"), body
            await asyncio.sleep(0.05)


async def download(
    client: Client, job_id: int, export: str = "all", headers: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """The job's CSV download as dicts."""
    response = await client.get(
        f"/api/v1/batch/{job_id}/download", params={"export_type": export}, headers=headers or {}
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "text/csv"
    return list(csv.DictReader(io.StringIO(await response.text())))


def file_form(path: Path, **fields: str) -> FormData:
    """A multipart form with the file in `email_list` and the other fields."""
    form = FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("email_list", path.read_bytes(), filename=path.name)
    return form


def write_csv(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("list")
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path
