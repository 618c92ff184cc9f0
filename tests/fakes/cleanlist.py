"""A fake Cleanlist.ai public enrichment API, as its reference documents it.

Routes, under `/api/v1/public` (so `fake.api_url` is what EMAILGATE_CLEANLIST_URL points at):

| method and path            | answer                                                              |
|----------------------------|---------------------------------------------------------------------|
| `GET /auth/validate-key`   | `{"valid": true, "organization_name": …}`                           |
| `POST /enrich/bulk`        | `{"workflow_id", "status": "processing", "message", "task_ids",`    |
|                            | `"total_contacts"}`, one task id per contact, in order              |
| `GET /enrich/status`       | `?workflow_id=` → `{"workflow_id", "status", "total_tasks",`        |
|                            | `"completed_tasks", "failed_tasks", "summary", "results": [...]}`;  |
|                            | `?task_id=` → that one task's result                                |

Each result: `{"task_id", "status": "pending"|"completed"|"failed", "primary_email",
"primary_email_status", "personal_phone_numbers", "work_phone_numbers", "prospect",
"company", "credits_used"}` (more fields than a client needs, as the real answer has).

Errors are `{"detail": str}`: 401 missing or wrong `Authorization: Bearer`; 400 more than 250
contacts, or not exactly one of `workflow_id`/`task_id`; 422 a body that is not the documented
shape (no contacts, a contact without a LinkedIn URL or name + company, an unknown
`enrichment_type`); 402 no credits left; 404 an unknown workflow or task; 429 past
`rate_limit` requests in the current fixed window of `rate_window_s` seconds, aligned to the
clock (epoch seconds, as "per clock minute"), with `Retry-After` = seconds until the window
ends. Every arrival counts, refused ones too. The rate limit is checked first, then the key.

A workflow's tasks finish one after another over `workflow_s` seconds from the submission.
A request with `webhook_url` gets a completion callback there once its last task is done:
`POST {"event": "enrichment.completed", "workflow_id", "status"}` (`fake.callbacks` logs them).
What a task finds depends on the contact (first name prefix, case-insensitive):

| first name     | result                                                                   |
|----------------|--------------------------------------------------------------------------|
| (any other)    | `first.last@domain` (domain: company_domain, else company_name + .com,   |
|                | else `linkedin-slug@cleanlist-found.com`); phones for phone_only/full    |
| `nobody…`      | completed, nothing found                                                 |
| `nophone…`     | email as usual, no phone                                                 |
| `failtask…`    | the task fails (0 credits)                                               |
| `slow…`        | the task finishes `slow_ms` later than the rest                          |
| `failworkflow…`| the whole workflow ends `failed` (its tasks too)                         |

`enrichment_type` `none` finds nothing, `partial` emails, `phone_only` phones, `full` both.
Credits: 1 per email found, 10 per phone number found, charged when the task completes.
The per-address table (`set_answer(candidate_email, **fields)`) lays result fields over a
task whose conventional email is that address (e.g. `primary_email=None`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import re
import signal
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tests.fakes.server import CALL, FakeConfig, FakeServer, json_response, retry_after_header
from tests.fakes.server import with_settings as _with_settings

PREFIX = "/api/v1/public"
VALIDATE = PREFIX + "/auth/validate-key"
BULK = PREFIX + "/enrich/bulk"
STATUS = PREFIX + "/enrich/status"
MAX_CONTACTS = 250
TYPES = ("none", "partial", "phone_only", "full")


@dataclass(slots=True)
class CleanlistConfig(FakeConfig):
    """Cleanlist's settings; `credits` is the live balance."""

    api_key: str = "clapi_test_key"
    credits: int = 1_000_000
    rate_limit: int = 60
    """Requests per fixed window (the reference: 60 per minute per organisation)."""
    rate_window_s: float = 60.0
    workflow_s: float = 2.0
    """Seconds a workflow takes from submission to its last task."""


@dataclass(slots=True)
class Task:
    """One contact's enrichment inside a workflow."""

    task_id: str
    contact: dict[str, Any]
    done_at: float
    outcome: str
    """`found`, `nothing` or `failed`."""
    email: str | None
    phones: list[str]
    charged: bool = False


