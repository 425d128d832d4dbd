"""Intent matching: which of a node's intents the caller's words mean, with a score in 0..1.

Deterministic and model-free. Each example phrase is compared with the utterance by the
content words they share (stemmed, near spellings allowed): mostly how much of the example
is present (recall), some how much of the utterance it explains (precision). One shared word is
never enough on its own ("can someone see me today" is not "that's all for today"): overlap
counts from two shared words. An example found verbatim scores 0.75..1.0 (1.0 when it is the
whole utterance); a keyword present as whole words of the line scores 0.8. The built-in
`yes`/`no` intents use the yes/no slot extractor. Ties go to the intent listed first; `best`
also reports the margin to the runner-up, which the flow uses before acting irreversibly.
With the agent's vocabulary, near misses of its terms are snapped to the terms first
("metal to metal" → "delta dental", see `agents.vocabulary`).

Examples long enough to be told apart by sound (`MIN_SOUND_CONSONANTS`) also match by how
they sound (`agents.words.phonetic`): a stretch of the line that sounds like the whole example
("work at leading" for "book a cleaning", "is he eating except" for "is Aetna accepted")
scores `SOUND_SCORE_LOW`..`SOUND_SCORE_HIGH`: above the default threshold, below a keyword and
below what ends or transfers a call without asking (`flow.ending.min_score`), so a line heard
this way is routed, or asked about, never acted on irreversibly by sound alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from agents.flow.slots import extract_yes_no
from agents.flow.spec import IntentSpec
from agents.vocabulary import Vocabulary
from agents.words import phonetic
from agents.words.text import normalize, similar, stem

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
AGREEMENT_BONUS = 0.1
"""Added when both a keyword and an example match."""
MIN_SHARED_WORDS = 2
"""Word overlap with an example counts only from this many shared content words."""
MIN_SOUND_CONSONANTS = 6
"""An example matches by sound only with this many consonant sounds ("bye", "no thanks",
"opening hours" are too short: some stretch of many a line sounds like them)."""
SOUND_MATCH = 0.8
"""How close (`phonetic.contained`) a stretch of the line must sound to the example."""
MAX_SOUND_LINE = 160
"""Lines with more phonemes than this (about 40 words) are not matched by sound: the cost
grows with the length, and a line that long has words enough."""
SOUND_SCORE_LOW = 0.6
SOUND_SCORE_HIGH = 0.75
"""The score of a match by sound at `SOUND_MATCH` and at a perfect match (linear between)."""


@dataclasses.dataclass(frozen=True, slots=True)
class IntentMatch:
    intent: str
    score: float
    margin: float = 1.0
    """How far ahead of the best other candidate (its score, whatever its threshold)."""
    runner_up: str | None = None


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
    sounds: str
    """Its phonemes, when it is long enough to match by sound; else ""."""


def _phrase(raw: str) -> _Phrase:
    text = normalize(raw)
    sounds = phonetic.phones(text)
    if phonetic.consonants(sounds) < MIN_SOUND_CONSONANTS:
        sounds = ""
    return _Phrase(text, tuple(content(text.split())), sounds)


def sound_score(example: str, line: str) -> float:
    """The score of phonemes `example` heard somewhere in phonemes `line` (0: not close)."""
    near = phonetic.contained(example, line)
    if near < SOUND_MATCH:
        return 0.0
    span = (near - SOUND_MATCH) / (1 - SOUND_MATCH)
    return SOUND_SCORE_LOW + (SOUND_SCORE_HIGH - SOUND_SCORE_LOW) * span


class IntentMatcher:
    """Scores utterances against a fixed set of intents (build once per flow)."""

    def __init__(
        self,
        intents: Mapping[str, IntentSpec],
        default_threshold: float,
        vocabulary: Sequence[str] = (),
    ) -> None:
        self._default = default_threshold
        self._vocabulary = Vocabulary(vocabulary)
        self._prepared = ("", "")
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

    def prepare(self, text: str) -> str:
        """`text` normalised, with near misses of vocabulary terms snapped to the terms."""
        if self._prepared[0] != text:
            norm = normalize(text)
            self._prepared = (text, self._vocabulary.snap(norm) if self._vocabulary else norm)
        return self._prepared[1]

    def score(self, intent: str, text: str) -> float:
        """How well `text` means `intent` (0..1)."""
        norm = self.prepare(text)
        if intent not in self._examples and intent in ("yes", "no"):
            return _yes_no_score(intent, norm)
        words = content(norm.split())
        keyword = any(
            _contains(norm, kw.text) or (kw.words and all(_present(w, words) for w in kw.words))
            for kw in self._keywords.get(intent, ())
        )
        example = self._example_score(intent, norm, words)
        if keyword and example:  # two kinds of evidence agree
            return min(1.0, max(KEYWORD_SCORE, example) + AGREEMENT_BONUS)
        worded = KEYWORD_SCORE if keyword else example
        if worded >= SOUND_SCORE_HIGH:  # the words say more than a match by sound could
            return worded
        return max(worded, self._sound_score(intent, norm))

    def _example_score(self, intent: str, norm: str, words: list[str]) -> float:
        best = 0.0
        n_words = len(norm.split())
        for ex in self._examples.get(intent, ()):
            if _contains(norm, ex.text):
                # Verbatim: 1.0 when it is all the caller said, less the more there is around it.
                coverage = len(ex.text.split()) / n_words
                best = max(best, PHRASE_SCORE + (1 - PHRASE_SCORE) * coverage)
            if not ex.words or not words:
                continue
            found = sum(1 for w in ex.words if _present(w, words))
            if found < MIN_SHARED_WORDS:
                continue
            explained = sum(1 for w in words if _present(w, ex.words))
            recall = found / len(ex.words)
            precision = explained / len(words)
            best = max(best, RECALL_WEIGHT * recall + (1 - RECALL_WEIGHT) * precision)
        return best

    def _sound_score(self, intent: str, norm: str) -> float:
        """The best match by sound of `intent`'s examples in the line (0: none)."""
        sounds = phonetic.phones(norm)
        if len(sounds) > MAX_SOUND_LINE:
            return 0.0
        examples = self._examples.get(intent, ())
        return max((sound_score(ex.sounds, sounds) for ex in examples if ex.sounds), default=0.0)

    def unexplained(self, intent: str, text: str) -> int:
        """How many content words of `text` none of `intent`'s examples or keywords has
        ("goodbye, wait, one more thing": four, for a goodbye intent)."""
        words = content(self.prepare(text).split())
        if intent not in self._examples and intent in ("yes", "no"):
            return sum(1 for w in words if w not in _YES_NO_WORDS)
        vocab = [w for p in (*self._examples[intent], *self._keywords[intent]) for w in p.words]
        return sum(1 for w in words if not _present(w, vocab))

    def best(
        self, text: str, candidates: Sequence[str], *, min_score: float = 0.0
    ) -> IntentMatch | None:
        """The best-scoring candidate at or above its threshold (and `min_score`), or None;
        with its margin to the runner-up."""
        ranked = self.rank(text, candidates)
        passing = [p for p in ranked if p[1] >= max(self.threshold(p[0]), min_score)]
        if not passing:
            return None
        intent, s = passing[0]
        others = [p for p in ranked if p[0] != intent]
        runner_up, second = others[0] if others else (None, 0.0)
        return IntentMatch(intent, s, s - second, runner_up)

    def rank(self, text: str, candidates: Sequence[str]) -> list[tuple[str, float]]:
        """Candidates with a score above 0, best first (ties: the order given)."""
        scored = [(intent, self.score(intent, text)) for intent in dict.fromkeys(candidates)]
        return sorted((p for p in scored if p[1] > 0), key=lambda p: -p[1])


def _yes_no_score(intent: str, norm: str) -> float:
    answer = extract_yes_no(norm)
    if answer != intent:
        return 0.0
    words = norm.split()
    rest = [w for w in content(words) if w not in _YES_NO_WORDS]
    if not rest:
        return 1.0
    if len(rest) == 1:  # "no, goodbye", "no, toothache": an answer, but not only one
        return 0.75
    # "no, Wednesday at ten" answers the question; "yes, and what are your hours" less so.
    return 0.65 if words[0] in _YES_NO_WORDS else 0.6


_YES_NO_WORDS = frozenset(
    """yes yeah yep yup ya sure correct right no nope nah not incorrect wrong that is
    absolutely definitely exactly perfect great good fine sound""".split()
)
