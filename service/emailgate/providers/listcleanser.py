"""ListCleanser: `POST /api/v1/verify` and `GET /api/v1/credits` (providers/listcleanser-api.txt).

Its single-verify record is RESULT (docs/api.md) minus the decision, so the mapping is field by
field: a record with an unknown `state` or a score outside 0–100 is not the documented JSON.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from emailgate.config import Secret
from emailgate.providers.errors import BadResponse
from emailgate.providers.http import classify_status, guarded, read_json
from emailgate.verify.result import Address, Reason, Source, State, Verdict

NAME = Source.LISTCLEANSER.value


class ListCleanser:
    """Client of ListCleanser's real-time API."""

    name = NAME

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: Secret) -> None:
        self._session = session
        self._verify_url = base_url.rstrip("/") + "/api/v1/verify"
        self._credits_url = base_url.rstrip("/") + "/api/v1/credits"
        self._headers = {"X-API-Key": api_key.reveal(), "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"ListCleanser({self._verify_url!r}, api_key=********)"

    async def verify(self, address: Address, timeout: float) -> Verdict:
        async with (
            guarded(NAME, timeout),
            self._session.post(
                self._verify_url, json={"email": address.email}, headers=self._headers
            ) as response,
        ):
            error = classify_status(response.status, response.headers, NAME)
            if error is not None:
                raise error
            body = await read_json(response, NAME)
        return parse_verdict(body)

    async def credits(self, timeout: float) -> int | None:
        async with (
            guarded(NAME, timeout),
            self._session.get(self._credits_url, headers=self._headers) as response,
        ):
            error = classify_status(response.status, response.headers, NAME)
            if error is not None:
                raise error
            body = await read_json(response, NAME)
        if not isinstance(body, dict) or not isinstance(body.get("data"), int):
            raise BadResponse(f"{NAME}: credits answer has no integer data")
        return max(0, int(body["data"]))


def parse_verdict(body: Any) -> Verdict:
    """Map `{"success": true, "data": {...}}` onto a Verdict; BadResponse when it does not fit."""
    if not isinstance(body, dict) or body.get("success") is not True:
        raise BadResponse(f"{NAME}: answer is not {{success: true, data: ...}}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise BadResponse(f"{NAME}: answer has no data record")
    try:
        state = State(data["state"])
        score = data["score"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
            raise ValueError("score")
    except (KeyError, ValueError, TypeError):
        raise BadResponse(f"{NAME}: record without a valid state and score") from None
    try:
        reason = Reason(str(data.get("reason")))
    except ValueError:
        # A reason we do not know yet still comes with a state we do: keep the verdict.
        reason = Reason.UNKNOWN
    return Verdict(
        state=state,
        reason=reason,
        score=round(score),
        source=Source.LISTCLEANSER,
        accept_all=_flag(data.get("accept_all"), default=None),
        disposable=bool(_flag(data.get("disposable"))),
        free=bool(_flag(data.get("free"))),
        role=bool(_flag(data.get("role"))),
        possible_spamtrap=bool(_flag(data.get("possible_spamtrap"))),
        did_you_mean=_text(data.get("did_you_mean")),
        mx_record=_text(data.get("mx_record")),
        smtp_provider=_text(data.get("smtp_provider")),
    )


def _flag(value: Any, default: bool | None = False) -> bool | None:
    return value if isinstance(value, bool) else default


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
