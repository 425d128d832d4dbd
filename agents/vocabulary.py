"""An agent's vocabulary: the names its callers say (business, people, services, places,
products), used twice on every call.

- The recogniser gets it as context (`stt_context`: the terms as a short sentence that Whisper
  reads as the text before the utterance), which makes it likelier to write "Delta Dental" than
  "metal to metal". Kept short: a long prompt costs decode time and invites the model to
  repeat it over silence.
- The flow matcher snaps near misses back to the terms (`Vocabulary.snap`): a run of words that
  looks or sounds like a term (character similarity, similarity of a rough consonant skeleton
  in which d/t, b/p, m/n... are one sound, or the phoneme distance of `agents.words.phonetic`,
  weighted by what a phone line confuses: "melter mendel" for "delta dental") becomes the
  term, so an intent whose examples name it still matches. Only close matches snap, and never
  a run that starts or ends with a function word ("the dental" stays).

Pure functions over text (sans-IO).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from difflib import SequenceMatcher

from agents.words import phonetic
from agents.words.text import normalize

MAX_TERMS = 50
MAX_TERM_CHARS = 60
MAX_TERM_WORDS = 5
STT_CONTEXT_CHARS = 160
"""The recogniser's context is the terms that fit in this many characters (in order)."""
SNAP_THRESHOLD = 0.85
"""A run of two or more words snaps from this close; a single word needs 0.05 more
("feeling" is not "filling")."""
MIN_KEY_LEN = 4
"""Sound skeletons shorter than this say too little to compare ("at now" ~ "Aetna")."""
PHONETIC_THRESHOLD = 0.8
"""A run of as many words as the term snaps from this close by `agents.words.phonetic`
(telephone confusions weighted: "melter mendel" ~ "delta dental" 0.80, "front neck" ~ "front
desk" 0.86), if both have `MIN_PHONETIC_CONSONANTS`; a single word needs 0.05 more."""
MIN_PHONETIC_CONSONANTS = 4
"""Fewer consonants sound like too much ("time" ~ "Tony", "clone" ~ "calzone")."""
MAX_EXTRA_SOUNDS = 3
"""A run with this many more (or fewer) consonants than the term is not compared by sound."""

_TERM = re.compile(r"^[\w][\w .,'&+/-]*$")
_FUNCTION_WORDS = frozenset(
    """a an the i me my we our you your it is am are was be to of for on in at and or so um uh
    oh hi hello hey well please can could would will do does this that with about if no yes
    not just some any""".split()
)
_SOUNDS = str.maketrans(
    {"b": "p", "d": "t", "g": "k", "c": "k", "q": "k", "x": "k", "j": "k", "m": "n"}
    | {"v": "f", "z": "s"}
)
_REPEAT = re.compile(r"(.)\1+")


def check_vocabulary(terms: Sequence[str]) -> list[str]:
    """Problems with a spec's `vocabulary`, each naming the entry (empty: fine)."""
    problems: list[str] = []
    if len(terms) > MAX_TERMS:
        problems.append(f"vocabulary: at most {MAX_TERMS} terms (got {len(terms)})")
    seen: set[str] = set()
    for i, term in enumerate(terms):
        where = f"vocabulary[{i}] {term!r}"
        if not term.strip() or not _TERM.match(term.strip()):
            problems.append(f"{where}: letters, digits, spaces and .,'&+/- only, not empty")
        elif len(term) > MAX_TERM_CHARS or len(term.split()) > MAX_TERM_WORDS:
            problems.append(
                f"{where}: at most {MAX_TERM_WORDS} words and {MAX_TERM_CHARS} characters"
            )
        elif normalize(term) in seen:
            problems.append(f"{where}: listed twice")
        seen.add(normalize(term))
    return problems


def stt_context(terms: Sequence[str], max_chars: int = STT_CONTEXT_CHARS) -> str:
    """The terms as the recogniser's context ("Bright Smile Dental, Delta Dental."), as many
    as fit in `max_chars`, in the order the spec lists them; "" without terms."""
    kept: list[str] = []
    size = 0
    for term in terms:
        cost = len(term.strip()) + 2
        if size + cost > max_chars:
            break
        kept.append(term.strip())
        size += cost
    return ", ".join(kept) + "." if kept else ""


