"""The values a check produces: a normalised address and a verdict (RESULT in docs/api.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, get_type_hints


class State(StrEnum):
    """RESULT `state`."""

    DELIVERABLE = "deliverable"
    UNDELIVERABLE = "undeliverable"
    RISKY = "risky"
    UNKNOWN = "unknown"


class Reason(StrEnum):
    """RESULT `reason`."""

    ACCEPTED_EMAIL = "accepted_email"
    INVALID_EMAIL = "invalid_email"
    INVALID_DOMAIN = "invalid_domain"
    REJECTED_EMAIL = "rejected_email"
    LOW_QUALITY = "low_quality"
    LOW_DELIVERABILITY = "low_deliverability"
    DNS_ERROR = "dns_error"
    TIMEOUT = "timeout"
    UNAVAILABLE_PROVIDER = "unavailable_provider"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """RESULT `source`: who produced the verdict."""

    LOCAL = "local"
    LISTCLEANSER = "listcleanser"
    CLEANMYLIST = "cleanmylist"
    SANDBOX = "sandbox"
    # Bulk providers behind batch jobs (docs/bulk-providers.md): their verdicts reach the cache too.
    LISTCLEANER = "listcleaner"
    EMAILCONSUL = "emailconsul"


PROVIDERS = (Source.LISTCLEANSER, Source.CLEANMYLIST)
"""The paid real-time providers, in their default chain order: their answers cost a credit.
Everywhere else takes their names from here (settings, credits, metrics labels)."""
BULK_PROVIDERS = (Source.LISTCLEANSER, Source.LISTCLEANER, Source.EMAILCONSUL)
"""The bulk (list-cleaning) providers behind batch jobs, in their default order."""
ACCOUNTS = tuple(dict.fromkeys((*PROVIDERS, *BULK_PROVIDERS)))
"""Every provider account whose credits `/api/v1/credits` reports, real-time ones first."""


class Decision(StrEnum):
    """RESULT `decision`."""

    ACCEPT = "accept"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Address:
    """A syntactically valid address, normalised."""

    email: str
    """`user@ascii-domain`: trimmed, domain lower-cased, IDNA (RESULT `email_address`)."""
    user: str
    """The local part, as given (case kept: mailbox names may be case-sensitive)."""
    domain: str
    """The domain in Unicode form, lower-cased."""
    ascii_domain: str
    """The domain in IDNA (ASCII) form, what DNS and providers are asked about."""

    identity: str = field(init=False, repr=False, compare=False)
    """The mailbox this address names, for cache keys and duplicates (docs/access.md).

    Mainstream providers treat ASCII letters of a local part alike in either case, so
    those are lower-cased; nothing else is. Unicode case folding would make `ſam@`
    (long s) and `STRAßE@` the same mailbox as `sam@` and `strasse@`: one person's
    verdict would be served for another's address. Made once per Address (the parser's
    are memoised, so once per address seen): every check reads it twice."""

    def __post_init__(self) -> None:
        identity = f"{self.user.translate(_ASCII_LOWER)}@{self.ascii_domain}"
        object.__setattr__(self, "identity", identity)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What is known about an address, independent of the caller's context; this is cached."""

    state: State
    reason: Reason
    score: int
    source: Source
    accept_all: bool | None = None
    disposable: bool = False
    free: bool = False
    role: bool = False
    possible_spamtrap: bool = False
    did_you_mean: str | None = None
    mx_record: str | None = None
    smtp_provider: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-ready values (for the cache), in field order."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Rebuild a stored verdict; KeyError, ValueError or TypeError if it is damaged."""
        values = {}
        for name, (read, default) in _READERS.items():
            values[name] = read(data[name] if default is MISSING else data.get(name, default))
        return cls(**values)


def _score(value: Any) -> int:
    if not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError("score out of range")
    return value


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _reader(hint: Any) -> Callable[[Any], Any]:
    """How a stored value of a field of this type is read back (strictly: the cache may hold
    anything a past version or a damaged entry left)."""
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint
    readers: dict[Any, Callable[[Any], Any]] = {
        int: _score,  # the one whole number of a verdict
        bool: bool,
        bool | None: _opt_bool,
        str | None: _opt_str,
    }
    return readers[hint]


_FIELD_NAMES = tuple(f.name for f in fields(Verdict))
_HINTS = get_type_hints(Verdict)
_ENUM_FIELDS = tuple(
    name
    for name in _FIELD_NAMES
    if isinstance(_HINTS[name], type) and issubclass(_HINTS[name], StrEnum)
)


def _compile_to_dict() -> Callable[[Verdict], dict[str, Any]]:
    """`to_dict` written out from the fields once, as dataclasses writes `__init__`: as fast as
    a hand-written one (it runs on every answer), and it cannot forget a field."""
    items = ", ".join(
        f"{name!r}: v.{name}.value" if name in _ENUM_FIELDS else f"{name!r}: v.{name}"
        for name in _FIELD_NAMES
    )
    namespace: dict[str, Any] = {}
    exec(f"def to_dict(v):\n    return {{{items}}}\n", namespace)  # noqa: S102 - our own names
    to_dict: Callable[[Verdict], dict[str, Any]] = namespace["to_dict"]
    return to_dict


_to_dict = _compile_to_dict()
_READERS = {f.name: (_reader(_HINTS[f.name]), f.default) for f in fields(Verdict)}
