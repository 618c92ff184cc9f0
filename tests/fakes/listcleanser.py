"""A fake ListCleanser: `POST /api/v1/verify`, `GET /api/v1/credits` and the batch endpoints
`POST /api/v1/batch` and `GET /api/v1/batch/{listId}`, as its document says.

Answers (`shared/providers/listcleanser-api.txt`):

- verify: `200 {"success": true, "data": RECORD}`, RECORD as in verdicts.py; spends one credit
  (not with the test key). An address without `@` is a result (`invalid_email`), not a 400.
- credits: `200 {"success": true, "data": <int>}`; free.
- errors, body `{"message": ...}`:
  401 no `X-API-Key` ("Unauthorized access", the document's example); 403 a key that is not
  ours; 400 a body that is not a JSON object with a non-empty string `email`; 402 no credits
  left; 429 "Too many requests, please try again after a minute." with `Retry-After` when more
  than `rate_limit` calls arrive in any `rate_window_s` window, per endpoint and client IP.
- every answer of the API (not injected faults) carries `X-RateLimit-Limit`,
  `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the oldest call in the
  window leaves it).

Checks run in that order: rate limit (it counts every arrival, before authentication, as a
per-IP limiter in front of the API does), key, body, credits.

Batch (sections 2–3 of the document):

- `POST /api/v1/batch` JSON `{"emails": [...]}` (1–50,000 strings, else 400), at most
  `batch_upload_limit` uploads per `rate_window_s` (document: 6 per minute), spends one credit
  per address at upload (402 when the list needs more than are left; never with the test
  key); answers `201 {"success": true, "data": {"id", "name", "status": "processing",
  "number_of_total"}}`.
- `GET /api/v1/batch/{id}?page=&per_page=`: while processing (`batch_processing_s +
  batch_per_1000_s` per 1,000 addresses) `{"state": "processing", "progress": 0–100}`; then the
  completed shape `{"success", "stats", "data": [{"id", "email": RECORD}], "page", "per_page",
  "count", "total_pages"}` with `per_page` capped at `batch_max_per_page`; 404 for an unknown
  id (or another key's); rate-limited per endpoint like verify. A list told to fail
  (`fail_lists`) answers `{"state": "failed", "message": ...}` from half-way on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.bulklists import FakeList, processing_seconds
from tests.fakes.ratelimit import SlidingWindow
from tests.fakes.server import CALL, FakeConfig, FakeServer, json_response, retry_after_header
from tests.fakes.server import with_settings as _with_settings
from tests.fakes.verdicts import listcleanser_record, profile_for, profile_for_address

VERIFY = "/api/v1/verify"
CREDITS = "/api/v1/credits"
BATCH = "/api/v1/batch"
BATCH_RESULTS = "/api/v1/batch/{list_id}"
BATCH_MAX = 50_000
TOO_MANY = "Too many requests, please try again after a minute."


@dataclass(slots=True)
class ListCleanserConfig(FakeConfig):
    """ListCleanser's settings; `credits` is the live balance."""

    api_key: str = "lc-test-key"
    test_api_key: str | None = None
    """A test key: answers as usual but spends no credit (the document's test keys)."""
    credits: int = 100_000
    rate_limit: int = 200
    """Calls allowed per endpoint in any window of `rate_window_s` (document: 200 per minute)."""
    rate_window_s: float = 60.0
    batch_upload_limit: int = 6
    """Batch uploads allowed in any window of `rate_window_s` (document: 6 per minute)."""
    batch_processing_s: float = 0.3
    batch_per_1000_s: float = 0.05
    batch_max_per_page: int = 500
    fail_lists: int = 0
    """The next this-many uploaded lists fail half-way through."""
    lose_upload_answers: int = 0
    """The next this-many uploads are stored, then their connection is reset before the
    answer (the provider has the list; the client never learns its id)."""


