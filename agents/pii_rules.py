"""The pattern detectors of `agents.pii`: personal data that has a written shape (emails,
formatted ids and phone numbers, street addresses, dates of birth) and the check digits that
tell a real card, CPF or CNPJ from any number. Each detector returns `Found` spans over the
text it was given (offsets into that text). Pure functions (sans-IO).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple


class Found(NamedTuple):
    """A candidate: `text[start:end]` is `kind`; `rank` decides overlaps (lower wins, then the
    longer span)."""

    start: int
    end: int
    kind: str
    rank: int


RANK_EXPLICIT: Final = 1
"""An email, an address, a date in a birth context: the shape says what it is."""
RANK_CHECKED: Final = 2
"""Check digits or a formatted id/phone shape."""
RANK_CONTEXT: Final = 3
"""Digits after a word that names them ("account number", "CPF", "CEP")."""
RANK_GUESS: Final = 4
"""A plain run of digits of a phone number's length."""


# ---- check digits ----


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number holds."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mod11_digit(digits: str, weights: list[int], *, cpf: bool) -> str:
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    if cpf:
        return str((total * 10) % 11 % 10)
    rest = total % 11
    return "0" if rest < 2 else str(11 - rest)


def cpf_ok(digits: str) -> bool:
    """A Brazilian CPF's two check digits hold (11 digits, not all the same)."""
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    first = _mod11_digit(digits[:9], list(range(10, 1, -1)), cpf=True)
    second = _mod11_digit(digits[:10], list(range(11, 1, -1)), cpf=True)
    return digits[9:] == first + second


_CNPJ_WEIGHTS: Final = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]


def cnpj_ok(digits: str) -> bool:
    """A Brazilian CNPJ's two check digits hold (14 digits, not all the same)."""
    if len(digits) != 14 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    first = _mod11_digit(digits[:12], _CNPJ_WEIGHTS, cpf=False)
    second = _mod11_digit(digits[:13], [6, *_CNPJ_WEIGHTS], cpf=False)
    return digits[12:] == first + second


def ssn_ok(digits: str) -> bool:
    """A US SSN's shape rules: area 001-899 but 666, group 01-99, serial 0001-9999."""
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def only_digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


# ---- formatted numbers ----

_L = r"(?<![\w+.\-/])"
"""Not inside a longer number or word."""
_R = r"(?![\w]|[.\-/]\d)"

_CPF = re.compile(_L + r"\d{3}\.\d{3}\.\d{3}-\d{2}" + _R)
_CNPJ = re.compile(_L + r"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}" + _R)
_SSN = re.compile(_L + r"\d{3}-\d{2}-\d{4}" + _R)
_CEP = re.compile(_L + r"(?:\d{5}|\d{2}\.\d{3})-\d{3}" + _R)
_PHONES: Final = (
    re.compile(_L + r"\+\d[\d\s().\-]{6,20}\d" + _R),  # E.164, any grouping
    re.compile(_L + r"(?:1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}" + _R),  # US
    re.compile(_L + r"(?:\(\d{2}\)\s?|\d{2}\s)9?\d{4}[\s\-]\d{4}" + _R),  # BR with its DDD
    re.compile(_L + r"(?:9\d{4}|\d{3})-\d{4}" + _R),  # a local number: 555-1212, 91234-5678
)


def formatted_numbers(text: str) -> Iterator[Found]:
    """CPF and CNPJ in their punctuation (check digits hold), SSNs (123-45-6789), CEPs
    (01310-100) and phone numbers in E.164, US or Brazilian formats."""
    checked: tuple[tuple[re.Pattern[str], str, Callable[[str], bool]], ...] = (
        (_CPF, "cpf", cpf_ok),
        (_CNPJ, "cnpj", cnpj_ok),
        (_SSN, "ssn", ssn_ok),
        (_CEP, "cep", lambda _d: True),
    )
    for pattern, kind, ok in checked:
        for m in pattern.finditer(text):
            if ok(only_digits(m.group())):
                yield Found(m.start(), m.end(), kind, RANK_CHECKED)
    for pattern in _PHONES:
        for m in pattern.finditer(text):
            if 7 <= len(only_digits(m.group())) <= 15:
                yield Found(m.start(), m.end(), "phone", RANK_CHECKED)


# ---- emails ----

_EMAIL = re.compile(r"(?<![\w.+\-])[\w.%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_TLD = (
    r"(?:com|net|org|edu|gov|mil|int|io|co|br|uk|us|ca|de|fr|es|it|pt|ar|mx|info|biz|me|app"
    r"|dev|ai)"
)
_LABEL = r"[A-Za-z0-9]+"
_LOCAL_SEP = r"(?:[._\-]|\s+(?:dot|ponto|underscore|dash|hyphen|tra[çc]o)\s+)"
_AT = r"(?:\s+(?:at|arroba)\s+|\s*@\s*)"
_DOMAIN_SEP = r"(?:\s+(?:dot|ponto)\s+|\.)"
_NOT_PRONOUN = r"(?!(?:me|us|you|him|her|them|it|we|i|is|are|be|here|there|home|work)\b)"
_SPOKEN_EMAIL = re.compile(
    rf"\b{_NOT_PRONOUN}{_LABEL}(?:{_LOCAL_SEP}{_LABEL}){{0,3}}{_AT}"
    rf"{_LABEL}(?:{_DOMAIN_SEP}{_LABEL}){{0,3}}{_DOMAIN_SEP}{_TLD}\b",
    re.IGNORECASE,
)


