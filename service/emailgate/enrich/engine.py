"""Enrich a list of contacts: split into requests of at most 250, submit, poll each workflow
until it ends, then verify every found email with the verify pipeline.

    for each chunk without a workflow:  `ledger.submitting(chunk)` → submit → workflow id
                                        → `ledger.submitted(chunk)`
    until every chunk has ended:        poll the chunk due first (every `poll_every` seconds)
    for each ended chunk:               verify found emails → rows → `ledger.finished(chunk, rows)`

The ledger is the job store's seam: a workflow id is stored before the engine waits on it, so
a restarted job polls the workflow instead of submitting (and paying for) the contacts again.
Every request goes through the client's fixed-window pacer. Polls are few: workflows submitted
together end together, so while the oldest one is still working the later ones are not asked;
once it ends after D seconds, each later one is asked D seconds after its own submission (at
once for those sent with it), the due ones together. A job of N requests of 250 then costs
about N submissions, N final polls and the oldest one's waiting, and its workflows' results
are read, and their emails verified, as they end rather than one after another.

What is retried: a 429 (after the pause its Retry-After set) and a 5xx, always; a status poll
after any transient failure (polls are free and idempotent). A submission that may have reached
the provider without an answer (timeout, dropped connection, junk) is not sent again: its
contacts end `failed` rather than risk paying twice. No credits or a refused key stop the
submissions (the rest of the contacts fail unsent); the workflows already sent are still polled,
since they are paid for, and then the job fails. A webhook from the provider (`wake`) makes a
workflow due at once; polling stays the fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from emailgate.clock import Clock, monotonic
from emailgate.enrich.cleanlist import (
    MAX_CONTACTS,
    Contact,
    RequestRejected,
    ServerError,
    Submission,
    TaskResult,
    TaskState,
    WorkflowState,
    WorkflowStatus,
)
from emailgate.metrics import EnrichMetrics
from emailgate.providers.errors import NoCredits, ProviderError, RateLimited, Unauthorized
from emailgate.verify.pipeline import CheckResult

log = logging.getLogger("emailgate.enrich")

POLL_EVERY = 5.0  # seconds between two polls of one workflow (the provider's own advice: 5–10)
FIRST_POLL = 3.0  # seconds after a submission before its first poll
HOLD_BACK = 6  # polls of a working workflow during which the ones submitted after it wait
CONCURRENCY = 8  # requests on their way at once (the window's pacer spaces them)
POLL_RETRIES = 10  # transient failures in a row before a workflow is given up
SUBMIT_RETRIES = 5  # 429s and 5xx in a row before a submission is given up
BACKOFF = 2.0  # seconds, doubled per failure in a row, at most MAX_BACKOFF
MAX_BACKOFF = 60.0
VERIFY_CONCURRENCY = 16  # found emails checked at once (cache, DNS, providers within their pacing)

Sleep = Callable[[float], Awaitable[None]]


class EnrichSource(Protocol):
    """Where contacts are enriched: Cleanlist.ai's client, or the sandbox of test keys."""

    name: str

    async def submit(self, contacts: Sequence[Contact], enrichment_type: str) -> Submission:
        """Start one workflow of at most 250 contacts."""
        ...

    async def status(self, workflow_id: str) -> WorkflowStatus:
        """Poll a workflow once."""
        ...


class EmailChecker(Protocol):
    """The verify pipeline as the engine uses it (`Verifier.check`)."""

    async def check(
        self, raw: str, context: str = "signup", *, use_providers: bool = True,
        sandbox: bool = False, background: bool = False,
    ) -> CheckResult:  # fmt: skip
        """One address's RESULT for `context` (`background`: providers only in slots that
        interactive checks leave unused)."""
        ...


class JobFailed(Exception):
    """The whole job cannot go on (no credits, key refused); the message says why."""


@dataclass(eq=False)
class Chunk:
    """At most 250 consecutive contacts of a job, and the workflow they went into."""

    number: int
    start: int
    """Index of the chunk's first contact in the job."""
    contacts: list[Contact]
    workflow_id: str | None = None
    task_ids: tuple[str, ...] = ()
    done: bool = False
    next_poll: float = 0.0
    failures: int = 0
    submitted_at: float = 0.0
    """When it was submitted (or, resumed, first seen by this engine)."""
    held_by: Chunk | None = None
    """The oldest working workflow, while this one waits for it to end before being asked."""
    working: int = 0
    """Polls that found the workflow still working."""

    @property
    def held(self) -> bool:
        """Not asked yet: the workflow it waits on has not ended."""
        return self.held_by is not None and not self.held_by.done


