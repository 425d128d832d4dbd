"""Personal data in a line of text, replaced by typed placeholders: the redaction that every
place a call's words leave the node applies (analytics events and the outbox, so webhooks and
the Redis Stream; the stored call records behind the history API; the live feed; the LLM's
view of what the caller said), by the tenant's policy (the kinds it redacts; all by default).

`redact(text, kinds)` finds every kind (the detectors are in `agents.pii_rules`, patterns and
check digits, and `agents.pii_digits`, numbers said digit by digit), settles overlaps (the
surer reading wins, then the longer span), and replaces the spans of the kinds asked for with
their placeholder (`[CARD]`, `[EMAIL]`, ...). The rest of the line is unchanged, a line is never
dropped, and `spans` maps each placeholder back to where its value was. Rule-based and pure
(sans-IO): the same line always gives the same answer.

| kind | placeholder | what |
| --- | --- | --- |
| `card` | `[CARD]` | 13-19 digits whose Luhn checksum holds, in any grouping or said as words |
| `cpf`, `cnpj` | `[CPF]`, `[CNPJ]` | check digits, or 11/14 digits after "CPF"/"CNPJ" |
| `cep` | `[CEP]` | 01310-100, or 8 digits after "CEP" |
| `ssn` | `[SSN]` | 123-45-6789, or 9 digits after "SSN"/"social security" |
| `account` | `[ACCOUNT]` | 4-20 digits after "account", "conta", "agência", "routing", "IBAN" |
| `email` | `[EMAIL]` | written, or spoken ("john at example dot com", "arroba ... ponto com") |
| `phone` | `[PHONE]` | E.164, US and Brazilian formats; 10-13 digits (not after "order", ...) |
| `address` | `[ADDRESS]` | "42 Main Street", "Rua das Flores, 123", "Av. Paulista 1578" |
| `dob` | `[DOB]` | a date after "born", "date of birth", "nascimento", "nasci em" |
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final, Literal, get_args

import msgspec

from agents.pii_digits import digit_runs
from agents.pii_rules import Found, addresses, dates_of_birth, emails, formatted_numbers

PiiKind = Literal[
    "card", "cpf", "cnpj", "cep", "ssn", "account", "email", "phone", "address", "dob"
]  # fmt: skip
ALL_KINDS: Final[frozenset[str]] = frozenset(get_args(PiiKind))
"""Every kind: what a tenant that set no policy gets redacted."""
PLACEHOLDERS: Final[dict[str, str]] = {kind: f"[{kind.upper()}]" for kind in get_args(PiiKind)}
NO_KINDS: Final[frozenset[str]] = frozenset()


class PiiSpan(msgspec.Struct, frozen=True):
    """A redacted value: `text[start:end]` of the original line became
    `redacted[out_start:out_end]` (its placeholder)."""

    kind: str
    start: int
    end: int
    out_start: int
    out_end: int


class Redaction(msgspec.Struct, frozen=True):
    """A line with its personal data replaced: the new `text`, the kinds replaced (each once,
    in the order they first appear) and where each placeholder stands."""

    text: str
    kinds: tuple[str, ...] = ()
    spans: tuple[PiiSpan, ...] = ()


def find(text: str) -> list[Found]:
    """Every kind of personal data in `text`, overlaps settled, in order."""
    candidates: list[Found] = [
        *emails(text),
        *addresses(text),
        *dates_of_birth(text),
        *formatted_numbers(text),
        *digit_runs(text),
    ]
    candidates.sort(key=lambda f: (f.rank, f.start - f.end, f.start))
    chosen: list[Found] = []
    for found in candidates:
        if found.end > found.start and all(
            found.end <= other.start or found.start >= other.end for other in chosen
        ):
            chosen.append(found)
    return sorted(chosen, key=lambda f: f.start)


def redact(text: str, kinds: Collection[str] = ALL_KINDS) -> Redaction:
    """`text` with the values of `kinds` replaced by their placeholders (see the module)."""
    if not kinds or not text:
        return Redaction(text)
    out: list[str] = []
    spans: list[PiiSpan] = []
    at = 0
    length = 0
    for found in find(text):
        if found.kind not in kinds:
            continue
        out.append(text[at : found.start])
        length += found.start - at
        placeholder = PLACEHOLDERS[found.kind]
        out.append(placeholder)
        spans.append(PiiSpan(found.kind, found.start, found.end, length, length + len(placeholder)))
        length += len(placeholder)
        at = found.end
    if not spans:
        return Redaction(text)
    out.append(text[at:])
    seen = dict.fromkeys(span.kind for span in spans)
    return Redaction("".join(out), tuple(seen), tuple(spans))


def redact_text(text: str, kinds: Collection[str] = ALL_KINDS) -> str:
    """`redact(text, kinds).text`."""
    return redact(text, kinds).text


def merge_kinds(*groups: Iterable[str]) -> list[str]:
    """The kinds of several redactions, each once, in order."""
    return list(dict.fromkeys(kind for group in groups for kind in group))


def parse_kinds(kinds: Iterable[str]) -> frozenset[str]:
    """A policy from names; `ValueError` naming the first unknown kind."""
    policy = frozenset(kinds)
    unknown = sorted(policy - ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown kind {unknown[0]!r}; known: {', '.join(sorted(ALL_KINDS))}")
    return policy