class FakeListCleanser(FakeServer[ListCleanserConfig]):
    """ListCleanser's single verify and credits endpoints on a local port."""

    provider = "listcleanser"

    def __init__(
        self,
        config: ListCleanserConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> None:
        self._window = SlidingWindow()
        self.lists: dict[str, FakeList] = {}
        self._next_id = 456  # the document's example id
        super().__init__(
            _with_settings(config or ListCleanserConfig(), settings), host=host, port=port
        )

    @property
    def credits(self) -> int:
        """Credits left."""
        return self.config.credits

    def _reset_state(self) -> None:
        self._window.clear()
        self.lists.clear()

    def uploads(self) -> list[Any]:
        """Batch upload calls that arrived (answered or not)."""
        return self.calls.select(BATCH)

    def _add_api_routes(self, app: web.Application) -> None:
        app.router.add_post(VERIFY, self._verify)
        app.router.add_get(CREDITS, self._credits, allow_head=False)
        app.router.add_post(BATCH, self._batch_upload)
        app.router.add_get(BATCH_RESULTS, self._batch_results, allow_head=False)

    async def _batch_upload(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        cfg = self.config
        limit = self._window.hit(
            (BATCH, request.remote), call.mono, cfg.batch_upload_limit, cfg.rate_window_s
        )
        body = await request.read()
        fault, _ = self.take_fault(None)
        early = await self.before_answer(request, fault, False)
        if early is not None:
            return early
        cfg = self.config
        headers = limit.headers()
        if not limit.allowed:
            headers["Retry-After"] = retry_after_header(limit.retry_after_s)
            return self.error_response(429, TOO_MANY, headers)
        refused = self._check_key(request, headers)
        if refused is not None:
            return refused
        try:
            data = orjson.loads(body)
            emails = data["emails"]
            if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
                raise TypeError("emails")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self.error_response(400, "emails must be a list of strings", headers)
        if not 1 <= len(emails) <= BATCH_MAX:
            return self.error_response(400, f"1 to {BATCH_MAX} email addresses", headers)
        is_test = cfg.test_api_key is not None and request.headers["X-API-Key"] == cfg.test_api_key
        if not is_test and cfg.credits < len(emails):
            return self.error_response(402, "Insufficient credits", headers)
        charged = 0 if is_test else len(emails)
        cfg.credits -= charged
        list_id = str(self._next_id)
        self._next_id += 1
        fails = None
        if cfg.fail_lists > 0:
            cfg.fail_lists -= 1
            fails = "List processing failed"
        self.lists[list_id] = FakeList(
            id=list_id, emails=list(emails), started=call.mono, charged=charged, fails=fails,
            seconds=processing_seconds(len(emails), cfg.batch_processing_s, cfg.batch_per_1000_s),
            extra={"key": request.headers["X-API-Key"]},
        )  # fmt: skip
        lost = self.lose_answer(request)
        if lost is not None:
            return lost
        answer = {"id": int(list_id), "name": "emails.json", "status": "processing",
                  "number_of_total": len(emails)}  # fmt: skip
        return json_response({"success": True, "data": answer}, 201, headers)

    async def _batch_results(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        cfg = self.config
        limit = self._window.hit(
            (BATCH_RESULTS, request.remote), call.mono, cfg.rate_limit, cfg.rate_window_s
        )
        fault, _ = self.take_fault(None)
        early = await self.before_answer(request, fault, False)
        if early is not None:
            return early
        headers = limit.headers()
        if not limit.allowed:
            headers["Retry-After"] = retry_after_header(limit.retry_after_s)
            return self.error_response(429, TOO_MANY, headers)
        refused = self._check_key(request, headers)
        if refused is not None:
            return refused
        fake_list = self.lists.get(request.match_info["list_id"])
        if fake_list is None or fake_list.extra["key"] != request.headers["X-API-Key"]:
            return self.error_response(404, "Resource not found", headers)
        if fake_list.failed():
            return json_response({"state": "failed", "message": fake_list.fails}, 200, headers)
        if not fake_list.done():
            progress = min(99, int(fake_list.progress() * 100))
            return json_response({"state": "processing", "progress": progress}, 200, headers)
        try:
            page = max(1, int(request.query.get("page", "1")))
            per_page = max(1, min(self.config.batch_max_per_page,
                                  int(request.query.get("per_page", "20"))))  # fmt: skip
        except ValueError:
            return self.error_response(400, "page and per_page are integers", headers)
        return json_response(self._completed(fake_list, page, per_page), 200, headers)

    def _completed(self, fake_list: FakeList, page: int, per_page: int) -> dict[str, Any]:
        # Built once per list: a 50,000-address list is read in a hundred pages.
        records: list[dict[str, Any]] = fake_list.extra.get("records") or []
        if not records:
            seen: set[str] = set()
            for email in fake_list.emails:
                if email.strip().lower() in seen:
                    continue
                seen.add(email.strip().lower())
                record = listcleanser_record(email, profile_for_address(email), 0.5,
                                             self.answers.get(email.strip().lower()))  # fmt: skip
                records.append(record)
            fake_list.extra["records"] = records
        total = len(fake_list.emails)
        shares: dict[str, int] = fake_list.extra.get("shares") or {}
        if not shares:
            shares = {state: 0 for state in ("deliverable", "undeliverable", "risky", "unknown")}
            for record in records:
                shares[record["state"]] = shares.get(record["state"], 0) + 1
            fake_list.extra["shares"] = shares
        stats: dict[str, Any] = {
            "total": total,
            "duplicate": round(100 * (total - len(records)) / total, 1),
        }
        stats |= {k: round(100 * v / max(1, len(records)), 1) for k, v in shares.items()}
        chunk = records[(page - 1) * per_page : page * per_page]
        data = [{"id": (page - 1) * per_page + i + 1, "email": r} for i, r in enumerate(chunk)]
        return {"success": True, "stats": stats, "data": data, "page": page,
                "per_page": per_page, "count": len(data),
                "total_pages": max(1, math.ceil(len(records) / per_page))}  # fmt: skip

    async def _verify(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        cfg = self.config
        limit = self._window.hit(
            (VERIFY, request.remote), call.mono, cfg.rate_limit, cfg.rate_window_s
        )
        email, problem = _read_email(await request.read())
        call.email = email
        fault, slow = self.take_fault(email)
        early = await self.before_answer(request, fault, slow)
        if early is not None:
            return early
        cfg = self.config  # settings may have changed while we waited
        headers = limit.headers()
        if not limit.allowed:
            headers["Retry-After"] = retry_after_header(limit.retry_after_s)
            return self.error_response(429, TOO_MANY, headers)
        refused = self._check_key(request, headers)
        if refused is not None:
            return refused
        if problem is not None or email is None:
            return self.error_response(400, f"Invalid request parameters: {problem}", headers)
        is_test = cfg.test_api_key is not None and request.headers["X-API-Key"] == cfg.test_api_key
        if not is_test and cfg.credits <= 0:
            return self.error_response(402, "Insufficient credits", headers)
        if not is_test:
            cfg.credits -= 1
        record = listcleanser_record(
            email,
            profile_for_address(email),
            time.monotonic() - call.mono,
            self.answers.get(email.strip().lower()),
        )
        return json_response({"success": True, "data": record}, headers=headers)

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        cfg = self.config
        limit = self._window.hit(
            (CREDITS, request.remote), call.mono, cfg.rate_limit, cfg.rate_window_s
        )
        fault, _ = self.take_fault(None)
        early = await self.before_answer(request, fault, False)
        if early is not None:
            return early
        headers = limit.headers()
        if not limit.allowed:
            headers["Retry-After"] = retry_after_header(limit.retry_after_s)
            return self.error_response(429, TOO_MANY, headers)
        refused = self._check_key(request, headers)
        if refused is not None:
            return refused
        return json_response({"success": True, "data": self.config.credits}, headers=headers)

    def _check_key(self, request: web.Request, headers: dict[str, str]) -> web.Response | None:
        key = request.headers.get("X-API-Key")
        if not key:
            return self.error_response(401, "Unauthorized access", headers)
        if key not in (self.config.api_key, self.config.test_api_key):
            return self.error_response(403, "Forbidden: the API key is invalid", headers)
        return None

    def sample_body(self) -> dict[str, Any]:
        record = listcleanser_record("user@example.com", profile_for("user"), 0.5)
        return {"success": True, "data": record}

    def wrong_shape_body(self) -> Any:
        return {"success": True, "data": {"result": "ok", "email": "user@example.com"}}


def _read_email(body: bytes) -> tuple[str | None, str | None]:
    """(the address, or None; what is wrong with the body, or None)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, "the body is not JSON"
    if not isinstance(data, dict):
        return None, "the body is not a JSON object"
    email = data.get("email")
    if not isinstance(email, str) or not email.strip():
        return None, "email is required and must be a string"
    return email.strip(), None
