"""Handlers of the batch API (ListCleanser's `/api/v1/batch` shapes).

Who may: private keys and, without a keys file, anyone; test keys get sandbox jobs; public keys
are refused by the access layer. A key sees only its own jobs: another key's id is a 404.
Every bad input is a 4xx before anything is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from pathlib import Path
from typing import Any

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from emailgate import access, appkeys
from emailgate.config import Settings
from emailgate.http.errors import BadRequest, json_response
from emailgate.jobs.export import EXPORT_TYPES, csv_chunks
from emailgate.jobs.ingest import IngestError, file_batches, kind_of, list_batches, open_table
from emailgate.jobs.model import MAX_CREDITS, STATES, Job, JobStatus, job_id
from emailgate.jobs.offload import IngestPool, Upload
from emailgate.jobs.service import Jobs
from emailgate.jobs.store import NewJob
from emailgate.jobs.webhooks import CallbackRefused, check_callback
from emailgate.log import request_id
from emailgate.verify.decision import UnknownContext

MAX_JSON_EMAILS = 50_000
MAX_JSON_BYTES = 16 * 1024 * 1024  # 50,000 addresses of up to 254 octets, quoted, with room
MAX_FIELD = 4096  # bytes of a form field other than the file
DEFAULT_CONTEXT = "marketing"  # list cleaning before a campaign
CHUNK = 64 * 1024


def _jobs(request: web.Request) -> Any:
    return request.app[appkeys.JOBS]


def _owner(request: web.Request) -> str:
    owner: str = request.get(access.CLIENT, access.OPEN_CLIENT)
    return owner


def _sandbox(request: web.Request) -> bool:
    grant: access.Grant = request.get(access.GRANT, access.OPEN)
    return grant.sandbox


async def _job_of(request: web.Request) -> Job:
    found = job_id(request.match_info.get("id", ""))
    if found is None:
        raise web.HTTPNotFound(text="no such job")
    job: Job | None = await _jobs(request).store.get(found, owner=_owner(request))
    if job is None or job.kind != "batch":
        raise web.HTTPNotFound(text="no such job")
    return job


def _int_param(query: Any, name: str, default: int, *, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}")
    return value


async def create(request: web.Request) -> web.Response:
    """POST /api/v1/batch: JSON `{"emails": [...]}` or a multipart file in `email_list`."""
    jobs = _jobs(request)
    settings = request.app[appkeys.SETTINGS]
    owner = _owner(request)
    ctype = request.content_type
    if ctype == "application/json":
        fields, emails = await _json_upload(request)
        spool = None
    elif ctype == "multipart/form-data":
        fields, spool = await _multipart_upload(
            request, settings.data_dir, settings.batch_max_bytes
        )
        emails = None
    else:
        raise web.HTTPUnsupportedMediaType(
            text="send application/json or multipart/form-data (field email_list)"
        )
    verifier = request.app[appkeys.SERVICES].verifier

    def signups() -> int:  # checks in flight: reading the upload gives way to them
        return verifier.interactive

    try:
        new = await _new_job(request, owner, fields)
        gate = request.app[access.GATE]
        window = await gate.counter.take(
            gate.hasher.hash("batch-upload|" + owner), settings.batch_upload_rate
        )
        if not window.allowed:
            raise web.HTTPTooManyRequests(
                text=f"too many uploads; try again in {window.reset_seconds} s",
                headers={"Retry-After": str(window.reset_seconds)},
            )
        if jobs.ingest is not None:
            job = await _create_in_child(jobs, jobs.ingest, new, emails, spool, fields, settings)
        elif emails is not None:
            job = await jobs.store.create(new, list_batches(emails, busy=signups))
        else:
            assert spool is not None
            path, kind = spool
            # Off the event loop: sniffing the dialect and sampling rows is CPU work.
            table = await asyncio.to_thread(open_table, path, kind, fields.get("column"))
            new = NewJob(**{**_asdict(new), "columns": table.columns})
            job = await jobs.store.create(
                new, file_batches(table, max_rows=settings.batch_max_rows, busy=signups)
            )
    except IngestError as e:
        raise _ingest_http(e) from None
    finally:
        if spool is not None:
            with contextlib.suppress(OSError):
                spool[0].unlink()
    request.app[appkeys.METRICS].job_addresses.labels("batch", "duplicate").inc(job.duplicates)
    jobs.wake()
    data = {"id": job.id, "name": job.name, "status": job.status.value,
            "number_of_total": job.number_of_total}  # fmt: skip
    return json_response({"success": True, "data": data}, status=201)


async def _create_in_child(
    jobs: Jobs,
    pool: IngestPool,
    new: NewJob,
    emails: list[str] | None,
    spool: tuple[Path, str] | None,
    fields: dict[str, Any],
    settings: Settings,
) -> Job:
    """The upload read and stored by the ingest child (EMAILGATE_JOB_WORKER=process)."""
    path, kind = spool if spool is not None else (None, None)
    upload = Upload(new, settings.batch_max_rows, path=str(path) if path else None, kind=kind,
                    column=fields.get("column"), emails=emails)  # fmt: skip
    job = await jobs.store.get(await pool.create(upload))
    assert job is not None
    jobs.gauge_stale.set()
    return job


def _asdict(new: NewJob) -> dict[str, Any]:
    return {f: getattr(new, f) for f in NewJob.__dataclass_fields__}


def _ingest_http(e: IngestError) -> web.HTTPException:
    if e.status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=str(e))
    if e.status == 415:
        return web.HTTPUnsupportedMediaType(text=str(e))
    return web.HTTPBadRequest(text=str(e))


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit, actual_size=request.content_length, text="the body is too large"
        )
    parts = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(
                max_size=limit, actual_size=size, text="the body is too large"
            )
        parts.append(chunk)
    return b"".join(parts)


async def _json_upload(request: web.Request) -> tuple[dict[str, Any], list[str]]:
    settings = request.app[appkeys.SETTINGS]
    body = await _read_limited(request, min(MAX_JSON_BYTES, settings.batch_max_bytes))
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object like {"emails": ["a@example.com"]}')
    emails = data.get("emails")
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise BadRequest("'emails' is required and must be a list of strings")
    if not emails:
        raise BadRequest("the list is empty")
    if len(emails) > MAX_JSON_EMAILS:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_JSON_EMAILS, actual_size=len(emails),
            text=f"at most {MAX_JSON_EMAILS} addresses per JSON upload; send a file for more",
        )  # fmt: skip
    fields = {k: data[k] for k in ("name", "context", "callback_url", "max_credits") if k in data}
    return fields, emails


async def _multipart_upload(
    request: web.Request, data_dir: Path, max_bytes: int
) -> tuple[dict[str, Any], tuple[Path, str]]:
    if request.content_length is not None and request.content_length > max_bytes + 64 * 1024:
        raise web.HTTPRequestEntityTooLarge(
            max_size=max_bytes, actual_size=request.content_length, text="the upload is too large"
        )
    fields: dict[str, Any] = {}
    spool: tuple[Path, str] | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not supported")
            name = part.name
            if name == "email_list":
                if spool is not None:
                    raise BadRequest("send one file in 'email_list'")
                kind = _kind(part.filename)
                spool = (await _spool(part, data_dir, max_bytes, kind), kind)
            elif name in ("column", "name", "context", "callback_url", "max_credits"):
                value = await part.read(decode=False)
                if len(value) > MAX_FIELD:
                    raise BadRequest(f"'{name}' is too long")
                try:
                    fields[name] = bytes(value).decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise BadRequest(f"'{name}' is not UTF-8 text") from None
            else:
                await part.release()
    except ValueError as e:
        if spool is not None:
            spool[0].unlink(missing_ok=True)
        raise BadRequest(f"the multipart body is malformed ({e})") from None
    except HttpProcessingError as e:
        # A part's headers aiohttp cannot parse; its message quotes them, so only the class.
        if spool is not None:
            spool[0].unlink(missing_ok=True)
        raise BadRequest(f"the multipart body is malformed ({type(e).__name__})") from None
    except BaseException:
        if spool is not None:
            spool[0].unlink(missing_ok=True)
        raise
    if spool is None:
        raise BadRequest("the file must be sent in the form field 'email_list'")
    if "max_credits" in fields:
        fields["max_credits"] = _form_int(fields["max_credits"])
    return fields, spool


def _kind(filename: str | None) -> str:
    try:
        return kind_of(filename)
    except IngestError as e:
        raise _ingest_http(e) from None


def _max_credits(value: Any) -> int | None:
    """`max_credits` as given, or 400: a whole number the job store's column holds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CREDITS:
        raise BadRequest(f"'max_credits' must be a whole number from 0 to {MAX_CREDITS}")
    return value


