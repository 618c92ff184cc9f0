"""A job's stored address turns back into the Address the parser gives, with or without the
parser (the worker rebuilds ASCII-domain rows without it): the same RESULT fields and cache
key either way."""

from __future__ import annotations

import pytest

from emailgate.jobs.ingest import to_row
from emailgate.jobs.runner import _parse
from emailgate.jobs.store import WorkAddress
from emailgate.verify.syntax import parse_address

INPUTS = [
    "user@good.com",
    "  A.B+Tag@Good.COM ",
    "josé@good.com",
    "user@bücher.de",
    "user@XN--BCHER-KVA.de",
    "o'brien@sub.example.co.uk",
]


@pytest.mark.parametrize("raw", INPUTS)
def test_a_stored_row_is_the_parsed_address(raw: str) -> None:
    """What ingest stores (normalised email, ASCII domain) gives back parse_address(raw)."""
    row = to_row([raw], raw)
    item = WorkAddress(1, row.email, row.domain, "pending", None, None, None)
    assert _parse(item) == parse_address(raw)


def test_bad_syntax_stays_unparsed() -> None:
    """A row ingest found invalid has no Address."""
    row = to_row(["not an address"], "not an address")
    assert _parse(WorkAddress(1, row.email, row.domain, "pending", None, None, None)) is None
