"""The Cleanlist.ai client against the local fake that speaks its documented API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emailgate.clock import FakeClock
from emailgate.config import Secret
from emailgate.enrich.cleanlist import (
    CleanlistClient,
    Contact,
    RequestRejected,
    TaskState,
    WorkflowState,
)
from emailgate.pacing.window import LocalWindowPacer, WindowSpec
from emailgate.providers.errors import (
    BadResponse,
    NoCredits,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from emailgate.providers.http import make_session
from emailgate.rate import Rate
from tests.fakes.cleanlist import FakeCleanlist

START = 1_800_000_010.0  # 10 s into a clock minute


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The service's own client session."""
    s = make_session()
    yield s
    await s.close()


@pytest.fixture
def clock() -> FakeClock:
    """One wall clock for the fake's window, the pacer and the client's sleeps."""
    return FakeClock(START)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeCleanlist]:
    """A Cleanlist fake whose windows and workflows run on the test's clock."""
    async with FakeCleanlist(clock=clock) as f:
        yield f


def client_for(fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock, *,
               rate: Rate | None = None, key: str | None = None,
               timeout: float = 5.0) -> CleanlistClient:  # fmt: skip
    """A client paced by an in-process window; its sleeps move the fake clock."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    pacer = LocalWindowPacer(WindowSpec.for_rate(rate or Rate(60, 60.0)), clock=clock)
    return CleanlistClient(session, fake.api_url, Secret(key or fake.api_key), pacer,
                           timeout=timeout, sleep=sleep)  # fmt: skip


CONTACTS = [
    Contact(first_name="Ada", last_name="Lovelace", company_domain="good.com"),
    Contact(first_name="Nobody", last_name="Known", company_domain="good.com"),
    Contact(first_name="Failtask", last_name="Broken", company_name="Globex"),
    Contact(linkedin_url="https://www.linkedin.com/in/janedoe/"),
    Contact(first_name="Nophone", last_name="Quiet", company_domain="good.com"),
]


async def test_validate_key(fake: FakeCleanlist, session: aiohttp.ClientSession,
                            clock: FakeClock) -> None:  # fmt: skip
    """The fake's key is valid; another key is refused as Unauthorized with the detail."""
    check = await client_for(fake, session, clock).validate_key()
    assert check.valid and check.organization == "Fake Org"
    with pytest.raises(Unauthorized, match="Invalid or missing API key"):
        await client_for(fake, session, clock, key="clapi_wrong").validate_key()


async def test_submit_then_poll_until_done(fake: FakeCleanlist, session: aiohttp.ClientSession,
                                           clock: FakeClock) -> None:  # fmt: skip
    """A workflow is working until its tasks finish; then each contact's finds, in order."""
    client = client_for(fake, session, clock)
    sub = await client.submit(CONTACTS, "full")
    assert len(sub.task_ids) == len(CONTACTS)
    first = await client.status(sub.workflow_id)
    assert first.state is WorkflowState.WORKING
    assert all(t.state is TaskState.PENDING for t in first.tasks)
    clock.advance(fake.config.workflow_s + 0.1)
    done = await client.status(sub.workflow_id)
    assert done.state is WorkflowState.DONE
    by_task = done.by_task()
    ada, nobody, failed, jane, quiet = (by_task[t] for t in sub.task_ids)
    assert ada.email == "ada.lovelace@good.com" and ada.email_status == "reliable"
    assert len(ada.phones) == 1 and ada.phones[0].startswith("+1555")
    assert nobody.state is TaskState.COMPLETED and nobody.email is None and nobody.phones == ()
    assert failed.state is TaskState.FAILED and failed.email is None
    assert jane.email == "janedoe@cleanlist-found.com"
    assert quiet.email == "nophone.quiet@good.com" and quiet.phones == ()
    # Credits: 1 per email, 10 per phone, none for failures: 3 emails + 2 phones.
    assert fake.credits == 1_000_000 - 3 - 20
    one = await client.status(task_id=sub.task_ids[0])
    assert one.tasks[0].email == "ada.lovelace@good.com"


async def test_partial_finds_emails_only(fake: FakeCleanlist, session: aiohttp.ClientSession,
                                         clock: FakeClock) -> None:  # fmt: skip
    """`partial` is email enrichment: no phones come back."""
    client = client_for(fake, session, clock)
    sub = await client.submit(CONTACTS[:1], "partial")
    clock.advance(5)
    done = await client.status(sub.workflow_id)
    assert done.tasks[0].email == "ada.lovelace@good.com" and done.tasks[0].phones == ()


