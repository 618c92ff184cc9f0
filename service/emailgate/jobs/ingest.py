"""Reading an uploaded list: a JSON array, or a CSV, TXT or XLSX file already on disk.

Files are read row by row (csv; openpyxl in read-only mode), never whole into memory. The email
column is the one given (`column`), else one named like an email column, else the one whose
cells look like addresses; the other columns are kept for the download.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import zipfile
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emailgate.jobs.giveway import give_way
from emailgate.jobs.store import InRow
from emailgate.verify.syntax import InvalidAddress, parse_address

EMAIL_NAMES = frozenset(
    {"email", "e-mail", "e_mail", "email_address", "emailaddress", "email address", "mail"}
)
SAMPLE_ROWS = 100
SNIFF_BYTES = 8192  # csv.Sniffer's time grows fast with its sample; a few lines tell
BATCH = 1000
KINDS = ("csv", "txt", "xlsx")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class IngestError(Exception):
    """An upload that cannot become a job; `status` is the HTTP answer (400, 413, 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def to_row(cells: list[Any], email_cell: Any) -> InRow:
    """One input row: the address in it and its identity (the cache's: ASCII domain, local
    part with ASCII letters lower-cased); bad syntax keeps its text under a `!` identity."""
    text = "" if email_cell is None else str(email_cell).strip()
    try:
        address = parse_address(text)
    except InvalidAddress:
        return InRow(cells=cells, identity="!" + text, email=text, domain=None)
    identity = f"{address.user.translate(_ASCII_LOWER)}@{address.ascii_domain}"
    return InRow(cells=cells, identity=identity, email=address.email, domain=address.ascii_domain)


@dataclass(frozen=True, slots=True)
class Table:
    """An uploaded file as columns and a way to read its rows (each time from the start)."""

    path: Path
    kind: str
    columns: list[str]
    email_index: int
    header: bool

    def rows(self) -> Generator[list[Any], None, None]:
        """Every data row, cells as given (the header row left out)."""
        source = _raw_rows(self.path, self.kind)
        try:
            if self.header:
                next(source, None)
            width = len(self.columns)
            for cells in source:
                if not any(c not in (None, "") for c in cells):
                    continue  # blank lines are not rows
                if len(cells) < width:
                    cells = [*cells, *([""] * (width - len(cells)))]
                yield cells
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()


def kind_of(filename: str | None) -> str:
    """`csv`, `txt` or `xlsx` from the file's name; IngestError 415 otherwise."""
    name = (filename or "").lower()
    for kind in KINDS:
        if name.endswith("." + kind):
            return kind
    raise IngestError(415, "the file must be .csv, .txt or .xlsx")


def open_table(path: Path, kind: str, column: str | None) -> Table:
    """Look at the file's first rows and find the email column; IngestError if none."""
    _check_format(path, kind)
    sample: list[list[Any]] = []
    source = _raw_rows(path, kind)
    try:
        for cells in source:
            if any(c not in (None, "") for c in cells):
                sample.append(cells)
            if len(sample) >= SAMPLE_ROWS:
                break
    except (csv.Error, UnicodeDecodeError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise IngestError(415, f"the file could not be read as {kind.upper()}: {e}") from None
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    if not sample:
        raise IngestError(400, "the list is empty")
    width = max(len(r) for r in sample)
    first = [_text(c) for c in sample[0]] + [""] * (width - len(sample[0]))
    if kind == "txt":
        header = first[0].strip().lower() in EMAIL_NAMES
        return Table(path, kind, ["email"], 0, header)
    if column is not None:
        wanted = column.strip().lower()
        for i, name in enumerate(first):
            if name.strip().lower() == wanted:
                return Table(path, kind, _names(first), i, True)
        raise IngestError(400, f"no column named {column!r}; columns found: {_listing(first)}")
    for i, name in enumerate(first):
        if name.strip().lower() in EMAIL_NAMES:
            return Table(path, kind, _names(first), i, True)
    best, hits = -1, 0
    for i in range(width):
        n = sum(1 for r in sample if i < len(r) and _looks_like_address(r[i]))
        if n > hits:
            best, hits = i, n
    if best < 0:
        raise IngestError(
            400, f"no address column (name it 'email' or send 'column'); columns found: "
            f"{_listing(first)}"
        )  # fmt: skip
    if _looks_like_address(first[best]):
        names = [f"column_{i + 1}" for i in range(width)]
        names[best] = "email"
        return Table(path, kind, names, best, False)
    return Table(path, kind, _names(first), best, True)


async def file_batches(
    table: Table, *, max_rows: int, batch: int = BATCH, busy: Callable[[], int] = lambda: 0
) -> AsyncIterator[list[InRow]]:
    """The table's rows as InRows, a batch at a time, parsed in a worker thread (the event
    loop keeps answering signups), each batch given to the store once no `busy()` signup is
    being answered (giveway.py); IngestError 413 past `max_rows`."""
    rows = table.rows()
    count = 0

    def next_batch() -> list[InRow]:
        out: list[InRow] = []
        for cells in rows:
            out.append(to_row(cells, cells[table.email_index]))
            if len(out) >= batch:
                break
        return out

    try:
        while True:
            try:
                chunk = await asyncio.to_thread(next_batch)
            except (csv.Error, UnicodeDecodeError, ValueError, zipfile.BadZipFile) as e:
                raise IngestError(415, f"the file could not be read: {e}") from None
            if not chunk:
                break
            count += len(chunk)
            if count > max_rows:
                raise IngestError(413, f"the file has more than {max_rows} rows")
            await give_way(busy)
            yield chunk
    finally:
        rows.close()
    if count == 0:
        raise IngestError(400, "the list is empty")


async def list_batches(
    emails: Sequence[str], batch: int = BATCH, busy: Callable[[], int] = lambda: 0
) -> AsyncIterator[list[InRow]]:
    """A JSON list of addresses as InRows (column `email`), given way as `file_batches`."""
    for start in range(0, len(emails), batch):
        chunk = emails[start : start + batch]
        rows = await asyncio.to_thread(lambda c=chunk: [to_row([e], e) for e in c])  # type: ignore[misc]
        await give_way(busy)
        yield rows


def _raw_rows(path: Path, kind: str) -> Iterator[list[Any]]:
    if kind == "xlsx":
        return _xlsx_rows(path)
    return _text_rows(path, kind)


def _text_rows(path: Path, kind: str) -> Iterator[list[Any]]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        if kind == "txt":
            for line in f:
                yield [line.strip()]
            return
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(head, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        # The sniffer may guess that "" is not a quote inside a quoted cell; RFC 4180 says it is.
        yield from csv.reader(f, dialect, doublequote=True)


def _xlsx_rows(path: Path) -> Iterator[list[Any]]:
    import openpyxl  # type: ignore[import-untyped]  # loaded only for spreadsheets

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield ["" if v is None else v for v in values]
    finally:
        book.close()


def _check_format(path: Path, kind: str) -> None:
    with path.open("rb") as f:
        head = f.read(4096)
    if kind == "xlsx":
        if not zipfile.is_zipfile(path):
            raise IngestError(415, "the .xlsx file is not a spreadsheet (not a zip archive)")
        return
    if b"\x00" in head:
        raise IngestError(415, f"the .{kind} file is binary, not text")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        raise IngestError(415, f"the .{kind} file is not UTF-8 text") from None


def _looks_like_address(cell: Any) -> bool:
    text = _text(cell)
    if "@" not in text:
        return False
    try:
        parse_address(text)
    except InvalidAddress:
        return False
    return True


def _text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


def _names(first: list[str]) -> list[str]:
    return [name.strip() or f"column_{i + 1}" for i, name in enumerate(first)]


def _listing(first: list[str]) -> str:
    names = [n.strip() for n in first if n.strip()]
    return ", ".join(repr(n[:40]) for n in names[:20]) or "(none)"
