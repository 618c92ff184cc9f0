"""The fake providers behave as the providers' documents say, so tests can trust them.

Everything goes over loopback with a plain aiohttp ClientSession, as a production client would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fakes.calllog import Call, CallLog, gaps, max_in_window, min_gap, per_second
from tests.fakes.cleanmylist import REQUEST, FakeCleanMyList
from tests.fakes.control import ControlError, FakeControl
from tests.fakes.faults import Fault
from tests.fakes.listcleanser import CREDITS, TOO_MANY, VERIFY, FakeListCleanser
from tests.fakes.process import FakeProvidersProcess

# The ListCleanser document's verify example, field by field and in order.
LC_FIELDS = [
    "email_address", "score", "state", "reason", "accept_all", "disposable", "free", "role",
    "possible_spamtrap", "did_you_mean", "user", "domain", "mx_record", "smtp_provider",
    "duration",
]  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def lc_verify(
    http: aiohttp.ClientSession, fake: FakeListCleanser, email: str, key: str | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """POST /api/v1/verify as the production client does; (status, JSON body, response)."""
    headers = {"X-API-Key": key if key is not None else fake.api_key}
    async with http.post(fake.url + VERIFY, json={"email": email}, headers=headers) as resp:
        return resp.status, await resp.json(), resp


async def cml_request(
    http: aiohttp.ClientSession,
    fake: FakeCleanMyList,
    email: str,
    test: str = "0",
    key: str | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """GET /_api/request.php as the production client does; (status, JSON body, response)."""
    params = {"email": email, "test": test, "api_key": key if key is not None else fake.api_key}
    async with http.get(fake.url + REQUEST, params=params) as resp:
        return resp.status, orjson.loads(await resp.read()), resp


# -- ListCleanser: shapes ---------------------------------------------------------------------


async def test_listcleanser_verify_answers_the_documented_record(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """A verify answers {"success": true, "data": RECORD} with the document's fields in order."""
    status, body, resp = await lc_verify(http, fake_listcleanser, "user@example.com")
    assert status == 200
    assert resp.content_type == "application/json"
    assert body["success"] is True
    assert list(body["data"]) == LC_FIELDS
    assert body["data"] | {"duration": 0.5} == {
        "email_address": "user@example.com", "score": 90, "state": "deliverable",
        "reason": "accepted_email", "accept_all": False, "disposable": False, "free": False,
        "role": False, "possible_spamtrap": False, "did_you_mean": None, "user": "user",
        "domain": "example.com", "mx_record": "mx.example.com",
        "smtp_provider": "ExampleProvider", "duration": 0.5,
    }  # fmt: skip
    assert isinstance(body["data"]["duration"], float)


