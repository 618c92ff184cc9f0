"""A bulk provider's webhooks as a wake-up for polling (EmailConsul's, docs/batch.md).

EmailConsul POSTs the list item to the `webhook_url` given with the list whenever its status
or counts change, unsigned. emailgate gives each list its own address,

    EMAILGATE_EMAILCONSUL_WEBHOOK_URL?ref=emailgate-job-7-list-3&sig=HEX
    HEX = HMAC-SHA256(EMAILGATE_WEBHOOK_SECRET, "emailconsul.emailgate-job-7-list-3")

so a call that does not carry the signature of a list we uploaded is refused before anything
is read. An accepted webhook only wakes the job waiting on that list: the job then asks the
provider (`poll`) as it would have a little later anyway. Nothing in a webhook's body is
believed, so a replayed or stale one costs one poll and changes nothing; when webhooks never
come (not configured, lost, another replica received them) polling goes on as before.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from urllib.parse import urlencode

from emailgate.config import Secret

HOOKED = ("emailconsul",)
"""The bulk providers that send webhooks."""
MAX_NEWS = 1_000  # lists with an unread wake-up at most (a replica waits on a few)
_REFERENCE = re.compile(r"emailgate-job-(\d{1,18})-list-(\d{1,18})")


def list_reference(job_id: int, list_row: int) -> str:
    """The reference a list is uploaded with (the same after a restart, so it can be found)."""
    return f"emailgate-job-{job_id}-list-{list_row}"


def parse_reference(reference: str) -> tuple[int, int] | None:
    """(job id, list row) of a reference made by `list_reference`, or None."""
    found = _REFERENCE.fullmatch(reference)
    return None if found is None else (int(found[1]), int(found[2]))


def signature(secret: Secret, provider: str, reference: str) -> str:
    """The hex HMAC that a list's webhook address carries."""
    message = f"{provider}.{reference}".encode()
    return hmac.new(secret.reveal().encode(), message, hashlib.sha256).hexdigest()


def signed(secret: Secret, provider: str, reference: str, sig: str) -> bool:
    """Whether `sig` is the signature of `reference` (in constant time)."""
    return hmac.compare_digest(signature(secret, provider, reference), sig.strip().lower())


def hook_url(base: str, secret: Secret, provider: str, reference: str) -> str:
    """The webhook address given to the provider with the list uploaded as `reference`."""
    query = urlencode({"ref": reference, "sig": signature(secret, provider, reference)})
    return f"{base}{'&' if '?' in base else '?'}{query}"


class Wakeups:
    """Lists a provider told us about since the job waiting on them last looked."""

    def __init__(self) -> None:
        self._news: OrderedDict[tuple[str, str], None] = OrderedDict()

    def notify(self, provider: str, list_id: str) -> None:
        """A webhook for `list_id` came in: its job should poll now."""
        self._news[(provider, list_id)] = None
        if len(self._news) > MAX_NEWS:
            self._news.popitem(last=False)

    def take(self, provider: str, list_id: str) -> bool:
        """Whether news came for `list_id` (and forget it)."""
        return self._news.pop((provider, list_id), 0) is None
