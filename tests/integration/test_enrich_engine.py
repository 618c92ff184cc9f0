"""The enrichment engine against the Cleanlist.ai fake and the real verify pipeline: chunks of
250, polling by workflow id, every found email verified, failures where they belong.

The fake, the pacer and the engine share one fake clock (their sleeps move it), so minutes of
fixed windows pass in milliseconds; DNS and the verify pipeline run for real on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emailgate.clock import FakeClock
from emailgate.config import Secret, Settings
from emailgate.enrich.cleanlist import CleanlistClient, Contact
from emailgate.enrich.engine import Chunk, Enricher, JobFailed, Row, split
from emailgate.enrich.sandbox import SandboxSource
from emailgate.metrics import EnrichMetrics, Metrics
from emailgate.pacing.window import LocalWindowPacer, WindowSpec
from emailgate.providers.http import make_session
from emailgate.rate import Rate
from emailgate.services import Services, open_services
from tests.fakes.cleanlist import BULK, STATUS, FakeCleanlist
from tests.fakes.dns_server import DNSServer

START = 1_800_000_010.0


class Ledger:
    """Records what the engine reports, as a job store would."""

    def __init__(self) -> None:
        self.submitted_ids: list[str] = []
        self.rows: dict[int, Row] = {}

    async def submitting(self, chunk: Chunk) -> None:
        pass

    async def submitted(self, chunk: Chunk) -> None:
        assert chunk.workflow_id is not None
        self.submitted_ids.append(chunk.workflow_id)

    async def finished(self, chunk: Chunk, rows: list[Row]) -> None:
        for row in rows:
            assert row.index not in self.rows, "a contact reported twice"
            self.rows[row.index] = row


@pytest.fixture
def clock() -> FakeClock:
    """The one wall clock of fake, pacer and engine."""
    return FakeClock(START)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeCleanlist]:
    """A Cleanlist fake on the test's clock."""
    async with FakeCleanlist(clock=clock) as f:
        yield f


@pytest.fixture
async def services(dns_server: DNSServer) -> AsyncIterator[Services]:
    """The real verify pipeline (local checks on our DNS server; no paid provider)."""
    settings = Settings.from_env({"EMAILGATE_DNS_SERVERS": dns_server.address})
    async with open_services(settings) as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The service's client session."""
    s = make_session()
    yield s
    await s.close()


