"""A bulk provider's webhook, checked and turned into a wake-up (bulk/hooks.py says why).

The HTTP layer (http/listhooks.py) reads the request; this decides: is the address signed for
its reference, does that reference name a list of ours with this id, and does a job still wait
on it. Only the last step changes anything, and only when every check passed.
"""

from __future__ import annotations

from emailgate.bulk.hooks import Wakeups, parse_reference, signed
from emailgate.config import Secret
from emailgate.jobs.store import JobStore

WAITING = ("uploaded",)  # the status of a list whose job still waits on it


class HookRefused(Exception):
    """The webhook is not one of ours: the status to answer, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def wake_for(
    store: JobStore,
    wakeups: Wakeups,
    secret: Secret,
    provider: str,
    *,
    reference: str | None,
    sig: str | None,
    list_id: str,
) -> bool:
    """Check a webhook for `list_id`; whether a waiting job was woken (False: the list is
    ours but no longer waited on). Raises HookRefused, having changed nothing."""
    if not reference or not sig:
        raise HookRefused(401, "unsigned webhook: the address needs ref and sig")
    if not signed(secret, provider, reference, sig):
        raise HookRefused(403, "webhook signature does not match its reference")
    where = parse_reference(reference)
    lists = [] if where is None else await store.lists(where[0])
    known = next(
        (lst for lst in lists
         if where is not None and lst.id == where[1] and lst.provider == provider
         and lst.list_id == list_id),
        None,
    )  # fmt: skip
    if known is None:
        raise HookRefused(404, "no list of ours has this id and reference")
    if known.status not in WAITING:
        return False
    wakeups.notify(provider, list_id)
    return True
