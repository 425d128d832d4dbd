"""Digit strings from speech: phone, card and order numbers however the recogniser wrote them.

Callers read numbers in groups ("five five five, one two one two", "double five", "oh" for
zero), and Whisper writes them back in any of several forms ("5 5 5 1212", "555-1212",
"five five five twelve twelve"). `find_digits` turns the longest run of such words in a line
into one digit string ("5551212"); `group_digits` splits a digit string into the groups a
person reads back ("555, 1212"); `spoken_groups` writes those groups for TTS one digit at a
time ("5 5 5, 1 2 1 2"). Pure functions over text (sans-IO).
"""

from __future__ import annotations

from agents.words.text import normalize

DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
TEENS = {
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
    "fifteen": "15",
    "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18",
    "nineteen": "19",
}
TENS = {
    "twenty": "2",
    "thirty": "3",
    "forty": "4",
    "fifty": "5",
    "sixty": "6",
    "seventy": "7",
    "eighty": "8",
    "ninety": "9",
}
REPEATS = {"double": 2, "triple": 3}
SEPARATORS = frozenset({"dash", "hyphen", "space", "point"})
"""Words said between groups that are not digits themselves."""
HOMOPHONES = {"to": "2", "too": "2", "for": "4", "won": "1", "ate": "8"}
"""Trusted only between two digits ("five to one" in a number is 5 2 1)."""
ZERO_ONLY_INSIDE = frozenset({"oh", "o"})
"""Zero only inside a run of digits ("oh, it's five five five" does not start with 0)."""


def token_digits(toks: list[str], i: int) -> tuple[str, int] | None:
    """The digits the words at `toks[i]` stand for, and how many words they take (`toks`
    normalised: lower case, no punctuation); None when `toks[i]` is not a digit word."""
    tok = toks[i]
    nxt = toks[i + 1] if i + 1 < len(toks) else ""
    if tok.isdigit():
        return tok, 1
    if tok in REPEATS and nxt in DIGIT_WORDS and nxt not in ZERO_ONLY_INSIDE:
        return DIGIT_WORDS[nxt] * REPEATS[tok], 2
    if tok in REPEATS and (nxt in ("oh", "o") or (nxt.isdigit() and len(nxt) == 1)):
        return (DIGIT_WORDS.get(nxt) or nxt) * REPEATS[tok], 2
    if tok in DIGIT_WORDS:
        return DIGIT_WORDS[tok], 1
    if tok in TEENS:
        return TEENS[tok], 1
    if tok in TENS:
        if nxt in DIGIT_WORDS and nxt not in ("zero", "oh", "o"):
            return TENS[tok] + DIGIT_WORDS[nxt], 2
        return TENS[tok] + "0", 1
    if tok == "hundred":
        return "00", 1
    return None


def _runs(toks: list[str]) -> list[str]:
    """Every run of digit words in `toks`, as digit strings."""
    runs: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        got = token_digits(toks, i)
        inside = bool(current)
        nxt_is_digit = i + 1 < len(toks) and token_digits(toks, i + 1) is not None
        if got is not None and tok in ZERO_ONLY_INSIDE and not (inside or nxt_is_digit):
            got = None
        if got is not None and tok == "hundred" and not inside:
            got = None
        if got is None and inside and nxt_is_digit and tok in HOMOPHONES:
            got = HOMOPHONES[tok], 1
        if got is not None:
            current.append(got[0])
            i += got[1]
            continue
        if inside and tok in SEPARATORS:
            i += 1
            continue
        if current:
            runs.append("".join(current))
            current = []
        i += 1
    if current:
        runs.append("".join(current))
    return runs


def find_digits(text: str, *, min_digits: int = 1, max_digits: int = 32) -> str | None:
    """The longest run of digits said in `text` ("five five five one two one two",
    "5 5 5 1212", "555-1212", "double five five" → "5551212" / "555"), or None when the
    longest has fewer than `min_digits` or more than `max_digits` digits."""
    runs = _runs(normalize(text).split())
    if not runs:
        return None
    best = max(runs, key=len)
    return best if min_digits <= len(best) <= max_digits else None


def group_digits(digits: str) -> list[str]:
    """The groups a person reads `digits` in: 7 → 3+4, 10 → 3+3+4, 11 starting with 1 →
    1+3+3+4, 8/12/16 → fours, else threes with a last group of up to four."""
    n = len(digits)
    if n <= 4:
        sizes = [n]
    elif n == 7:
        sizes = [3, 4]
    elif n == 10:
        sizes = [3, 3, 4]
    elif n == 11 and digits[0] == "1":
        sizes = [1, 3, 3, 4]
    elif n % 4 == 0:
        sizes = [4] * (n // 4)
    else:
        sizes = [3] * ((n - 4) // 3) + ([n - 3 * ((n - 4) // 3)] if n > 4 else [])
        if sizes[-1] > 4:
            sizes[-1:] = [3, sizes[-1] - 3]
    out, at = [], 0
    for size in sizes:
        out.append(digits[at : at + size])
        at += size
    return out


def spoken_groups(digits: str) -> str:
    """`digits` for TTS, one digit at a time, in groups: "555, 1212" read as "5 5 5, 1 2 1 2"."""
    return ", ".join(" ".join(group) for group in group_digits(digits))


def digits_to_numbers(text: str, *, singles: bool = False) -> str:
    """`text` normalised (see `agents.words.text.normalize`) with every run of spoken digits
    written as one digit string ("call five five five one two" → "call 55512"); a single
    number word stays a word ("one more thing") unless `singles`."""
    toks = normalize(text).split()
    out: list[str] = []
    i = 0
    while i < len(toks):
        j, digits = _run_at(toks, i)
        if len(digits) >= 2 or (digits and (singles or toks[i].isdigit())):
            out.append(digits)
            i = j
        else:
            out.append(toks[i])
            i += 1
    return " ".join(out)


def _run_at(toks: list[str], i: int) -> tuple[int, str]:
    """The end of the digit run starting at `toks[i]` (i itself when none) and its digits."""
    parts: list[str] = []
    j = i
    while j < len(toks):
        got = token_digits(toks, j)
        if got is not None and toks[j] in ZERO_ONLY_INSIDE and not parts:
            nxt = token_digits(toks, j + 1) if j + 1 < len(toks) else None
            got = got if nxt is not None else None
        if got is None or (toks[j] == "hundred" and not parts):
            break
        parts.append(got[0])
        j += got[1]
    return j, "".join(parts)
