"""What both provider clients share: one aiohttp session, errors mapped to ProviderError."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from emailgate.providers.errors import (
    BadResponse,
    NoCredits,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)

DEFAULT_RETRY_AFTER = 60.0  # ListCleanser: "please try again after a minute"
MAX_BODY = 64 * 1024  # a verdict is a few hundred bytes; anything huge is not the documented JSON


def make_session() -> aiohttp.ClientSession:
    """The one client session of an app, for every provider call.

    The resolver is chosen on purpose: installing aiodns makes aiohttp default to it, but
    provider hosts should resolve like any other outbound call of the host (hosts file, search
    domains, the platform's resolver), while mail domains go to EMAILGATE_DNS_SERVERS.
    """
    connector = aiohttp.TCPConnector(
        resolver=aiohttp.ThreadedResolver(),
        limit=100,
        ttl_dns_cache=300,
        enable_cleanup_closed=True,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": "emailgate"},
        raise_for_status=False,
        # No cookies: providers are stateless APIs and we should not carry state between calls.
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    # aiohttp resends an idempotent request (CleanMyList's GET) once when the connection drops;
    # that second call would spend a credit and break the pacing, so a drop is a failure here.
    # aiohttp's own test client turns it off the same way; there is no public switch.
    session._retry_connection = False
    return session


def retry_after(headers: Mapping[str, str], default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), bounded to an hour."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        seconds = when.timestamp() - time.time()
    return min(3600.0, max(0.0, seconds))


def classify_status(status: int, headers: Mapping[str, str], provider: str) -> ProviderError | None:
    """The error an HTTP status means, or None for a 200."""
    if status == 200:
        return None
    if status == 429:
        return RateLimited(f"{provider}: 429 too many requests", retry_after(headers))
    if status == 402:
        return NoCredits(f"{provider}: 402 no credits left")
    if status in (401, 403):
        return Unauthorized(f"{provider}: {status} key refused")
    if status >= 500:
        return ProviderUnavailable(f"{provider}: {status} server error")
    return ProviderUnavailable(f"{provider}: unexpected status {status}")


@asynccontextmanager
async def guarded(provider: str, timeout: float) -> AsyncIterator[None]:
    """Map transport failures inside the block to ProviderError, within `timeout` seconds."""
    if timeout <= 0:
        raise ProviderTimeout(f"{provider}: no time left")
    try:
        async with asyncio.timeout(timeout):
            yield
    except ProviderError:
        raise
    except TimeoutError:
        raise ProviderTimeout(f"{provider}: no answer within {timeout:.3f}s") from None
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as e:
        raise ProviderUnavailable(f"{provider}: {type(e).__name__}") from None
    except aiohttp.ClientError as e:
        raise ProviderUnavailable(f"{provider}: {type(e).__name__}") from None


async def read_json(response: aiohttp.ClientResponse, provider: str) -> Any:
    """The body as JSON; BadResponse when it is not."""
    body = await response.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BadResponse(f"{provider}: body over {MAX_BODY} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadResponse(f"{provider}: body is not JSON") from None


def whole_number(value: Any) -> int | None:
    """A count as providers send it: a number, or a string of ASCII digits (`"436"`); None
    for anything else (str.isdigit also passes "²", which int() refuses)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (text := value.strip()).isascii() and text.isdigit():
        return int(text)
    return None
