"""`python -m benchmarks.localcost N SEED`: in-process costs, in microseconds, as one JSON line.

Two tables, each timed with `timeit` (best of 3 repeats over the whole corpus, per item):

- the local checks per address, over N unique addresses of every kind (mailbox providers,
  company domains, typos, disposables, dead domains): syntax (email-validator, memo cleared
  first, so every address is a miss as unique traffic is), domain facts and role (memoised per
  domain, as served; and once uncached per distinct domain: the typo scan), and the local
  verdict with its decision;
- the pieces of the cache-hit path, one call each: keyed hash, cache peek, metrics, the JSON log
  line, RESULT to JSON, the request id. These price the suggestions in the report.

Run in a process of its own so that nothing else shares its interpreter or its caches.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import sys
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks import corpus
from emailgate import log as logsetup
from emailgate.cache import BoundedMemoryCache, VerdictCache
from emailgate.metrics import Metrics
from emailgate.privacy import Hasher
from emailgate.verify import local
from emailgate.verify.decision import decide
from emailgate.verify.domains import DomainLists
from emailgate.verify.mail import MailDomain, MailStatus
from emailgate.verify.pipeline import CheckResult
from emailgate.verify.result import Decision, Reason
from emailgate.verify.syntax import _parse, parse_address

REPEAT = 3


def best_us(fn: Callable[[], object], number: int) -> float:
    """Microseconds per call: the best of REPEAT runs of `number` calls."""
    return min(timeit.repeat(fn, repeat=REPEAT, number=number)) / number * 1e6


def local_corpus(count: int, seed: int) -> list[str]:
    """Unique addresses on every kind of domain the benchmarks know."""
    rng = random.Random(seed)
    domains = (
        *corpus.MAIL_DOMAINS, *corpus.MAIL_DOMAINS, *corpus.IMPLICIT_DOMAINS,
        *corpus.TYPO_MAIL_DOMAINS, *corpus.TYPO_DEAD_DOMAINS, *corpus.TYPO_DISPOSABLE_DOMAINS,
        *corpus.DISPOSABLE_DOMAINS, *corpus.NXDOMAIN_DOMAINS, *corpus.NULL_MX_DOMAINS,
    )  # fmt: skip
    return [f"{corpus.local_part(rng, i)}@{rng.choice(domains)}" for i in range(count)]


def local_checks(count: int, seed: int) -> dict[str, Any]:
    """Per-address cost of syntax, domain facts, role and the local verdict with its decision."""
    raws = local_corpus(count, seed)
    lists = DomainLists()
    addresses = [parse_address(r) for r in raws]
    mail = MailDomain(MailStatus.MX, mx="mx1.example.com")

    def syntax() -> None:
        _parse.cache_clear()  # unique traffic: every address misses the memo
        for raw in raws:
            parse_address(raw)

    def facts() -> None:
        for a in addresses:
            lists.facts(a.ascii_domain)
            lists.is_role(a.user)

    facts_of = {a.ascii_domain: lists.facts(a.ascii_domain) for a in addresses}
    pairs = [(a, facts_of[a.ascii_domain], lists.is_role(a.user)) for a in addresses]

    def verdict() -> None:
        for a, f, role in pairs:
            v = (
                local.disposable_verdict(a, f, role)
                if f.disposable
                else local.domain_verdict(a, f, role, mail, Reason.UNKNOWN)
            )
            decide(v, 30)

    domains = sorted(facts_of)

    def facts_uncached() -> None:
        for d in domains:
            lists._facts(d)

    syntax_us = best_us(syntax, 1) / count
    facts_us = best_us(facts, 1) / count
    verdict_us = best_us(verdict, 1) / count
    uncached_us = best_us(facts_uncached, 1) / len(domains)
    return {
        "addresses": count,
        "distinct_domains": len(domains),
        "syntax_us": syntax_us,
        "facts_role_us": facts_us,
        "verdict_decision_us": verdict_us,
        "total_us": syntax_us + facts_us + verdict_us,
        "facts_uncached_per_domain_us": uncached_us,
    }


def hot_path_pieces() -> dict[str, float]:
    """One call of each piece of the cache-hit path, in microseconds."""
    lists = DomainLists()
    address = parse_address("alice.martin@gmail.com")
    facts = lists.facts(address.ascii_domain)
    mail = MailDomain(MailStatus.MX, mx="gmail-smtp-in.l.google.com")
    verdict = local.domain_verdict(address, facts, False, mail, Reason.UNKNOWN)
    hasher = Hasher(b"benchmark-hash-key-0123456789abcdef")
    metrics = Metrics()
    backend = BoundedMemoryCache(1000)
    cache = VerdictCache(backend, hasher=hasher, metrics=metrics)
    key = cache.key(address)
    backend.put(key, verdict, 300)
    result = CheckResult(
        email_address=address.email, user=address.user, domain=address.domain, verdict=verdict,
        decision=Decision.ACCEPT, context="signup", threshold=30, cached=True, duration=1.5e-5,
    )  # fmt: skip

    sink = open(os.devnull, "w")  # noqa: SIM115 — lives as long as the process
    logsetup.setup("info", sink)
    check_log = logging.getLogger("emailgate.check")
    logsetup.request_id.set(os.urandom(8).hex())
    extra = {
        "event": "check", "email_hash": key[-32:], "context": "signup", "state": "unknown",
        "reason": "unknown", "score": 60, "decision": "accept", "source": "local",
        "cached": True, "duration_ms": 0.015,
    }  # fmt: skip
    raw_sink = open(os.devnull, "wb")  # noqa: SIM115

    def direct_line() -> None:
        # The suggested alternative: one orjson line written straight to the stream.
        raw_sink.write(orjson.dumps({"ts": 0.0, "level": "info", "msg": "check", **extra}) + b"\n")

    safe_id = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

    def cache_get() -> None:
        # The memory path never suspends: drive the coroutine by hand, without a loop round.
        coro = cache.get(key, budget=1.0)
        try:
            coro.send(None)
        except StopIteration:
            return
        raise RuntimeError("VerdictCache.get suspended on the memory path")

    def observe() -> None:
        metrics.inflight.inc()
        metrics.cache_lookup(hit=True)
        metrics.observe_check("signup", "accept", "local", 1.5e-5)
        metrics.inflight.dec()

    pieces: dict[str, Callable[[], object]] = {
        "keyed hash (BLAKE2b of the casefolded address)": lambda: hasher.hash(
            address.email.casefold()
        ),
        "parse (memo hit)": lambda: parse_address("alice.martin@gmail.com"),
        "domain facts + role (memo hit)": lambda: (
            lists.facts(address.ascii_domain),
            lists.is_role(address.user),
        ),
        "cache peek (LRU)": lambda: backend.peek(key),
        "VerdictCache.get (memory, with the hit counter)": cache_get,
        "metrics: in-flight inc/dec, cache lookup, check counter + histogram": observe,
        "log line via logging + JsonFormatter": lambda: check_log.info("check", extra=extra),
        "log line as one orjson write (suggested)": direct_line,
        "RESULT to_dict + orjson.dumps": lambda: orjson.dumps(
            {"success": True, "data": result.to_dict()}
        ),
        "request id (os.urandom + regex)": lambda: (
            safe_id.match(""),
            os.urandom(8).hex(),
        ),
    }
    return {name: best_us(fn, 5_000) for name, fn in pieces.items()}


def main() -> None:
    """Print both tables as one JSON object."""
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    stdout = sys.stdout
    sys.stdout = io.StringIO()  # nothing but the JSON line on stdout
    data = {"local": local_checks(count, seed), "pieces": hot_path_pieces()}
    sys.stdout = stdout
    print(json.dumps(data))


if __name__ == "__main__":
    main()
