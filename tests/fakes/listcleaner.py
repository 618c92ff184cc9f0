"""A fake Listcleaner: `/get_credits`, `/upload_list`, `/show_lists`, `/download_list`,
`/delete_list`, as its document (`listcleaner-net-bulk-api.txt`) shows them.

Every call needs `X-User-Email` and `X-Api-Key` (401 otherwise, "check your username and API
key"). Errors are `{"message": ...}` (the document shows only status codes).

- `POST /upload_list` multipart: `file` (CSV with a header row), `mapping` (the email column's
  name), `reference`. 400 without a file or mapping, or when `mapping` is not a column. Spends
  one credit per data row (402 when the list needs more than are left: the document is
  silent, emailgate assumes 402). Answers `{"status": "File uploaded successfully", "uid",
  "records_total"}`.
- `GET /show_lists[?uid=]`: `{"lists": [...]}` with the document's fields; counts as strings
  where its example has strings; `current_status` `processing`, then `done` after
  `processing_s + per_1000_s` per 1,000 rows. A list told to fail (`fail_lists`) disappears
  half-way (Listcleaner documents no failed state: the list is simply gone).
- `GET /download_list?uid=&export_type=all|ok|bad`: the uploaded CSV with a `reason` column
  appended; 404 before `done` and for `download_lag_s` after it (not ready), or for an
  unknown uid; 400 without uid.
- `POST /delete_list?uid=`: `{"status": "List removed successfully"}`; 404 unknown uid.
- `GET /get_credits`: `{"credits": N}`.

`reason` per address: the fake's table (`set_answer(email, reason=...)`), else the local part
(after a fault marker) by prefix: a Listcleaner reason without underscores (`catchall…`,
`spamtrap…`, `blacklisted…`, `inactive…`, `syntax…`, `mxoffline…`, `invalidmx…`,
`disposable…`, `mxerror…`), else the shared verdict profiles (`undeliverable…`/`bounce…` →
account_inactive, `nodomain…`/`nomx…` → invalid_mx, `acceptall…` → catch_all, `abuse…`/
`spamreporter…` → blacklisted_email), an address without `@` → syntax_error, else `ok`.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.bulklists import FakeList, new_uid, processing_seconds
from tests.fakes.faults import split_marker
from tests.fakes.server import CALL, FakeConfig, FakeServer, json_response
from tests.fakes.server import with_settings as _with_settings
from tests.fakes.verdicts import split_address

UPLOAD = "/upload_list"
SHOW = "/show_lists"
DOWNLOAD = "/download_list"
DELETE = "/delete_list"
CREDITS = "/get_credits"

PREFIX_REASONS = (
    ("catchall", "catch_all"), ("spamtrap", "spamtrap"), ("blacklisted", "blacklisted_email"),
    ("inactive", "account_inactive"), ("syntax", "syntax_error"),
    ("mxoffline", "mx_server_offline"), ("invalidmx", "invalid_mx"),
    ("disposable", "disposable_domain"), ("mxerror", "mx_server_error"),
    ("undeliverable", "account_inactive"), ("bounce", "account_inactive"),
    ("nodomain", "invalid_mx"), ("nomx", "invalid_mx"), ("acceptall", "catch_all"),
    ("abuse", "blacklisted_email"), ("spamreporter", "blacklisted_email"),
)  # fmt: skip


@dataclass(slots=True)
class ListcleanerConfig(FakeConfig):
    """Listcleaner's settings; `credits` is the live balance."""

    api_key: str = "lcn-test-key"
    user_email: str = "owner@company.com"
    credits: int = 100_000
    processing_s: float = 0.3
    per_1000_s: float = 0.05
    download_lag_s: float = 0.0
    """After `done`, downloads still answer 404 (not ready) for this long."""
    fail_lists: int = 0
    """The next this-many uploaded lists vanish half-way through."""
    lose_upload_answers: int = 0
    """The next this-many uploads are stored, then their connection is reset before the
    answer (the provider has the list; the client never learns its id)."""
    upload_answer_delay_s: float = 0.0
    """Seconds an upload's answer waits after the list is stored (a client killed meanwhile
    never learns the uid)."""
    download_without_reason: bool = False
    """Downloads leave the `reason` column out (a file not as documented)."""


