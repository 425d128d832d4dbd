"""Text normalisation for transcripts: what intent matching and slot extraction work on.

Speech-to-text output varies in case, punctuation and spelling ("Two PM.", "2 p.m.", "2pm",
"I'd like..."), so everything is lowercased, punctuation is dropped, "a.m."/"p.m." become
"am"/"pm", common contractions are expanded, digits are split from units and a few words
written two ways get one spelling ("alright" as "all right"). Pure functions.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u201c": '"', "\u201d": '"'})

CONTRACTIONS = {
    "i'd": "i would",
    "i'm": "i am",
    "i've": "i have",
    "i'll": "i will",
    "it's": "it is",
    "that's": "that is",
    "what's": "what is",
    "who's": "who is",
    "there's": "there is",
    "let's": "let us",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "isn't": "is not",
    "aren't": "are not",
    "wasn't": "was not",
    "name's": "name is",
    "where's": "where is",
    "how's": "how is",
    "here's": "here is",
    "when's": "when is",
    "hasn't": "has not",
    "haven't": "have not",
    "hadn't": "had not",
    "couldn't": "could not",
    "wouldn't": "would not",
    "shouldn't": "should not",
    "weren't": "were not",
    "we've": "we have",
    "you've": "you have",
    "they've": "they have",
    "we'll": "we will",
    "you'll": "you will",
    "they'll": "they will",
    "you'd": "you would",
    "we'd": "we would",
    "they'd": "they would",
    "o'clock": "oclock",
}

SPELLINGS = {"alright": "all right", "good bye": "goodbye"}
"""One spelling for what recognisers write several ways."""

_MERIDIEM = re.compile(r"\b([ap])\s?\.\s?m\b\.?")
_DIGIT_UNIT = re.compile(r"(\d)([a-z])")
_NON_WORD = re.compile(r"[^a-z0-9':\s]")
_STRAY_COLON = re.compile(r"(?<!\d):|:(?!\d)")
_CONTRACTION = re.compile(r"\b(" + "|".join(re.escape(k) for k in CONTRACTIONS) + r")\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_SPELLING = re.compile(r"\b(" + "|".join(re.escape(k) for k in SPELLINGS) + r")\b")


def normalize(text: str) -> str:
    """Lowercase, unify quotes, expand contractions, drop punctuation; single spaces."""
    t = text.translate(_QUOTES).lower()
    t = _MERIDIEM.sub(r"\1m", t)
    t = _CONTRACTION.sub(lambda m: CONTRACTIONS[m.group(1)], t)
    t = t.replace("-", " ")
    t = _NON_WORD.sub(" ", t)
    t = t.replace("'", "")
    t = _STRAY_COLON.sub(" ", t)
    t = _ORDINAL.sub(r"\1", t)
    t = _DIGIT_UNIT.sub(r"\1 \2", t)
    t = " ".join(t.split())
    return _SPELLING.sub(lambda m: SPELLINGS[m.group(1)], t)


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def stem(token: str) -> str:
    """A crude, deterministic stem so "cleaning", "cleaned" and "cleans" meet at "clean"."""
    if len(token) > 5 and token.endswith("ing"):
        token = token[:-3]
        if len(token) > 2 and token[-1] == token[-2]:  # "booking" ok, "shopping" → "shop"
            token = token[:-1]
        return token
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith("ed"):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def similar(a: str, b: str, cutoff: float = 0.8) -> bool:
    """Exact match, or a near spelling of a word of 4+ letters with the same first letter
    ("wensday" ~ "wednesday"; not "reschedule" ~ "schedule")."""
    if a == b:
        return True
    if len(a) < 4 or len(b) < 4 or a[0] != b[0] or a.isdigit() or b.isdigit():
        return False
    return SequenceMatcher(None, a, b).ratio() >= cutoff


UNITS = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
HOMOPHONES = {"to": 2, "too": 2, "for": 4, "fore": 4, "won": 1, "ate": 8}
"""Words a transcriber writes for a spoken number; trusted only where a number is expected."""


def word_number(toks: list[str], start: int) -> tuple[int, int] | None:
    """Parse a number in digits or words at `toks[start]`: ``(value, tokens used)``.

    Handles "25", "twenty five", "a hundred and five", "two hundred thirty". Adjacent small
    numbers stay apart ("ten thirty" is 10, then 30), which is what times need.
    """
    if start >= len(toks):
        return None
    if toks[start].isdigit():
        return int(toks[start]), 1
    total = 0
    current: int | None = None
    end = start
    i = start
    while i < len(toks):
        tok = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if tok == "a" and i == start and nxt == "hundred":
            current = 1
        elif tok in TENS and current is None:
            current = TENS[tok]
        elif tok in UNITS and tok != "oh" and (current is None or current in TENS.values()):
            current = (current or 0) + UNITS[tok]
        elif tok == "hundred" and current is not None and current < 10 and not total:
            total, current = current * 100, None
        elif tok == "and" and total and current is None and (nxt in UNITS or nxt in TENS):
            i += 1
            continue
        else:
            break
        i += 1
        end = i
    if end == start or (current is None and not total):
        return None
    return total + (current or 0), end - start
