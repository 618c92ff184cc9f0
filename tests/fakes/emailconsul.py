"""A fake EmailConsul list-cleaning API (`emailconsul-listcleaning-api.txt`), paths from the
slugs of its reference pages; every API call needs `Authorization: Bearer KEY` (401 without,
403 with another key). Errors are `{"message": ...}`.

| call                                           | what the fake does                          |
|------------------------------------------------|---------------------------------------------|
| `GET /listcleaning/list/import/presigned-url`  | `{"url", "key"}`: a signed storage URL here |
| `PUT <url>`                                    | stores the CSV (needs the signature; 400 if |
|                                                | an `Authorization` header comes along, as   |
|                                                | storage refuses two auth mechanisms)        |
| `POST /listcleaning/list`                      | `{"title", "emails"}` or `{"title", "key"}` |
|                                                | (CSV must have an `email` column) → 201 the |
|                                                | list item, status `INIT`                    |
| `GET /listcleaning/list/{id}`                  | the item: `INIT` → `PRE_PROCESSING` →       |
|                                                | `PRE_PROCESSING_DONE` after `preprocess_s`; |
|                                                | after run `PROCESSING` → `DONE`             |
| `POST /listcleaning/list/{id}/run`             | only from `PRE_PROCESSING_DONE` (else 400); |
|                                                | freezes one credit per email (402 short)    |
| `GET /listcleaning/list/{id}/export`           | CSV, header row, columns `export_columns`   |
|                                                | (dotted names for nested fields); 400       |
|                                                | before `DONE`                               |
| `DELETE /listcleaning/list/{id}`               | 400 once run (the document forbids it)      |
| `GET /listcleaning/lists`                      | every list                                  |

Webhooks: a list created with `webhook_url` gets the list item POSTed there (JSON, unsigned,
as the document describes) each time its status changes (`PRE_PROCESSING_DONE`,
`PROCESSING`, `DONE`, `FAILED`), then `{"id", "available_presaved_lists"}` once the export
exists; `webhooks=False` sends none. What was sent, and the answer, is in `hooks_sent`.
`finish(list_id)` ends a running list now (tests time the job's reaction to the webhook).

Lists told to fail (`fail_lists`) end `FAILED` with `processing_error` half-way through
processing (or `preprocessing_error` with `fail_stage="preprocessing"`).

Sandbox: the document's list of free addresses is empty in our copy, so the fake takes them as
a setting (`sandbox`); as the document says, each may carry a `+suffix`, and their frozen
credits come back once validation is done.

Verdicts come from the shared profiles (verdicts.py): status and reason as ListCleanser's
record, `domain.*`/`account.*` as yes/no, `toxicity` 5 for spam traps.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tests.fakes.bulklists import FakeList, processing_seconds
from tests.fakes.server import CALL, FakeConfig, FakeServer, json_response
from tests.fakes.server import with_settings as _with_settings
from tests.fakes.verdicts import listcleanser_record, profile_for_address, split_address

LISTS = "/listcleaning/list"
PRESIGNED = "/listcleaning/list/import/presigned-url"
ITEM = "/listcleaning/list/{list_id}"
RUN = "/listcleaning/list/{list_id}/run"
EXPORT = "/listcleaning/list/{list_id}/export"
ALL_LISTS = "/listcleaning/lists"
STORAGE = "/_storage/{key}"

EXPORT_COLUMNS = (
    "email", "status", "reason", "score", "domain.name", "domain.accept_all",
    "domain.disposable", "domain.free", "account.role", "account.disabled",
    "account.full_mailbox", "dns.type", "dns.record", "provider", "toxic", "toxicity",
)  # fmt: skip


@dataclass(slots=True)
class EmailConsulConfig(FakeConfig):
    """EmailConsul's settings; `credits` is the live balance."""

    api_key: str = "ec-test-key"
    credits: int = 100_000
    preprocess_s: float = 0.2
    processing_s: float = 0.3
    per_1000_s: float = 0.05
    fail_lists: int = 0
    """The next this-many lists end FAILED."""
    fail_stage: str = "processing"
    lose_upload_answers: int = 0
    """The next this-many uploads are stored, then their connection is reset before the
    answer (the provider has the list; the client never learns its id)."""
    """`processing` or `preprocessing`: where a failing list fails."""
    sandbox: str = ""
    """Comma-separated addresses that cost nothing (each also with a `+suffix`)."""
    export_columns: str = ",".join(EXPORT_COLUMNS)
    """The export's columns in order, comma-separated (tests shuffle them, add unknown ones)."""
    webhooks: bool = True
    """Send webhooks to lists created with a `webhook_url`."""


