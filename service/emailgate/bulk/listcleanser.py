"""ListCleanser batch: `POST /api/v1/batch`, `GET /api/v1/batch/{listId}` (docs/bulk-providers.md).

- upload: JSON `{"emails": [...]}`, at most 50,000 per list; answer `{"success": true,
  "data": {"id": int, ...}}`. At most 6 uploads per minute (its own pacer, fleet-wide with
  Redis).
- poll: `GET /api/v1/batch/{id}?page=1&per_page=1`: `{"state": "processing", "progress": N}`
  while it works; the completed shape (`data`, `stats`, `total_pages`) once done; a state of
  `failed` (or `cancelled`) ends the list: `ListFailed`.
- fetch: the same endpoint page by page (`per_page` 1,000), each record `{"id", "email":
  {RESULT fields}}`, mapped like a single verify. At most 200 requests per minute on that
  endpoint (its pacer; polls count too).
- delete: the API has none: a no-op. credits: `GET /api/v1/credits`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Unpack

import aiohttp

from emailgate.bulk.base import BulkState, BulkStatus, ListFailed
from emailgate.bulk.client import BulkClient, WireSettings
from emailgate.bulk.wire import Answer, T, path_id
from emailgate.config import Secret
from emailgate.pacing.base import Pacer
from emailgate.providers.errors import BadResponse, ProviderError
from emailgate.providers.listcleanser import parse_verdict
from emailgate.verify.result import Source, Verdict

log = logging.getLogger("emailgate.bulk")

NAME = Source.LISTCLEANSER.value
MAX_UPLOAD = 50_000  # the document: "up to 50,000 email addresses" per JSON upload
PAGE_SIZE = 1_000  # results per page: 50 pages for a full list, well inside 200 per minute
POLL_EVERY = 10.0  # seconds between polls at most (PollPlan polls sooner near the end)
ENDED = ("failed", "cancelled", "canceled", "error")


class ListCleanserBatch(BulkClient):
    """Client of ListCleanser's batch API (implements `BulkProvider`)."""

    name = NAME
    max_upload = MAX_UPLOAD

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Secret,
        *,
        results_pacer: Pacer,
        upload_pacer: Pacer,
        poll_every: float = POLL_EVERY,
        page_size: int = PAGE_SIZE,
        **wire: Unpack[WireSettings],
    ) -> None:
        super().__init__(session, NAME, pacer=results_pacer, poll_every=poll_every, **wire)
        base = base_url.rstrip("/")
        self._batch_url = base + "/api/v1/batch"
        self._credits_url = base + "/api/v1/credits"
        self._headers = {"X-API-Key": api_key.reveal(), "Accept": "application/json"}
        self._upload_pacer = upload_pacer
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"ListCleanserBatch({self._batch_url!r}, api_key=********)"

    async def upload(self, emails: Sequence[str], *, reference: str) -> str:
        """One list of at most 50,000 addresses; its id. (ListCleanser takes no reference.)"""
        if not 0 < len(emails) <= MAX_UPLOAD:
            raise ValueError(f"{NAME}: an upload holds 1..{MAX_UPLOAD} addresses")
        return await self.wire.call(
            "POST", self._batch_url, _read_upload, pacer=self._upload_pacer, transfer=True,
            json={"emails": list(emails)}, headers=self._headers,
        )  # fmt: skip

    async def poll(self, list_id: str) -> BulkStatus:
        """Processing (with progress), completed, or ListFailed."""

        def read(answer: Answer) -> BulkStatus:
            body = _batch_body(answer, list_id)
            state = body.get("state")
            if isinstance(state, str) and state.lower() in ENDED:
                message = body.get("message") or body.get("error") or state
                raise ListFailed(f"{NAME}: list {list_id} ended {state}: {str(message)[:200]}")
            if isinstance(body.get("data"), list) and state in (None, "processed", "completed"):
                return BulkStatus(BulkState.DONE, 1.0, 0.0)
            if state is None:
                raise BadResponse(f"{NAME}: batch answer with neither state nor data")
            progress = body.get("progress", 0)
            if isinstance(progress, bool) or not isinstance(progress, int | float):
                progress = 0
            return BulkStatus(BulkState.WORKING, min(1.0, max(0.0, progress / 100)))

        status = await self._page(list_id, 1, 1, read)
        if status.state is BulkState.DONE:
            return self.done(list_id)
        return self.working(list_id, status.progress)

    async def fetch(self, list_id: str) -> AsyncIterator[tuple[str, Verdict]]:
        """Every record, page by page; a record that does not map is left out (and logged)."""
        page, pages, skipped = 1, 1, 0

        def read(answer: Answer) -> tuple[list[Any], int]:
            body = _batch_body(answer, list_id)
            records = body["data"]
            if not isinstance(records, list):
                raise BadResponse(f"{NAME}: result page without a data list")
            total = body.get("total_pages", page)
            return records, total if isinstance(total, int) and not isinstance(total, bool) else 0

        while page <= pages:
            records, pages = await self._page(list_id, page, self.page_size, read)
            for record in records:
                pair = _record(record)
                if pair is None:
                    skipped += 1
                    continue
                yield pair
            page += 1
        if skipped:
            log.warning(
                "bulk results left out: records not as documented",
                extra={"event": "bulk_records_skipped", "provider": NAME, "count": skipped},
            )

    async def delete(self, list_id: str) -> None:
        """ListCleanser documents no way to delete a list: nothing to do."""

    async def credits(self) -> int | None:
        """`GET /api/v1/credits`: `{"success": true, "data": int}` (not paced: called rarely)."""
        return await self.counted(await self.wire.call(
            "GET", self._credits_url, _read_credits, paced=False, headers=self._headers
        ))  # fmt: skip

    async def _page(self, list_id: str, page: int, per_page: int, read: Callable[[Answer], T]) -> T:
        url = f"{self._batch_url}/{path_id(NAME, list_id)}"
        return await self.wire.call(
            "GET", url, read, params={"page": str(page), "per_page": str(per_page)},
            headers=self._headers, hand_back=(404,),
        )  # fmt: skip


def _batch_body(answer: Answer, list_id: str) -> dict[str, Any]:
    if answer.status == 404:
        raise ListFailed(f"{NAME}: list {list_id} is not known to the provider (404)")
    body = answer.json(NAME)
    if not isinstance(body, dict):
        raise BadResponse(f"{NAME}: batch answer is not a JSON object")
    return body


def _read_upload(answer: Answer) -> str:
    list_id = answer.json(NAME)["data"]["id"]
    if isinstance(list_id, bool) or not isinstance(list_id, int | str) or list_id == "":
        raise BadResponse(f"{NAME}: upload answer has no list id")
    return str(list_id)


def _read_credits(answer: Answer) -> int:
    credits = answer.json(NAME)["data"]
    if isinstance(credits, bool) or not isinstance(credits, int):
        raise BadResponse(f"{NAME}: credits answer has no integer data")
    return max(0, credits)


def _record(record: Any) -> tuple[str, Verdict] | None:
    """(address, verdict) of one `{"id", "email": {...}}`, or None when it does not map."""
    if not isinstance(record, dict) or not isinstance(record.get("email"), dict):
        return None
    data = record["email"]
    email = data.get("email_address")
    if not isinstance(email, str) or not email:
        return None
    try:
        return email, parse_verdict({"success": True, "data": data})
    except ProviderError:
        return None