async def test_listcleanser_credits_decrease_per_verify_and_run_out_with_402(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """Each verify spends one credit, /credits reports {"success": true, "data": int} for free,
    and a verify with none left is a 402."""
    fake_listcleanser.configure(credits=2)
    headers = {"X-API-Key": fake_listcleanser.api_key}
    seen = []
    for email in ["a@x.test", "b@x.test"]:
        async with http.get(fake_listcleanser.url + CREDITS, headers=headers) as resp:
            seen.append(await resp.json())
        assert (await lc_verify(http, fake_listcleanser, email))[0] == 200
    assert seen == [{"success": True, "data": 2}, {"success": True, "data": 1}]
    status, body, _ = await lc_verify(http, fake_listcleanser, "c@x.test")
    assert (status, body) == (402, {"message": "Insufficient credits"})
    assert fake_listcleanser.credits == 0


async def test_listcleanser_test_key_spends_no_credit(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """A test API key gets the usual answers but spends no credit."""
    fake_listcleanser.configure(test_api_key="lc-sandbox", credits=5)
    status, body, _ = await lc_verify(http, fake_listcleanser, "risky@x.test", key="lc-sandbox")
    assert (status, body["data"]["state"]) == (200, "risky")
    assert fake_listcleanser.credits == 5


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [("", 401, "Unauthorized access"), ("not-ours", 403, "Forbidden: the API key is invalid")],
)
async def test_listcleanser_refuses_missing_and_wrong_keys(
    http: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    key: str,
    status: int,
    message: str,
) -> None:
    """No X-API-Key is a 401, a key that is not ours a 403, both as {"message": ...}."""
    headers = {"X-API-Key": key} if key else {}
    for method, path in [("POST", VERIFY), ("GET", CREDITS)]:
        async with http.request(
            method, fake_listcleanser.url + path, json={"email": "a@x.test"}, headers=headers
        ) as resp:
            assert (resp.status, await resp.json()) == (status, {"message": message})


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"mail": "a@x.test"}', b'{"email": 5}', b'{"email": "  "}'],
)
async def test_listcleanser_bad_body_is_400(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, body: bytes
) -> None:
    """A body that is not a JSON object with a string email is a 400 {"message": ...}."""
    headers = {"X-API-Key": fake_listcleanser.api_key, "Content-Type": "application/json"}
    async with http.post(fake_listcleanser.url + VERIFY, data=body, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"].startswith("Invalid request parameters")


async def test_listcleanser_address_without_at_is_an_invalid_email_result(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """An address without @ is a 200 result, undeliverable / invalid_email, not an HTTP error."""
    status, body, _ = await lc_verify(http, fake_listcleanser, "no-at-sign")
    assert status == 200
    assert (body["data"]["state"], body["data"]["reason"]) == ("undeliverable", "invalid_email")


async def test_listcleanser_answers_carry_rate_limit_headers(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """Every API answer says the limit, what is left of it, and when the window frees up."""
    fake_listcleanser.configure(rate_limit=5)
    remaining = []
    for _ in range(2):
        _, _, resp = await lc_verify(http, fake_listcleanser, "a@x.test")
        assert resp.headers["X-RateLimit-Limit"] == "5"
        assert resp.headers["X-RateLimit-Reset"] == "60"
        remaining.append(resp.headers["X-RateLimit-Remaining"])
    _, _, resp = await lc_verify(http, fake_listcleanser, "a@x.test", key="not-ours")
    remaining.append(resp.headers["X-RateLimit-Remaining"])
    assert remaining == ["4", "3", "2"]


async def test_listcleanser_rate_limit_is_a_sliding_window_per_endpoint(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """Over `rate_limit` arrivals in any sliding window is a 429 with the document's message
    and Retry-After, where a fixed window would have let it through; /credits counts apart."""
    fake_listcleanser.configure(rate_limit=2, rate_window_s=0.6)
    assert (await lc_verify(http, fake_listcleanser, "a@x.test"))[0] == 200  # t = 0
    await asyncio.sleep(0.35)
    assert (await lc_verify(http, fake_listcleanser, "b@x.test"))[0] == 200  # t = 0.35
    await asyncio.sleep(0.35)
    assert (await lc_verify(http, fake_listcleanser, "c@x.test"))[0] == 200  # t = 0.7: a left
    # t ≈ 0.7 again: b, c and this one share a 0.6 s window (a fixed [0.6, 1.2) would allow it).
    status, body, resp = await lc_verify(http, fake_listcleanser, "d@x.test")
    assert (status, body) == (429, {"message": TOO_MANY})
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    headers = {"X-API-Key": fake_listcleanser.api_key}
    async with http.get(fake_listcleanser.url + CREDITS, headers=headers) as credits:
        assert credits.status == 200
    assert fake_listcleanser.calls.statuses(VERIFY) == [200, 200, 200, 429]
    assert fake_listcleanser.calls.max_in_window(0.6, VERIFY) == 3


# -- verdicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("jane@x.test", {"state": "deliverable", "reason": "accepted_email", "score": 90}),
        ("deliverable1@x.test", {"state": "deliverable", "score": 95}),
        ("undeliverable@x.test", {"state": "undeliverable", "reason": "rejected_email"}),
        ("Risky.Bob@x.test", {"state": "risky", "reason": "low_deliverability"}),
        ("unknown@x.test", {"state": "unknown", "accept_all": None, "mx_record": None}),
        ("spamtrap@x.test", {"reason": "low_quality", "possible_spamtrap": True}),
        ("role.x@x.test", {"role": True, "state": "deliverable"}),
        ("admin@x.test", {"role": True}),
        ("support+tag@x.test", {"role": True}),
        ("acceptall@x.test", {"accept_all": True, "state": "risky"}),
        ("disposable@x.test", {"disposable": True, "reason": "low_quality"}),
        ("nodomain@x.test", {"reason": "invalid_domain", "mx_record": None}),
        ("nomx@x.test", {"reason": "invalid_domain", "score": 0}),
        ("bounce@x.test", {"state": "undeliverable", "reason": "rejected_email", "score": 0}),
        ("lowscore@x.test", {"score": 20}),
        ("jane@gmail.com", {"free": True, "smtp_provider": "Google"}),
        ("jane@gmial.com", {"did_you_mean": "jane@gmail.com", "free": False}),
        ("slow.undeliverable@x.test", {"state": "undeliverable"}),
    ],
)
async def test_listcleanser_verdict_conventions(
    http: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    email: str,
    expected: dict[str, Any],
) -> None:
    """The local part's prefix (after a fault marker) decides the record, as documented."""
    fake_listcleanser.configure(slow_ms=10)
    status, body, _ = await lc_verify(http, fake_listcleanser, email)
    assert status == 200
    assert {k: body["data"][k] for k in expected} == expected


async def test_listcleanser_explicit_table_wins_over_conventions(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """Fields set for an address (case-insensitively) are laid over the conventional record."""
    fake_listcleanser.set_answer("Deliverable@X.test", state="risky", score=33, smtp_provider="Z")
    _, body, _ = await lc_verify(http, fake_listcleanser, "deliverable@x.TEST")
    assert (body["data"]["state"], body["data"]["score"], body["data"]["smtp_provider"]) == (
        "risky",
        33,
        "Z",
    )
    assert body["data"]["reason"] == "accepted_email"


# -- CleanMyList --------------------------------------------------------------------------------


async def test_cleanmylist_answers_json_with_quota_as_a_decreasing_string(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """request.php answers real JSON in the example's field order; quota is a string of digits
    that goes down by one per call."""
    status, first, resp = await cml_request(http, fake_cleanmylist, "nadine@sxtxuxoxe.fr")
    assert status == 200
    assert resp.content_type == "application/json"
    assert first == {
        "quota": "461773", "score": 90, "email": "nadine@sxtxuxoxe.fr", "valid": True,
        "last_delivery": "2018-11-26 08:10:50",
    }  # fmt: skip
    assert list(first) == ["quota", "score", "email", "valid", "last_delivery"]
    _, second, _ = await cml_request(http, fake_cleanmylist, "nadine@sxtxuxoxe.fr")
    assert isinstance(second["quota"], str)
    assert second["quota"].isdigit()
    assert int(second["quota"]) == int(first["quota"]) - 1


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("deliverable@x.fr", {"valid": True, "score": 95, "last_delivered": "2018-11-26 08:10:50",
                              "last_activity": "2024-05-02 10:11:12"}),
        ("undeliverable@x.fr", {"valid": False, "score": 5}),
        ("risky@x.fr", {"valid": True, "score": 40}),
        ("spamtrap@x.fr", {"valid": False, "spamtrap": True, "spamtrap_detail": "pristine trap"}),
        ("role@x.fr", {"risk": "role"}),
        ("admin@x.fr", {"risk": "role"}),
        ("nodomain@x.fr", {"valid": False, "error": "NODOMAIN"}),
        ("nomx@x.fr", {"valid": False, "error": "NOMX"}),
        ("bounce@x.fr", {"error": "hard_bounce", "hard_bounce_detected": "2023-09-14 16:20:05"}),
        ("abuse@x.fr", {"abuse": True, "risk": "abuse_reporter", "score": 20}),
        ("spamreporter@x.fr", {"risk": "spam_reporter"}),
        ("lowscore@x.fr", {"valid": True, "score": 20}),
        ("testko@x.fr", {"valid": True, "score": 90}),
    ],
)  # fmt: skip
async def test_cleanmylist_verdict_conventions(
    http: aiohttp.ClientSession,
    fake_cleanmylist: FakeCleanMyList,
    email: str,
    expected: dict[str, Any],
) -> None:
    """The local part's prefix decides valid, score and the optional fields, as documented."""
    status, body, _ = await cml_request(http, fake_cleanmylist, email)
    assert status == 200
    assert {k: body.get(k) for k in expected} == expected


async def test_cleanmylist_sending_test_is_slower_and_can_fail(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """test=1 answers test_extra_ms later, and a testko… address then fails with test_ko."""
    fake_cleanmylist.configure(test_extra_ms=150)
    started = time.monotonic()
    _, body, _ = await cml_request(http, fake_cleanmylist, "testko@x.fr", test="1")
    assert time.monotonic() - started >= 0.15
    assert (body["valid"], body["error"]) == (False, "test_ko")


async def test_cleanmylist_table_none_removes_an_optional_field(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """In CleanMyList's table a None drops the field, since its optional fields are absent."""
    fake_cleanmylist.set_answer("a@x.fr", last_delivery=None, score=12, risk="role")
    _, body, _ = await cml_request(http, fake_cleanmylist, "a@x.fr")
    assert "last_delivery" not in body
    assert (body["score"], body["risk"]) == (12, "role")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"email": "a@x.fr", "test": "0"}, 403),
        ({"email": "a@x.fr", "test": "0", "api_key": "nope"}, 403),
        ({"test": "0", "api_key": "KEY"}, 400),
        ({"email": "a@x.fr", "test": "2", "api_key": "KEY"}, 400),
    ],
)
async def test_cleanmylist_errors(
    http: aiohttp.ClientSession,
    fake_cleanmylist: FakeCleanMyList,
    params: dict[str, str],
    status: int,
) -> None:
    """A missing or wrong api_key is a 403, a missing email or bad test a 400, as JSON."""
    query = {k: fake_cleanmylist.api_key if v == "KEY" else v for k, v in params.items()}
    async with http.get(fake_cleanmylist.url + REQUEST, params=query) as resp:
        assert resp.status == status
        assert "message" in await resp.json()


