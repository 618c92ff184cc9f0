"""EmailConsul list cleaning: lists, pre-processing, run, export (docs/bulk-providers.md).

Paths follow the slugs of its reference pages, with `Authorization: Bearer KEY`:

- upload, small lists: `POST /listcleaning/list` `{"title", "emails": [...]}`; large lists (the
  document recommends it): `GET /listcleaning/list/import/presigned-url` → `{"url", "key"}`,
  `PUT` of a CSV with the header `email` to `url` (a storage URL: no key sent there), then
  `POST /listcleaning/list` `{"title", "key"}`. The answer is the list item; its `id` is kept.
- poll: `GET /listcleaning/list/{id}`: `INIT`/`PRE_PROCESSING` wait; `PRE_PROCESSING_DONE` →
  `POST /listcleaning/list/{id}/run` here (a run refused because one already started is
  fine: a list runs once, so credits are frozen once); `PROCESSING` with progress
  `listcleaning_results.count / emails_count`; `DONE`; `FAILED` → `ListFailed` with
  `processing_error` (or `preprocessing_error`).
- fetch: `GET /listcleaning/list/{id}/export`, a CSV with a header row read by column name:
  `email`, `status`, `reason`, `score`, `domain.accept_all`, `domain.disposable`,
  `domain.free`, `account.role`, `dns.type`/`dns.record`, `provider`, `toxic`, `toxicity`;
  other columns are ignored.
- delete: the document forbids deleting a list once it ran, and we delete only after the
  results: a no-op. credits: the document has no credits call: None.

Rows map onto RESULT as follows: `status` is the state (a row with another status is left
out); `reason` passes through where RESULT has the same value, `unavailable_smtp` and
`unsupported` become `unknown`; `score` passes through (0–100), or when missing 90/45/0/30 by
state; `yes`/`no`/`unknown` flags become true/false/null (`accept_all`) or true/false;
`possible_spamtrap` when `toxic` is yes or `toxicity` is 4 or 5 (the two highest levels);
`smtp_provider` = `provider`; `mx_record` = `dns.record` when `dns.type` is MX.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Unpack
from urllib.parse import urlsplit

import aiohttp

from emailgate.bulk.base import BulkStatus, ListFailed
from emailgate.bulk.client import BulkClient, WireSettings
from emailgate.bulk.csvrows import email_csv, read_rows
from emailgate.bulk.hooks import hook_url
from emailgate.bulk.wire import Answer, path_id
from emailgate.config import Secret
from emailgate.pacing.base import Pacer
from emailgate.providers.errors import BadResponse
from emailgate.providers.http import whole_number
from emailgate.verify.result import Reason, Source, State, Verdict

log = logging.getLogger("emailgate.bulk")

NAME = Source.EMAILCONSUL.value
MAX_UPLOAD = 50_000  # our choice, like the others: one list, one ~1.5 MB CSV
ARRAY_MAX = 5_000  # up to this many go as a JSON array; more as a CSV (the document's advice)
POLL_EVERY = 15.0  # seconds between list reads at most (PollPlan: sooner near the end)
RUN_REFUSED = (400, 409)  # a run refused because the list already runs or ran
WAITING = ("INIT", "PRE_PROCESSING", "PROCESSING")
REASONS = {
    "unavailable_smtp": Reason.UNKNOWN,
    "unsupported": Reason.UNKNOWN,
}
DEFAULT_SCORE = {State.DELIVERABLE: 90, State.RISKY: 45, State.UNDELIVERABLE: 0,
                 State.UNKNOWN: 30}  # fmt: skip
REQUIRED = ("email", "status")


class EmailConsul(BulkClient):
    """Client of EmailConsul's list-cleaning API (implements `BulkProvider`)."""

    name = NAME
    max_upload = MAX_UPLOAD

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Secret,
        *,
        pacer: Pacer,
        poll_every: float = POLL_EVERY,
        array_max: int = ARRAY_MAX,
        webhook_url: str | None = None,
        webhook_secret: Secret | None = None,
        **wire: Unpack[WireSettings],
    ) -> None:
        super().__init__(session, NAME, pacer=pacer, poll_every=poll_every, **wire)
        self._base = base_url.rstrip("/") + "/listcleaning/list"
        self._headers = {"Authorization": f"Bearer {api_key.reveal()}",
                         "Accept": "application/json"}  # fmt: skip
        self._hook = (webhook_url, webhook_secret) if webhook_url and webhook_secret else None
        self.array_max = array_max

    def __repr__(self) -> str:
        return f"EmailConsul({self._base!r}, api_key=********)"

    async def upload(self, emails: Sequence[str], *, reference: str) -> str:
        """A new list (array or CSV import by size); its id."""
        if not 0 < len(emails) <= MAX_UPLOAD:
            raise ValueError(f"{NAME}: an upload holds 1..{MAX_UPLOAD} addresses")
        body: dict[str, Any] = {"title": reference}
        if self._hook is not None:  # a wake-up for our polling (bulk/hooks.py)
            body["webhook_url"] = hook_url(self._hook[0], self._hook[1], NAME, reference)
        if len(emails) <= self.array_max:
            body["emails"] = list(emails)
        else:
            body["key"] = await self._import_csv(emails)
        return await self.wire.call(
            "POST", self._base, _read_created, transfer=True, json=body, headers=self._headers
        )

    async def _import_csv(self, emails: Sequence[str]) -> str:
        url, key = await self.wire.call(
            "GET", self._base + "/import/presigned-url", _read_presigned, headers=self._headers
        )
        # The storage behind a presigned URL checks its signature, not our key: send none.
        await self.wire.call(
            "PUT", url, _ignore, transfer=True, paced=False, data=email_csv(emails),
            headers={"Content-Type": "text/csv"},
        )  # fmt: skip
        return key

    async def poll(self, list_id: str) -> BulkStatus:
        """Read the list; run it once pre-processing is done; ListFailed when it failed."""
        url = f"{self._base}/{path_id(NAME, list_id)}"

        def read(answer: Answer) -> tuple[str, float]:
            if answer.status == 404:
                raise ListFailed(f"{NAME}: list {list_id} is not known to the provider (404)")
            item = _item(answer.json(NAME))
            status = str(item["status"]).strip().upper()
            if status == "FAILED":
                error = item.get("processing_error") or item.get("preprocessing_error") or "?"
                raise ListFailed(f"{NAME}: list {list_id} FAILED: {str(error)[:200]}")
            if status not in (*WAITING, "PRE_PROCESSING_DONE", "DONE"):
                raise BadResponse(f"{NAME}: list status {status[:40]!r} is not documented")
            return status, _progress(item)

        status, progress = await self.wire.call(
            "GET", url, read, headers=self._headers, hand_back=(404,)
        )
        if status == "DONE":
            return self.done(list_id)
        if status == "PRE_PROCESSING_DONE":
            # A run refused because the list already runs (another replica, or ours before a
            # restart) is what we wanted: a list runs once, its credits are frozen once.
            await self.wire.call("POST", url + "/run", _ignore, headers=self._headers,
                                 hand_back=RUN_REFUSED)  # fmt: skip
            self.plan.restart(list_id)  # cleaning starts now: its progress is timed afresh
        return self.working(list_id, progress)

    async def find_list(self, reference: str) -> str | None:
        """`GET /listcleaning/lists`: the newest list titled `reference`, or None."""

        def read(answer: Answer) -> str | None:
            body = answer.json(NAME)
            items = body
            if isinstance(body, dict):
                items = next((body[k] for k in ("data", "items", "lists", "results")
                              if isinstance(body.get(k), list)), None)  # fmt: skip
            if not isinstance(items, list):
                raise BadResponse(f"{NAME}: lists answer has no list of lists")
            found = [
                str(i["id"])
                for i in items
                if isinstance(i, dict)
                and i.get("title") == reference
                and isinstance(i.get("id"), str | int)
                and not isinstance(i["id"], bool)
            ]
            return found[-1] if found else None  # fmt: skip

        url = self._base.removesuffix("/list") + "/lists"
        return await self.wire.call("GET", url, read, headers=self._headers)

    async def fetch(self, list_id: str) -> AsyncIterator[tuple[str, Verdict]]:
        """`GET /listcleaning/list/{id}/export`: one verdict per row that maps."""
        url = f"{self._base}/{path_id(NAME, list_id)}/export"
        pairs, skipped = await self.wire.call(
            "GET", url, _read_export, transfer=True,
            headers={**self._headers, "Accept": "text/csv, */*"},
        )  # fmt: skip
        if skipped:
            log.warning(
                "bulk results left out: rows not as documented",
                extra={"event": "bulk_records_skipped", "provider": NAME, "count": skipped},
            )
        for pair in pairs:
            yield pair

    async def delete(self, list_id: str) -> None:
        """A list that ran cannot be deleted at EmailConsul: nothing to do."""

    async def credits(self) -> int | None:
        """EmailConsul's document has no credits call."""
        return None


