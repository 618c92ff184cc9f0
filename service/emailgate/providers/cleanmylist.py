"""CleanMyList: `GET /_api/request.php?email=&test=0&api_key=` (cleanmylist-request-api.txt).

The answer is not ListCleanser's record, so each field is mapped by a stated rule, in order:

| CleanMyList says                       | state         | reason             | flags              |
|----------------------------------------|---------------|--------------------|--------------------|
| `spamtrap: true`                       | risky         | low_quality        | possible_spamtrap  |
| `abuse: true`                          | risky         | low_quality        |                    |
| `error: NODOMAIN` or `NOMX`            | undeliverable | invalid_domain     |                    |
| `error: hard_bounce` or `test_ko`      | undeliverable | rejected_email     |                    |
| `valid: false` (no error)              | undeliverable | rejected_email     |                    |
| `risk: spam_reporter`/`abuse_reporter` | risky         | low_quality        |                    |
| `valid: true`, score >= 50             | deliverable   | accepted_email     |                    |
| `valid: true`, score < 50              | risky         | low_deliverability |                    |

`risk: role` sets the role flag whatever the state. `score` passes through (0–100; the thresholds
30 and 50 come from this provider's own advice). `quota`, a string of digits, is the credit left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from emailgate.config import Secret
from emailgate.providers.errors import BadResponse
from emailgate.providers.http import classify_status, guarded, read_json, whole_number
from emailgate.verify.result import Address, Reason, Source, State, Verdict

NAME = Source.CLEANMYLIST.value
DELIVERABLE_SCORE = 50  # CleanMyList: keep scores >= 50 for marketing


class CleanMyList:
    """Client of CleanMyList's request.php; reports the quota of each answer to `on_quota`."""

    name = NAME

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Secret,
        *,
        on_quota: Callable[[int], None] | None = None,
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/_api/request.php"
        self._key = api_key
        self.on_quota = on_quota
        """Told the credits left that each answer carries (its Link sets it)."""

    def __repr__(self) -> str:
        return f"CleanMyList({self._url!r}, api_key=********)"

    async def verify(self, address: Address, timeout: float) -> Verdict:
        # test=0: no sending simulation, which the document says makes answers slower.
        params = {"email": address.email, "test": "0", "api_key": self._key.reveal()}
        async with (
            guarded(NAME, timeout),
            self._session.get(self._url, params=params) as response,
        ):
            error = classify_status(response.status, response.headers, NAME)
            if error is not None:
                raise error
            body = await read_json(response, NAME)
        verdict, quota = parse_answer(body)
        if quota is not None and self.on_quota is not None:
            self.on_quota(quota)
        return verdict

    async def credits(self, timeout: float) -> int | None:
        """CleanMyList has no credits endpoint: its quota arrives with each answer."""
        return None


def parse_answer(body: Any) -> tuple[Verdict, int | None]:
    """The verdict and the quota left; BadResponse when the answer is not the documented JSON."""
    if not isinstance(body, dict):
        raise BadResponse(f"{NAME}: answer is not a JSON object")
    valid = _truth(body.get("valid"))
    score = body.get("score")
    if isinstance(score, str) and _is_digits(score):
        score = int(score)
    if (
        valid is None
        or isinstance(score, bool)
        or not isinstance(score, int)
        or not 0 <= score <= 100
    ):
        raise BadResponse(f"{NAME}: answer without a boolean valid and a score in 0..100")
    error = body.get("error")
    risk = body.get("risk")
    spamtrap = _truth(body.get("spamtrap")) is True
    if spamtrap or _truth(body.get("abuse")) is True:
        state, reason = State.RISKY, Reason.LOW_QUALITY
    elif error in ("NODOMAIN", "NOMX"):
        state, reason = State.UNDELIVERABLE, Reason.INVALID_DOMAIN
    elif error in ("hard_bounce", "test_ko") or not valid:
        state, reason = State.UNDELIVERABLE, Reason.REJECTED_EMAIL
    elif risk in ("spam_reporter", "abuse_reporter"):
        state, reason = State.RISKY, Reason.LOW_QUALITY
    elif score >= DELIVERABLE_SCORE:
        state, reason = State.DELIVERABLE, Reason.ACCEPTED_EMAIL
    else:
        state, reason = State.RISKY, Reason.LOW_DELIVERABILITY
    verdict = Verdict(
        state=state,
        reason=reason,
        score=score,
        source=Source.CLEANMYLIST,
        role=risk == "role",
        possible_spamtrap=spamtrap,
    )
    return verdict, whole_number(body.get("quota"))


def _is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also passes "²" or "٣", which int() then refuses."""
    return text.isascii() and text.isdigit()


def _truth(value: Any) -> bool | None:
    """JSON true/false, or the strings "true"/"false" that the French document prints."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None