def emails(text: str) -> Iterator[Found]:
    """Written emails and spoken ones ("john dot smith at example dot com", "joao arroba
    gmail ponto com"); the spoken domain ends in a known top-level domain."""
    for pattern in (_EMAIL, _SPOKEN_EMAIL):
        for m in pattern.finditer(text):
            yield Found(m.start(), m.end(), "email", RANK_EXPLICIT)


# ---- street addresses ----

_STREET_EN = (
    r"(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl"
    r"|terrace|parkway|pkwy|circle|cir|highway|hwy)"
)
_NAME_EN = r"(?:[A-Z][\w'\-]*|\d{1,3}(?:st|nd|rd|th))"
_UNIT_EN = r"(?:,?\s+(?i:apt|apartment|suite|ste|unit)\.?\s*#?\w+|,?\s+#\s?\w+)?"
_ADDRESS_EN = re.compile(
    rf"(?<![\w.,])\d{{1,6}}[A-Za-z]?\s+(?:{_NAME_EN}\.?\s+){{1,4}}{_STREET_EN}\b\.?{_UNIT_EN}"
)
_STREET_PT = r"(?i:rua|r\.|avenida|av\.?|travessa|tv\.|alameda|al\.|pra[çc]a|estrada|rodovia|largo)"
_WORD_PT = r"[^\W\d_][\w'.\-]*"
_UNIT_PT = r"(?:\s*[,\-]?\s*(?i:apto|apt|apartamento|ap|casa|bloco|bl|sala|conjunto|cj)\.?\s*\w+)*"
_NAME_PT = r"(?:d[aeo]s?\s+)?[A-ZÀ-Ý][\w'.\-]*"
"""A street's name starts with a capital, maybe after "da", "de", "do", "das", "dos"."""
_ADDRESS_PT = re.compile(
    rf"\b{_STREET_PT}\s+{_NAME_PT}(?:\s+{_WORD_PT}){{0,4}}?,?\s*"
    rf"(?:(?i:n[º°o]\.?|n[úu]mero)\s*)?\d{{1,6}}[A-Za-z]?\b{_UNIT_PT}"
)


def addresses(text: str) -> Iterator[Found]:
    """Street addresses: a number and capitalised words ending in a street word ("42 Main
    Street", "1600 Pennsylvania Ave., Apt 4"), or a Portuguese street word, its name and a
    number ("Rua das Flores, 123", "Av. Paulista 1578, apto 12")."""
    for pattern in (_ADDRESS_EN, _ADDRESS_PT):
        for m in pattern.finditer(text):
            yield Found(m.start(), m.end(), "address", RANK_EXPLICIT)


# ---- dates of birth ----

_MONTH_EN = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH_PT = (
    r"(?:janeiro|fevereiro|mar[çc]o|abril|maio|junho|julho|agosto|setembro|outubro"
    r"|novembro|dezembro)"
)
_UNITS = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
_ORDINAL_WORD = (
    rf"(?:(?:twenty|thirty)[\s\-]{_UNITS}|{_UNITS}|tenth|eleventh|twelfth|thirteenth"
    r"|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)"
)
_YEAR_WORDS = (
    r"(?:nineteen|twenty|two\s+thousand)(?:[\s\-]+(?:and|oh|one|two|three|four|five|six|seven"
    r"|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen"
    r"|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)){0,3}"
)
_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th|º)?|{_ORDINAL_WORD})"
_YEAR = rf"(?:\d{{4}}|{_YEAR_WORDS})"
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{1,2}-\d{1,2}"
    rf"|{_MONTH_EN}\.?\s+(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?"
    rf"|(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH_EN}\.?(?:,?\s+{_YEAR})?"
    rf"|{_DAY}\s+de\s+{_MONTH_PT}(?:\s+de\s+\d{{4}})?)"
)
_BIRTH = (
    r"(?:born|date\s+of\s+birth|birth\s*date|birthday|d\.?o\.?b\.?|data\s+de\s+nascimento"
    r"|nascimento|nasci|nasceu|anivers[áa]rio)"
)
_FILLER = r"(?:[\s:,\-]+(?:on|in|is|was|it's|é|foi|em|no|dia|de|the|my|meu|minha))*[\s:,\-]+"
_DOB = re.compile(rf"\b{_BIRTH}{_FILLER}(?P<date>{_DATE})\b", re.IGNORECASE)


def dates_of_birth(text: str) -> Iterator[Found]:
    """A date right after a birth context ("born on March 3rd, 1985", "date of birth is
    03/04/1985", "data de nascimento: 3 de março de 1985"); the date alone is the span."""
    for m in _DOB.finditer(text):
        yield Found(m.start("date"), m.end("date"), "dob", RANK_EXPLICIT)