class FakeListcleaner(FakeServer[ListcleanerConfig]):
    """Listcleaner's list-cleaning API on a local port."""

    provider = "listcleaner"

    def __init__(
        self,
        config: ListcleanerConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> None:
        self.lists: dict[str, FakeList] = {}
        self.deleted: list[str] = []
        super().__init__(
            _with_settings(config or ListcleanerConfig(), settings), host=host, port=port
        )

    @property
    def credits(self) -> int:
        """Credits left."""
        return self.config.credits

    def uploads(self) -> list[Any]:
        """Upload calls that arrived (answered or not)."""
        return self.calls.select(UPLOAD)

    def _reset_state(self) -> None:
        self.lists.clear()
        self.deleted.clear()

    def _add_api_routes(self, app: web.Application) -> None:
        app.router.add_post(UPLOAD, self._upload)
        app.router.add_get(SHOW, self._show, allow_head=False)
        app.router.add_get(DOWNLOAD, self._download, allow_head=False)
        app.router.add_post(DELETE, self._delete)
        app.router.add_get(CREDITS, self._credits, allow_head=False)

    def reason_for(self, email: str) -> str:
        """The `reason` this fake gives `email` (see the module docstring)."""
        row = self.answers.get(email.strip().lower())
        if row is not None and "reason" in row:
            return str(row["reason"])
        parts = split_address(email)
        if parts is None:
            return "syntax_error"
        local = split_marker(parts[0])[1].lower()
        for prefix, reason in PREFIX_REASONS:
            if local.startswith(prefix):
                return reason
        return "ok"

    async def _gate(self, request: web.Request) -> web.StreamResponse | None:
        """Faults and latency, then the key check; None when the call may go on."""
        fault, _ = self.take_fault(None)
        early = await self.before_answer(request, fault, False)
        if early is not None:
            return early
        cfg = self.config
        if (
            request.headers.get("X-User-Email") != cfg.user_email
            or request.headers.get("X-Api-Key") != cfg.api_key
        ):
            return self.error_response(401, "Unauthorized (check your username and API key)")
        return None

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        call = request[CALL]
        fields: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and part.name:
                    fields[part.name] = (await part.read()).decode("utf-8", "replace")
        refused = await self._gate(request)
        if refused is not None:
            return refused
        file, mapping = fields.get("file"), fields.get("mapping", "").strip()
        if not file or not mapping:
            return self.error_response(400, "file and mapping are required")
        rows = list(csv.DictReader(io.StringIO(file)))
        columns = list(rows[0].keys()) if rows else next(csv.reader(io.StringIO(file)), [])
        if mapping not in columns:
            return self.error_response(400, f"mapping {mapping!r} is not a column")
        cfg = self.config
        if cfg.credits < len(rows):
            return self.error_response(402, "Not enough credits")
        cfg.credits -= len(rows)
        uid = new_uid()
        fails = None
        if cfg.fail_lists > 0:
            cfg.fail_lists -= 1
            fails = "vanished"
        self.lists[uid] = FakeList(
            id=uid, emails=[r.get(mapping) or "" for r in rows], rows=rows, columns=columns,
            reference=fields.get("reference", ""), started=call.mono, charged=len(rows),
            seconds=processing_seconds(len(rows), cfg.processing_s, cfg.per_1000_s), fails=fails,
            extra={"mapping": mapping},
        )  # fmt: skip
        lost = self.lose_answer(request)
        if lost is not None:
            return lost
        if cfg.upload_answer_delay_s > 0:
            await self._pause(cfg.upload_answer_delay_s)
        return json_response(
            {"status": "File uploaded successfully", "uid": uid, "records_total": len(rows)}
        )

    def _entry(self, item: FakeList) -> dict[str, Any]:
        done = item.done()
        processed = len(item.rows) if done else int(len(item.rows) * item.progress())
        reasons = [self.reason_for(e) for e in item.emails[:processed]]
        bad = [r for r in reasons if r != "ok"]
        breakdown: dict[str, int] = {}
        for reason in bad:
            breakdown[reason] = breakdown.get(reason, 0) + 1
        created = datetime.fromtimestamp(item.created_wall, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "uid": item.id,
            "created": created,
            "filename_original": "emails.csv",
            "reference": item.reference,
            "mapping": item.extra["mapping"],
            "records_total": len(item.rows),
            "records_processed": str(processed),
            "records_ok": str(processed - len(bad)),
            "records_bad": str(len(bad)),
            "records_bad_breakdown": json.dumps(breakdown),
            "paid": "paid",
            "current_step": "done" if done else "cleaning",
            "current_status": "done" if done else "processing",
            "last_status_update": created,
        }

    def _visible(self) -> list[FakeList]:
        return [item for item in self.lists.values() if not item.failed()]

    async def _show(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        uid = request.query.get("uid")
        items = [i for i in self._visible() if uid is None or i.id == uid]
        return json_response({"lists": [self._entry(i) for i in items]})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        uid = request.query.get("uid")
        if not uid:
            return self.error_response(400, "Missing UID")
        item = self.lists.get(uid)
        if item is None or item.failed():
            return self.error_response(404, "File not found")
        finished = item.finished_at()
        if not item.done() or time.monotonic() < (finished or 0) + self.config.download_lag_s:
            return self.error_response(404, "File not found or not ready for download")
        export = request.query.get("export_type", "all")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        tail = [] if self.config.download_without_reason else ["reason"]
        writer.writerow([*item.columns, *tail])
        for row, email in zip(item.rows, item.emails, strict=True):
            reason = self.reason_for(email)
            if (export == "ok" and reason != "ok") or (export == "bad" and reason == "ok"):
                continue
            cells = [row.get(c, "") for c in item.columns]
            writer.writerow([*cells, reason] if tail else cells)
        return web.Response(body=out.getvalue().encode(), content_type="text/csv")

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        uid = request.query.get("uid", "")
        if self.lists.pop(uid, None) is None:
            return self.error_response(404, "File not found")
        self.deleted.append(uid)
        return json_response({"status": "List removed successfully"})

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        return json_response({"credits": self.config.credits})

    def sample_body(self) -> dict[str, Any]:
        return {"status": "File uploaded successfully", "uid": "d53dec-bac2b5-34dfd1",
                "records_total": 28391}  # fmt: skip

    def wrong_shape_body(self) -> Any:
        return {"result": "ok", "items": []}
