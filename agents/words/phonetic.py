"""How words sound, roughly, and how far apart two sound strings are over a phone line.

Speech recognition on telephone audio writes words that sound like what was said ("Melter
Mendel" for "Delta Dental", "front neck" for "front desk", "look leading" for "a cleaning"):
the spelling is far, the sound is near. `phones` turns English spelling into a rough phoneme
string (a Metaphone-like key that keeps one symbol per vowel group), and `distance` is an
edit distance over it whose costs follow what the telephone band and a recogniser confuse:
voicing (t/d), nasals with each other and with voiced stops (m/n/d), fricatives with each
other (s/sh/f/th: their energy is mostly above the band's 4 kHz), liquids and glides (l/r/w/y);
vowels are one symbol and cost little. Pure functions, deterministic, no models.
"""

from __future__ import annotations

import re
from functools import lru_cache

VOWEL = "a"
"""One symbol for any vowel group: recognisers keep syllables better than vowel quality."""
VOWEL_COST = 0.3
"""Inserting or deleting a vowel group (a syllable's nucleus, weakly heard)."""
WEAK = frozenset("wylr")
"""Consonants a line drops or adds easily (glides, liquids; h is left out altogether)."""
FRICATIVES = frozenset("fv0szxC")
"""th is `0`, sh `x`, ch `C` (an affricate, grouped with the fricatives it is heard as)."""
NASALS = frozenset("mnq")
"""ng is `q`."""
VOICED_STOPS = frozenset("bdg")
STOPS = frozenset("pbtdkg")
_VOICING = {frozenset(p) for p in ("pb", "td", "kg", "fv", "sz", "0t", "Cj", "xj", "0d")}

_DIGRAPHS = (
    ("tch", "C"),
    ("sch", "sk"),
    ("ph", "f"),
    ("gh", ""),
    ("ck", "k"),
    ("th", "0"),
    ("sh", "x"),
    ("ch", "C"),
    ("wh", "w"),
    ("dge", "je"),
    ("tio", "xo"),
    ("tia", "xa"),
    ("cia", "xa"),
    ("cio", "xo"),
)
_INITIAL = re.compile(r"^(kn|gn|pn|wr|ps)")
_SOFT = re.compile(r"([cg])(?=[eiy])")
_NG = re.compile(r"ng(?![aeiouy])")
_VOWELS = re.compile(r"[aeiou]+")


@lru_cache(maxsize=4096)
def phones(text: str) -> str:
    """A rough phoneme string of `text`, word by word, without word breaks: "delta dental"
    is `daltadantal`, "front desk" `frantdask`, "checkup" `Cakap`."""
    return re.sub(r"(.)\1+", r"\1", "".join(_word(w) for w in text.lower().split()))


def _word(word: str) -> str:
    s = re.sub(r"[^a-z]", "", word)
    s = _INITIAL.sub(lambda m: m.group(1)[1], s)
    s = s.replace("qu", "kw").replace("q", "k").replace("x", "ks")
    for spelled, sound in _DIGRAPHS:
        s = s.replace(spelled, sound)
    s = _NG.sub("q", s)
    s = _SOFT.sub(lambda m: "s" if m.group(1) == "c" else "j", s)
    s = s.replace("c", "k")
    s = re.sub(r"y(?![aeiou])", "a", s)  # "try", "tiny": y as a vowel
    s = re.sub(r"w(?![aeiouy])", "", s)  # "know", "saw": w after a vowel
    s = s.replace("h", "")  # weak on the line, and often silent
    return _VOWELS.sub(VOWEL, s)


def _sub_cost(a: str, b: str) -> float:
    """What writing `b` for a heard `a` costs (0..1)."""
    if a == b:
        return 0.0
    if VOWEL in (a, b):
        return 1.0
    pair = frozenset((a, b))
    if pair in _VOICING or pair <= NASALS:
        return 0.3
    if pair <= FRICATIVES or pair <= NASALS | VOICED_STOPS:
        return 0.5
    if pair <= STOPS or pair <= WEAK:
        return 0.6
    return 1.0


def _gap_cost(a: str) -> float:
    if a == VOWEL:
        return VOWEL_COST
    if a in WEAK:
        return 0.5
    if a in FRICATIVES:
        return 0.6
    return 1.0


_SYMBOLS = VOWEL + "bdfgjklmnpqrstvwxyzC0"
_SUB = {a: {b: _sub_cost(a, b) for b in _SYMBOLS} for a in _SYMBOLS}
_GAP = {a: _gap_cost(a) for a in _SYMBOLS}
"""The costs as tables: the alignments below run per example and line on every turn."""


def weight(p: str) -> float:
    """How much there is to hear in phoneme string `p`: a consonant 1, a vowel group less."""
    return sum(VOWEL_COST if c == VOWEL else 1.0 for c in p)


def consonants(p: str) -> int:
    return sum(1 for c in p if c != VOWEL)


def _align(a: str, b: str, *, free_ends: bool) -> float:
    """The cheapest edit of `a` into `b`, or (`free_ends`) into any stretch of `b`."""
    gaps_b = [_GAP[c] for c in b]
    prev = [0.0] * (len(b) + 1)
    if not free_ends:
        for j, g in enumerate(gaps_b, 1):
            prev[j] = prev[j - 1] + g
    for ca in a:
        subs, gap_a = _SUB[ca], _GAP[ca]
        row = [prev[0] + gap_a]
        left = row[0]
        for j, cb in enumerate(b):
            left = min(prev[j + 1] + gap_a, left + gaps_b[j], prev[j] + subs[cb])
            row.append(left)
        prev = row
    return min(prev) if free_ends else prev[-1]


def distance(a: str, b: str) -> float:
    """Weighted edit distance between phoneme strings `a` and `b`."""
    return _align(a, b, free_ends=False)


def similarity(a: str, b: str) -> float:
    """1 - distance over the heavier string's weight (0..1; 1: the same sounds)."""
    top = max(weight(a), weight(b))
    return 1.0 - distance(a, b) / top if top else 1.0


def best_window(needle: str, haystack: str) -> float:
    """The lowest cost of `needle` against any stretch of `haystack` (free to skip what comes
    before and after it): how well `haystack` contains something that sounds like `needle`."""
    return _align(needle, haystack, free_ends=True) if needle else 0.0


@lru_cache(maxsize=4096)
def contained(needle: str, haystack: str) -> float:
    """How well `haystack` contains the sounds of `needle` (0..1), see `best_window`."""
    top = weight(needle)
    return max(0.0, 1.0 - best_window(needle, haystack) / top) if top else 0.0
