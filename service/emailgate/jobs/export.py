"""The results as CSV: the input's columns, then the result columns, one row per input row."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from emailgate.jobs.model import Job
from emailgate.jobs.store import JobStore

RESULT_COLUMNS = ("state", "reason", "score", "decision", "did_you_mean", "disposable", "free",
                  "role", "accept_all", "source")  # fmt: skip
EXPORT_TYPES = ("all", "ok", "bad")
CHUNK = 64 * 1024
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such a
# cell gets a leading apostrophe, as OWASP recommends, so it opens as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def csv_chunks(store: JobStore, job: Job, export: str = "all") -> AsyncIterator[bytes]:
    """The CSV in pieces of about 64 KiB; `ok` keeps accepted rows, `bad` rejected ones."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([guard(c) for c in (*job.columns, *RESULT_COLUMNS)])
    written = 0
    async for cells, _email, result in store.export(job.id, page=500):
        written += 1
        if written % 200 == 0:
            await asyncio.sleep(0)  # let signups in: a long download is CPU work on the loop
        decision = result.get("decision") if result else None
        if export == "ok" and decision != "accept":
            continue
        if export == "bad" and decision != "reject":
            continue
        extra = [_value(result.get(c)) if result else "" for c in RESULT_COLUMNS]
        writer.writerow([guard(c) for c in (*cells, *extra)])
        if buffer.tell() > CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def guard(cell: Any) -> Any:
    """The cell, or a text cell that a spreadsheet would run as a formula, made inert."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