@dataclass(slots=True)
class HookSent:
    """One webhook the fake sent."""

    url: str
    body: dict[str, Any]
    status: int | None
    """The receiver's answer (None: no answer)."""
    mono: float = field(default_factory=time.monotonic)


class FakeEmailConsul(FakeServer[EmailConsulConfig]):
    """EmailConsul's list-cleaning API on a local port."""

    provider = "emailconsul"

    def __init__(
        self,
        config: EmailConsulConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> None:
        self.lists: dict[str, FakeList] = {}
        self.stored: dict[str, bytes] = {}
        self.hooks_sent: list[HookSent] = []
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._secret = secrets.token_hex(8)
        super().__init__(
            _with_settings(config or EmailConsulConfig(), settings), host=host, port=port
        )

    @property
    def credits(self) -> int:
        """Credits left (frozen ones not counted)."""
        return self.config.credits

    def uploads(self) -> list[Any]:
        """List creations that arrived (answered or not)."""
        return [c for c in self.calls if c.method == "POST" and c.endpoint == LISTS]

    def runs(self) -> list[Any]:
        """Run calls that arrived."""
        return [c for c in self.calls if c.endpoint.endswith("/run")]

    def _reset_state(self) -> None:
        self.lists.clear()
        self.stored.clear()
        self.hooks_sent.clear()
        for task in self._hook_tasks:
            task.cancel()

    async def stop(self) -> None:
        for task in list(self._hook_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

    def finish(self, list_id: str) -> None:
        """End the running list `list_id` now (its results become exportable at once)."""
        item = self.lists[list_id]
        assert item.started is not None, "the list has not run yet"
        item.seconds = max(0.0, time.monotonic() - item.started)

    async def _send_hooks(self, item: FakeList, url: str) -> None:
        """POST the list item to `url` at each status change, then the presaved lists."""
        last = ""
        async with aiohttp.ClientSession() as session:
            while item.id in self.lists:
                status = self.status_of(item)
                if status != last and status not in ("INIT", "PRE_PROCESSING"):
                    await self._post_hook(session, url, self._body(item))
                    last = status
                if status == "DONE":
                    body = {"id": item.id, "available_presaved_lists": ["all"]}
                    await self._post_hook(session, url, body)
                    return
                if status == "FAILED":
                    return
                await asyncio.sleep(0.02)

    async def _post_hook(self, session: aiohttp.ClientSession, url: str,
                         body: dict[str, Any]) -> None:  # fmt: skip
        status: int | None = None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(5)) as r:
                status = r.status
        self.hooks_sent.append(HookSent(url, body, status))

    def _add_api_routes(self, app: web.Application) -> None:
        app.router.add_get(PRESIGNED, self._presigned, allow_head=False)
        app.router.add_put(STORAGE, self._storage_put)
        app.router.add_post(LISTS, self._create)
        app.router.add_get(ALL_LISTS, self._all, allow_head=False)
        app.router.add_get(ITEM, self._item, allow_head=False)
        app.router.add_delete(ITEM, self._delete)
        app.router.add_post(RUN, self._run)
        app.router.add_get(EXPORT, self._export, allow_head=False)

    # -- helpers ------------------------------------------------------------------------------

    def is_sandbox(self, email: str) -> bool:
        """A documented free address (with or without a `+suffix`)."""
        parts = split_address(email.strip().lower())
        if parts is None:
            return False
        base = f"{parts[0].split('+', 1)[0]}@{parts[1]}"
        return base in {s.strip().lower() for s in self.config.sandbox.split(",") if s.strip()}

    async def _gate(self, request: web.Request) -> web.StreamResponse | None:
        fault, _ = self.take_fault(None)
        early = await self.before_answer(request, fault, False)
        if early is not None:
            return early
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self.error_response(401, "Unauthorized")
        if auth[7:].strip() != self.config.api_key:
            return self.error_response(403, "Forbidden: invalid API key")
        return None

    def _signature(self, key: str) -> str:
        return hashlib.sha256(f"{self._secret}:{key}".encode()).hexdigest()

    def status_of(self, item: FakeList, now: float | None = None) -> str:
        """The list's status now."""
        now = time.monotonic() if now is None else now
        ready_at = item.created + self.config.preprocess_s
        if item.started is None:
            if item.fails is not None and item.extra["fail_stage"] == "preprocessing":
                return "FAILED" if now >= ready_at else "PRE_PROCESSING"
            if now < item.created + self.config.preprocess_s / 4:
                return "INIT"
            return "PRE_PROCESSING_DONE" if now >= ready_at else "PRE_PROCESSING"
        if item.failed(now):
            return "FAILED"
        if item.done(now):
            if not item.extra.get("refunded"):
                item.extra["refunded"] = True
                self.config.credits += item.extra.get("sandbox", 0)
            return "DONE"
        return "PROCESSING"

    def _body(self, item: FakeList) -> dict[str, Any]:
        status = self.status_of(item)
        emails = item.emails
        if "valid" not in item.extra:  # a list's contents do not change: counted once
            valid = [e for e in emails if split_address(e.strip()) is not None]
            item.extra["valid"] = valid
            item.extra["distinct"] = {e.strip().lower() for e in valid}
        valid, distinct = item.extra["valid"], item.extra["distinct"]
        pre_done = status not in ("INIT", "PRE_PROCESSING")
        created = datetime.fromtimestamp(item.created_wall, UTC).isoformat()
        counts: dict[str, int] = {"count": 0, "deliverable": 0, "risky": 0, "undeliverable": 0,
                                  "unknown": 0}  # fmt: skip
        if item.started is not None:
            # Each address's state worked out once per list: a provider's counts cost it
            # nothing, and the fake shares its process with the client in the benchmark.
            states: list[str] = item.extra.get("states") or [
                self.row(email)["status"] for email in sorted(distinct)
            ]
            item.extra["states"] = states
            for state in states[: int(len(states) * item.progress())]:
                counts["count"] += 1
                counts[state] = counts.get(state, 0) + 1
        failed = status == "FAILED"
        stage = item.extra["fail_stage"]
        return {
            "id": item.id,
            "title": item.reference,
            "profile_id": "default",
            "status": status,
            "available_presaved_lists": ["all"] if status == "DONE" else [],
            **({"key": item.extra["key"]} if item.extra.get("key") else {}),
            "emails_count": len(distinct) if pre_done else 0,
            "invalid_format_count": len(emails) - len(valid) if pre_done else 0,
            "duplicates_count": len(valid) - len(distinct) if pre_done else 0,
            "domains_count": len({e.split("@")[-1] for e in distinct}) if pre_done else 0,
            "created_at": created,
            "updated_at": created,
            "processing_start_at": None if item.started is None else created,
            "processing_end_at": created if status == "DONE" else None,
            "preprocessing_error": item.fails if failed and stage == "preprocessing" else None,
            "processing_error": item.fails if failed and stage == "processing" else None,
            "listcleaning_results": counts,
        }

    def row(self, email: str) -> dict[str, str]:
        """The export row of `email`, by column name."""
        record = listcleanser_record(email, profile_for_address(email), 0.5,
                                     self.answers.get(email.strip().lower()))  # fmt: skip

        def yn(value: Any) -> str:
            return "unknown" if value is None else ("yes" if value else "no")

        spamtrap = bool(record.get("possible_spamtrap"))
        row = {
            "email": email,
            "status": record["state"],
            "reason": record["reason"],
            "score": str(record["score"]),
            "domain.name": record["domain"],
            "domain.accept_all": yn(record["accept_all"]),
            "domain.disposable": yn(record["disposable"]),
            "domain.free": yn(record["free"]),
            "account.role": yn(record["role"]),
            "account.disabled": "no",
            "account.full_mailbox": "no",
            "dns.type": "MX" if record["mx_record"] else "",
            "dns.record": record["mx_record"] or "",
            "provider": record["smtp_provider"] or "",
            "toxic": "yes" if spamtrap else "no",
            "toxicity": "5" if spamtrap else "0",
        }
        extra = self.answers.get(email.strip().lower()) or {}
        row.update({k: str(v) for k, v in extra.items() if k in row or "." in k})
        return row

    # -- handlers -----------------------------------------------------------------------------

    async def _presigned(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        key = f"imports/{secrets.token_hex(8)}.csv".replace("/", "_")
        url = f"{self.url}/_storage/{key}?X-Amz-Expires=3600&X-Amz-Signature={self._signature(key)}"
        return json_response({"url": url, "key": key})

    async def _storage_put(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault, _ = self.take_fault(None)
        early = await self.before_answer(request, fault, False)
        if early is not None:
            return early
        key = request.match_info["key"]
        if "Authorization" in request.headers:
            return self.error_response(400, "Only one auth mechanism allowed")
        if request.query.get("X-Amz-Signature") != self._signature(key):
            return self.error_response(403, "SignatureDoesNotMatch")
        self.stored[key] = body
        return web.Response(status=200)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        raw = await request.read()
        refused = await self._gate(request)
        if refused is not None:
            return refused
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise TypeError
        except (orjson.JSONDecodeError, TypeError):
            return self.error_response(400, "body must be a JSON object")
        title = body.get("title")
        if not isinstance(title, str) or not title:
            return self.error_response(400, "title is required")
        key = body.get("key")
        if isinstance(body.get("emails"), list):
            emails = [e for e in body["emails"] if isinstance(e, str)]
        elif isinstance(key, str) and key in self.stored:
            text = self.stored[key].decode("utf-8-sig", "replace")
            reader = csv.DictReader(io.StringIO(text))
            if "email" not in (reader.fieldnames or []):
                return self.error_response(400, "the CSV file must contain the column email")
            emails = [row["email"] or "" for row in reader]
        else:
            return self.error_response(400, "emails or a known key is required")
        if not emails:
            return self.error_response(400, "the list is empty")
        cfg = self.config
        fails = None
        if cfg.fail_lists > 0:
            cfg.fail_lists -= 1
            fails = f"{cfg.fail_stage} failed: provider-side error"
        list_id = secrets.token_hex(12)  # a document id
        self.lists[list_id] = FakeList(
            id=list_id, emails=emails, reference=title, created=call.mono, fails=fails,
            extra={"key": key if isinstance(key, str) else None, "fail_stage": cfg.fail_stage},
        )  # fmt: skip
        hook = body.get("webhook_url")
        self.lists[list_id].extra["hook"] = hook
        if isinstance(hook, str) and hook and cfg.webhooks:
            task = asyncio.create_task(self._send_hooks(self.lists[list_id], hook))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)
        lost = self.lose_answer(request)
        if lost is not None:
            return lost
        return json_response(self._body(self.lists[list_id]), 201)

    async def _all(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        return json_response({"data": [self._body(i) for i in self.lists.values()]})

    def _find(self, request: web.Request) -> FakeList | None:
        return self.lists.get(request.match_info["list_id"])

    async def _item(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        item = self._find(request)
        if item is None:
            return self.error_response(404, "List not found")
        return json_response(self._body(item))

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        item = self._find(request)
        if item is None:
            return self.error_response(404, "List not found")
        if item.started is not None:
            return self.error_response(400, "A list sent for validation cannot be removed")
        del self.lists[item.id]
        return json_response({"id": item.id, "deleted": True})

    async def _run(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        refused = await self._gate(request)
        if refused is not None:
            return refused
        item = self._find(request)
        if item is None:
            return self.error_response(404, "List not found")
        if self.status_of(item) != "PRE_PROCESSING_DONE":
            return self.error_response(400, "The list can run only in PRE_PROCESSING_DONE")
        distinct = {e.strip().lower() for e in item.emails if split_address(e.strip())}
        cfg = self.config
        if cfg.credits < len(distinct):
            return self.error_response(402, "Not enough credits")
        cfg.credits -= len(distinct)
        item.charged = len(distinct)
        item.extra["sandbox"] = sum(1 for e in distinct if self.is_sandbox(e))
        item.started = call.mono
        item.seconds = processing_seconds(len(distinct), cfg.processing_s, cfg.per_1000_s)
        return json_response(self._body(item))

    async def _export(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        item = self._find(request)
        if item is None:
            return self.error_response(404, "List not found")
        if self.status_of(item) != "DONE":
            return self.error_response(400, "The list is not validated yet")
        columns = [c.strip() for c in self.config.export_columns.split(",") if c.strip()]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        seen: set[str] = set()
        for email in item.emails:
            key = email.strip().lower()
            if key in seen or split_address(email.strip()) is None:
                continue
            seen.add(key)
            row = self.row(email.strip())
            writer.writerow([row.get(c, "") for c in columns])
        return web.Response(body=out.getvalue().encode(), content_type="text/csv")

    def sample_body(self) -> dict[str, Any]:
        return {"id": "65f0c0ffee", "title": "list", "status": "PROCESSING", "emails_count": 3}

    def wrong_shape_body(self) -> Any:
        return {"result": {"state": "running"}}