@dataclass(slots=True)
class Workflow:
    """One bulk request."""

    workflow_id: str
    enrichment_type: str
    tasks: list[Task]
    fails: bool
    created: float
    webhook_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FakeCleanlist(FakeServer[CleanlistConfig]):
    """Cleanlist.ai's public enrichment API on a local port."""

    provider = "cleanlist"

    def __init__(
        self,
        config: CleanlistConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        **settings: Any,
    ) -> None:
        self.clock = clock
        self.workflows: dict[str, Workflow] = {}
        self._tasks: dict[str, tuple[Workflow, Task]] = {}
        self._window: tuple[int, int] = (-1, 0)
        self.arrivals: list[float] = []
        """Arrival time of every API request on the fake's clock (the window's clock)."""
        self._ids = itertools.count(1)
        self._hooks: set[asyncio.Task[None]] = set()
        self.callbacks: list[tuple[str, int | None]] = []
        """(workflow id, status our webhook answered) for every completion callback sent."""
        super().__init__(
            _with_settings(config or CleanlistConfig(), settings), host=host, port=port
        )

    @property
    def api_url(self) -> str:
        """The base URL a client is configured with (EMAILGATE_CLEANLIST_URL)."""
        return self.url + PREFIX

    @property
    def credits(self) -> int:
        """Credits left."""
        return self.config.credits

    def rate_limited(self) -> int:
        """How many requests were answered 429 by the fake's own limit (not injected faults)."""
        return sum(1 for c in self.calls if c.status == 429 and c.fault is None)

    def max_in_fixed_window(self) -> int:
        """The most API requests that arrived in one clock-aligned window (on the fake's clock)."""
        counts: dict[int, int] = {}
        for t in self.arrivals:
            k = math.floor(t / self.config.rate_window_s)
            counts[k] = counts.get(k, 0) + 1
        return max(counts.values(), default=0)

    def _reset_state(self) -> None:
        self.workflows.clear()
        self._tasks.clear()
        self._window = (-1, 0)
        self.arrivals.clear()

    def _add_api_routes(self, app: web.Application) -> None:
        app.router.add_get(VALIDATE, self._validate, allow_head=False)
        app.router.add_post(BULK, self._bulk)
        app.router.add_get(STATUS, self._status, allow_head=False)

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """Cleanlist's error body: `{"detail": ...}`."""
        return json_response({"detail": message}, status, headers)

    def sample_body(self) -> dict[str, Any]:
        return {"workflow_id": "public_bulk_1", "status": "processing", "task_ids": ["t1"]}

    def wrong_shape_body(self) -> Any:
        return {"ok": True, "items": "none"}

    # -- the gate every API request passes --------------------------------------------------

    async def _gate(self, request: web.Request) -> web.StreamResponse | None:
        """The fixed window (counted at arrival), latency and faults, then the key; None when
        all pass."""
        cfg = self.config
        now = self.clock()
        self.arrivals.append(now)
        k = math.floor(now / cfg.rate_window_s)
        window, count = self._window
        count = count + 1 if window == k else 1
        self._window = (k, count)
        fault, slow = self.take_fault(None)
        early = await self.before_answer(request, fault, slow)
        if early is not None:
            return early
        if count > cfg.rate_limit:
            left = (k + 1) * cfg.rate_window_s - now
            return self.error_response(
                429, f"Rate limit exceeded: {cfg.rate_limit} requests per window",
                {"Retry-After": retry_after_header(left)},
            )  # fmt: skip
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {cfg.api_key}":
            return self.error_response(401, "Invalid or missing API key")
        return None

    # -- routes ---------------------------------------------------------------------------

    async def _validate(self, request: web.Request) -> web.StreamResponse:
        early = await self._gate(request)
        if early is not None:
            return early
        return json_response(
            {"valid": True, "organization_name": "Fake Org", "key_prefix": "clapi_", "scopes": []}
        )

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        early = await self._gate(request)
        if early is not None:
            return early
        try:
            body: Any = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return self.error_response(422, "body is not JSON")
        if not isinstance(body, dict):
            return self.error_response(422, "body must be an object")
        contacts = body.get("contacts")
        kind = body.get("enrichment_type", "partial")
        if kind not in TYPES:
            return self.error_response(422, f"enrichment_type must be one of {', '.join(TYPES)}")
        if not isinstance(contacts, list) or not contacts:
            return self.error_response(422, "contacts: 1 to 250 contact objects required")
        if len(contacts) > MAX_CONTACTS:
            return self.error_response(400, f"at most {MAX_CONTACTS} contacts per request")
        for i, c in enumerate(contacts):
            if not isinstance(c, dict) or not _identifiable(c):
                return self.error_response(
                    422, f"contacts[{i}]: give linkedin_url or first_name + last_name + company"
                )
        if self.config.credits <= 0:
            return self.error_response(402, "Insufficient credits")
        now = self.clock()
        workflow = Workflow(
            workflow_id=f"public_bulk_{next(self._ids):06d}",
            enrichment_type=kind,
            tasks=[],
            fails=any(_first(c).startswith("failworkflow") for c in contacts),
            created=now,
        )
        hook = body.get("webhook_url")
        workflow.webhook_url = hook if isinstance(hook, str) else None
        n = len(contacts)
        for i, c in enumerate(contacts):
            task = self._task(c, kind, now + self.config.workflow_s * (i + 1) / n)
            workflow.tasks.append(task)
            self._tasks[task.task_id] = (workflow, task)
        self.workflows[workflow.workflow_id] = workflow
        request[CALL].email = workflow.workflow_id
        if workflow.webhook_url:
            ends = max(t.done_at for t in workflow.tasks) - now
            hook = asyncio.create_task(self._call_back(workflow, ends))
            self._hooks.add(hook)
            hook.add_done_callback(self._hooks.discard)
        return json_response(
            {
                "workflow_id": workflow.workflow_id,
                "status": "processing",
                "message": "Bulk enrichment started",
                "task_ids": [t.task_id for t in workflow.tasks],
                "total_contacts": n,
            }
        )

    async def _status(self, request: web.Request) -> web.StreamResponse:
        early = await self._gate(request)
        if early is not None:
            return early
        query = request.query
        workflow_id, task_id = query.get("workflow_id"), query.get("task_id")
        if (workflow_id is None) == (task_id is None):
            return self.error_response(400, "provide exactly one of workflow_id or task_id")
        now = self.clock()
        if task_id is not None:
            found = self._tasks.get(task_id)
            if found is None:
                return self.error_response(404, "task not found")
            return json_response(self._result(found[0], found[1], now))
        workflow = self.workflows.get(str(workflow_id))
        if workflow is None:
            return self.error_response(404, "workflow not found")
        request[CALL].email = workflow.workflow_id
        results = [self._result(workflow, t, now) for t in workflow.tasks]
        finished = [r for r in results if r["status"] != "pending"]
        failed = [r for r in results if r["status"] == "failed"]
        if len(finished) < len(results):
            state = "processing"
        else:
            state = "failed" if workflow.fails else "completed"
        return json_response(
            {
                "workflow_id": workflow.workflow_id,
                "status": state,
                "enrichment_type": workflow.enrichment_type,
                "total_tasks": len(results),
                "completed_tasks": len(finished) - len(failed),
                "failed_tasks": len(failed),
                "summary": {
                    "emails_found": sum(1 for r in results if r.get("primary_email")),
                    "phones_found": sum(len(r["personal_phone_numbers"]) for r in results),
                },
                "results": results,
            }
        )

    async def _call_back(self, workflow: Workflow, after: float) -> None:
        """The completion callback: `{"workflow_id", "status"}` to the request's webhook_url
        once its last task is done (failures are only recorded: polling is the fallback)."""
        await asyncio.sleep(max(0.0, after))
        state = "failed" if workflow.fails else "completed"
        body = {"event": "enrichment.completed", "workflow_id": workflow.workflow_id,
                "status": state}  # fmt: skip
        assert workflow.webhook_url is not None
        try:
            async with aiohttp.ClientSession() as http, http.post(workflow.webhook_url,
                                                                  json=body) as r:  # fmt: skip
                self.callbacks.append((workflow.workflow_id, r.status))
        except aiohttp.ClientError:
            self.callbacks.append((workflow.workflow_id, None))

    async def stop(self) -> None:
        for hook in list(self._hooks):
            hook.cancel()
        await super().stop()

    # -- the conventions ----------------------------------------------------------------------

    def _task(self, contact: dict[str, Any], kind: str, done_at: float) -> Task:
        first = _first(contact)
        if first.startswith("slow"):
            done_at += self.config.slow_ms / 1000.0
        email = _candidate_email(contact)
        phones = [f"+1555{zlib.crc32(email.encode()) % 10_000_000:07d}"]
        outcome = "found"
        if first.startswith(("failtask", "failworkflow")):
            outcome, email, phones = "failed", None, []
        elif first.startswith("nobody") or kind == "none":
            outcome, email, phones = "nothing", None, []
        if kind == "phone_only":
            email = None
        if kind == "partial" or first.startswith("nophone"):
            phones = []
        return Task(f"task_{next(self._ids):08d}", contact, done_at, outcome, email, phones)

    def _result(self, workflow: Workflow, task: Task, now: float) -> dict[str, Any]:
        if now < task.done_at:
            return {"task_id": task.task_id, "status": "pending", "primary_email": None,
                    "personal_phone_numbers": []}  # fmt: skip
        failed = task.outcome == "failed" or workflow.fails
        if not task.charged and not failed:
            task.charged = True
            cost = (1 if task.email else 0) + 10 * len(task.phones)
            self.config.credits = max(0, self.config.credits - cost)
        result: dict[str, Any] = {
            "task_id": task.task_id,
            "status": "failed" if failed else "completed",
            "primary_email": None if failed else task.email,
            "primary_email_status": "reliable" if task.email and not failed else None,
            "personal_phone_numbers": [] if failed else list(task.phones),
            "work_phone_numbers": [],
            "prospect": {
                "first_name": task.contact.get("first_name"),
                "last_name": task.contact.get("last_name"),
                "linkedin_url": task.contact.get("linkedin_url"),
            },
            "company": {
                "name": task.contact.get("company_name"),
                "domain": task.contact.get("company_domain"),
            },
            "credits_used": 0 if failed else (1 if task.email else 0) + 10 * len(task.phones),
        }
        if task.email:
            result.update(self.answers.get(task.email.lower(), {}))
        return result


