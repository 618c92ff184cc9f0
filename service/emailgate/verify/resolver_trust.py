"""Is the DNS resolver telling the truth? A resolver that says a popular mail domain (gmail.com)
takes no mail is broken: a captive portal, a sandbox, a misconfigured forwarder.

Once it has denied one, it is *known to lie*: every negative answer it gives (NXDOMAIN, no
mail) reads as a DNS error, for every domain, so checks fail open instead of rejecting real
addresses as `invalid_domain`. `/readyz` says so, `emailgate_dns_resolver_unreliable` is 1, and
the domain it denied is asked again every few seconds (past the cache) until it answers with
mail hosts; then the resolver is trusted again and the negative answers it gave while lying
are forgotten.

    trusted ──(a popular domain denied)──▶ lying ──(that domain takes mail again)──▶ trusted
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from emailgate.metrics import Metrics
from emailgate.verify.mail import MailDomain, MailStatus
from emailgate.verify.seams import DomainResolver

log = logging.getLogger("emailgate.dns")

RECHECK_S = 2.0  # seconds between asking a lying resolver again: one query, only while lying
RECHECK_TIMEOUT_S = 1.0
DISTRUSTED = "resolver known to deny real domains"


class ResolverTrust:
    """Watches the resolver's answers for popular domains; turns its lies into DNS errors."""

    def __init__(
        self, resolver: DomainResolver, popular: Collection[str], *, metrics: Metrics
    ) -> None:
        self.resolver = resolver
        self.popular = popular
        self.metrics = metrics
        self.denied: str | None = None
        """The popular domain the resolver denied; None while it is trusted."""
        metrics.dns_unreliable.set(0)

    @property
    def lying(self) -> bool:
        """The resolver has denied a popular domain and not answered truthfully since."""
        return self.denied is not None

    def judge(self, domain: str, mail: MailDomain) -> MailDomain:
        """The answer for `domain` as the pipeline should believe it."""
        negative = not mail.status.takes_mail and mail.status is not MailStatus.ERROR
        if domain in self.popular:
            if mail.status.takes_mail:
                self._trusted(domain)
            elif negative:
                self._lying(domain, mail)
        if negative and self.lying:
            return MailDomain(MailStatus.ERROR, detail=DISTRUSTED)
        return mail

    async def recheck(self) -> bool:
        """Ask about the denied domain again, past the cache; True when trusted afterwards."""
        denied = self.denied
        if denied is None:
            return True
        mail = await self.resolver.lookup(denied, RECHECK_TIMEOUT_S, fresh=True)
        self.judge(denied, mail)
        return not self.lying

    async def run(self) -> None:
        """Recheck every RECHECK_S while the resolver is known to lie (a background task)."""
        while True:
            await asyncio.sleep(RECHECK_S)
            if self.lying:
                await self.recheck()

    def readiness(self) -> tuple[bool, str]:
        """The `dns` check of /readyz."""
        if self.denied is None:
            return True, "answers trusted"
        return False, (
            f"unreliable: the resolver says {self.denied} takes no mail; every negative DNS "
            "answer is treated as a DNS error (fail open) until it answers truthfully"
        )

    def _lying(self, domain: str, mail: MailDomain) -> None:
        if self.denied is not None:
            return
        self.denied = domain
        self.metrics.dns_unreliable.set(1)
        self.resolver.forget_negative()  # earlier denials may be lies too
        log.warning(
            "the DNS resolver denies a popular mail domain; its negative answers are treated "
            "as DNS errors (fail open) until it answers truthfully",
            extra={"event": "dns_unreliable", "domain": domain, "status": mail.status.value},
        )

    def _trusted(self, domain: str) -> None:
        # Only the domain it denied proves it honest: a half-broken resolver may answer others.
        if self.denied != domain:
            return
        self.denied = None
        self.metrics.dns_unreliable.set(0)
        self.resolver.forget_negative()  # what it denied while lying is not to be believed
        log.warning(
            "the DNS resolver answers truthfully again; its negative answers count again",
            extra={"event": "dns_trusted", "domain": domain},
        )
