"""A fake ListCleanser: `POST /api/v1/verify` and `GET /api/v1/credits`, as its document says.

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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.ratelimit import SlidingWindow
from tests.fakes.server import CALL, FakeConfig, FakeServer, json_response, retry_after_header
from tests.fakes.server import with_settings as _with_settings
from tests.fakes.verdicts import listcleanser_record, profile_for, profile_for_address

VERIFY = "/api/v1/verify"
CREDITS = "/api/v1/credits"
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
        super().__init__(
            _with_settings(config or ListCleanserConfig(), settings), host=host, port=port
        )

    @property
    def credits(self) -> int:
        """Credits left."""
        return self.config.credits

    def _reset_state(self) -> None:
        self._window.clear()

    def _add_api_routes(self, app: web.Application) -> None:
        app.router.add_post(VERIFY, self._verify)
        app.router.add_get(CREDITS, self._credits, allow_head=False)

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
