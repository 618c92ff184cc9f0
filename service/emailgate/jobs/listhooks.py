"""A bulk provider's webhook, checked and turned into a wake-up (bulk/hooks.py says why).

The HTTP layer (http/listhooks.py) reads the request; this decides: is the address signed for
its reference, does that reference name a list of ours with this id, and does a job still wait
on it. Only the last step changes anything, and only when every check passed: with Redis, the
wake-up is published (`CHANNEL`) and every process that works jobs (each replica, a worker
child) hands it to its runner, so it reaches the job wherever it runs; without Redis, this
process's runner is told.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from emailgate.bulk.hooks import HOOKED, Wakeups, parse_reference, signed
from emailgate.config import Secret
from emailgate.jobs.store import JobStore

log = logging.getLogger("emailgate.jobs")

CHANNEL = "emailgate:bulk:wake"
LISTEN = 0.5  # seconds per wait for a message (the loop notices a stop this often)
AGAIN = 1.0  # seconds before subscribing again after Redis failed
REDIS_ERRORS = (aioredis.RedisError, OSError, TimeoutError)

WAITING = ("uploaded",)  # the status of a list whose job still waits on it


class HookRefused(Exception):
    """The webhook is not one of ours: the status to answer, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_signed(secret: Secret, provider: str, reference: str | None, sig: str | None) -> str:
    """The reference of a webhook address signed by us; HookRefused (401, 403) otherwise."""
    if not reference or not sig:
        raise HookRefused(401, "unsigned webhook: the address needs ref and sig")
    if not signed(secret, provider, reference, sig):
        raise HookRefused(403, "webhook signature does not match its reference")
    return reference


async def wake_for(
    store: JobStore,
    wakeups: Wakeups,
    secret: Secret,
    provider: str,
    *,
    reference: str | None,
    sig: str | None,
    list_id: str,
    redis: aioredis.Redis | None = None,
) -> bool:
    """Check a webhook for `list_id`; whether a waiting job was woken (False: the list is
    ours but no longer waited on). Raises HookRefused, having changed nothing."""
    reference = check_signed(secret, provider, reference, sig)
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
    if redis is None or not await _announce(redis, provider, list_id):
        wakeups.notify(provider, list_id)
    return True


async def _announce(redis: aioredis.Redis, provider: str, list_id: str) -> bool:
    """Publish a wake-up to every worker; False when Redis is away."""
    try:
        await redis.publish(CHANNEL, f"{provider}\n{list_id}")
    except REDIS_ERRORS:
        return False
    return True


async def relay(redis: aioredis.Redis, wakeups: Wakeups, stopping: asyncio.Event) -> None:
    """Wake-ups published by any process, into this worker's `wakeups`, until `stopping`."""
    while not stopping.is_set():
        try:
            async with redis.pubsub() as sub:
                await sub.subscribe(CHANNEL)
                while not stopping.is_set():
                    message = await sub.get_message(ignore_subscribe_messages=True, timeout=LISTEN)
                    if message is not None:
                        _deliver(message.get("data"), wakeups)
        except REDIS_ERRORS:
            # Redis away: jobs still poll at their pace; listen again soon.
            log.warning("bulk wake-ups not heard (Redis)", extra={"event": "bulk_wake_relay"})
            await asyncio.sleep(AGAIN)


def _deliver(data: object, wakeups: Wakeups) -> None:
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    provider, _, list_id = text.partition("\n")
    if provider in HOOKED and list_id:
        wakeups.notify(provider, list_id)