def _form_int(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        raise BadRequest("'max_credits' must be a whole number") from None


async def _spool(part: BodyPartReader, data_dir: Path, max_bytes: int, kind: str) -> Path:
    """Write the file to disk as it arrives, never whole in memory; 413 past `max_bytes`."""
    folder = data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.urandom(12).hex()}.{kind}"
    size = 0
    try:
        with path.open("wb") as f:
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise web.HTTPRequestEntityTooLarge(
                        max_size=max_bytes, actual_size=size,
                        text=f"the file is larger than {max_bytes} bytes",
                    )  # fmt: skip
                f.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise BadRequest("the list is empty")
    return path


async def _new_job(request: web.Request, owner: str, fields: dict[str, Any]) -> NewJob:
    settings = request.app[appkeys.SETTINGS]
    verifier = request.app[appkeys.SERVICES].verifier
    name = fields.get("name") or "batch"
    if not isinstance(name, str) or len(name) > 500:
        raise BadRequest("'name' must be a string of at most 500 characters")
    context = fields.get("context") or DEFAULT_CONTEXT
    if not isinstance(context, str):
        raise BadRequest("'context' must be a string")
    try:
        verifier.threshold(context)
    except UnknownContext as e:
        raise BadRequest(str(e)) from None
    max_credits = _max_credits(fields.get("max_credits"))
    callback = fields.get("callback_url") or None
    if callback is not None:
        if not isinstance(callback, str):
            raise BadRequest("'callback_url' must be a string")
        if settings.webhook_secret is None:
            raise BadRequest("callback_url needs EMAILGATE_WEBHOOK_SECRET set on the service")
        try:
            await check_callback(callback, allow_private=settings.webhook_allow_private)
        except CallbackRefused as e:
            raise BadRequest(str(e)) from None
    return NewJob(
        owner=owner, name=name, context=context, sandbox=_sandbox(request),
        callback_url=callback, max_credits=max_credits, columns=["email"],
    )  # fmt: skip


