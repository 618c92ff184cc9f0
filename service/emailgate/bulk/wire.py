"""What the three bulk clients share: one HTTP call, paced, classified, counted.

Every call goes through `Wire.call`, which

- waits for a slot of the provider's pacer (fleet-wide with Redis), and refuses at once while
  the provider is paused (a 429's `Retry-After`, no credits, a refused key);
- bounds the whole exchange, body included, by a timeout;
- maps the answer onto the `emailgate.providers.errors` tree (401/403 `Unauthorized`, 402
  `NoCredits`, 429 `RateLimited` with `Retry-After`, 5xx and broken connections
  `ProviderUnavailable`, no answer in time `ProviderTimeout`), pausing the provider for the
  first three;
- counts one `emailgate_bulk_requests_total{provider, outcome}` per call that left;
- turns any other exception into a classified error: nothing raw escapes a client.

A 404 is an error (`ProviderUnavailable`) unless the call hands it back to the client's reader,
which gives it its API's meaning (not ready yet: `NotReady`; no such list: `ListFailed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from emailgate.bulk.base import ListFailed
from emailgate.clock import Clock, monotonic
from emailgate.metrics import Metrics
from emailgate.pacing.base import Pacer
from emailgate.providers.errors import (
    BadResponse,
    NoCredits,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from emailgate.providers.http import classify_status, guarded

log = logging.getLogger("emailgate.bulk")
T = TypeVar("T")

REQUEST_TIMEOUT = 30.0  # seconds: a status or credits call
TRANSFER_TIMEOUT = 300.0  # seconds: an upload or download of up to 50,000 rows
MAX_BODY = 64 * 1024 * 1024  # a 50,000-row result CSV is ~15 MB; anything far larger is not it
MAX_SLOT_WAIT = 600.0  # seconds: a slot further out than this is asked for again later
NO_CREDITS_PAUSE = 3600.0  # seconds; lifted early when a credits call sees credits again
UNAUTHORIZED_PAUSE = 900.0  # seconds; an operator must fix the key, then it is tried again


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's answer that was not an error: 2xx, or a 404 for the client to read."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self, provider: str) -> Any:
        """The body as JSON; BadResponse when it is not."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise BadResponse(f"{provider}: body is not JSON") from None

    def text(self, provider: str) -> str:
        """The body as UTF-8 text (a BOM dropped); BadResponse when it is not."""
        try:
            return self.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadResponse(f"{provider}: body is not UTF-8 text") from None


