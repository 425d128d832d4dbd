"""Campaign contacts from a CSV file (`POST /v1/campaigns/{id}/contacts`), sans-IO.

The first row is the header: a `number` column, an optional `timezone` column (an IANA zone;
the contact's calling windows are then read in it), and any other columns, each of which
becomes a template variable of the contact under its header name (letters, digits and `_`, not
starting with a digit). The delimiter is the one the header uses: `,`, `;` or a tab. The file
is UTF-8 (a byte-order mark is dropped).

`parse_contacts(body)` returns the good rows and, per bad row, its line number and why it was
refused: a number that is not E.164 (typed forms such as `+1 (415) 555-0100` or `0044...` are
normalised), an unknown time zone, a value too long, a row with more or fewer fields than the
header, or a number the file already gave. Blank lines are skipped. What makes the whole file
unusable (no header, no `number` column, a bad column name, too many columns, not UTF-8,
broken quoting) is a `CsvInvalid`; more than `MAX_ROWS` data rows is a `CsvTooLarge`. Error
messages never repeat a number.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Final

import msgspec

from control_api.campaigns.dnc import normalise
from control_api.campaigns.model import (
    MAX_CONTACTS,
    MAX_VARIABLES,
    TIMEZONE_VARIABLE,
    CampaignInvalid,
    Contact,
    check_timezone,
)

MAX_CSV_BYTES: Final = 4 * 1024 * 1024
"""The largest CSV body taken (413 above it)."""
MAX_ROWS: Final = MAX_CONTACTS
"""The most data rows one file may hold (413 above it)."""
MAX_VALUE: Final = 1024
NUMBER_COLUMN: Final = "number"
_COLUMN: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DELIMITERS: Final = (",", ";", "\t")


class CsvInvalid(CampaignInvalid):
    """The file as a whole cannot be read as contacts (400); nothing is imported."""


class CsvTooLarge(CampaignInvalid):
    """More rows than one upload (or one campaign) may hold (413); nothing is imported."""


class RowProblem(msgspec.Struct, frozen=True):
    line: int
    """The row's line in the file (the header is line 1)."""
    reason: str


class CsvContact(msgspec.Struct, frozen=True):
    line: int
    contact: Contact


@dataclass
class ParsedCsv:
    contacts: list[CsvContact] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvInvalid(f"the file is not UTF-8 (byte {exc.start})") from None


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    return max(_DELIMITERS, key=header.count)


def _columns(header: list[str]) -> list[str]:
    """The header's column names, `number` and `timezone` in lower case."""
    names = []
    for index, raw in enumerate(header, start=1):
        name = raw.strip()
        if name.lower() in (NUMBER_COLUMN, TIMEZONE_VARIABLE):
            name = name.lower()
        if not _COLUMN.match(name):
            raise CsvInvalid(
                f"header column {index}: a name is letters, digits and _ (not first), up to 64"
            )
        if name in names:
            raise CsvInvalid(f"header column {index}: {name!r} is named twice")
        names.append(name)
    if NUMBER_COLUMN not in names:
        raise CsvInvalid("the header has no 'number' column")
    if len(names) - 1 > MAX_VARIABLES:
        raise CsvInvalid(f"more than {MAX_VARIABLES} columns besides 'number'")
    return names


def _contact(columns: list[str], values: list[str]) -> Contact:
    """The contact of one row; `ValueError` naming what is wrong."""
    if len(values) != len(columns):
        raise ValueError(f"{len(values)} fields where the header has {len(columns)}")
    row = {name: value.strip() for name, value in zip(columns, values, strict=True)}
    number = normalise(row.pop(NUMBER_COLUMN))
    for name, value in row.items():
        if len(value) > MAX_VALUE:
            raise ValueError(f"{name}: longer than {MAX_VALUE} characters")
    zone = row.get(TIMEZONE_VARIABLE)
    if zone is not None:
        if zone:
            check_timezone(zone)
        else:
            del row[TIMEZONE_VARIABLE]  # blank: the campaign's zone
    return Contact(number=number, variables=row)


def parse_contacts(body: bytes) -> ParsedCsv:
    """The contacts of a CSV body, and the rows refused (see the module's docstring)."""
    text = _text(body)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    parsed = ParsedCsv()
    seen: dict[str, int] = {}
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise CsvInvalid("no header row (it names the columns: 'number', ...)")
        columns = _columns(header)
        rows = 0
        line = reader.line_num + 1
        for values in reader:
            start, line = line, reader.line_num + 1
            if not values or not any(v.strip() for v in values):
                continue
            rows += 1
            if rows > MAX_ROWS:
                raise CsvTooLarge(f"more than {MAX_ROWS} rows")
            _take(parsed, seen, start, columns, values)
    except csv.Error as exc:
        raise CsvInvalid(f"line {reader.line_num}: {exc}") from None
    return parsed


def _take(
    parsed: ParsedCsv, seen: dict[str, int], line: int, columns: list[str], values: list[str]
) -> None:
    try:
        contact = _contact(columns, values)
    except ValueError as exc:
        parsed.problems.append(RowProblem(line, str(exc)))
        return
    first = seen.setdefault(contact.number, line)
    if first != line:
        parsed.problems.append(RowProblem(line, f"repeats the number of line {first}"))
        return
    parsed.contacts.append(CsvContact(line, contact))
