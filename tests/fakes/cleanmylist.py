"""A fake CleanMyList: `GET /_api/request.php?email=…&test=0|1&api_key=…`, as its page says.

Answers (`shared/providers/cleanmylist-request-api.txt`): real JSON, not the page's
typographic quotes, fields in the example's order:
`{"quota": "461774", "score": 55, "email": "…", "valid": true, "last_delivery": "…"}`,
then the optional fields of the verdict table (verdicts.py). `quota` is a string of digits:
the credit left after this call, one less per answered call. `test=1` (a sending simulation)
answers `test_extra_ms` later, and `testko…` addresses then fail with `error: test_ko`.

The page documents no error status; this fake chooses, body `{"message": ...}`:

| status | when                                                                            |
|--------|---------------------------------------------------------------------------------|
| 403    | `api_key` missing or not ours                                                   |
| 400    | `email` missing or empty, or `test` other than 0 or 1                           |
| 402    | quota exhausted (`{"message": …, "quota": "0"}`)                                |
| 429    | only with `enforce_interval`: a call less than `min_interval_ms` after the      |
|        | previous one; `Retry-After` in whole seconds, rounded up (so 1)                 |

The page asks for 300 ms between calls: every gap between arrivals is kept
(`fake.gaps()`, `fake.too_soon()`), whether or not it is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.server import CALL, FakeConfig, FakeServer, json_response, retry_after_header
from tests.fakes.server import with_settings as _with_settings
from tests.fakes.verdicts import DEFAULT, cleanmylist_record, profile_for_address

REQUEST = "/_api/request.php"


@dataclass(slots=True)
class CleanMyListConfig(FakeConfig):
    """CleanMyList's settings; `quota` is the live balance."""

    api_key: str = "cml-test-key"
    quota: int = 461_774  # the page's example
    min_interval_ms: float = 300.0
    """The gap the page asks for between two calls."""
    enforce_interval: bool = False
    """Answer 429 to a call that comes sooner than `min_interval_ms` after the previous one."""
    test_extra_ms: float = 500.0
    """Extra delay of a `test=1` call (the page: it lengthens the response time)."""


class FakeCleanMyList(FakeServer[CleanMyListConfig]):
    """CleanMyList's request.php on a local port."""

    provider = "cleanmylist"

    def __init__(
        self,
        config: CleanMyListConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> None:
        self._last_arrival: float | None = None
        super().__init__(
            _with_settings(config or CleanMyListConfig(), settings), host=host, port=port
        )

    @property
    def quota(self) -> int:
        """Quota left."""
        return self.config.quota

    def gaps(self) -> list[float]:
        """Seconds between consecutive calls to request.php."""
        return self.calls.gaps(REQUEST)

    def too_soon(self) -> list[float]:
        """The gaps shorter than `min_interval_ms`."""
        return [g for g in self.gaps() if g * 1000.0 < self.config.min_interval_ms]

    def _reset_state(self) -> None:
        self._last_arrival = None

    def _add_api_routes(self, app: web.Application) -> None:
        app.router.add_get(REQUEST, self._request, allow_head=False)

    async def _request(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        query = request.query
        email = query.get("email", "").strip() or None
        call.email = email
        test = query.get("test", "0")
        gap = None if self._last_arrival is None else call.mono - self._last_arrival
        self._last_arrival = call.mono
        fault, slow = self.take_fault(email)
        extra = self.config.test_extra_ms / 1000.0 if test == "1" else 0.0
        early = await self.before_answer(request, fault, slow, extra)
        if early is not None:
            return early
        cfg = self.config
        interval = cfg.min_interval_ms / 1000.0
        if cfg.enforce_interval and gap is not None and gap < interval:
            return self.error_response(
                429,
                f"Too many requests: wait {cfg.min_interval_ms:g} ms between calls",
                {"Retry-After": retry_after_header(interval - gap)},
            )
        if query.get("api_key") != cfg.api_key:
            return self.error_response(403, "Invalid or missing api_key")
        if email is None:
            return self.error_response(400, "email is required")
        if test not in ("0", "1"):
            return self.error_response(400, "test must be 0 or 1")
        if cfg.quota <= 0:
            return json_response({"message": "Quota exhausted", "quota": "0"}, 402)
        cfg.quota -= 1
        profile = profile_for_address(email, sending_test=test == "1")
        record = cleanmylist_record(
            email, profile, cfg.quota, self.answers.get(email.strip().lower())
        )
        return json_response(record)

    def sample_body(self) -> dict[str, Any]:
        return cleanmylist_record("nadine@example.fr", DEFAULT, self.config.quota)

    def wrong_shape_body(self) -> Any:
        return {"status": "ok", "result": {"email": "nadine@example.fr", "valid": "yes"}}
