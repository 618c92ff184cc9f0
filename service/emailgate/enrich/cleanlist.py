"""Cleanlist.ai's public enrichment API, as its reference documents it (docs/enrich.md).

    GET  /auth/validate-key                        is the key good?
    POST /enrich/bulk {"enrichment_type", "contacts": [≤ 250], "webhook_url"?}
                                                   → {"workflow_id", "task_ids": [...], ...}
    GET  /enrich/status?workflow_id=… (or task_id=…)
                                                   → {"status", "results": [{"task_id", "status",
                                                      "primary_email", phone numbers, ...}]}

`Authorization: Bearer KEY`; errors are `{"detail": str}`; 402 when out of credits; 429 with
`Retry-After` past 60 requests in a fixed 60-second window. Every request, the key check and
status polls included, takes a slot of the fixed-window pacer first, and a 429 pauses it for
the whole fleet.

Results are read leniently: unknown fields are ignored, a missing email or phone is "not
found", a task without a status counts as finished once its workflow is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
import orjson

from emailgate.config import Secret
from emailgate.pacing.base import Pacer
from emailgate.pacing.bucket import PAUSED
from emailgate.providers.errors import BadResponse, ProviderError, ProviderUnavailable
from emailgate.providers.http import classify_status, guarded, read_json

log = logging.getLogger("emailgate.enrich")

NAME = "cleanlist"
MAX_CONTACTS = 250  # per bulk request
ENRICHMENT_TYPES = ("none", "partial", "phone_only", "full")
REQUEST_TIMEOUT = 30.0  # seconds for one request once its slot has come
MAX_STATUS_BODY = 4 * 1024 * 1024  # 250 results with company and prospect records
SLOT_WAIT = 3600.0  # a job waits as long as the window makes it; the lease outlives it

DONE_STATES = frozenset({"completed", "complete", "done", "finished", "succeeded", "success"})
FAILED_STATES = frozenset({"failed", "error", "errored", "cancelled", "canceled", "timed_out",
                           "terminated"})  # fmt: skip
PHONE_FIELDS = ("primary_phone", "phone", "phone_numbers", "work_phone_numbers",
                "mobile_phone_numbers", "personal_phone_numbers", "phones")  # fmt: skip
PHONE_VALUE_FIELDS = ("number", "phone", "phone_number", "value", "e164")

Sleep = Callable[[float], Awaitable[None]]


class ServerError(ProviderUnavailable):
    """A 5xx answer: the provider says it failed, so the request may be sent again."""


class RequestRejected(ProviderError):
    """Cleanlist refused the request itself (400, 404, 422): retrying it will not help."""

    outcome = "rejected"


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact to enrich: a LinkedIn URL, or a name and a company (domain or name)."""

    first_name: str | None = None
    last_name: str | None = None
    company_domain: str | None = None
    company_name: str | None = None
    linkedin_url: str | None = None
    email: str | None = None

    def to_json(self) -> dict[str, str]:
        """The request's contact object: the given fields only."""
        fields = {
            "first_name": self.first_name, "last_name": self.last_name,
            "company_domain": self.company_domain, "company_name": self.company_name,
            "linkedin_url": self.linkedin_url, "email": self.email,
        }  # fmt: skip
        return {k: v for k, v in fields.items() if v}

    @property
    def identifiable(self) -> bool:
        """The documented input requirement: a LinkedIn URL, or first + last name + company."""
        named = bool(self.first_name and self.last_name)
        return bool(self.linkedin_url) or (named and bool(self.company_domain or self.company_name))


@dataclass(frozen=True, slots=True)
class Submission:
    """What `POST /enrich/bulk` gave back: the workflow and one task per contact, in order."""

    workflow_id: str
    task_ids: tuple[str, ...]


class TaskState(StrEnum):
    """Where one contact's enrichment stands."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One contact's result: what was found (None / empty when not found)."""

    task_id: str | None
    state: TaskState
    email: str | None = None
    email_status: str | None = None
    """Cleanlist's own word on the email (`primary_email_status`), kept beside our verdict."""
    phones: tuple[str, ...] = ()


