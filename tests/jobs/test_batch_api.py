"""The batch API end to end on a real app (SQLite store, our DNS server, the fake providers):
uploads of JSON, CSV, TXT and XLSX, the free stages, results, downloads, and every bad input
answered with a clear 4xx and nothing stored."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests import openapi_check
from tests.fakes.listcleanser import VERIFY, FakeListCleanser
from tests.jobs.helpers import Client, download, file_form, wait_status, write_csv, write_xlsx

MakeClient = Callable[..., Awaitable[Client]]
BATCH = "/api/v1/batch"

MIX = [
    "ann@good.com", "Ann@GOOD.com", "not an address", "temp@mailinator.com",
    "x@gone.com", "bob@gmail.com", "ann@good.com", "carol@nullmx.com",
]  # fmt: skip


async def post(client: Client, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await client.post(BATCH, json=body, headers=headers)
    data = await response.json()
    openapi_check.check("POST", BATCH, response.status, data)
    return response.status, data


async def job_count(client: Client, **headers: str) -> int:
    response = await client.get(BATCH, headers=headers)
    body = await response.json()
    return len(body["data"])


async def test_json_batch_free_stages_results_and_download(make_client: MakeClient) -> None:
    """A JSON list without providers: duplicates, bad syntax, disposable and dead domains are
    answered by the free stages; the completed answer has ListCleanser's shape and stats; the
    download has one row per input row, in order."""
    client = await make_client()
    status, body = await post(client, {"emails": MIX, "name": "old signups"})
    assert status == 201, body
    assert body["data"]["status"] == "processing" and body["data"]["number_of_total"] == 8
    done = await wait_status(client, body["data"]["id"])
    openapi_check.check("GET", f"{BATCH}/{{id}}", 200, done)
    job = done["job"]
    assert job["context"] == "marketing"
    assert (job["number_of_total"], job["duplicates"], job["invalid_format"]) == (8, 2, 1)
    assert job["processed"] == 6 and job["billable"] == 2 and job["credits_spent"] == 0
    assert sum(job["counts"].values()) == 6
    assert done["stats"]["total"] == 8 and done["stats"]["duplicate"] == 25.0
    by_email = {d["email"]["email_address"]: d["email"] for d in done["data"]}
    assert by_email["not an address"]["reason"] == "invalid_email"
    assert by_email["temp@mailinator.com"]["reason"] == "low_quality"
    assert by_email["x@gone.com"]["reason"] == "invalid_domain"
    assert by_email["carol@nullmx.com"]["reason"] == "invalid_domain"
    assert by_email["bob@gmail.com"]["state"] == "unknown"  # no provider: fail-open
    rows = await download(client, job["id"])
    assert [r["email"] for r in rows] == MIX
    assert rows[1]["state"] == rows[0]["state"] and rows[6]["reason"] == rows[0]["reason"]
    bad = await download(client, job["id"], "bad")
    assert {r["email"] for r in bad} == {"not an address", "temp@mailinator.com", "x@gone.com",
                                         "carol@nullmx.com"}  # fmt: skip
    filtered = await client.get(f"{BATCH}/{job['id']}", params={"state": "undeliverable"})
    fbody = await filtered.json()
    assert fbody["count"] == 3
    assert {d["email"]["state"] for d in fbody["data"]} == {"undeliverable"}


async def test_csv_keeps_columns_and_finds_email_by_name(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A CSV with a header: the column named E-Mail is found; the other columns come back."""
    path = write_csv(tmp_path / "list.csv", [["name", "E-Mail", "city"], ["Ann", "ann@good.com",
                     "Oslo"], ["Bob", "bob@gone.com", "Rome"]])  # fmt: skip
    client = await make_client()
    response = await client.post(BATCH, data=file_form(path, name="crm"))
    body = await response.json()
    assert response.status == 201, body
    await wait_status(client, body["data"]["id"])
    rows = await download(client, body["data"]["id"])
    assert [(r["name"], r["E-Mail"], r["city"]) for r in rows] == [
        ("Ann", "ann@good.com", "Oslo"), ("Bob", "bob@gone.com", "Rome")]  # fmt: skip
    assert rows[1]["reason"] == "invalid_domain"