@contextlib.contextmanager
def parsing(provider: str) -> Iterator[None]:
    """Reading a provider's answer: any slip (a missing key, a wrong type) is a BadResponse."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as e:
        raise BadResponse(f"{provider}: answer not as documented ({type(e).__name__})") from None


class NotReady(ProviderError):
    """The results were asked for before the provider had them (a 404 on a download)."""

    outcome = "not_ready"


class Wire:
    """One provider's calls: its session, pacer, pause and metrics."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        provider: str,
        *,
        pacer: Pacer,
        metrics: Metrics | None = None,
        clock: Clock = monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        request_timeout: float = REQUEST_TIMEOUT,
        transfer_timeout: float = TRANSFER_TIMEOUT,
    ) -> None:
        self.request_timeout = request_timeout
        self.transfer_timeout = transfer_timeout
        self.session = session
        self.provider = provider
        self.pacer = pacer
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self._why: type[ProviderError] = RateLimited
        """What the last pause of this process was for, so a refusal while paused says so."""

    async def call(
        self,
        method: str,
        url: str,
        read: Callable[[Answer], T],
        *,
        transfer: bool = False,
        pacer: Pacer | None = None,
        paced: bool = True,
        hand_back: Collection[int] = (),
        **kwargs: Any,
    ) -> T:
        """One call: a slot of `pacer` (default: the provider's) unless `paced` is False, then
        the request within the request timeout (the transfer timeout for an upload or a
        download, `transfer`), then `read` of its 2xx answer (or of a status in `hand_back`).

        The call's outcome is counted once it is known, `read` included: a 200 with a body
        that does not read is `bad_response`, a list `read` finds failed is `failed`.
        """
        if paced:
            await self.slot(pacer or self.pacer)
        timeout = self.transfer_timeout if transfer else self.request_timeout
        try:
            answer = await self._send(method, url, timeout, kwargs, hand_back)
            try:
                with parsing(self.provider):
                    result = read(answer)
            except ProviderError as e:
                # A 2xx whose body we cannot read: the provider did act on the request.
                e.may_have_landed = True  # type: ignore[attr-defined]
                raise
        except ProviderError as e:
            self.count(e.outcome)
            await self.react(e)
            raise
        self.count("ok")
        return result

    async def _send(
        self, method: str, url: str, timeout: float, kwargs: Any, taken: Collection[int]
    ) -> Answer:
        try:
            async with (
                guarded(self.provider, timeout),
                self.session.request(method, url, **kwargs) as response,
            ):
                status = response.status
                if status in taken or 200 <= status < 300:
                    return Answer(status, response.headers, await self._body(response))
                error = classify_status(status, response.headers, self.provider)
                assert error is not None
                error.may_have_landed = False  # type: ignore[attr-defined]  # it said no
                raise error
        except ProviderError as e:
            if not hasattr(e, "may_have_landed"):
                # No answer (timeout, reset): the request may have been acted on, unless the
                # connection never opened.
                never_sent = isinstance(e.__context__, aiohttp.ClientConnectorError)
                e.may_have_landed = not never_sent  # type: ignore[attr-defined]
            raise
        except Exception as e:
            # An error of aiohttp's or yarl's that `guarded` does not name: still classified.
            raise ProviderUnavailable(f"{self.provider}: {type(e).__name__}") from None

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, read in chunks up to MAX_BODY (a larger one is not the API's)."""
        if (response.content_length or 0) > MAX_BODY:
            raise BadResponse(f"{self.provider}: body over {MAX_BODY} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(256 * 1024):
            size += len(chunk)
            if size > MAX_BODY:
                raise BadResponse(f"{self.provider}: body over {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def count(self, outcome: str) -> None:
        """One call's outcome in `emailgate_bulk_requests_total`."""
        if self.metrics is not None:
            self.metrics.bulk_requests.labels(self.provider, outcome).inc()

    async def slot(self, pacer: Pacer) -> None:
        """Wait for a slot of `pacer`; RateLimited at once while the provider is paused."""
        while True:
            left = await self.pacer.paused_for()
            if pacer is not self.pacer and left <= 0:
                left = await pacer.paused_for()
            if left > 0:
                self._gauge(paused=True)
                raise self.refusal(left)
            asked = self.clock()
            reservation = await pacer.reserve(MAX_SLOT_WAIT)
            if not reservation.ok:
                if reservation.refused == "paused":
                    continue  # the pause shows on the next turn, with its length
                await self.sleep(MAX_SLOT_WAIT / 10)
                continue
            if reservation.wait > 0:
                await self.sleep(reservation.wait)
            if not reservation.late(self.clock() - asked):
                self._gauge(paused=False)
                return

    def refusal(self, left: float) -> ProviderError:
        """The error a call meets while the provider is paused for `left` seconds."""
        message = f"{self.provider}: paused for {left:.0f}s"
        if self._why is RateLimited:
            return RateLimited(message, retry_after=left)
        return self._why(message)

    async def react(self, error: ProviderError) -> None:
        """Pause the provider when it said stop: 429, no credits, a refused key."""
        if isinstance(error, RateLimited):
            seconds, event = error.retry_after, "bulk_provider_429"
        elif isinstance(error, NoCredits):
            seconds, event = NO_CREDITS_PAUSE, "bulk_provider_no_credits"
        elif isinstance(error, Unauthorized):
            seconds, event = UNAUTHORIZED_PAUSE, "bulk_provider_unauthorized"
        else:
            if isinstance(error, ProviderTimeout | ProviderUnavailable):
                log.info(
                    "bulk provider call failed",
                    extra={"event": "bulk_provider_error", "provider": self.provider,
                           "outcome": error.outcome},
                )  # fmt: skip
            return
        self._why = type(error)
        if seconds > 0:
            await self.pacer.pause(seconds)
            self._gauge(paused=True)
        log.warning(
            "bulk provider paused",
            extra={"event": event, "provider": self.provider, "pause_s": round(seconds, 3)},
        )

    async def resume(self) -> None:
        """Lift a pause early (credits came back)."""
        self._why = RateLimited
        await self.pacer.resume()
        self._gauge(paused=False)

    async def resume_if_out_of_credits(self) -> None:
        """Credits were seen: lift a no-credits pause of this process."""
        if self._why is NoCredits:
            await self.resume()
            log.warning(
                "bulk provider credits are back",
                extra={"event": "bulk_provider_credits_back", "provider": self.provider},
            )

    async def paused_for(self) -> float:
        """Seconds left of the provider's pause (0: it takes lists); refreshes the gauge."""
        left = await self.pacer.paused_for()
        self._gauge(paused=left > 0)
        return left

    def _gauge(self, *, paused: bool) -> None:
        if self.metrics is not None:
            self.metrics.bulk_paused.labels(self.provider).set(1 if paused else 0)


def may_have_landed(error: ProviderError) -> bool:
    """Whether the failed request may still have been acted on by the provider: no answer
    came (a timeout, a reset), or a 2xx came whose body could not be read. False when the
    provider answered an error status, or the connection never opened."""
    return bool(getattr(error, "may_have_landed", False))


def path_id(provider: str, list_id: str) -> str:
    """A stored list id as one URL path segment or query value; ListFailed when it cannot be
    (ids come back from our store, and are never trusted to shape a URL)."""
    if not list_id or len(list_id) > 200 or not all(c.isalnum() or c in "-_" for c in list_id):
        raise ListFailed(f"{provider}: list id {list_id[:40]!r} is not an id")
    return list_id