class WorkflowState(StrEnum):
    """Where a workflow stands."""

    WORKING = "working"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    """One status poll's answer."""

    state: WorkflowState
    tasks: tuple[TaskResult, ...] = ()
    detail: str | None = None

    def by_task(self) -> dict[str, TaskResult]:
        """Results keyed by task id (results without one are left out)."""
        return {t.task_id: t for t in self.tasks if t.task_id is not None}


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """What `/auth/validate-key` said: valid, and any organisation name it gave."""

    valid: bool
    organization: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class CleanlistClient:
    """Client of Cleanlist.ai's public enrichment API, paced by a fixed-window pacer."""

    name = NAME

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Secret,
        pacer: Pacer,
        *,
        timeout: float = REQUEST_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
        on_request: Callable[[str, str], None] | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key.reveal()}",
                         "Accept": "application/json"}  # fmt: skip
        self.pacer = pacer
        self.timeout = timeout
        self._sleep = sleep
        self._on_request = on_request
        """Called with (endpoint, outcome) after every request: metrics."""

    def __repr__(self) -> str:
        return f"CleanlistClient({self._base!r}, api_key=********)"

    async def validate_key(
        self, *, slot_wait: float = SLOT_WAIT, timeout: float | None = None
    ) -> KeyCheck:
        """`GET /auth/validate-key`: Unauthorized when the key is refused."""
        body = await self._call("GET", "/auth/validate-key", slot_wait=slot_wait, timeout=timeout)
        if not isinstance(body, dict):
            raise BadResponse(f"{NAME}: validate-key answer is not a JSON object")
        org = body.get("organization_name") or body.get("organization") or body.get("org_name")
        valid = body.get("valid", True) is not False
        return KeyCheck(valid=valid, organization=org if isinstance(org, str) else None,
                        extra=body)  # fmt: skip

    async def submit(
        self,
        contacts: Sequence[Contact],
        enrichment_type: str,
        *,
        webhook_url: str | None = None,
        slot_wait: float = SLOT_WAIT,
    ) -> Submission:
        """`POST /enrich/bulk` with 1–250 contacts; the workflow id and task ids, in order."""
        if not 1 <= len(contacts) <= MAX_CONTACTS:
            raise ValueError(f"a bulk request takes 1 to {MAX_CONTACTS} contacts")
        if enrichment_type not in ENRICHMENT_TYPES:
            raise ValueError(f"enrichment_type must be one of {ENRICHMENT_TYPES}")
        payload: dict[str, Any] = {
            "enrichment_type": enrichment_type,
            "contacts": [c.to_json() for c in contacts],
        }
        if webhook_url:
            payload["webhook_url"] = webhook_url
        body = await self._call("POST", "/enrich/bulk", json=payload, slot_wait=slot_wait)
        return parse_submission(body, len(contacts))

    async def status(
        self,
        workflow_id: str | None = None,
        *,
        task_id: str | None = None,
        slot_wait: float = SLOT_WAIT,
    ) -> WorkflowStatus:
        """`GET /enrich/status` by workflow id (or one task id)."""
        if (workflow_id is None) == (task_id is None):
            raise ValueError("give exactly one of workflow_id and task_id")
        params = {"workflow_id": workflow_id} if workflow_id else {"task_id": str(task_id)}
        body = await self._call("GET", "/enrich/status", params=params, slot_wait=slot_wait,
                                max_body=MAX_STATUS_BODY)  # fmt: skip
        return parse_status(body)

    # -- one request ---------------------------------------------------------------------

    async def _slot(self, slot_wait: float) -> None:
        """Wait for a slot of the window (and out any pause a 429 set)."""
        waited = 0.0
        while True:
            reservation = await self.pacer.reserve(max(0.0, slot_wait - waited))
            if reservation.ok:
                if reservation.wait > 0:
                    await self._sleep(reservation.wait)
                return
            if reservation.refused == PAUSED:
                pause = await self.pacer.paused_for()
                if waited + pause > slot_wait:
                    raise ProviderUnavailable(f"{NAME}: paused for {pause:.0f}s more")
                await self._sleep(max(pause, 0.01))
                waited += pause
                continue
            raise ProviderUnavailable(f"{NAME}: no request slot within {slot_wait:.0f}s")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        slot_wait: float,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        max_body: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        await self._slot(slot_wait)
        outcome = "ok"
        try:
            async with (
                guarded(NAME, self.timeout if timeout is None else timeout),
                self._session.request(
                    method, self._base + path, json=json, params=params, headers=self._headers
                ) as response,
            ):
                error = classify(response.status, response.headers)
                if error is not None:
                    detail = await _detail(response)
                    if detail:
                        error.args = (f"{error.args[0]}: {detail}",)
                    raise error
                return await _read(response, max_body)
        except ProviderError as e:
            outcome = e.outcome
            if e.outcome == "rate_limited":
                # The window is spent (maybe by another client of the organisation): stop the fleet.
                await self.pacer.pause(getattr(e, "retry_after", 60.0))
            raise
        finally:
            if self._on_request is not None:
                self._on_request(path, outcome)