async def listing(request: web.Request) -> web.Response:
    """GET /api/v1/batch: the key's jobs, newest first."""
    page = _int_param(request.query, "page", 1, low=1, high=1_000_000)
    per_page = _int_param(request.query, "per_page", 20, low=1, high=1000)
    jobs, total = await _jobs(request).store.list_jobs(
        _owner(request), page=page, per_page=per_page
    )
    return json_response({
        "success": True, "data": [j.to_dict() for j in jobs], "page": page,
        "per_page": per_page, "total_pages": math.ceil(total / per_page),
    })  # fmt: skip


async def status(request: web.Request) -> web.Response:
    """GET /api/v1/batch/{id}: progress, then ListCleanser's completed shape."""
    page = _int_param(request.query, "page", 1, low=1, high=1_000_000)
    per_page = _int_param(request.query, "per_page", 20, low=1, high=1000)
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise BadRequest(f"'state' must be one of {', '.join(STATES)}")
    job = await _job_of(request)
    if job.status is not JobStatus.PROCESSED:
        return json_response({"success": True, "state": job.status.value,
                              "progress": job.progress, "job": job.to_dict()})  # fmt: skip
    found, count = await _jobs(request).store.results(
        job.id, state=state, page=page, per_page=per_page
    )
    return json_response({
        "success": True, "state": job.status.value, "job": job.to_dict(), "stats": job.stats(),
        "data": [{"id": seq, "email": result} for seq, _email, result in found],
        "page": page, "per_page": per_page, "count": count,
        "total_pages": math.ceil(count / per_page),
    })  # fmt: skip