def engine(fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock,
           services: Services, *, rate: Rate | None = None, context: str = "signup",
           metrics: EnrichMetrics | None = None) -> Enricher:  # fmt: skip
    """An engine whose client, pacer and polls all run on the fake clock."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    pacer = LocalWindowPacer(WindowSpec.for_rate(rate or Rate(60, 60.0)), clock=clock)
    client = CleanlistClient(session, fake.api_url, Secret(fake.api_key), pacer, sleep=sleep,
                             timeout=1.0)  # fmt: skip
    # One request at a time: sleeps move the one fake clock, so two sleepers would add up.
    return Enricher(client, services.verifier, metrics or Metrics().enrich,
                    context=context, clock=clock, sleep=sleep, concurrency=1)  # fmt: skip


def people(n: int, domain: str = "good.com") -> list[Contact]:
    """`n` ordinary contacts at `domain`."""
    return [Contact(first_name=f"P{i}", last_name="Smith", company_domain=domain) for i in range(n)]


async def test_600_contacts_in_three_requests_every_email_verified(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """250 + 250 + 100; each found email carries its RESULT; the rejected one is marked."""
    contacts = people(600)
    contacts[7] = Contact(first_name="Nobody", last_name="X", company_domain="good.com")
    contacts[300] = Contact(first_name="Failtask", last_name="Y", company_domain="good.com")
    contacts[450] = Contact(first_name="Gone", last_name="Away", company_domain="gone.com")
    contacts[599] = Contact(first_name="Temp", last_name="Mail", company_domain="mailinator.com")
    all_metrics = Metrics()
    registry = all_metrics.registry
    metrics = all_metrics.enrich
    ledger = Ledger()
    chunks = split(contacts)
    assert [len(c.contacts) for c in chunks] == [250, 250, 100]
    await engine(fake, session, clock, services, metrics=metrics).run(chunks, "partial", ledger)
    assert len(fake.calls.select(BULK)) == 3 and len(ledger.submitted_ids) == 3
    # Workflows end before the first poll: one poll each, nothing spent on "not yet".
    assert len(fake.calls.select(STATUS)) == 3
    assert sorted(ledger.rows) == list(range(600))
    ok = ledger.rows[0]
    assert ok.status == "found" and ok.email == "p0.smith@good.com"
    assert ok.result is not None and ok.result["email_address"] == "p0.smith@good.com"
    assert ok.result["decision"] == "accept" and not ok.rejected
    assert ledger.rows[7].status == "not_found" and ledger.rows[7].result is None
    assert ledger.rows[300].status == "failed" and ledger.rows[300].email is None
    gone, temp = ledger.rows[450], ledger.rows[599]
    assert gone.rejected and gone.result is not None and gone.result["reason"] == "invalid_domain"
    assert temp.rejected and temp.result is not None and temp.result["disposable"] is True
    assert gone.to_json(contacts[450])["email_rejected"] is True

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("emailgate_enrich_contacts_total", outcome="found") == 598
    assert sample("emailgate_enrich_contacts_total", outcome="not_found") == 1
    assert sample("emailgate_enrich_contacts_total", outcome="failed") == 1
    assert sample("emailgate_enrich_credits_spent_total", provider="cleanlist", kind="email") == 598
    assert sample("emailgate_enrich_emails_total", decision="reject", state="undeliverable") == 1
    assert sample("emailgate_enrich_emails_total", decision="reject", state="risky") == 1
    assert fake.rate_limited() == 0


async def test_a_tight_window_is_kept_and_the_job_still_ends(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """At 5 requests per window, 8 chunks and their polls never draw a 429 from the fake."""
    fake.configure(rate_limit=5, workflow_s=20.0)
    ledger = Ledger()
    e = engine(fake, session, clock, services, rate=Rate(5, 60.0))
    await e.run(split(people(2000)), "partial", ledger)
    assert len(ledger.rows) == 2000
    assert fake.rate_limited() == 0 and fake.max_in_fixed_window() == 5
    # While the oldest workflow works, the later ones are not asked: few polls beyond one each.
    assert 8 <= len(fake.calls.select(STATUS)) <= 8 + 20 / 5 + 1


async def test_a_restarted_job_polls_its_workflow_instead_of_submitting_again(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """A chunk whose workflow id was stored is polled, never submitted (or paid) twice."""
    e = engine(fake, session, clock, services)
    first = split(people(300))
    ledger = Ledger()
    await e.run(first[:1], "partial", ledger)  # chunk 0 ends; chunk 1 is "stored" below
    assert e.source is not None
    sub = await e.source.submit(first[1].contacts, "partial")
    bulk_calls = len(fake.calls.select(BULK))
    again = split(people(300))
    again[0].done = True
    again[1].workflow_id, again[1].task_ids = sub.workflow_id, sub.task_ids
    await e.run(again, "partial", ledger)
    assert len(fake.calls.select(BULK)) == bulk_calls
    assert sorted(ledger.rows) == list(range(300))


async def test_no_credits_fails_the_job(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """402 at submission: the job cannot go on, and says why."""
    fake.configure(credits=0)
    with pytest.raises(JobFailed, match="402"):
        await engine(fake, session, clock, services).run(split(people(3)), "partial", Ledger())


async def test_an_unanswered_submission_is_not_sent_again(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """A submission that timed out may have reached the provider: its contacts end failed rather
    than risk a second payment; the other chunks finish."""
    fake.hang(times=1)
    ledger = Ledger()
    await engine(fake, session, clock, services).run(split(people(300)), "partial", ledger)
    assert len(fake.calls.select(BULK)) == 2
    assert {ledger.rows[i].status for i in range(250)} == {"failed"}
    assert "not sent again" in (ledger.rows[0].error or "")
    assert {ledger.rows[i].status for i in range(250, 300)} == {"found"}


async def test_429s_and_5xx_are_retried(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """A 429 (someone else's burst) and a 503 at submission, a 500 on a poll: all retried."""
    fake.fail(429, retry_after=30)
    fake.fail(503)
    ledger = Ledger()
    e = engine(fake, session, clock, services)
    chunks = split(people(10))
    await e.run(chunks, "partial", ledger)
    assert [c.status for c in fake.calls.select(BULK)] == [429, 503, 200]
    assert len(ledger.rows) == 10 and {r.status for r in ledger.rows.values()} == {"found"}


async def test_a_failed_workflow_fails_its_contacts(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """A workflow that ends failed: each of its contacts is `failed`, none passed off as found."""
    contacts = [Contact(first_name="Failworkflow", last_name="Z", company_domain="good.com"),
                *people(3)]  # fmt: skip
    ledger = Ledger()
    await engine(fake, session, clock, services).run(split(contacts), "partial", ledger)
    assert {r.status for r in ledger.rows.values()} == {"failed"}


async def test_phones_for_full_enrichment(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, services: Services
) -> None:
    """`full` brings phone numbers; `phone_only` phones without an email (nothing to verify)."""
    ledger = Ledger()
    contacts = [*people(1), Contact(first_name="Nophone", last_name="Q", company_domain="good.com")]
    await engine(fake, session, clock, services).run(split(contacts), "full", ledger)
    assert len(ledger.rows[0].phones) == 1 and ledger.rows[1].phones == ()
    phone_only = Ledger()
    await engine(fake, session, clock, services).run(split(people(1)), "phone_only", phone_only)
    row = phone_only.rows[0]
    assert row.status == "found" and row.email is None and row.result is None and row.phones


async def test_the_sandbox_is_free_and_deterministic(services: Services) -> None:
    """Test keys: no provider, the verify sandbox's verdicts; `Undeliverable` is rejected."""
    contacts = [
        Contact(first_name="Deliverable", last_name="A", company_domain="anything.com"),
        Contact(first_name="Undeliverable", last_name="B", company_domain="anything.com"),
        Contact(first_name="Nobody", last_name="C", company_domain="anything.com"),
        Contact(first_name="Failtask", last_name="D", company_domain="anything.com"),
    ]
    results = []
    for _ in range(2):
        ledger = Ledger()
        e = Enricher(SandboxSource(), services.verifier, Metrics().enrich,
                     sandbox=True, use_providers=False, first_poll=0.0)  # fmt: skip
        await e.run(split(contacts), "full", ledger)
        rows = [ledger.rows[i].to_json(contacts[i]) for i in range(4)]
        for row in rows:
            if row["result"] is not None:
                row["result"].pop("duration")  # time taken: the one field that varies
        results.append(rows)
    assert results[0] == results[1]
    good, bad, nobody, failed = (ledger.rows[i] for i in range(4))
    assert good.result is not None and good.result["source"] == "sandbox" and not good.rejected
    assert bad.rejected and bad.email == "undeliverable.b@anything.com"
    assert nobody.status == "not_found" and failed.status == "failed"
    assert good.phones and list(good.phones) == results[0][0]["phones"]
