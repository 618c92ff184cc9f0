"""Listcleaner: `/upload_list`, `/show_lists`, `/download_list`, `/delete_list`, `/get_credits`.

Every call carries `X-User-Email` and `X-Api-Key`. The upload is a CSV with a header row
(`email`), `mapping` = that column's name, `reference` = ours; the list is ready when
`show_lists?uid=` says `current_status: done`; `download_list?uid=&export_type=all` is the CSV
we sent plus a `reason` column (a 404 there means not ready yet); `delete_list` once the
results are stored.

Listcleaner gives one `reason` per address and no score, so RESULT comes from a stated rule
(`REASONS`; docs/bulk-providers.md has the same table):

| reason              | state         | reason             | score | flags              |
|---------------------|---------------|--------------------|-------|--------------------|
| `ok`                | deliverable   | accepted_email     | 90    | accept_all false   |
| `catch_all`         | risky         | low_deliverability | 60    | accept_all         |
| `spamtrap`          | risky         | low_quality        | 0     | possible_spamtrap  |
| `blacklisted_email` | risky         | low_quality        | 10    |                    |
| `disposable_domain` | risky         | low_quality        | 10    | disposable         |
| `account_inactive`  | undeliverable | rejected_email     | 5     |                    |
| `syntax_error`      | undeliverable | invalid_email      | 0     |                    |
| `invalid_mx`        | undeliverable | invalid_domain     | 0     |                    |
| `mx_server_offline` | risky         | low_deliverability | 20    |                    |
| `mx_server_error`   | risky         | low_deliverability | 20    |                    |
| anything else       | unknown       | unknown            | 30    |                    |

Why: the scores follow the real-time providers' (deliverable 90, catch-all 60 like
ListCleanser's accept-all records, traps and blacklists far below both thresholds) so a
Listcleaner verdict decides like theirs at `signup` (30) and `marketing` (50). A mail server
that is offline or erring is a fact about today, not a refused mailbox: risky and below both
thresholds (Listcleaner counts it as bad), never `undeliverable`. A reason we do not know
fails open like an `unknown` from the real-time chain (score 30, the signup threshold).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Unpack

import aiohttp

from emailgate.bulk.base import BulkState, BulkStatus, ListFailed
from emailgate.bulk.client import BulkClient, WireSettings
from emailgate.bulk.csvrows import email_csv, read_rows
from emailgate.bulk.wire import Answer, NotReady, path_id
from emailgate.config import Secret
from emailgate.pacing.base import Pacer
from emailgate.providers.errors import BadResponse, ProviderUnavailable
from emailgate.providers.http import whole_number
from emailgate.verify import local
from emailgate.verify.result import Reason, Source, State, Verdict

log = logging.getLogger("emailgate.bulk")

NAME = Source.LISTCLEANER.value
MAX_UPLOAD = 50_000  # our choice (no documented limit): one list = one ~1.5 MB CSV
POLL_EVERY = 15.0  # seconds between show_lists calls at most (PollPlan: sooner near the end)
NOT_READY_WAIT = 10.0  # seconds between downloads answered 404 after `done`
NOT_READY_TRIES = 30  # then the download is given up as unavailable (5 minutes)
MAPPING = "email"
FAILED = ("failed", "error", "cancelled", "canceled", "deleted")

REASONS: dict[str, Verdict] = {
    "ok": Verdict(State.DELIVERABLE, Reason.ACCEPTED_EMAIL, 90, Source.LISTCLEANER,
                  accept_all=False),
    "catch_all": Verdict(State.RISKY, Reason.LOW_DELIVERABILITY, 60, Source.LISTCLEANER,
                         accept_all=True),
    "spamtrap": Verdict(State.RISKY, Reason.LOW_QUALITY, 0, Source.LISTCLEANER,
                        possible_spamtrap=True),
    "blacklisted_email": Verdict(State.RISKY, Reason.LOW_QUALITY, 10, Source.LISTCLEANER),
    "disposable_domain": Verdict(State.RISKY, Reason.LOW_QUALITY, 10, Source.LISTCLEANER,
                                 disposable=True),
    "account_inactive": Verdict(State.UNDELIVERABLE, Reason.REJECTED_EMAIL, 5,
                                Source.LISTCLEANER),
    "syntax_error": Verdict(State.UNDELIVERABLE, Reason.INVALID_EMAIL, 0, Source.LISTCLEANER),
    "invalid_mx": Verdict(State.UNDELIVERABLE, Reason.INVALID_DOMAIN, 0, Source.LISTCLEANER),
    "mx_server_offline": Verdict(State.RISKY, Reason.LOW_DELIVERABILITY, 20,
                                 Source.LISTCLEANER),
    "mx_server_error": Verdict(State.RISKY, Reason.LOW_DELIVERABILITY, 20, Source.LISTCLEANER),
}  # fmt: skip
UNKNOWN = Verdict(State.UNKNOWN, Reason.UNKNOWN, local.FAIL_OPEN_FLOOR, Source.LISTCLEANER)


def verdict_for(reason: str) -> Verdict:
    """RESULT of one `reason` value, by the table above (case and spaces forgiven)."""
    return REASONS.get(reason.strip().lower(), UNKNOWN)


class Listcleaner(BulkClient):
    """Client of Listcleaner's list-cleaning API (implements `BulkProvider`)."""

    name = NAME
    max_upload = MAX_UPLOAD

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        user_email: Secret,
        api_key: Secret,
        *,
        pacer: Pacer,
        poll_every: float = POLL_EVERY,
        not_ready_wait: float = NOT_READY_WAIT,
        not_ready_tries: int = NOT_READY_TRIES,
        **wire: Unpack[WireSettings],
    ) -> None:
        super().__init__(session, NAME, pacer=pacer, poll_every=poll_every, **wire)
        self._base = base_url.rstrip("/")
        self._headers = {
            "X-User-Email": user_email.reveal(),
            "X-Api-Key": api_key.reveal(),
            "Accept": "application/json",
        }
        self.not_ready_wait = not_ready_wait
        self.not_ready_tries = not_ready_tries

    def __repr__(self) -> str:
        return f"Listcleaner({self._base!r}, user_email=********, api_key=********)"

    async def upload(self, emails: Sequence[str], *, reference: str) -> str:
        """`POST /upload_list` (multipart: file, mapping, reference); the list's `uid`."""
        if not 0 < len(emails) <= MAX_UPLOAD:
            raise ValueError(f"{NAME}: an upload holds 1..{MAX_UPLOAD} addresses")
        form = aiohttp.FormData()
        form.add_field("file", email_csv(emails, MAPPING), filename="emails.csv",
                       content_type="text/csv")  # fmt: skip
        form.add_field("mapping", MAPPING)
        form.add_field("reference", reference)
        return await self.wire.call(
            "POST", self._base + "/upload_list", _read_upload, transfer=True, data=form,
            headers=self._headers,
        )  # fmt: skip

    async def poll(self, list_id: str) -> BulkStatus:
        """`GET /show_lists?uid=`: done, working (with progress), or ListFailed."""

        def read(answer: Answer) -> BulkStatus:
            if answer.status == 404:
                raise ListFailed(f"{NAME}: list {list_id} is not known to the provider (404)")
            lists = answer.json(NAME)["lists"]
            if not isinstance(lists, list):
                raise BadResponse(f"{NAME}: show_lists answer has no lists")
            entry = next((e for e in lists if isinstance(e, dict) and e.get("uid") == list_id),
                         None)  # fmt: skip
            if entry is None:
                raise ListFailed(f"{NAME}: list {list_id} is no longer at the provider")
            status = str(entry.get("current_status", "")).strip().lower()
            if status == "done":
                return BulkStatus(BulkState.DONE, 1.0, 0.0)
            if status in FAILED:
                raise ListFailed(f"{NAME}: list {list_id} ended {status}")
            total = _number(entry.get("records_total"))
            done = _number(entry.get("records_processed"))
            progress = min(1.0, done / total) if total else 0.0
            return BulkStatus(BulkState.WORKING, progress)

        status = await self.wire.call(
            "GET", self._base + "/show_lists", read, params={"uid": path_id(NAME, list_id)},
            headers=self._headers, hand_back=(404,),
        )  # fmt: skip
        if status.state is BulkState.DONE:
            return self.done(list_id)
        return self.working(list_id, status.progress)

    async def find_list(self, reference: str) -> str | None:
        """`GET /show_lists`: the newest list carrying `reference`, or None."""

        def read(answer: Answer) -> str | None:
            lists = answer.json(NAME)["lists"]
            if not isinstance(lists, list):
                raise BadResponse(f"{NAME}: show_lists answer has no lists")
            found = [e["uid"] for e in lists
                     if isinstance(e, dict) and e.get("reference") == reference
                     and isinstance(e.get("uid"), str) and e["uid"]]  # fmt: skip
            return found[-1] if found else None

        return await self.wire.call("GET", self._base + "/show_lists", read, headers=self._headers)

    async def fetch(self, list_id: str) -> AsyncIterator[tuple[str, Verdict]]:
        """`GET /download_list?uid=&export_type=all`, waiting out 404s (not ready yet)."""
        params = {"uid": path_id(NAME, list_id), "export_type": "all"}
        rows: list[dict[str, str]] | None = None
        for attempt in range(self.not_ready_tries):
            if attempt:
                await self.wire.sleep(self.not_ready_wait)
            try:
                rows = await self.wire.call(
                    "GET", self._base + "/download_list", _read_download, params=params,
                    transfer=True, headers={**self._headers, "Accept": "text/csv, */*"},
                    hand_back=(404,),
                )  # fmt: skip
            except NotReady:
                continue
            break
        if rows is None:
            raise ProviderUnavailable(
                f"{NAME}: results of {list_id} not ready after {self.not_ready_tries} downloads"
            )
        for row in rows:
            email = row[MAPPING].strip()
            if email:
                yield email, verdict_for(row["reason"])

    async def delete(self, list_id: str) -> None:
        """`POST /delete_list?uid=`; a list already gone (404) is deleted enough."""
        await self.wire.call(
            "POST", self._base + "/delete_list", _ignore, params={"uid": path_id(NAME, list_id)},
            headers=self._headers, hand_back=(404,),
        )  # fmt: skip

    async def credits(self) -> int | None:
        """`GET /get_credits` → `{"credits": int}` (not paced: called rarely)."""
        return await self.counted(await self.wire.call(
            "GET", self._base + "/get_credits", _read_credits, paced=False, headers=self._headers
        ))  # fmt: skip


def _read_upload(answer: Answer) -> str:
    uid = answer.json(NAME)["uid"]
    if not isinstance(uid, str) or not uid:
        raise BadResponse(f"{NAME}: upload answer has no uid")
    return uid


def _read_download(answer: Answer) -> list[dict[str, str]]:
    if answer.status == 404:
        raise NotReady(f"{NAME}: results not ready yet")
    return list(read_rows(answer.text(NAME), NAME, required=(MAPPING, "reason")))


def _read_credits(answer: Answer) -> int:
    credits = whole_number(answer.json(NAME)["credits"])
    if credits is None:
        raise BadResponse(f"{NAME}: credits answer has no integer credits")
    return max(0, credits)


def _ignore(answer: Answer) -> None:
    return None


def _number(value: Any) -> int:
    """Listcleaner sends counts as numbers or as strings of digits (`"436"`)."""
    number = whole_number(value)
    return 0 if number is None else number