async def test_multipart_part_with_unreadable_headers_is_a_400(make_client: MakeClient) -> None:
    """A part whose header line holds a control character (schemathesis found it a 500) is a
    400 that does not quote the bytes, and no job is made."""
    client = await make_client()
    body = b'--b\r\nContent-Disposition: form-data; name="\x0fx"\r\n\r\nv\r\n--b--\r\n'
    response = await client.post(
        BATCH, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    answer = await response.json()
    assert response.status == 400, answer
    assert "\x0f" not in answer["message"]
    listed = await (await client.get(BATCH)).json()
    assert listed["data"] == []


async def test_download_carries_the_request_id(make_client: MakeClient) -> None:
    """The streamed download has the X-Request-Id and nosniff headers every answer has."""
    client = await make_client()
    response = await client.post(BATCH, json={"emails": ["ann@good.com"]})
    job_id = (await response.json())["data"]["id"]
    await wait_status(client, job_id)
    response = await client.get(f"{BATCH}/{job_id}/download", headers={"X-Request-Id": "abc123"})
    assert response.status == 200
    assert response.headers["X-Request-Id"] == "abc123"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_download_guards_formula_cells(make_client: MakeClient, tmp_path: Path) -> None:
    """Cells (header included) that start with = + - @ tab or CR come back with a leading
    apostrophe, so a spreadsheet shows them as text; other cells are untouched."""
    risky = ['=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    path = write_csv(tmp_path / "list.csv", [["email", "=note"], *[[f"u{i}@good.com", cell]
                     for i, cell in enumerate([*risky, "plain", "a=b"])]])  # fmt: skip
    client = await make_client()
    response = await client.post(BATCH, data=file_form(path))
    body = await response.json()
    assert response.status == 201, body
    await wait_status(client, body["data"]["id"])
    rows = await download(client, body["data"]["id"])
    assert [r["'=note"] for r in rows] == [*("'" + c for c in risky), "plain", "a=b"]
    assert [r["email"] for r in rows] == [f"u{i}@good.com" for i in range(8)]


async def test_xlsx_column_found_by_content_and_txt(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """An XLSX without a header row: the column whose cells are addresses is the email column;
    a TXT file is one address a line."""
    xlsx = write_xlsx(tmp_path / "list.xlsx", [[1, "ann@good.com", "x"], [2, "bob@good.com", "y"]])
    client = await make_client()
    response = await client.post(BATCH, data=file_form(xlsx))
    body = await response.json()
    assert response.status == 201, body
    assert body["data"]["number_of_total"] == 2
    await wait_status(client, body["data"]["id"])
    rows = await download(client, body["data"]["id"])
    assert [r["email"] for r in rows] == ["ann@good.com", "bob@good.com"]
    assert [r["column_1"] for r in rows] == ["1", "2"]
    txt = tmp_path / "list.txt"
    txt.write_text("email\nann@good.com\n\nx@gone.com\n")
    response = await client.post(BATCH, data=file_form(txt))
    body = await response.json()
    assert response.status == 201 and body["data"]["number_of_total"] == 2


async def test_column_overrides(make_client: MakeClient, tmp_path: Path) -> None:
    """`column` picks the address column by name when two could be it."""
    path = write_csv(tmp_path / "l.csv", [["email", "backup"], ["ann@good.com", "b@gone.com"]])
    client = await make_client()
    response = await client.post(BATCH, data=file_form(path, column="backup"))
    body = await response.json()
    assert response.status == 201
    await wait_status(client, body["data"]["id"])
    rows = await download(client, body["data"]["id"])
    assert rows[0]["reason"] == "invalid_domain"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"emails": []}, 400, "empty"),
        ({"emails": "a@good.com"}, 400, "list of strings"),
        ({"emails": [1]}, 400, "list of strings"),
        ({"emails": ["a@good.com"] * 50_001}, 413, "50000"),
        ({"emails": ["a@good.com"], "context": "nope"}, 400, "context"),
        ({"emails": ["a@good.com"], "max_credits": -1}, 400, "max_credits"),
        ({"emails": ["a@good.com"], "max_credits": 2**63}, 400, "max_credits"),
        ({"emails": ["a@good.com"], "callback_url": "https://hooks.example.org/x"}, 400,
         "EMAILGATE_WEBHOOK_SECRET"),
        ([], 400, "object"),
    ],
)  # fmt: skip
async def test_bad_json_is_4xx_and_stores_nothing(
    make_client: MakeClient, body: Any, status: int, words: str
) -> None:
    """Each bad JSON upload is the contract's error and leaves no job behind."""
    client = await make_client()
    got, answer = await post(client, body)
    assert got == status, answer
    assert answer["success"] is False and words in answer["message"]
    assert await job_count(client) == 0


