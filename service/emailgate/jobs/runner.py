"""The worker: takes a job under a lease and works it stage by stage.

    free    cache · disposable · DNS once per domain (bounded concurrency) → answered for free
    paying  the bulk providers in order (upload · wait · fetch · delete), then the real-time
            chain's spare slots (a background lane: signups keep their reserve)
    done    processed; a webhook says so

Every stage is recorded in the store before the next, so a worker that dies is replaced by
another that resumes where it stood. An address is recorded as `sent` before any provider hears
of it, and a `sent` address is never sent again: after a crash it is answered from the cache,
or from the local checks, but never paid for twice. A bulk list's id is stored before the job
waits on it, and a resumed job polls that list instead of uploading again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from emailgate.bulk.base import BulkProvider, BulkState, ListFailed, find_list, paused_for
from emailgate.bulk.hooks import Wakeups, list_reference
from emailgate.bulk.wire import may_have_landed
from emailgate.jobs.giveway import give_way
from emailgate.jobs.lease import (
    HEARTBEAT,
    LEASE_TTL,
    Handback,
    LeasedRun,
    LeaseLost,
    LeaseWorker,
)
from emailgate.jobs.model import Job, JobStatus, Stage
from emailgate.jobs.store import Answer, JobStore, WorkAddress
from emailgate.metrics import Metrics
from emailgate.providers.errors import ProviderError
from emailgate.verify import local
from emailgate.verify.decision import decide
from emailgate.verify.mail import MailDomain, MailStatus
from emailgate.verify.pipeline import CheckResult, Verifier
from emailgate.verify.result import Address, Reason, Source, State, Verdict
from emailgate.verify.sandbox import sandbox_verdict
from emailgate.verify.seams import ChainOutcome
from emailgate.verify.syntax import InvalidAddress, parse_address

log = logging.getLogger("emailgate.jobs")

CHUNK = 200  # distinct addresses read, checked and written per step (the loop breathes between)
RESULTS_CHUNK = 2_000  # a bulk list's verdicts written per transaction (all at hand already)
DNS_CONCURRENCY = 16  # lookups in flight for one job
DNS_TIMEOUT = 5.0  # seconds per domain: a job has time, a signup does not
PROVIDER_TIMEOUT = 10.0  # seconds per real-time provider call for a job
SPARE_GROUP = 32  # real-time calls in flight for one job at most, recorded as sent together
NO_SLOT_WAIT = 0.05  # seconds before asking again for a spare slot
MAX_SLOT_WAIT = 1.0  # seconds: the longest wait between two asks when no slot comes
GIVE_UP_WAITING = 900.0  # seconds without any spare slot before the rest is answered locally
PROGRESS_EVERY = 10.0  # seconds between progress webhooks (contract: at most every 10 s)
PAID_SOURCES = frozenset({Source.LISTCLEANSER, Source.CLEANMYLIST})


@runtime_checkable
class SpareSource(Protocol):
    """What a job needs from the real-time chain: a verdict from a spare slot, or None when
    no provider was asked (implemented by `providers.chain.Chain`)."""

    async def verify_spare(self, address: Address, timeout: float) -> ChainOutcome | None: ...


@dataclass
class _Waiting:
    """Since when no spare slot came (None: one came lately)."""

    since: float | None = None

    def gave_up(self, now: float) -> bool:
        if self.since is None:
            self.since = now
            return False
        return now - self.since > GIVE_UP_WAITING


@dataclass
class _Run(LeasedRun):
    provider: str | None = None


class Runner(LeaseWorker[_Run]):
    """Works batch jobs from the store, one at a time, until stopped."""

    def __init__(
        self,
        store: JobStore,
        verifier: Verifier,
        *,
        metrics: Metrics,
        chain: SpareSource | None,
        bulk: Sequence[BulkProvider] = (),
        worker: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        lease_ttl: float = LEASE_TTL,
        heartbeat: float = HEARTBEAT,
        on_answers: Callable[[Job, Sequence[Answer]], None] | None = None,
        realtime_max: int = 0,
    ) -> None:
        super().__init__(store, worker=worker, sleep=sleep, clock=clock, lease_ttl=lease_ttl,
                         heartbeat=heartbeat)  # fmt: skip
        self.verifier = verifier
        self.metrics = metrics
        self.chain = chain
        self.bulk = list(bulk)
        self.on_answers = on_answers
        self.realtime_max = realtime_max
        """Jobs with at most this many billable addresses skip the bulk providers."""
        self.wakeups = Wakeups()
        """Webhooks received for the lists this worker waits on (http/listhooks.py)."""

    def _new_run(self, job: Job) -> _Run:
        return _Run(job, provider=job.provider)

    async def _work(self, run: _Run) -> None:
        job = run.job
        if job.stage is Stage.FREE:
            billable = await self._free(run)
            await self.store.set_stage(job.id, Stage.PAYING, billable=billable)
            if job.max_credits is not None and billable > job.max_credits:
                await self.store.set_status(
                    job.id,
                    JobStatus.WAITING_APPROVAL,
                    only_from=[JobStatus.PROCESSING],
                    release_from=self.worker,
                )
                return
        self._check(run)
        await self._pay(run)
        self._check(run)
        await self.store.set_status(
            job.id, JobStatus.PROCESSED, stage=Stage.DONE, only_from=[JobStatus.PROCESSING]
        )
        log.info("job processed", extra={"event": "job_processed", "job": job.id})

    # Free stages ------------------------------------------------------------------------------

    async def _free(self, run: _Run) -> int:
        """Answer what costs nothing; the number of addresses left to pay for."""
        job = run.job
        cache = self.verifier.cache
        while True:  # bad syntax first: answered as they are
            self._check(run)
            bad = await self.store.work(job.id, states=["pending"], invalid=True, limit=CHUNK)
            if not bad:
                break
            await self._store_answers(
                job, [self._answer(job, a, _invalid(), "invalid", cached=False) for a in bad]
            )
        after: tuple[str, int] = ("", 0)
        known: dict[str, MailDomain] = {}
        while True:
            self._check(run)
            await self._give_way()
            chunk = await self.store.work(job.id, states=["pending"], after=after, limit=CHUNK)
            if not chunk:
                break
            after = (chunk[-1].domain or "", chunk[-1].seq)
            answers: list[Answer] = []
            need_dns: list[tuple[WorkAddress, Address]] = []
            for item in chunk:
                address = _parse(item)
                if address is None:
                    answers.append(self._answer(job, item, _invalid(), "invalid", cached=False))
                    continue
                if job.sandbox:
                    answers.append(
                        self._answer(job, item, sandbox_verdict(address), "local", address=address)
                    )
                    continue
                hit = await cache.get(cache.key(address), budget=1.0)
                if hit is not None:
                    answers.append(self._answer(job, item, hit, "cached", address, cached=True))
                    continue
                facts = self.verifier.lists.facts(address.ascii_domain)
                if facts.disposable:
                    role = self.verifier.lists.is_role(address.user)
                    verdict = local.disposable_verdict(address, facts, role)
                    answers.append(self._answer(job, item, verdict, "local", address))
                    await cache.set(cache.key(address), verdict)
                    continue
                need_dns.append((item, address))
            # One lookup per distinct domain; a chunk ordered by domain carries its last one over.
            await self._resolve({a.ascii_domain for _, a in need_dns} - known.keys(), known)
            facts_out: list[tuple[int, str, str | None]] = []
            for item, address in need_dns:
                mail = known[address.ascii_domain]
                if mail.status.takes_mail or mail.status is MailStatus.ERROR:
                    facts_out.append((item.seq, mail.status.value, mail.mx))
                    continue
                facts = self.verifier.lists.facts(address.ascii_domain)
                role = self.verifier.lists.is_role(address.user)
                verdict = local.domain_verdict(address, facts, role, mail, Reason.UNKNOWN)
                answers.append(self._answer(job, item, verdict, "local", address))
                await cache.set(cache.key(address), verdict)
            last = chunk[-1].domain
            known = {last: known[last]} if last in known else {}
            await self.store.mark_dns(job.id, facts_out)
            await self._store_answers(job, answers)
        return await self.store.count(job.id, "pending")

    async def _resolve(self, domains: set[str], into: dict[str, MailDomain]) -> None:
        gate = asyncio.Semaphore(DNS_CONCURRENCY)
        resolver = self.verifier.resolver

        async def one(domain: str) -> None:
            async with gate:
                into[domain] = await resolver.lookup(domain, DNS_TIMEOUT)
                self.metrics.dns_lookups.labels(into[domain].status.value).inc()

        await asyncio.gather(*(one(d) for d in domains))

    # Paying -----------------------------------------------------------------------------------

    async def _pay(self, run: _Run) -> None:
        job = run.job
        await self._recover(run)
        pending = await self.store.count(job.id, "pending")
        # A small job is over sooner through the chain's spare slots than a bulk queue.
        small = self.chain is not None and pending <= self.realtime_max
        for provider in [] if small or job.sandbox else self.bulk:
            if await self.store.count(job.id, "pending") == 0:
                break
            if await paused_for(provider) > 0:
                # Paused after a 429, a 402 or a refused key (fleet-wide with Redis): next.
                log.info(
                    "bulk provider paused; the job moves on",
                    extra={"event": "bulk_skipped", "job": job.id, "provider": provider.name},
                )
                continue
            await self._bulk(run, provider)
        if self.chain is not None and not job.sandbox:
            await self._spare(run, self.chain)
        # What no provider could answer gets the local verdict (fail-open, as for signups).
        while True:
            self._check(run)
            chunk = await self.store.work(job.id, states=["pending"], limit=CHUNK)
            if not chunk:
                break
            why = (
                Reason.UNKNOWN
                if self.chain is None and not self.bulk
                else (Reason.UNAVAILABLE_PROVIDER)
            )
            await self._store_answers(job, [self._local_answer(job, a, why) for a in chunk])

    async def _recover(self, run: _Run) -> None:
        """After a crash: poll the lists that were uploaded; answer locally what was sent and
        whose answer was lost (from the cache if it got there). Nothing is sent again."""
        job = run.job
        at_provider: list[tuple[BulkProvider, int, str]] = []
        for lst in await self.store.lists(job.id):
            provider = next((p for p in self.bulk if p.name == lst.provider), None)
            if lst.status == "uploading" and lst.list_id is None and provider is not None:
                # The worker died during this upload: did the list reach the provider?
                found = await self._adopt(job, provider, lst.id)
                if found is None:
                    continue
                lst = dataclasses.replace(lst, status="uploaded", list_id=found)
            if lst.status == "uploaded" and lst.list_id is not None and provider is not None:
                at_provider.append((provider, lst.id, lst.list_id))
        await self._wait_all(run, at_provider)
        while True:
            self._check(run)
            lost = await self.store.work(job.id, states=["sent"], limit=CHUNK)
            if not lost:
                break
            answers = []
            cache = self.verifier.cache
            for item in lost:
                address = _parse(item)
                hit = None if address is None else await cache.get(cache.key(address), budget=1.0)
                if hit is not None and address is not None:
                    answers.append(self._answer(job, item, hit, "cached", address, cached=True))
                else:
                    answers.append(self._local_answer(job, item, Reason.TIMEOUT))
            await self._store_answers(job, answers)

    async def _bulk(self, run: _Run, provider: BulkProvider) -> None:
        """Upload every list, then wait on them all at once: the provider cleans them side by
        side, so a job of several lists takes about one list's time, not one per list. After
        a failure nothing more is uploaded; what the lists did not answer goes to the next."""
        job = run.job
        uploaded: list[tuple[BulkProvider, int, str]] = []
        while True:
            self._check(run)
            chunk = await self.store.work(job.id, states=["pending"], limit=provider.max_upload)
            if not chunk:
                break
            row = await self.store.new_list(job.id, provider.name)
            await self.store.mark_sent(job.id, [a.seq for a in chunk], row)
            try:
                list_id = await provider.upload(
                    [a.email for a in chunk], reference=_reference(job.id, row)
                )
            except ProviderError as e:
                if not may_have_landed(e):
                    await self._bulk_failed(job, provider, row, chunk, e)
                    break
                # No answer, or an unreadable one: the list may be at the provider anyway.
                found = await self._adopt(job, provider, row, e)
                if found is None:
                    break
                list_id = found
            await self.store.set_list(row, "uploaded", list_id)
            await self.store.set_provider(job.id, provider.name)
            uploaded.append((provider, row, list_id))
        await self._wait_all(run, uploaded)

    async def _wait_all(self, run: _Run, lists: Sequence[tuple[BulkProvider, int, str]]) -> None:
        """Poll, fetch and delete every list side by side (EmailConsul runs a list only when
        its poll sees pre-processing done: one at a time would clean them one after another).
        Stopping or losing the lease in one stops them all; the lists stay stored as uploaded."""
        if len(lists) == 1:
            await self._wait_and_fetch(run, *lists[0])
            return
        try:
            async with asyncio.TaskGroup() as group:
                for provider, row, list_id in lists:
                    group.create_task(self._wait_and_fetch(run, provider, row, list_id))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the job's loop knows Handback, LeaseLost

    async def _wait_and_fetch(
        self, run: _Run, provider: BulkProvider, row: int, list_id: str
    ) -> bool:
        """Poll until done, store every verdict, delete the list; False when it failed."""
        job = run.job
        while True:
            self._check(run)
            try:
                status = await provider.poll(list_id)
            except ListFailed as e:
                sent = await self.store.list_addresses(job.id, row)
                await self._bulk_failed(job, provider, row, sent, e)
                return False
            except ProviderError as e:  # the client counted and classified it; wait and ask again
                await self._pause(run, getattr(e, "retry_after", None) or 5.0)
                continue
            if status.state is BulkState.DONE:
                break
            await self._pause(run, status.wait, lambda: self.wakeups.take(provider.name, list_id))
        waiting = {a.email: a for a in await self.store.list_addresses(job.id, row)}
        answers: list[Answer] = []
        cache = self.verifier.cache
        try:
            async for email, verdict in provider.fetch(list_id):
                item = waiting.pop(email, None)
                if item is None:
                    continue
                address = _parse(item)
                if address is None:
                    continue
                answers.append(self._answer(job, item, verdict, "provider", address, paid=True))
                await cache.set(cache.key(address), verdict)
                if len(answers) >= RESULTS_CHUNK:
                    await self._store_answers(job, answers)
                    answers = []
        except ProviderError:
            # Results half read: what came is kept; the rest was paid for, never sent again.
            pass
        await self._store_answers(job, answers)
        await self._store_answers(
            job,
            [self._local_answer(job, a, Reason.UNAVAILABLE_PROVIDER) for a in waiting.values()],
        )
        await self.store.set_list(row, "stored")
        try:
            await provider.delete(list_id)
            await self.store.set_list(row, "deleted")
        except ProviderError:
            pass  # the provider keeps a list we no longer need; it costs nothing more
        return True

    async def _adopt(
        self, job: Job, provider: BulkProvider, row: int, error: ProviderError | None = None
    ) -> str | None:
        """An upload whose answer never came (`error`, or a crash): the provider's id of the
        list if it got there (found by its reference), else None with its addresses settled.

        A provider that can find lists (Listcleaner, EmailConsul) is asked; what it does not
        hold goes back to pending, for this provider or the next. One that cannot
        (ListCleanser) may hold the list: its addresses get the local verdict, never a second
        upload. The exposure is one list (`max_upload` addresses) per interrupted upload.
        """
        items = await self.store.list_addresses(job.id, row)
        reference = _reference(job.id, row)
        try:
            found = await find_list(provider, reference)
        except ProviderError:
            found = None  # cannot tell now: treated as "may be there", like ListCleanser
            can_tell = False
        else:
            can_tell = found is not None or hasattr(provider, "find_list")
        if found is not None:
            log.warning(
                "bulk upload answer lost; the list was found at the provider and adopted",
                extra={"event": "bulk_list_adopted", "job": job.id, "provider": provider.name},
            )
            return found
        if can_tell:
            # The provider holds no such list: nothing was paid, nothing is lost.
            await self.store.set_list(row, "failed")
            await self.store.unsend(job.id, [a.seq for a in items])
            if error is not None:
                log.warning(
                    "bulk upload failed; the job moves on",
                    extra={"event": "bulk_failed", "job": job.id, "provider": provider.name,
                           "outcome": error.outcome},
                )  # fmt: skip
            return None
        await self.store.set_list(row, "lost")
        await self._store_answers(
            job, [self._local_answer(job, a, Reason.UNAVAILABLE_PROVIDER) for a in items]
        )
        log.warning(
            "bulk upload interrupted and the provider cannot list its lists: its addresses "
            "get the local verdict, never a second upload",
            extra={"event": "bulk_upload_lost", "job": job.id, "provider": provider.name,
                   "addresses": len(items)},
        )  # fmt: skip
        return None

    async def _bulk_failed(
        self,
        job: Job,
        provider: BulkProvider,
        row: int,
        items: Sequence[WorkAddress],
        error: ProviderError,
    ) -> None:
        """The provider refused or failed the list: its addresses go to the next one."""
        await self.store.set_list(row, "failed")
        await self.store.unsend(job.id, [a.seq for a in items])
        log.warning(
            "bulk provider failed; the job moves on",
            extra={"event": "bulk_failed", "job": job.id, "provider": provider.name,
                   "outcome": error.outcome},
        )  # fmt: skip

    async def _spare(self, run: _Run, chain: SpareSource) -> None:
        """The real-time chain's spare slots, a group of calls at a time, until nothing is
        pending (or no slot came for GIVE_UP_WAITING seconds: the rest is answered locally).

        A group is recorded as sent in one transaction before any of its calls; the addresses
        no provider was asked about (no spare slot) go back to pending together."""
        job = run.job
        waiting = _Waiting()
        size = 2
        idle = NO_SLOT_WAIT
        while not waiting.gave_up(self.clock()):
            self._check(run)
            await self._give_way()
            # As many as the last round got slots for, and some: few slots, small groups.
            group = await self.store.work(job.id, states=["pending"], limit=size)
            if not group:
                return
            await self.store.mark_sent(job.id, [a.seq for a in group], None)
            outcomes = await asyncio.gather(*(self._ask(job, chain, item) for item in group))
            answers = [a for a in outcomes if a is not None]
            unasked = [item.seq for item, a in zip(group, outcomes, strict=True) if a is None]
            await self.store.unsend(job.id, unasked)
            await self._store_answers(job, answers)
            if answers:
                waiting.since = None
                if run.provider is None:
                    run.provider = self._provider_of(answers)
                    if run.provider is not None:
                        await self.store.set_provider(job.id, run.provider)
            size = max(2, min(SPARE_GROUP, 2 * len(answers)))
            if unasked:
                # No spare slot for some: wait a little longer each time none came at all.
                idle = NO_SLOT_WAIT if answers else min(MAX_SLOT_WAIT, idle * 2)
                await self.sleep(idle)

    @staticmethod
    def _provider_of(answers: Sequence[Answer]) -> str | None:
        return next((str(a.result["source"]) for a in answers if a.stage == "provider"), None)

    async def _ask(self, job: Job, chain: SpareSource, item: WorkAddress) -> Answer | None:
        """One address through the chain's spare slots; None when no provider was asked."""
        address = _parse(item)
        if address is None:
            return self._answer(job, item, _invalid(), "invalid", cached=False)
        outcome = await chain.verify_spare(address, PROVIDER_TIMEOUT)
        await self._give_way()  # the slot is spent; what is left is CPU work
        if outcome is None:
            return None
        if outcome.verdict is None:
            return self._local_answer(job, item, outcome.why_none)
        verdict = self._merge(address, item, outcome.verdict)
        cache = self.verifier.cache
        await cache.set(cache.key(address), verdict)
        return self._answer(
            job, item, verdict, "provider", address, paid=verdict.source in PAID_SOURCES
        )

    def _merge(self, address: Address, item: WorkAddress, v: Verdict) -> Verdict:
        facts = self.verifier.lists.facts(address.ascii_domain)
        return dataclasses.replace(
            v,
            free=v.free or facts.free,
            role=v.role or self.verifier.lists.is_role(address.user),
            did_you_mean=v.did_you_mean or local.suggestion(address, facts),
            mx_record=v.mx_record or item.mx,
        )

    async def _pause(
        self, run: _Run, seconds: float, woken: Callable[[], bool] = lambda: False
    ) -> None:
        """Wait between polls, but leave at once on shutdown, a lost lease or when `woken`
        (a provider's webhook came for the list)."""
        end = self.clock() + max(0.0, seconds)
        while self.clock() < end and not woken():
            self._check(run)
            await self.sleep(min(0.2, end - self.clock()))
        self._check(run)

    # Answers ----------------------------------------------------------------------------------

    def _local_answer(self, job: Job, item: WorkAddress, why: Reason) -> Answer:
        address = _parse(item)
        if address is None:
            return self._answer(job, item, _invalid(), "invalid", cached=False)
        facts = self.verifier.lists.facts(address.ascii_domain)
        role = self.verifier.lists.is_role(address.user)
        status = MailStatus(item.mail) if item.mail else MailStatus.ERROR
        mail = MailDomain(status, mx=item.mx)
        if why is Reason.TIMEOUT:
            verdict = local.timeout_verdict(address, facts, role)
        else:
            verdict = local.domain_verdict(address, facts, role, mail, why)
        return self._answer(job, item, verdict, "local", address)

    def _answer(
        self,
        job: Job,
        item: WorkAddress,
        verdict: Verdict,
        stage: str,
        address: Address | None = None,
        *,
        cached: bool = False,
        paid: bool = False,
    ) -> Answer:
        threshold = self.verifier.threshold(job.context)
        if address is None:
            user, _, domain = item.email.rpartition("@")
            email = item.email
        else:
            user, domain, email = address.user, address.domain, address.email
        result = CheckResult(
            email_address=email,
            user=user,
            domain=domain,
            verdict=verdict,
            decision=decide(verdict, threshold),
            context=job.context,
            threshold=threshold,
            cached=cached,
            duration=0.0,
        ).to_dict()
        return Answer(item.seq, stage, verdict.state.value, result, paid=paid)

    async def _give_way(self) -> None:
        """A step waits while interactive checks are answered on this loop (giveway.py)."""
        await give_way(lambda: self.verifier.interactive, self.sleep)

    async def _store_answers(self, job: Job, answers: Sequence[Answer]) -> None:
        if not answers:
            return
        await self._give_way()
        await self.store.answer(job.id, answers)
        for a in answers:
            self.metrics.job_addresses.labels(job.kind, a.stage).inc()
        if self.on_answers is not None:
            self.on_answers(job, answers)
        if job.callback_url is not None:
            await self.store.progress_note(job.id, PROGRESS_EVERY)


_reference = list_reference


def _parse(item: WorkAddress) -> Address | None:
    """The Address of a stored row. Ingest parsed it and stored its normalised form
    (`user@ascii-domain`) and ASCII domain: with no IDNA label in the domain the Unicode form
    is that same text, so the Address is rebuilt without the parser (tens of microseconds an
    address, twice per address for a 100,000-row job); an IDN domain is parsed again."""
    if item.domain is None:
        return None
    user, _, domain = item.email.rpartition("@")
    if domain == item.domain and user and "xn--" not in domain:
        return Address(email=item.email, user=user, domain=domain, ascii_domain=domain)
    try:
        return parse_address(item.email)
    except InvalidAddress:
        return None


def _invalid() -> Verdict:
    return Verdict(state=State.UNDELIVERABLE, reason=Reason.INVALID_EMAIL, score=0,
                   source=Source.LOCAL)  # fmt: skip


__all__ = ["Handback", "LeaseLost", "Runner", "SpareSource"]