@dataclass(frozen=True, slots=True)
class Row:
    """One contact's outcome: what was found, and the verify RESULT of a found email."""

    index: int
    status: str
    """`found` (an email or a phone), `not_found` or `failed`."""
    email: str | None = None
    email_status: str | None = None
    phones: tuple[str, ...] = ()
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def rejected(self) -> bool:
        """A found email that the verify pipeline rejects: marked, never passed off as good."""
        return self.result is not None and self.result.get("decision") == "reject"

    def to_json(self, contact: Contact) -> dict[str, Any]:
        """The contact as given, then what enrichment found and what emailgate says of it."""
        return {
            "index": self.index,
            "contact": contact.to_json(),
            "status": self.status,
            "email": self.email,
            "email_rejected": self.rejected,
            "provider_email_status": self.email_status,
            "phones": list(self.phones),
            "result": self.result,
            "error": self.error,
        }


class Ledger(Protocol):
    """What the engine records as it goes (the job store's seam)."""

    async def submitting(self, chunk: Chunk) -> None:
        """The chunk is about to be sent: once recorded, it is never sent again (a crash
        before its workflow id is stored fails its contacts rather than risk paying twice).
        May raise to stop the engine before anything more is sent."""
        ...

    async def submitted(self, chunk: Chunk) -> None:
        """The chunk's workflow id and task ids: stored before the engine waits on them."""
        ...

    async def finished(self, chunk: Chunk, rows: list[Row]) -> None:
        """The chunk's rows, every found email verified."""
        ...


def split(contacts: Sequence[Contact], size: int = MAX_CONTACTS) -> list[Chunk]:
    """Consecutive chunks of at most `size` contacts."""
    return [
        Chunk(number=n, start=start, contacts=list(contacts[start : start + size]))
        for n, start in enumerate(range(0, len(contacts), size))
    ]