@pytest.mark.parametrize(
    ("callback", "words"),
    [
        ("http://hooks.example.org/x", "https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://[::1]/x", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://224.0.0.1/x", "multicast"),
    ],
)
async def test_callback_to_private_addresses_is_refused(
    make_client: MakeClient, callback: str, words: str
) -> None:
    """SSRF: a callback that is not https or points at a private address is a 400."""
    client = await make_client(EMAILGATE_WEBHOOK_SECRET="s" * 32)
    got, answer = await post(client, {"emails": ["a@good.com"], "callback_url": callback})
    assert got == 400 and words in answer["message"], answer
    assert await job_count(client) == 0


async def test_bad_files_are_4xx_and_store_nothing(make_client: MakeClient, tmp_path: Path) -> None:
    """Wrong type 415, no address column 400 naming the columns, too many rows or bytes 413,
    not multipart nor JSON 415; no job and no spooled file is left."""
    client = await make_client(EMAILGATE_BATCH_MAX_ROWS="3", EMAILGATE_BATCH_MAX_BYTES="2048")
    pdf = tmp_path / "list.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    fake_xlsx = tmp_path / "list.xlsx"
    fake_xlsx.write_text("ann@good.com\n")
    nocol = write_csv(tmp_path / "nocol.csv", [["first", "last"], ["Ann", "Lee"]])
    many = write_csv(tmp_path / "many.csv", [["email"]] + [[f"u{i}@good.com"] for i in range(4)])
    big = write_csv(tmp_path / "big.csv", [["email"]] + [[f"user{i}@good.com"] for i in range(200)])
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\x00\x01\x02email")
    cases = [
        (file_form(pdf), 415, ".csv, .txt or .xlsx"),
        (file_form(fake_xlsx), 415, "not a spreadsheet"),
        (file_form(nocol), 400, "'first', 'last'"),
        (file_form(many), 413, "more than 3 rows"),
        (file_form(big), 413, "larger than 2048"),
        (file_form(binary), 415, "binary"),
        (file_form(nocol, column="mail"), 400, "no column named 'mail'"),
    ]
    for form, status, words in cases:
        response = await client.post(BATCH, data=form)
        body = await response.json()
        assert response.status == status, (words, body)
        assert words in body["message"], body
    response = await client.post(BATCH, data=b"a@good.com", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert await job_count(client) == 0
    uploads = tmp_path / "data" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


async def test_unknown_job_ids_are_404(make_client: MakeClient, store_url: str | None) -> None:
    """An id that does not exist, is not a number, is a digit int() refuses (²) or is beyond
    the id column (an error in PostgreSQL, not a miss) is a 404 on every job path."""
    client = await make_client(**({"EMAILGATE_DATABASE_URL": store_url} if store_url else {}))
    odd = ("%C2%B2", "2147483648", "99999999999", "999999999999")
    odd_paths = [*(f"{BATCH}/{n}" for n in odd), *(f"/api/v1/enrich/{n}" for n in odd)]
    for path in (f"{BATCH}/99", f"{BATCH}/abc", f"{BATCH}/99/download", *odd_paths):
        response = await client.get(path)
        assert response.status == 404
    assert (await client.delete(f"{BATCH}/99")).status == 404
    assert (await client.post(f"{BATCH}/99/start")).status == 404


async def test_provider_checks_go_into_the_cache_and_are_paid_once(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser
) -> None:
    """Billable addresses are paid through ListCleanser once each (its call log is the
    witness); afterwards a signup of one of them is answered from the cache."""
    client = await make_client(
        EMAILGATE_LISTCLEANSER_URL=fake_listcleanser.url,
        EMAILGATE_LISTCLEANSER_API_KEY=fake_listcleanser.api_key,
        EMAILGATE_LISTCLEANSER_RATE="6000/60s",
    )
    emails = [f"deliverable.u{i}@good.com" for i in range(30)] + ["risky.z@gmail.com"] * 3
    status, body = await post(client, {"emails": emails})
    assert status == 201
    done = await wait_status(client, body["data"]["id"])
    job = done["job"]
    assert job["billable"] == 31 and job["credits_spent"] == 31
    assert job["provider"] == "listcleanser"
    called = fake_listcleanser.calls.emails(VERIFY)
    assert sorted(called) == sorted(set(emails)) and len(called) == 31
    response = await client.get("/api/v1/verify", params={"email": "deliverable.u7@good.com"})
    result = (await response.json())["data"]
    assert result["cached"] is True and result["source"] == "listcleanser"
    assert len(fake_listcleanser.calls.emails(VERIFY)) == 31


async def test_max_credits_waits_for_approval(
    make_client: MakeClient, fake_listcleanser: FakeListCleanser
) -> None:
    """Billable above max_credits holds the job in waiting_approval with nothing spent;
    /start with too small a max_credits is refused; /start runs it."""
    client = await make_client(
        EMAILGATE_LISTCLEANSER_URL=fake_listcleanser.url,
        EMAILGATE_LISTCLEANSER_API_KEY=fake_listcleanser.api_key,
        EMAILGATE_LISTCLEANSER_RATE="6000/60s",
    )
    emails = [f"u{i}@good.com" for i in range(5)] + ["x@gone.com"]
    _, body = await post(client, {"emails": emails, "max_credits": 3})
    job_id = body["data"]["id"]
    waiting = await wait_status(client, job_id, "waiting_approval")
    assert waiting["job"]["billable"] == 5 and waiting["state"] == "waiting_approval"
    await asyncio.sleep(0.3)
    assert fake_listcleanser.calls.emails(VERIFY) == []
    refused = await client.post(f"{BATCH}/{job_id}/start", json={"max_credits": 4})
    assert refused.status == 400
    too_large = await client.post(f"{BATCH}/{job_id}/start", json={"max_credits": 2**63})
    assert too_large.status == 400 and "max_credits" in (await too_large.json())["message"]
    started = await client.post(f"{BATCH}/{job_id}/start", json={"max_credits": 5})
    assert started.status == 200, await started.text()
    done = await wait_status(client, job_id)
    assert done["job"]["credits_spent"] == 5
    again = await client.post(f"{BATCH}/{job_id}/start")
    assert again.status == 409


async def test_delete_removes_the_job(make_client: MakeClient) -> None:
    """DELETE answers 200; the job is a 404 afterwards and no longer listed."""
    client = await make_client()
    _, body = await post(client, {"emails": ["a@good.com"]})
    job_id = body["data"]["id"]
    response = await client.delete(f"{BATCH}/{job_id}")
    assert response.status == 200
    assert (await client.get(f"{BATCH}/{job_id}")).status == 404
    assert await job_count(client) == 0