async def test_cleanmylist_quota_exhausted_is_402(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """The last unit of quota answers quota "0"; the next call is a 402."""
    fake_cleanmylist.configure(quota=1)
    assert (await cml_request(http, fake_cleanmylist, "a@x.fr"))[1]["quota"] == "0"
    status, body, _ = await cml_request(http, fake_cleanmylist, "a@x.fr")
    assert (status, body["quota"]) == (402, "0")


async def test_cleanmylist_records_gaps_and_can_enforce_the_interval(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """Every gap is recorded; with enforce_interval a call sooner than min_interval_ms is a 429
    with Retry-After, and one after the interval is answered."""
    fake_cleanmylist.configure(min_interval_ms=100)
    await cml_request(http, fake_cleanmylist, "a@x.fr")
    await cml_request(http, fake_cleanmylist, "b@x.fr")  # too soon, but not enforced
    fake_cleanmylist.configure(enforce_interval=True)
    status, _, resp = await cml_request(http, fake_cleanmylist, "c@x.fr")
    assert (status, resp.headers["Retry-After"]) == (429, "1")
    await asyncio.sleep(0.12)
    assert (await cml_request(http, fake_cleanmylist, "d@x.fr"))[0] == 200
    assert len(fake_cleanmylist.gaps()) == 3
    assert len(fake_cleanmylist.too_soon()) == 2
    assert fake_cleanmylist.calls.statuses() == [200, 200, 429, 200]


# -- faults -------------------------------------------------------------------------------------


async def test_latency_with_seeded_jitter_is_reproducible(http: aiohttp.ClientSession) -> None:
    """latency_ms ± jitter_ms is drawn from the seed: two fakes with one seed wait alike, and
    the answer comes no sooner than the drawn delay."""
    delays = []
    for _ in range(2):
        async with FakeListCleanser(latency_ms=30, jitter_ms=20, seed=1) as fake:
            for i in range(3):
                started = time.monotonic()
                await lc_verify(http, fake, f"a{i}@x.test")
                assert time.monotonic() - started >= fake.calls[-1].delay
            delays.append([c.delay for c in fake.calls])
    assert delays[0] == delays[1]
    assert all(0.01 <= d <= 0.05 for d in delays[0])
    assert len(set(delays[0])) == 3


async def test_fail_next_calls_with_status_and_retry_after(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """fail(503, times=2, retry_after=2) answers the next two calls 503 with Retry-After 2."""
    fake_listcleanser.fail(503, times=2, retry_after=2)
    answers = [await lc_verify(http, fake_listcleanser, "a@x.test") for _ in range(3)]
    assert [a[0] for a in answers] == [503, 503, 200]
    assert answers[0][1] == {"message": "Service Unavailable"}
    assert answers[0][2].headers["Retry-After"] == "2"
    assert [c.fault for c in fake_listcleanser.calls] == ["status", "status", None]


async def test_a_fault_without_times_lasts_until_cleared(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """times=None answers every call with the fault until clear_faults()."""
    fake_cleanmylist.fail(500, times=None)
    statuses = [(await cml_request(http, fake_cleanmylist, "a@x.fr"))[0] for _ in range(3)]
    fake_cleanmylist.clear_faults()
    statuses.append((await cml_request(http, fake_cleanmylist, "a@x.fr"))[0])
    assert statuses == [500, 500, 500, 200]


@pytest.mark.parametrize("kind", ["html", "wrong_shape", "truncated", "empty"])
async def test_junk_bodies_are_not_the_documented_json(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser, kind: Any
) -> None:
    """Junk answers 200 with a body that is not JSON, or JSON of the wrong shape."""
    fake_listcleanser.junk(kind)
    async with http.post(
        fake_listcleanser.url + VERIFY,
        json={"email": "a@x.test"},
        headers={"X-API-Key": fake_listcleanser.api_key},
    ) as resp:
        assert resp.status == 200
        raw = await resp.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        assert kind != "wrong_shape"
    else:
        assert kind == "wrong_shape"
        assert "email_address" not in body["data"]


async def test_drop_connections_resets_the_connection(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """drop_connections() resets the connection instead of answering; the log says so."""
    fake_cleanmylist.drop_connections()
    async with aiohttp.ClientSession() as fresh:
        fresh._retry_connection = False  # aiohttp resends a GET once on a reset; we want the error
        with pytest.raises(aiohttp.ClientError):
            await cml_request(fresh, fake_cleanmylist, "a@x.fr")
    assert (fake_cleanmylist.calls[0].status, fake_cleanmylist.calls[0].fault) == (None, "reset")
    assert (await cml_request(http, fake_cleanmylist, "a@x.fr"))[0] == 200


async def test_hang_never_answers_and_stop_releases_it(http: aiohttp.ClientSession) -> None:
    """A hanging call gets no answer (it is logged while it hangs), and stopping the fake ends
    it at once."""
    fake = FakeListCleanser()
    await fake.start()
    fake.hang()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await lc_verify(http, fake, "a@x.test")
    assert (len(fake.calls), fake.calls[0].status) == (1, None)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("local", "outcome"),
    [("fail", 500), ("junk", "not json"), ("reset", "error"), ("hang", "timeout"), ("slow", 200)],
)
async def test_per_address_fault_markers(
    http: aiohttp.ClientSession,
    fake_listcleanser: FakeListCleanser,
    local: str,
    outcome: int | str,
) -> None:
    """fail…, junk…, reset…, hang… and slow… addresses misbehave as documented."""
    fake_listcleanser.configure(slow_ms=100)
    headers = {"X-API-Key": fake_listcleanser.api_key}
    started = time.monotonic()
    try:
        async with asyncio.timeout(0.5):
            async with http.post(
                fake_listcleanser.url + VERIFY, json={"email": f"{local}@x.test"}, headers=headers
            ) as resp:
                raw = await resp.read()
                got: int | str = resp.status
                if resp.status == 200 and not raw.startswith(b"{"):
                    got = "not json"
    except TimeoutError:
        got = "timeout"
    except aiohttp.ClientError:
        got = "error"
    assert got == outcome
    if local == "slow":
        assert time.monotonic() - started >= 0.1


async def test_refused_url_refuses_connections(
    http: aiohttp.ClientSession, refused_url: str
) -> None:
    """The refused_url fixture is a port where connecting fails at once."""
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.get(refused_url + VERIFY)


async def test_a_stopped_fake_starts_again_on_the_same_port(http: aiohttp.ClientSession) -> None:
    """stop() then start() listens on the same port, so a test can take a provider down and
    bring it back."""
    async with FakeListCleanser() as fake:
        url = fake.url
        await fake.stop()
        with pytest.raises(aiohttp.ClientConnectorError):
            await lc_verify(http, fake, "a@x.test")
        await fake.start()
        assert fake.url == url
        assert (await lc_verify(http, fake, "a@x.test"))[0] == 200


# -- call log -------------------------------------------------------------------------------


def test_window_and_gap_helpers_on_known_sequences() -> None:
    """max_in_window counts half-open windows; min_gap, gaps and per_second are exact."""
    times = [0.0, 0.1, 0.2, 1.0, 1.05, 1.1, 1.15, 3.0]
    assert max_in_window(times, 1.0) == 5  # 0.2, 1.0, 1.05, 1.1, 1.15
    assert max_in_window(times, 0.2) == 4  # 1.0 .. 1.15
    assert max_in_window([0.0, 1.0], 1.0) == 1  # exactly one window apart: never together
    assert max_in_window([], 1.0) == 0
    assert min_gap(times) == pytest.approx(0.05)
    assert min_gap([1.0]) is None
    assert gaps([2.0, 0.0, 0.5]) == [0.5, 1.5]
    assert per_second(times, 1.0) == [(0.0, 3.0), (1.0, 4.0), (2.0, 0.0), (3.0, 1.0)]


def test_call_log_round_trips_json_and_merges_by_wall_clock() -> None:
    """A log rebuilt from JSON is equal; merged logs are in wall-clock order with both clocks."""
    a = CallLog([Call("listcleanser", "POST", VERIFY, mono=5.0, wall=100.0, status=200)])
    b = CallLog([Call("listcleanser", "POST", VERIFY, mono=9.0, wall=99.5, status=429)])
    assert list(CallLog.from_json(a.to_json())) == list(a)
    merged = CallLog.merged(a, b)
    assert merged.statuses() == [429, 200]
    assert merged.min_gap(clock="wall") == pytest.approx(0.5)
    assert merged.max_in_window(1.0, VERIFY, clock="wall") == 2


async def test_call_log_records_each_request(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """Each request is logged with both clocks, endpoint, address and status; unknown paths too."""
    before_mono, before_wall = time.monotonic(), time.time()
    await lc_verify(http, fake_listcleanser, "a@x.test")
    async with http.get(fake_listcleanser.url + "/api/v1/nope") as resp:
        assert (resp.status, await resp.json()) == (404, {"message": "Not Found"})
    first, second = fake_listcleanser.calls
    assert (first.endpoint, first.email, first.status, first.method) == (
        VERIFY,
        "a@x.test",
        200,
        "POST",
    )
    assert first.mono >= before_mono
    assert first.wall >= before_wall
    assert first.done_mono is not None
    assert first.done_mono >= first.mono
    assert (second.endpoint, second.status) == ("/api/v1/nope", 404)


# -- control over HTTP ------------------------------------------------------------------------


async def test_http_control_endpoints(
    http: aiohttp.ClientSession, fake_listcleanser: FakeListCleanser
) -> None:
    """/_fake/ sets settings, faults and answers, reads the calls, and resets it all."""
    base = fake_listcleanser.url + "/_fake"
    async with http.post(base + "/config", json={"credits": 7, "latency_ms": 5}) as resp:
        assert (resp.status, (await resp.json())["credits"]) == (200, 7)
    async with http.post(base + "/config", json={"credits": "many"}) as resp:
        assert resp.status == 400
    async with http.post(base + "/config", json={"nonsense": 1}) as resp:
        assert resp.status == 400
    fault = {"kind": "status", "status": 429, "retry_after": 3, "times": 1}
    async with http.post(base + "/faults", json=fault) as resp:
        assert (await resp.json())[0]["times"] == 1
    async with http.post(base + "/faults", json={"kind": "explode"}) as resp:
        assert resp.status == 400
    async with http.post(base + "/answers", json={"a@x.test": {"score": 3}}) as resp:
        assert resp.status == 200
    first = await lc_verify(http, fake_listcleanser, "a@x.test")
    assert (first[0], first[2].headers["Retry-After"]) == (429, "3")
    second = await lc_verify(http, fake_listcleanser, "a@x.test")
    assert (second[0], second[1]["data"]["score"]) == (200, 3)
    async with http.get(base + "/calls", params={"window": "60"}) as resp:
        calls = await resp.json()
    assert (calls["count"], calls["max_in_window"]) == (2, 2)
    assert [c["status"] for c in calls["calls"]] == [429, 200]
    assert calls["calls"][0]["wall"] > 0
    async with http.post(base + "/reset") as resp:
        assert (await resp.json())["credits"] == 100_000
    assert (len(fake_listcleanser.calls), fake_listcleanser.answers) == (0, {})


async def test_fake_control_drives_a_fake_over_http(
    http: aiohttp.ClientSession, fake_cleanmylist: FakeCleanMyList
) -> None:
    """FakeControl mirrors the Python API over /_fake/ and rebuilds the call log."""
    control = FakeControl(fake_cleanmylist.url, http)
    assert (await control.configure(quota=10))["quota"] == 10
    await control.inject(Fault("junk", junk="wrong_shape"))
    await control.set_answer("a@x.fr", score=1)
    async with http.get(
        fake_cleanmylist.url + REQUEST,
        params={"email": "a@x.fr", "test": "0", "api_key": fake_cleanmylist.api_key},
    ) as resp:
        assert "quota" not in await resp.json()
    assert (await cml_request(http, fake_cleanmylist, "a@x.fr"))[1]["score"] == 1
    log = await control.calls()
    assert (len(log), log.emails()) == (2, ["a@x.fr", "a@x.fr"])
    with pytest.raises(ControlError):
        await control.configure(enforce_interval="yes")
    await control.reset()
    assert fake_cleanmylist.quota == 461_774


# -- as a process -------------------------------------------------------------------------------


async def test_runs_as_a_process_and_stops_on_sigterm(http: aiohttp.ClientSession) -> None:
    """`python -m tests.fakes.providers` prints a ready line, serves both APIs with the given
    settings, and exits 0 on SIGTERM."""
    process = await FakeProvidersProcess.start(
        "--latency-ms", "20", "--jitter-ms", "5", "--seed", "1", "--credits", "9"
    )
    try:
        lc = FakeControl(process.listcleanser_url, http)
        cml = FakeControl(process.cleanmylist_url, http)
        assert (await lc.settings())["latency_ms"] == 20.0
        async with http.post(
            process.listcleanser_url + VERIFY,
            json={"email": "undeliverable@x.test"},
            headers={"X-API-Key": "lc-test-key"},
        ) as resp:
            assert (await resp.json())["data"]["state"] == "undeliverable"
        async with http.get(
            process.cleanmylist_url + REQUEST,
            params={"email": "a@x.fr", "test": "0", "api_key": "cml-test-key"},
        ) as resp:
            assert (await resp.json())["valid"] is True
        calls = CallLog.merged(await lc.calls(), await cml.calls())
        assert [c.provider for c in calls] == ["listcleanser", "cleanmylist"]
        assert calls[0].delay >= 0.015
        assert (await lc.settings())["credits"] == 8
    finally:
        assert await process.stop() == 0
    assert process.proc.returncode == 0
