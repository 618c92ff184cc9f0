"""Who may ask, from where and how often: client keys, origins/CORS, client rate limits.

`install(app)` adds the access middleware; it sets a `Grant` on each verify request that the
handler honours (providers allowed or not, sandbox or not).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Grant:
    """What the access layer allows this request: providers (paid credits) and/or the sandbox."""

    use_providers: bool = True
    sandbox: bool = False


OPEN = Grant()
"""The grant of a request when the service runs without a keys file."""

GRANT = web.RequestKey("grant", Grant)


def install(app: web.Application) -> None:
    """Add the access layer to `app` (before it starts). Without keys: open, nothing to add."""
