"""CSV both ways: the one-column file we upload, and result files read by column name."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from emailgate.providers.errors import BadResponse


def email_csv(emails: Sequence[str], column: str = "email") -> bytes:
    """A header row `column`, then one address per row (quoted where CSV needs it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column])
    for email in emails:
        writer.writerow([email])
    return out.getvalue().encode("utf-8")


def read_rows(text: str, provider: str, *, required: Sequence[str]) -> Iterator[dict[str, str]]:
    """Each data row as `{column name: value}`, names trimmed and lower-cased (so `Email` and
    `email` are one column; dotted names such as `domain.accept_all` stay as they are).

    BadResponse when there is no header row or a `required` column is missing; columns we do
    not know are kept in the dict and ignored by the caller.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BadResponse(f"{provider}: result file is empty") from None
    except csv.Error:
        raise BadResponse(f"{provider}: result file is not CSV") from None
    names = [name.strip().lower() for name in header]
    missing = [name for name in required if name not in names]
    if missing:
        shown = ", ".join(repr(n) for n in names[:20])
        raise BadResponse(f"{provider}: result file has no {', '.join(missing)} column ({shown})")
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            yield {name: row[i] if i < len(row) else "" for i, name in enumerate(names)}
    except csv.Error:
        raise BadResponse(f"{provider}: result file is not CSV") from None
