"""Intent matching: which of a node's intents the caller's words mean, with a score in 0..1.

Deterministic and model-free. Each example phrase is compared with the utterance by the
content words they share (stemmed, near spellings allowed): mostly how much of the example
is present (recall), some how much of the utterance it explains (precision). An example found
verbatim scores 0.75..1.0 (1.0 when it is the whole utterance); a keyword present scores 0.8.
The built-in `yes`/`no` intents use the yes/no slot extractor. Ties go to the intent listed
first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from agents.flow.slots import extract_yes_no
from agents.flow.spec import IntentSpec
from agents.flow.text import normalize, similar, stem

STOPWORDS = frozenset(
    """a an the i me my im we our us you your it its is am are was be been to of for on in at
    and or so just um uh uhm er ah oh hi hello hey well please can could would will do does
    did want wanna like need id ill get some any this that there these those with about if
    okay ok yeah yes no all thanks thank really actually maybe kind sort gonna going""".split()
)
"""Words too common to tell intents apart (question words stay: "when", "what", "who")."""

KEYWORD_SCORE = 0.8
PHRASE_SCORE = 0.75
RECALL_WEIGHT = 0.7


@dataclasses.dataclass(frozen=True, slots=True)
class IntentMatch:
    intent: str
    score: float


def content(words: Sequence[str]) -> list[str]:
    return [stem(w) for w in words if w not in STOPWORDS]


def _present(word: str, pool: Sequence[str]) -> bool:
    return any(similar(word, other) for other in pool)


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


@dataclasses.dataclass(frozen=True, slots=True)
class _Phrase:
    text: str
    words: tuple[str, ...]


def _phrase(raw: str) -> _Phrase:
    text = normalize(raw)
    return _Phrase(text, tuple(content(text.split())))


class IntentMatcher:
    """Scores utterances against a fixed set of intents (build once per flow)."""

    def __init__(self, intents: Mapping[str, IntentSpec], default_threshold: float) -> None:
        self._default = default_threshold
        self._thresholds = {
            name: spec.threshold if spec.threshold is not None else default_threshold
            for name, spec in intents.items()
        }
        self._examples = {
            name: [_phrase(e) for e in spec.examples] for name, spec in intents.items()
        }
        self._keywords = {
            name: [_phrase(k) for k in spec.keywords] for name, spec in intents.items()
        }

    def threshold(self, intent: str) -> float:
        return self._thresholds.get(intent, self._default)

    def score(self, intent: str, text: str) -> float:
        """How well `text` means `intent` (0..1)."""
        norm = normalize(text)
        if intent not in self._examples and intent in ("yes", "no"):
            return _yes_no_score(intent, norm)
        words = content(norm.split())
        best = 0.0
        for kw in self._keywords.get(intent, ()):
            if _contains(norm, kw.text) or (kw.words and all(_present(w, words) for w in kw.words)):
                best = max(best, KEYWORD_SCORE)
        n_words = len(norm.split())
        for ex in self._examples.get(intent, ()):
            if _contains(norm, ex.text):
                # Verbatim: 1.0 when it is all the caller said, less the more there is around it.
                coverage = len(ex.text.split()) / n_words
                best = max(best, PHRASE_SCORE + (1 - PHRASE_SCORE) * coverage)
            if not ex.words or not words:
                continue
            found = sum(1 for w in ex.words if _present(w, words))
            if not found:
                continue
            explained = sum(1 for w in words if _present(w, ex.words))
            recall = found / len(ex.words)
            precision = explained / len(words)
            best = max(best, RECALL_WEIGHT * recall + (1 - RECALL_WEIGHT) * precision)
        return best

    def best(
        self, text: str, candidates: Sequence[str], *, min_score: float = 0.0
    ) -> IntentMatch | None:
        """The best-scoring candidate at or above its threshold (and `min_score`), or None."""
        found: IntentMatch | None = None
        for intent in candidates:
            s = self.score(intent, text)
            if s < max(self.threshold(intent), min_score):
                continue
            if found is None or s > found.score:
                found = IntentMatch(intent, s)
        return found


def _yes_no_score(intent: str, norm: str) -> float:
    answer = extract_yes_no(norm)
    if answer != intent:
        return 0.0
    words = norm.split()
    rest = [w for w in content(words) if w not in _YES_NO_WORDS]
    if len(rest) <= 1:
        return 1.0
    # "no, Wednesday at ten" answers the question; "yes, and what are your hours" less so.
    return 0.65 if words[0] in _YES_NO_WORDS else 0.6


_YES_NO_WORDS = frozenset(
    """yes yeah yep yup ya sure correct right no nope nah not incorrect wrong that is
    absolutely definitely exactly perfect great good fine sound""".split()
)