async def test_failed_workflow(fake: FakeCleanlist, session: aiohttp.ClientSession,
                               clock: FakeClock) -> None:  # fmt: skip
    """A workflow that ends failed is read as FAILED, its tasks failed."""
    client = client_for(fake, session, clock)
    contacts = [Contact(first_name="Failworkflow", last_name="X", company_domain="good.com"),
                CONTACTS[0]]  # fmt: skip
    sub = await client.submit(contacts, "partial")
    clock.advance(5)
    status = await client.status(sub.workflow_id)
    assert status.state is WorkflowState.FAILED
    assert all(t.state is TaskState.FAILED for t in status.tasks)


async def test_slow_task_keeps_the_workflow_working(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A slow contact finishes `slow_ms` after the rest; until then the workflow is working."""
    client = client_for(fake, session, clock)
    slow = Contact(first_name="Slow", last_name="Poke", company_domain="good.com")
    sub = await client.submit([slow, CONTACTS[0]], "partial")
    clock.advance(fake.config.workflow_s + 0.1)
    status = await client.status(sub.workflow_id)
    assert status.state is WorkflowState.WORKING
    assert [t.state for t in status.tasks] == [TaskState.PENDING, TaskState.COMPLETED]
    clock.advance(fake.config.slow_ms / 1000)
    assert (await client.status(sub.workflow_id)).state is WorkflowState.DONE


async def test_no_credits_is_402(fake: FakeCleanlist, session: aiohttp.ClientSession,
                                 clock: FakeClock) -> None:  # fmt: skip
    """An account without credits answers 402: NoCredits."""
    fake.configure(credits=0)
    with pytest.raises(NoCredits, match="Insufficient credits"):
        await client_for(fake, session, clock).submit(CONTACTS[:1], "partial")


async def test_refused_requests(fake: FakeCleanlist, session: aiohttp.ClientSession,
                                clock: FakeClock) -> None:  # fmt: skip
    """Unknown workflow (404) and a contact the API cannot identify (422) are RequestRejected;
    more than 250 contacts never leave the client."""
    client = client_for(fake, session, clock)
    with pytest.raises(RequestRejected, match="workflow not found"):
        await client.status("public_bulk_nope")
    with pytest.raises(RequestRejected, match="linkedin_url or first_name"):
        await client.submit([Contact(first_name="Only")], "partial")
    with pytest.raises(ValueError, match="1 to 250"):
        await client.submit([CONTACTS[0]] * 251, "partial")
    assert len(fake.calls) == 2


async def test_429_pauses_the_pacer_for_retry_after(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Someone else of the organisation spent the window: a 429 with Retry-After pauses us until
    the fake's window ends, and the next request then succeeds."""
    fake.configure(rate_limit=3)
    other = client_for(fake, session, clock, rate=Rate(100, 60.0))
    for _ in range(3):
        await other.validate_key()
    ours = client_for(fake, session, clock)
    with pytest.raises(RateLimited) as caught:
        await ours.validate_key()
    assert caught.value.retry_after == 50.0  # START is 10 s into the minute
    assert await ours.pacer.paused_for() == pytest.approx(50.0)
    before = clock.now
    assert (await ours.validate_key()).valid  # waits out the pause on its (fake) sleep
    assert clock.now - before >= 50.0
    assert fake.calls.statuses()[-2:] == [429, 200]


async def test_the_pacer_keeps_the_window_so_the_fake_never_429s(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Twenty-five requests at 10 per window: each clock window sees at most ten, no 429."""
    fake.configure(rate_limit=10)
    client = client_for(fake, session, clock, rate=Rate(10, 60.0))
    sub = await client.submit(CONTACTS[:1], "partial")
    for _ in range(24):
        await client.status(sub.workflow_id)
    assert fake.rate_limited() == 0
    assert fake.max_in_fixed_window() == 10 and len(fake.arrivals) == 25


async def test_transport_failures_are_classified(
    fake: FakeCleanlist, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """500, junk, a reset and a hang map onto the provider error tree."""
    client = client_for(fake, session, clock, timeout=0.5)
    fake.fail(500)
    with pytest.raises(ProviderUnavailable):
        await client.validate_key()
    fake.junk("html")
    with pytest.raises(BadResponse):
        await client.validate_key()
    fake.junk("wrong_shape")
    with pytest.raises(BadResponse, match="no workflow_id"):
        await client.submit(CONTACTS[:1], "partial")
    fake.drop_connections()
    with pytest.raises(ProviderUnavailable):
        await client.validate_key()
    fake.hang()
    with pytest.raises(ProviderTimeout):
        await client.validate_key()
