"""What DNS says about a domain as a mail destination (stage 5's answer), without DNS itself:
the pure stages and the pipeline read these types; `verify/dns.py` produces them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MailStatus(StrEnum):
    """What DNS says about a domain as a mail destination."""

    MX = "mx"
    IMPLICIT = "implicit"  # no MX, but an A or AAAA record (RFC 5321 §5.1)
    NO_MAIL = "no_mail"  # null MX (RFC 7505), or neither MX nor address records
    NXDOMAIN = "nxdomain"
    ERROR = "error"  # SERVFAIL, refused, timeout: state unknown

    @property
    def takes_mail(self) -> bool:
        return self in (MailStatus.MX, MailStatus.IMPLICIT)


NEGATIVE = frozenset((MailStatus.NXDOMAIN, MailStatus.NO_MAIL))
"""Answers that say a domain takes no mail."""


@dataclass(frozen=True, slots=True)
class MailDomain:
    """The answer for one domain."""

    status: MailStatus
    mx: str | None = None
    detail: str = ""
