"""The digit detectors of `agents.pii`: runs of digits however the recogniser wrote them
("4111 1111 1111 1111", "4111-1111-...", "four one one one ...", "double five") with their
offsets in the text, then what each run is: a card (a Luhn-valid stretch of 13-19 digits),
a CPF or CNPJ (check digits, or the word before it), an account, SSN or CEP (the word before
it), or a phone number (its length; never after "order", "protocolo", ...). Digit words are
read as `agents.flow.digits` reads them. Pure functions (sans-IO).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Final

from agents.flow.digits import HOMOPHONES, SEPARATORS, ZERO_ONLY_INSIDE, token_digits
from agents.pii_rules import (
    RANK_CHECKED,
    RANK_CONTEXT,
    RANK_GUESS,
    Found,
    cnpj_ok,
    cpf_ok,
    luhn_ok,
)

_TOKEN = re.compile(r"[^\W_]+")
_GAP = re.compile(r"[\s,.\-/()]{0,3}")
"""What may stand between two parts of one number."""
CONTEXT_TOKENS: Final = 4
"""How many words before a run may name it ("my account number is 1234...")."""

ACCOUNT_WORDS: Final = frozenset(
    {"account", "acct", "conta", "agência", "agencia", "routing", "iban", "poupança", "poupanca"}
)
ORDER_WORDS: Final = frozenset(
    {"order", "pedido", "protocol", "protocolo", "ticket", "invoice", "reference", "confirmation",
     "tracking", "booking", "reservation", "reserva", "fatura", "boleto", "chamado", "case"}
)  # fmt: skip
PHONE_WORDS: Final = frozenset(
    {"phone", "telephone", "cell", "mobile", "telefone", "celular", "whatsapp", "fone"}
)
MONEY_WORDS: Final = frozenset(
    {"dollars", "dollar", "bucks", "cents", "reais", "real", "centavos", "euros", "percent"}
)
_CURRENCY = re.compile(r"(?:[$€£]|R\$)\s*$")
_DATE = re.compile(r"(?<!\d)(?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{1,2}-\d{1,2})(?!\d)")
"""A date inside a run ("03/04/2025 10" is a date and an hour, not a phone number)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Part:
    """One piece of a run: `text[start:end]` says `digits`."""

    start: int
    end: int
    digits: str


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """Digits said in a row, the words before it (lower case) and the word after it."""

    parts: tuple[Part, ...]
    before: tuple[str, ...]
    after: str

    @property
    def digits(self) -> str:
        return "".join(p.digits for p in self.parts)

    @property
    def start(self) -> int:
        return self.parts[0].start

    @property
    def end(self) -> int:
        return self.parts[-1].end


def _tokens(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    spans = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    words = [text[a:b].lower() for a, b in spans]
    return spans, words


def _digit_at(words: list[str], i: int, inside: bool) -> tuple[str, int] | None:
    """The digits of the word(s) at `i` (as `agents.flow.digits` reads them) and how many
    words they take; a numeral only when it is all ASCII digits."""
    word = words[i]
    if word.isdigit():
        return (word, 1) if word.isascii() else None
    got = token_digits(words, i)
    nxt = token_digits(words, i + 1) if i + 1 < len(words) else None
    if got is not None and word in ZERO_ONLY_INSIDE and not (inside or nxt is not None):
        return None
    if got is not None and word == "hundred" and not inside:
        return None
    if got is None and inside and nxt is not None and word in HOMOPHONES:
        return HOMOPHONES[word], 1
    return got


def runs(text: str) -> Iterator[Run]:
    """Every run of digits in `text` (numerals and digit words, with separators between)."""
    spans, words = _tokens(text)
    parts: list[Part] = []
    first = 0

    def close(next_i: int) -> Run:
        after = words[next_i] if next_i < len(words) else ""
        return Run(tuple(parts), tuple(words[max(0, first - CONTEXT_TOKENS) : first]), after)

    i, last_end = 0, 0
    while i < len(words):
        if parts and not _GAP.fullmatch(text[last_end : spans[i][0]]):
            yield close(i)
            parts = []
        got = _digit_at(words, i, bool(parts))
        if got is not None:
            if not parts:
                first = i
            last_end = spans[i + got[1] - 1][1]
            parts.append(Part(spans[i][0], last_end, got[0]))
            i += got[1]
            continue
        if parts and words[i] in SEPARATORS:
            last_end = spans[i][1]
            i += 1
            continue
        if parts:
            yield close(i)
            parts = []
        i += 1
    if parts:
        yield close(len(words))


def _card(run: Run) -> Found | None:
    """The longest stretch of whole parts with 13-19 digits whose Luhn checksum holds (a
    card's groups with a code after them, "4111 1111 1111 1111 123"); a run said digit by
    digit only as a whole (one of its stretches would pass the checksum by chance)."""
    best: Found | None = None
    parts = run.parts
    if any(len(part.digits) == 1 for part in parts):
        digits = run.digits
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return Found(run.start, run.end, "card", RANK_CHECKED)
        return None
    for a in range(len(parts)):
        digits = ""
        for b in range(a, len(parts)):
            digits += parts[b].digits
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_ok(digits):
                found = Found(parts[a].start, parts[b].end, "card", RANK_CHECKED)
                if best is None or found.end - found.start > best.end - best.start:
                    best = found
    return best


def _is_phone(digits: str, before: set[str]) -> bool:
    n = len(digits)
    if n == 10:
        return True
    if n == 11:
        return digits[0] == "1" or digits[2] == "9"
    if n in (12, 13):
        return digits.startswith("55")
    return n in (8, 9) and bool(before & PHONE_WORDS)


def _kinds(run: Run, said: str) -> Iterator[tuple[str, int]]:
    """What the whole run (`said`, as written) may be, with the rank of each reading."""
    digits, before = run.digits, set(run.before)
    order = bool(before & ORDER_WORDS)
    n = len(digits)
    if n == 11 and ("cpf" in before or (cpf_ok(digits) and not order)):
        yield "cpf", RANK_CHECKED
    if n == 14 and ("cnpj" in before or (cnpj_ok(digits) and not order)):
        yield "cnpj", RANK_CHECKED
    if 4 <= n <= 20 and before & ACCOUNT_WORDS:
        yield "account", RANK_CONTEXT
    if n == 9 and before & {"ssn", "social"}:
        yield "ssn", RANK_CONTEXT
    if n == 8 and "cep" in before:
        yield "cep", RANK_CONTEXT
    if not order and _is_phone(digits, before) and not _DATE.search(said):
        yield "phone", RANK_GUESS


def digit_runs(text: str) -> Iterator[Found]:
    """The cards, ids, accounts and phone numbers said as runs of digits in `text`; a run
    that is an amount of money ("$1,299.99", "1500 reais") is none of them."""
    for run in runs(text):
        if run.after in MONEY_WORDS or _CURRENCY.search(text[: run.start]):
            continue
        card = _card(run)
        if card is not None:
            yield card
        for kind, rank in _kinds(run, text[run.start : run.end]):
            yield Found(run.start, run.end, kind, rank)
