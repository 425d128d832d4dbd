"""Campaign contacts read from CSV (`control_api.campaigns.contacts_csv`), sans-IO: the header
names the columns, other columns become variables, bad rows are reported by line and the rest
kept, and what makes a whole file unusable is refused (never repeating a number)."""

from __future__ import annotations

import pytest

from control_api.campaigns.contacts_csv import (
    MAX_CSV_BYTES,
    MAX_ROWS,
    CsvInvalid,
    CsvTooLarge,
    parse_contacts,
)


def test_columns_become_variables_and_numbers_are_normalised() -> None:
    body = (
        "\ufeffNumber, first_name ,TimeZone,appointment\r\n"
        '+1 (415) 555-0100,Ann,America/Chicago,"Tue, 10:00"\r\n'
        "0044 20 7123 4567,Bob,,Wed\r\n"
    ).encode()
    parsed = parse_contacts(body)
    assert parsed.problems == []
    first, second = parsed.contacts
    assert (first.line, first.contact.number) == (2, "+14155550100")
    assert first.contact.variables == {
        "first_name": "Ann",
        "timezone": "America/Chicago",
        "appointment": "Tue, 10:00",
    }
    assert first.contact.timezone == "America/Chicago"
    assert (second.line, second.contact.number) == (3, "+442071234567")
    assert second.contact.timezone is None  # blank: the campaign's own zone
    assert second.contact.variables == {"first_name": "Bob", "appointment": "Wed"}


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_the_header_says_the_delimiter(delimiter: str) -> None:
    body = f"number{delimiter}name\n+14155550100{delimiter}Ann, Jr.\n".encode()
    (row,) = parse_contacts(body).contacts
    assert row.contact.variables == {"name": "Ann, Jr."}


def test_bad_rows_are_reported_by_line_and_the_rest_kept() -> None:
    body = (
        "number,name,timezone\n"  # 1
        "+14155550100,Ann,\n"  # 2
        "\n"  # 3: blank, skipped
        "4155550101,national,\n"  # 4
        '+14155550102,"two\nlines",Mars/Olympus\n'  # 5-6
        "+1 415 555 0100,again,\n"  # 7
        "+14155550103,short\n"  # 8
        "+14155550104,too,many,fields\n"  # 9
        f"+14155550105,{'x' * 1025},\n"  # 10
        "+14155550106,Dee,Europe/Paris\n"  # 11
    ).encode()
    parsed = parse_contacts(body)
    assert [(c.line, c.contact.number) for c in parsed.contacts] == [
        (2, "+14155550100"),
        (11, "+14155550106"),
    ]
    problems = {p.line: p.reason for p in parsed.problems}
    assert sorted(problems) == [4, 5, 7, 8, 9, 10]
    assert "E.164" in problems[4]
    assert "Mars/Olympus" in problems[5]
    assert problems[7] == "repeats the number of line 2"
    assert "2 fields where the header has 3" in problems[8]
    assert "4 fields" in problems[9]
    assert "name: longer than 1024" in problems[10]
    for reason in problems.values():
        assert "4155550" not in reason


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "no header"),
        (b"\n\n", "no header"),
        (b"phone,name\n+14155550100,Ann\n", "no 'number' column"),
        (b"number,first name\n+14155550100,Ann\n", "header column 2"),
        (b"number,2nd\n+14155550100,x\n", "header column 2"),
        (b"number,name,Name,name\n+14155550100,a,b,c\n", "header column 4"),
        (b"number,\n+14155550100,x\n", "header column 2"),
        ("number,name\n+14155550100,J\xfcrgen\n".encode("latin-1"), "not UTF-8"),
        (b'number,name\n+14155550100,"open\n', "line"),
        (("number," + ",".join(f"v{i}" for i in range(33)) + "\n").encode(), "more than 32"),
    ],
    ids=[
        "empty",
        "blank",
        "no-number",
        "space",
        "digit",
        "twice",
        "unnamed",
        "latin-1",
        "open-quote",
        "too-many-columns",
    ],
)
def test_unusable_files_are_refused_whole(body: bytes, why: str) -> None:
    with pytest.raises(CsvInvalid) as caught:
        parse_contacts(body)
    assert why in str(caught.value)


def test_more_rows_than_one_upload_holds() -> None:
    rows = "".join(f"+1415{i:07d}\n" for i in range(MAX_ROWS + 1))
    body = f"number\n{rows}".encode()
    assert len(body) < MAX_CSV_BYTES  # the row bound, not the byte bound
    with pytest.raises(CsvTooLarge):
        parse_contacts(body)
    assert len(parse_contacts(body[: body.rindex(b"+")]).contacts) == MAX_ROWS