def _item(body: Any) -> Mapping[str, Any]:
    """The list item, bare or wrapped in `data` (the document shows only its fields)."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict):
        raise BadResponse(f"{NAME}: answer is not a JSON object")
    return body


def _progress(item: Mapping[str, Any]) -> float:
    results = item.get("listcleaning_results")
    done = _count(results.get("count")) if isinstance(results, dict) else 0
    whole = _count(item.get("emails_count"))
    return max(0.0, min(1.0, done / whole)) if whole > 0 else 0.0


def _count(value: Any) -> int:
    """A count: a number, or a string of digits (the webhooks' shape)."""
    count = whole_number(value)
    return 0 if count is None else count


def _read_created(answer: Answer) -> str:
    list_id = _item(answer.json(NAME))["id"]
    if isinstance(list_id, bool) or not isinstance(list_id, int | str) or list_id == "":
        raise BadResponse(f"{NAME}: list answer has no id")
    return str(list_id)


def _read_presigned(answer: Answer) -> tuple[str, str]:
    target = _item(answer.json(NAME))
    url, key = target["url"], target["key"]
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise BadResponse(f"{NAME}: presigned url is not an http(s) URL")
    if not isinstance(key, str) or not key:
        raise BadResponse(f"{NAME}: presigned answer has no key")
    return url, key


def _read_export(answer: Answer) -> tuple[list[tuple[str, Verdict]], int]:
    pairs, skipped = [], 0
    for row in read_rows(answer.text(NAME), NAME, required=REQUIRED):
        pair = row_verdict(row)
        if pair is None:
            skipped += 1
        else:
            pairs.append(pair)
    return pairs, skipped


def _ignore(answer: Answer) -> None:
    return None


def row_verdict(row: Mapping[str, str]) -> tuple[str, Verdict] | None:
    """(address, verdict) of one export row, by the rules in this module's docstring."""
    email = row.get("email", "").strip()
    try:
        state = State(row.get("status", "").strip().lower())
    except ValueError:
        return None
    if not email:
        return None
    raw_reason = row.get("reason", "").strip().lower()
    try:
        reason = REASONS.get(raw_reason) or Reason(raw_reason)
    except ValueError:
        reason = Reason.UNKNOWN
    score = _score(row.get("score", ""), DEFAULT_SCORE[state])
    toxicity = _score(row.get("toxicity", ""), 0)
    dns_type = row.get("dns.type", "").strip().upper()
    return email, Verdict(
        state=state,
        reason=reason,
        score=score,
        source=Source.EMAILCONSUL,
        accept_all=_yes_no(row.get("domain.accept_all")),
        disposable=_yes_no(row.get("domain.disposable")) is True,
        free=_yes_no(row.get("domain.free")) is True,
        role=_yes_no(row.get("account.role")) is True,
        possible_spamtrap=_yes_no(row.get("toxic")) is True or toxicity >= 4,
        mx_record=(row.get("dns.record", "").strip() or None) if dns_type == "MX" else None,
        smtp_provider=row.get("provider", "").strip() or None,
    )


def _yes_no(value: str | None) -> bool | None:
    lowered = (value or "").strip().lower()
    if lowered in ("yes", "true", "1"):
        return True
    if lowered in ("no", "false", "0"):
        return False
    return None


def _score(value: str, default: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    if number != number:  # NaN
        return default
    return max(0, min(100, round(number)))