@dataclass
class Enricher:
    """Runs one job's chunks to the end through a source, a checker and a ledger."""

    source: EnrichSource
    checker: EmailChecker
    metrics: EnrichMetrics
    context: str = "marketing"
    use_providers: bool = True
    sandbox: bool = False
    poll_every: float = POLL_EVERY
    first_poll: float = FIRST_POLL
    background: bool = True
    """Found emails are checked in the providers' spare slots: signups go first."""
    concurrency: int = CONCURRENCY
    """Requests on their way at once (1: one after another, as on a test's fake clock)."""
    clock: Clock = monotonic
    sleep: Sleep = asyncio.sleep
    _verifying: set[asyncio.Task[None]] = field(default_factory=set)
    _failure: str | None = None
    """Why nothing more can be sent (no credits, key refused); the job fails at the end."""
    _chunks: dict[str, Chunk] = field(default_factory=dict)
    _woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self, workflow_id: str) -> bool:
        """The provider says this workflow ended (its webhook): poll it now. False when the
        workflow is not one this engine waits on."""
        chunk = self._chunks.get(workflow_id)
        if chunk is None or chunk.done:
            return False
        chunk.next_poll = min(chunk.next_poll, self.clock())
        chunk.working = 0
        self._woken.set()
        return True

    async def _nap(self, seconds: float) -> None:
        """Sleep until the next poll is due, or until a webhook wakes a workflow."""
        if self._woken.is_set():
            self._woken.clear()
            return
        nap = asyncio.ensure_future(self.sleep(seconds))
        woken = asyncio.ensure_future(self._woken.wait())
        try:
            done, _ = await asyncio.wait({nap, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            woken.cancel()
        if nap in done:
            nap.result()  # what the sleep raised (a worker handing the job back) goes on up
        self._woken.clear()

    async def run(self, chunks: Sequence[Chunk], enrichment_type: str, ledger: Ledger) -> None:
        """Every chunk to the end; JobFailed when the job cannot go on."""
        limit = asyncio.Semaphore(VERIFY_CONCURRENCY)
        try:
            pending = [c for c in chunks if not c.done]
            gate = asyncio.Semaphore(self.concurrency)

            async def start(chunk: Chunk) -> None:
                async with gate:
                    if chunk.workflow_id is None:
                        if self._failure is not None:
                            self._fail_chunk(chunk, f"not sent: {self._failure}", ledger, limit)
                            return
                        await self._submit(chunk, enrichment_type, ledger, limit)
                    chunk.submitted_at = self.clock()
                    chunk.next_poll = chunk.submitted_at + self.first_poll
                    if chunk.workflow_id is not None:
                        self._chunks[chunk.workflow_id] = chunk

            # Sent together (the window's pacer spaces them); a failure (a worker handing the
            # job back) is raised once the requests already on their way have their answers
            # stored, so none of them is left `sending`.
            started = await asyncio.gather(*(start(c) for c in pending), return_exceptions=True)
            for outcome in started:
                if isinstance(outcome, BaseException):
                    raise outcome
            pending = [c for c in pending if not c.done]
            for c in pending[1:]:
                c.held_by = pending[0]  # until the oldest has told how long a workflow takes
            while pending:
                now = self.clock()
                due = sorted((c for c in pending if c.next_poll <= now and not c.held),
                             key=lambda c: c.number)  # fmt: skip
                if not due:
                    await self._nap(min(c.next_poll for c in pending if not c.held) - now)
                    continue  # a webhook may have made another workflow due first
                # The due workflows are asked together: the window's pacer spaces the requests,
                # and workflows that ended together are read (and verified) together.
                due = due[: self.concurrency]
                statuses = await asyncio.gather(*(self._poll(c) for c in due))
                for chunk, status in zip(due, statuses, strict=True):
                    if status is not None and chunk in pending:
                        self._after_poll(chunk, status, pending, ledger, limit)
            await self._drain()
        finally:
            for task in self._verifying:
                task.cancel()
            self._chunks.clear()
        if self._failure is not None:
            raise JobFailed(self._failure)

    def _after_poll(
        self,
        chunk: Chunk,
        status: WorkflowStatus,
        pending: list[Chunk],
        ledger: Ledger,
        limit: asyncio.Semaphore,
    ) -> None:
        held = [c for c in pending if c.held_by is chunk]
        if status.state is WorkflowState.WORKING:
            chunk.working += 1
            if chunk.working > HOLD_BACK:
                # Slow, or stuck: the others are asked on their own cadence from now on.
                for c in held:
                    c.held_by = None
                    c.next_poll = max(c.next_poll, chunk.next_poll)
            return
        pending.remove(chunk)
        self._start_finish(chunk, status, ledger, limit)
        # It took this long: the workflows sent after it are likely done that long after their
        # own submission, and are asked then (at once for those sent together with it).
        took = self.clock() - chunk.submitted_at
        for c in held:
            c.held_by = None
            c.next_poll = max(self.clock(), c.submitted_at + took)

    # -- submitting and polling --------------------------------------------------------------

    async def _submit(
        self, chunk: Chunk, enrichment_type: str, ledger: Ledger, limit: asyncio.Semaphore
    ) -> None:
        failures = 0
        await ledger.submitting(chunk)
        while True:
            try:
                sub = await self.source.submit(chunk.contacts, enrichment_type)
            except (NoCredits, Unauthorized) as e:
                # Nothing more is sent; the workflows already sent are still polled (they are
                # paid for), and the job fails once they end.
                self._failure = _why(e)
                self._fail_chunk(chunk, f"not sent: {self._failure}", ledger, limit)
                return
            except (RateLimited, ServerError) as e:
                failures += 1
                if failures > SUBMIT_RETRIES:
                    self._fail_chunk(chunk, _why(e), ledger, limit)
                    return
                if not isinstance(e, RateLimited):  # a 429 has paused the pacer already
                    await self.sleep(_backoff(failures))
                continue
            except RequestRejected as e:
                self._fail_chunk(chunk, _why(e), ledger, limit)
                return
            except ProviderError as e:
                # It may have reached the provider: sending it again could pay twice.
                self._fail_chunk(chunk, f"{_why(e)} (not sent again)", ledger, limit)
                return
            chunk.workflow_id, chunk.task_ids = sub.workflow_id, sub.task_ids
            await ledger.submitted(chunk)
            return

    async def _poll(self, chunk: Chunk) -> WorkflowStatus | None:
        assert chunk.workflow_id is not None
        try:
            status = await self.source.status(chunk.workflow_id)
        except Unauthorized as e:
            raise JobFailed(_why(e)) from None
        except RequestRejected as e:
            # The provider no longer knows the workflow: its contacts end failed.
            return WorkflowStatus(WorkflowState.FAILED, (), _why(e))
        except ProviderError as e:
            chunk.failures += 1
            if chunk.failures > POLL_RETRIES:
                return WorkflowStatus(WorkflowState.FAILED, (), _why(e))
            wait = 0.0 if isinstance(e, RateLimited) else _backoff(chunk.failures)
            chunk.next_poll = self.clock() + max(wait, 0.0)
            return None
        chunk.failures = 0
        chunk.next_poll = self.clock() + self.poll_every
        return status

    # -- results -------------------------------------------------------------------------------

    def _start_finish(
        self, chunk: Chunk, status: WorkflowStatus, ledger: Ledger, limit: asyncio.Semaphore
    ) -> None:
        task = asyncio.create_task(self._finish(chunk, status, ledger, limit))
        self._verifying.add(task)
        task.add_done_callback(self._verifying.discard)

    def _fail_chunk(self, chunk: Chunk, why: str, ledger: Ledger, limit: asyncio.Semaphore) -> None:
        chunk.done = True
        self._start_finish(chunk, WorkflowStatus(WorkflowState.FAILED, (), why), ledger, limit)

    async def _drain(self) -> None:
        while self._verifying:
            await asyncio.gather(*list(self._verifying))

    async def _finish(
        self, chunk: Chunk, status: WorkflowStatus, ledger: Ledger, limit: asyncio.Semaphore
    ) -> None:
        results = match(chunk, status)
        why = status.detail or ("workflow failed" if status.state is WorkflowState.FAILED
                                else "no result")  # fmt: skip

        async def row(i: int, task: TaskResult | None) -> Row:
            index = chunk.start + i
            if task is None or task.state is not TaskState.COMPLETED:
                failed = status.state is WorkflowState.FAILED or (
                    task is not None and task.state is TaskState.FAILED)  # fmt: skip
                if failed or task is None:
                    return Row(index, "failed", error=why if task is None else "task failed")
            assert task is not None
            result = None
            if task.email is not None:
                async with limit:
                    checked = await self.checker.check(
                        task.email, self.context, use_providers=self.use_providers,
                        sandbox=self.sandbox, background=self.background,
                    )  # fmt: skip
                result = checked.to_dict()
            found = task.email is not None or bool(task.phones)
            return Row(index, "found" if found else "not_found", task.email, task.email_status,
                       task.phones, result)  # fmt: skip

        rows = list(await asyncio.gather(*(row(i, t) for i, t in enumerate(results))))
        chunk.done = True
        self._count(rows)
        await ledger.finished(chunk, rows)

    def _count(self, rows: list[Row]) -> None:
        m = self.metrics
        for r in rows:
            m.contacts.labels(r.status).inc()
            if not self.sandbox and r.status == "found":
                if r.email is not None:
                    m.credits.labels("cleanlist", "email").inc()
                if r.phones:
                    m.credits.labels("cleanlist", "phone").inc(10 * len(r.phones))
            if r.result is not None:
                m.emails.labels(r.result["decision"], r.result["state"]).inc()


def match(chunk: Chunk, status: WorkflowStatus) -> list[TaskResult | None]:
    """Each contact's task result: by task id when the submission gave ids, else by position."""
    n = len(chunk.contacts)
    if chunk.task_ids:
        by_id = status.by_task()
        return [by_id.get(t) for t in chunk.task_ids]
    tasks: list[TaskResult | None] = list(status.tasks[:n])
    return tasks + [None] * (n - len(tasks))


def _backoff(failures: int) -> float:
    return min(MAX_BACKOFF, BACKOFF * 2.0 ** (failures - 1))


def _why(error: ProviderError) -> str:
    return str(error) or error.outcome