def _first(contact: Mapping[str, Any]) -> str:
    value = contact.get("first_name")
    return value.strip().lower() if isinstance(value, str) else ""


def _identifiable(c: Mapping[str, Any]) -> bool:
    def has(k: str) -> bool:
        return isinstance(c.get(k), str) and bool(c[k].strip())

    return has("linkedin_url") or (
        has("first_name") and has("last_name") and (has("company_domain") or has("company_name"))
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _candidate_email(c: Mapping[str, Any]) -> str:
    """The address the fake 'finds' for a contact."""
    first, last = _slug(str(c.get("first_name") or "")), _slug(str(c.get("last_name") or ""))
    domain = str(c.get("company_domain") or "").strip().lower()
    if not domain and c.get("company_name"):
        domain = _slug(str(c["company_name"])) + ".com"
    if first and last and domain:
        return f"{first}.{last}@{domain}"
    slug = _slug(str(c.get("linkedin_url") or "").rstrip("/").rpartition("/")[2]) or "someone"
    return f"{slug}@{domain or 'cleanlist-found.com'}"


# -- as a process, for benchmarks ---------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m tests.fakes.cleanlist`."""
    d = CleanlistConfig()
    p = argparse.ArgumentParser(prog="python -m tests.fakes.cleanlist", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", default=d.api_key)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--credits", type=int, default=d.credits)
    p.add_argument("--rate-limit", type=int, default=d.rate_limit)
    p.add_argument("--rate-window-s", type=float, default=d.rate_window_s)
    p.add_argument("--workflow-s", type=float, default=d.workflow_s)
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT; print one ready line with the URL first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fake = FakeCleanlist(
        host=args.host, port=args.port, api_key=args.key, latency_ms=args.latency_ms,
        credits=args.credits, rate_limit=args.rate_limit, rate_window_s=args.rate_window_s,
        workflow_s=args.workflow_s,
    )  # fmt: skip
    async with fake:
        print(
            json.dumps({"ready": True, "pid": os.getpid(), "cleanlist": fake.api_url}), flush=True
        )
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
    sys.exit(0)