async def download(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/batch/{id}/download: the input rows with their results, as CSV."""
    export = request.query.get("export_type", "all")
    if export not in EXPORT_TYPES:
        raise BadRequest("'export_type' must be all, ok or bad")
    job = await _job_of(request)
    if job.status is not JobStatus.PROCESSED:
        raise web.HTTPConflict(text=f"the job is {job.status.value}; download it once processed")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="emailgate-batch-{job.id}.csv"',
            # Sent before the `errors` middleware sees the response: what it adds, now.
            **request.get(access.RESPONSE_HEADERS, {}),
            "X-Request-Id": request_id.get() or "",
            "X-Content-Type-Options": "nosniff",
        }
    )
    jobs = _jobs(request)
    if jobs.ingest is None:
        await response.prepare(request)
        async for chunk in csv_chunks(jobs.store, job, export):
            await response.write(chunk)
        await response.write_eof()
        return response
    # EMAILGATE_JOB_WORKER=process: a child writes the CSV; this loop only copies bytes.
    path = await jobs.ingest.export(job.id, export)
    try:
        f = path.open("rb")
    finally:
        # Gone from the folder before a byte is sent; the open file still reads to its end.
        path.unlink(missing_ok=True)
    with f:
        await response.prepare(request)
        while chunk := await asyncio.to_thread(f.read, 256 * 1024):
            await response.write(chunk)
        await response.write_eof()
    return response


async def start(request: web.Request) -> web.Response:
    """POST /api/v1/batch/{id}/start: approve a job waiting for approval."""
    job = await _job_of(request)
    max_credits = None
    body = await _read_limited(request, MAX_FIELD)
    if body.strip():
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest('the body must be a JSON object like {"max_credits": 1000}')
        max_credits = _max_credits(data.get("max_credits"))
    if job.status is not JobStatus.WAITING_APPROVAL:
        raise web.HTTPConflict(text=f"the job is {job.status.value}, not waiting_approval")
    if max_credits is not None and job.billable > max_credits:
        raise BadRequest(
            f"the job needs {job.billable} credits, more than max_credits {max_credits}"
        )
    jobs = _jobs(request)
    started = await jobs.store.set_status(
        job.id, JobStatus.PROCESSING, max_credits=max_credits,
        only_from=[JobStatus.WAITING_APPROVAL],
    )  # fmt: skip
    if started is None:
        raise web.HTTPConflict(text="the job is no longer waiting for approval")
    jobs.wake()
    return json_response({"success": True, "data": started.to_dict()})


async def delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/batch/{id}: cancel the job and delete every address it holds."""
    job = await _job_of(request)
    await _jobs(request).cancel(job.id)
    return json_response({"success": True, "message": f"job {job.id} deleted"})


def install(app: web.Application) -> None:
    """Add the batch routes."""
    app.router.add_post("/api/v1/batch", create)
    app.router.add_get("/api/v1/batch", listing)
    app.router.add_get("/api/v1/batch/{id}", status)
    app.router.add_delete("/api/v1/batch/{id}", delete)
    app.router.add_get("/api/v1/batch/{id}/download", download)
    app.router.add_post("/api/v1/batch/{id}/start", start)
