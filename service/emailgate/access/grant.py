"""What a request may use, as the access layer decided it; read by the verify handler."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from emailgate.verify.result import PROVIDERS, Source


@dataclass(frozen=True, slots=True)
class Grant:
    """What the access layer allows this request: providers (paid credits) and/or the sandbox."""

    use_providers: bool = True
    sandbox: bool = False


OPEN = Grant()
"""The grant of a request when the service runs without a keys file (and of private keys)."""

GRANT = web.RequestKey("grant", Grant)

RESPONSE_HEADERS = web.RequestKey[dict[str, str]]("response_headers")
"""Headers the access layer wants on whatever answer this request gets, error or not (CORS,
rate-limit state): the HTTP layer's `errors` middleware adds them last, so a handler's
exception cannot lose them."""

SPENT = web.RequestKey("spent_credit", bool)
"""Set by the handler: whether the answer came fresh from a paid provider."""

PAID = frozenset(PROVIDERS)


def note_answer(request: web.Request, source: Source, *, cached: bool) -> None:
    """Record whether this answer spent a provider credit (for the public keys' budget)."""
    request[SPENT] = not cached and source in PAID