def classify(status: int, headers: Mapping[str, str]) -> ProviderError | None:
    """The error an HTTP status means, or None for a 2xx (202 Accepted is a success too)."""
    if 200 <= status < 300:
        return None
    if status in (400, 404, 409, 422):
        return RequestRejected(f"{NAME}: {status} request refused")
    if status >= 500:
        return ServerError(f"{NAME}: {status} server error")
    return classify_status(status, headers, NAME)


async def _detail(response: aiohttp.ClientResponse) -> str:
    """The `detail` of an error body, shortened; empty when there is none."""
    try:
        body = await read_json(response, NAME)
    except ProviderError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # a 422 validation error lists its problems
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)[:200] if detail else ""


async def _read(response: aiohttp.ClientResponse, max_body: int | None) -> Any:
    """The body as JSON, at most `max_body` bytes (a status answer carries 250 results)."""
    if max_body is None:
        return await read_json(response, NAME)
    body = await response.content.read(max_body + 1)
    if len(body) > max_body:
        raise BadResponse(f"{NAME}: body over {max_body} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadResponse(f"{NAME}: body is not JSON") from None


# -- parsing -------------------------------------------------------------------------------


def parse_submission(body: Any, expected: int) -> Submission:
    """`{"workflow_id": str, "task_ids": [str, …]}`; BadResponse when either is missing."""
    if not isinstance(body, dict):
        raise BadResponse(f"{NAME}: bulk answer is not a JSON object")
    workflow = body.get("workflow_id")
    if not isinstance(workflow, str) or not workflow:
        raise BadResponse(f"{NAME}: bulk answer has no workflow_id")
    raw_tasks = body.get("task_ids")
    tasks = tuple(str(t) for t in raw_tasks if isinstance(t, str | int)) if isinstance(
        raw_tasks, list) else ()  # fmt: skip
    if tasks and len(tasks) != expected:
        # Tasks are matched to contacts by position: a different count cannot be matched.
        raise BadResponse(f"{NAME}: {len(tasks)} task ids for {expected} contacts")
    return Submission(workflow, tasks)


def parse_status(body: Any) -> WorkflowStatus:
    """A status answer: the workflow's state and every task result it carries."""
    if not isinstance(body, dict):
        raise BadResponse(f"{NAME}: status answer is not a JSON object")
    raw_state = _lower(body.get("status") or body.get("state"))
    results = None
    for key in ("results", "tasks", "data"):
        if isinstance(body.get(key), list):
            results = body[key]
            break
    if results is None and "task_id" in body:
        results = [body]  # a query by task_id answers with the one task
    tasks = tuple(parse_task(item) for item in results or () if isinstance(item, dict))
    if raw_state in DONE_STATES:
        state = WorkflowState.DONE
    elif raw_state in FAILED_STATES:
        state = WorkflowState.FAILED
    elif not raw_state:
        raise BadResponse(f"{NAME}: status answer has no status")
    else:
        state = WorkflowState.WORKING
    detail = body.get("error") or body.get("message")
    return WorkflowStatus(state, tasks, detail if isinstance(detail, str) else None)


def parse_task(item: Mapping[str, Any]) -> TaskResult:
    """One per-task result: `primary_email` and phone numbers; anything else is ignored."""
    raw_id = item.get("task_id", item.get("id"))
    task_id = (
        str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    )
    raw_state = _lower(item.get("status") or item.get("state"))
    if raw_state in FAILED_STATES:
        state = TaskState.FAILED
    elif raw_state in DONE_STATES or not raw_state:
        state = TaskState.COMPLETED
    else:
        state = TaskState.PENDING
    email = _text(item.get("primary_email"))
    email_status = _text(item.get("primary_email_status"))
    return TaskResult(task_id, state, email, email_status, _phones(item))


def _phones(item: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for key in PHONE_FIELDS:
        value = item.get(key)
        for entry in value if isinstance(value, list) else [value]:
            number = entry
            if isinstance(entry, dict):
                number = next((entry[k] for k in PHONE_VALUE_FIELDS if _text(entry.get(k))), None)
            text = _text(number)
            if text and text not in found:
                found.append(text)
    return tuple(found)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:320]
    return None


def _lower(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""
