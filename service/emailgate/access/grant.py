"""What a request may use, as the access layer decided it; read by the verify handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from emailgate.verify.result import ACCOUNTS

if TYPE_CHECKING:
    from emailgate.verify.pipeline import CheckResult


@dataclass(frozen=True, slots=True)
class Grant:
    """What the access layer allows this request: providers (paid credits) and/or the sandbox."""

    use_providers: bool = True
    sandbox: bool = False
    history: bool = True
    """Whether the answer may tell that the address was checked before (`cached`, timing);
    false for public keys, whose callers are anyone who can read a web page."""


OPEN = Grant()
"""The grant of a request when the service runs without a keys file (and of private keys)."""

GRANT = web.RequestKey("grant", Grant)

CLIENT = web.RequestKey("client", str)
"""The admitted key's name (jobs belong to it); `OPEN_CLIENT` without a keys file."""
OPEN_CLIENT = "open"

RESPONSE_HEADERS = web.RequestKey[dict[str, str]]("response_headers")
"""Headers the access layer wants on whatever answer this request gets, error or not (CORS,
rate-limit state): the HTTP layer's `errors` middleware adds them last, so a handler's
exception cannot lose them."""

SPENT = web.RequestKey("spent_credit", bool)
"""Set by the handler: whether the answer counts against a public key's credit budget."""

PAID = frozenset(ACCOUNTS)
"""Sources whose verdicts cost a credit (the real-time providers, and bulk ones via the cache)."""


def note_answer(request: web.Request, result: CheckResult) -> None:
    """Record whether this answer is charged to the caller's credit budget: it is when it
    is provider-backed (fresh or from the cache: the two must look alike), and when it made
    provider calls that failed or timed out (else failures would be free to cause)."""
    if result.provider_calls > 0 or result.verdict.source in PAID:
        request[SPENT] = True  # unset reads as False: no write for the answers that cost nothing