def sound_key(text: str) -> str:
    """A rough consonant skeleton: first letter, then consonants with voiced/unvoiced pairs
    and m/n merged, repeats collapsed ("metal to metal" and "delta dental" come close)."""
    s = re.sub(r"[^a-z]", "", text.lower())
    s = s.replace("ph", "f").replace("ck", "k").replace("th", "t")
    if not s:
        return ""
    skeleton = s[0] + re.sub(r"[aeiouyhw]", "", s[1:])
    return _REPEAT.sub(r"\1", skeleton.translate(_SOUNDS))


@dataclasses.dataclass(frozen=True, slots=True)
class _Term:
    text: str
    words: tuple[str, ...]
    letters: str
    key: str
    phones: str


def similarity(words: Sequence[str], term: _Term) -> float:
    """How close a run of words is to `term` (0..1): spelling or sound, whichever is closer.
    Sound is the consonant skeleton (not for one word against a one-word term: "calling" and
    "clinic" would both be "cleaning") or the phoneme distance (word for word, and only where
    both have enough consonants to tell them apart), each scaled to its own threshold."""
    letters = "".join(words)
    spelled = SequenceMatcher(None, letters, term.letters).ratio()
    key = sound_key(letters)
    best = spelled
    if not (len(words) == 1 and len(term.words) == 1) and min(len(key), len(term.key)) >= (
        MIN_KEY_LEN
    ):
        best = max(best, SequenceMatcher(None, key, term.key).ratio())
    sounds = phonetic.phones(" ".join(words))
    counts = phonetic.consonants(sounds), phonetic.consonants(term.phones)
    if (
        len(words) == len(term.words)  # "need a dental" is not "delta dental"
        and min(counts) >= MIN_PHONETIC_CONSONANTS
        and abs(counts[0] - counts[1]) <= MAX_EXTRA_SOUNDS
    ):
        # on the snapping scale: PHONETIC_THRESHOLD here is SNAP_THRESHOLD there
        near = phonetic.similarity(sounds, term.phones)
        best = max(best, near + SNAP_THRESHOLD - PHONETIC_THRESHOLD)
    return best


class Vocabulary:
    """One agent's terms, ready to snap normalised lines to (build once per call)."""

    def __init__(self, terms: Sequence[str], threshold: float = SNAP_THRESHOLD) -> None:
        self._threshold = threshold
        self._terms = []
        for raw in terms:
            text = normalize(raw)
            if text:
                letters = text.replace(" ", "")
                self._terms.append(
                    _Term(
                        text,
                        tuple(text.split()),
                        letters,
                        sound_key(letters),
                        phonetic.phones(text),
                    )
                )

    def __bool__(self) -> bool:
        return bool(self._terms)

    def snap(self, norm: str) -> str:
        """`norm` (a normalised line) with each run of words close to a term replaced by the
        term; the closest runs first, never overlapping."""
        words = norm.split()
        if not self._terms or not words:
            return norm
        found: list[tuple[float, int, int, str]] = []
        for term in self._terms:
            found.extend(self._candidates(words, term))
        taken = [False] * len(words)
        spans: list[tuple[int, int, str]] = []
        for _score, start, end, text in sorted(found, key=lambda c: (-c[0], c[1])):
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                spans.append((start, end, text))
        for start, end, text in sorted(spans, reverse=True):
            words[start:end] = [text]
        return " ".join(words)

    def _candidates(self, words: list[str], term: _Term) -> list[tuple[float, int, int, str]]:
        """Runs of `words` as long as `term` or one word longer that come close to it."""
        out: list[tuple[float, int, int, str]] = []
        k = len(term.words)
        for n in (k, k + 1):
            for start in range(len(words) - n + 1):
                run = words[start : start + n]
                if run == list(term.words):
                    out.append((2.0, start, start + n, term.text))  # said right: keep it
                    continue
                edges = (run[0], run[-1])
                if any(w in _FUNCTION_WORDS and w not in term.words for w in edges):
                    continue
                score = similarity(run, term)
                if score >= (self._threshold + 0.05 if n == 1 else self._threshold):
                    out.append((score, start, start + n, term.text))
        return out
