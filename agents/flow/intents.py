"""Intent matching: which of a node's intents the caller's words mean, with a score in 0..1.

Deterministic and model-free. Each example phrase is compared with the utterance by the
content words they share (stemmed, near spellings allowed): mostly how much of the example
is present (recall), some how much of the utterance it explains (precision). One shared word is
never enough on its own ("can someone see me today" is not "that's all for today"): overlap
counts from two shared words. An example found verbatim scores 0.75..1.0 (1.0 when it is the
whole utterance); a keyword present as whole words of the line scores 0.8. The built-in
`yes`/`no` intents use the yes/no slot extractor. Ties are broken as the note below says; `best`
also reports the margin to the runner-up, which the flow uses before acting irreversibly.
With the agent's vocabulary, near misses of its terms are snapped to the terms first
("metal to metal" → "delta dental", see `agents.vocabulary`).

Keywords that name the topic rather than what the caller wants done decide less:
- a keyword whose words another intent's examples or keywords also use ("appointment" in
  book and in "cancel my appointment", "order" in order and in "where is my order") names a
  topic the two share: it scores `SHARED_KEYWORD_SCORE`, so an intent's own keyword or a fuller
  example wins over it, and it still routes a line it is all the evidence for;
- a keyword right after a possessive ("my pizza", "my cleaning"), or a past-tense verb the
  caller did ("I ordered an hour ago"), names something the caller already has
  (`agents.flow.owned`): it counts only for an intent whose examples speak of the caller's
  things that the agent's keywords name ("where is my order", "cancel my appointment"), not
  for one that asks for something new ("do you deliver to my street", "my tooth hurts": a
  street and a tooth are no keyword's); and it is evidence, at
  `TOPIC_SCORE`, for an intent about the caller's thing of that kind ("my pizza", "I ordered"
  for status: "pizza" and "order" are keywords of the intent whose keyword "order" status's
  examples say is the caller's, "where is my order"); an example (by words or by sound) that
  names what the caller already did or asked for ("place an order" for "I placed an order an
  hour ago", "I put in an order": `owned.done_words`) likewise counts only for such an intent;
- equal scores go to the intent more of whose example words the line has (one word counts
  here), then to the one whose keyword comes first (a request's verb comes before its object:
  "cancel tomorrow's cleaning"), then to the intent listed first.
Whether to end or transfer the call weighs rivals without these demotions (`strict`): they
only choose between readings, they never widen the lead of an irreversible one.

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

from agents.flow.owned import done_words, example_things, owned_at, owned_words, topics
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
SHARED_KEYWORD_SCORE = 0.7
"""A keyword another intent's examples or keywords also use (a shared topic)."""
TOPIC_SCORE = 0.65
"""The caller names a thing of theirs an intent is about ("my pizza" for order status): above
the default threshold, below any keyword."""
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


def _places(tokens: Sequence[str], kw: _Phrase) -> list[int]:
    """Where keyword `kw`'s first content word stands in the line's `tokens`."""
    if not kw.words:
        return []
    return [i for i, t in enumerate(tokens) if t not in STOPWORDS and similar(stem(t), kw.words[0])]


@dataclasses.dataclass(frozen=True, slots=True)
class _Keyword:
    phrase: _Phrase
    shared: bool
    """Another intent's examples or keywords use all its words: it names a shared topic."""


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
        phrases = {name: [_phrase(k) for k in spec.keywords] for name, spec in intents.items()}
        self._keywords = {
            name: [_Keyword(kw, _shared(kw, name, self._examples, phrases)) for kw in kws]
            for name, kws in phrases.items()
        }
        pools = {name: [w for kw in kws for w in kw.words] for name, kws in phrases.items()}
        named = [w for pool in pools.values() for w in pool]
        owned = {
            name: {
                t for t in example_things([e.text for e in exs], STOPWORDS) if _present(t, named)
            }
            for name, exs in self._examples.items()
        }
        self._named = named
        """The words of every keyword: what a thing the caller has may be called."""
        self._mine = {name: bool(things) for name, things in owned.items()}
        """Whether an intent's examples speak of the caller's things that keywords name."""
        self._topics = {name: topics(name, things, pools) for name, things in owned.items()}
        """Per intent, the words that name the caller's thing it is about ("my pizza" is
        "my order": pizza is a keyword of the intent whose keyword "order" is the thing)."""

    def threshold(self, intent: str) -> float:
        return self._thresholds.get(intent, self._default)

    def prepare(self, text: str) -> str:
        """`text` normalised, with near misses of vocabulary terms snapped to the terms."""
        if self._prepared[0] != text:
            norm = normalize(text)
            self._prepared = (text, self._vocabulary.snap(norm) if self._vocabulary else norm)
        return self._prepared[1]

    def score(self, intent: str, text: str, *, strict: bool = False) -> float:
        """How well `text` means `intent` (0..1); `strict`: keywords at full weight (see the
        module's note on topics)."""
        norm = self.prepare(text)
        if intent not in self._examples and intent in ("yes", "no"):
            return _yes_no_score(intent, norm)
        words = content(norm.split())
        keyword, _ = self._keyword(intent, norm, strict=strict)
        example = self._example_score(intent, norm, words, strict=strict)
        if keyword and example:  # two kinds of evidence agree
            return min(1.0, max(keyword, example) + AGREEMENT_BONUS)
        worded = max(keyword, example, self._topic(intent, norm))
        if worded >= SOUND_SCORE_HIGH:  # the words say more than a match by sound could
            return worded
        return max(worded, self._sound_score(intent, norm, strict=strict))

    def _keyword(self, intent: str, norm: str, *, strict: bool) -> tuple[float, int]:
        """The score of `intent`'s best keyword in the line (0: none counts) and where the
        first one that counts stands (a large number: none)."""
        tokens = norm.split()
        words = content(tokens)
        best, first = 0.0, len(tokens) + 1
        for kw in self._keywords.get(intent, ()):
            p = kw.phrase
            if not (
                _contains(norm, p.text) or (p.words and all(_present(w, words) for w in p.words))
            ):
                continue
            places = _places(tokens, p) or [first]
            if not strict:
                places = [i for i in places if self._counts(intent, tokens, i)]
                if not places:
                    continue  # "my pizza": the caller's, not a new one to order
            value = KEYWORD_SCORE if strict or not kw.shared else SHARED_KEYWORD_SCORE
            best, first = max(best, value), min(first, places[0])
        return best, first

    def _counts(self, intent: str, tokens: Sequence[str], i: int) -> bool:
        """Whether a keyword found at `tokens[i]` counts for `intent`: a thing of the caller's
        only for an intent about the caller's things."""
        return self._mine.get(intent, False) or not owned_at(tokens, i)

    def _theirs(self, norm: str) -> list[str]:
        """What the caller already did or asked for, named by a keyword's word ("order" in "I
        placed an order"; not "chipped" in "I chipped a tooth")."""
        return [w for w in done_words(norm.split()) if _present(w, self._named)]

    def _topic(self, intent: str, norm: str) -> float:
        """`TOPIC_SCORE` when the caller names a thing of theirs that `intent` is about."""
        about = self._topics.get(intent)
        if not about:
            return 0.0
        owned = owned_words(norm.split())
        return TOPIC_SCORE if any(_present(w, about) for w in owned) else 0.0

    def affinity(self, intent: str, text: str) -> float:
        """How much of `intent`'s closest example the line has, one shared word counting (the
        tie-break between equal scores)."""
        norm = self.prepare(text)
        words = content(norm.split())
        best = 0.0
        for ex in self._examples.get(intent, ()):
            if ex.words and words:
                found = sum(1 for w in ex.words if _present(w, words))
                explained = sum(1 for w in words if _present(w, ex.words))
                recall, precision = found / len(ex.words), explained / len(words)
                best = max(best, RECALL_WEIGHT * recall + (1 - RECALL_WEIGHT) * precision)
        return best

    def _example_score(
        self, intent: str, norm: str, words: list[str], *, strict: bool = False
    ) -> float:
        """The best example's score; unless `strict`, an example that names a thing the
        caller already asked for ("place an order" for "I placed an order an hour ago") counts only
        for an intent about the caller's things, as a keyword does."""
        best = 0.0
        n_words = len(norm.split())
        theirs = [] if strict or self._mine.get(intent, False) else self._theirs(norm)
        for ex in self._examples.get(intent, ()):
            if theirs and any(_present(w, theirs) for w in ex.words):
                continue
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

    def _sound_score(self, intent: str, norm: str, *, strict: bool = False) -> float:
        """The best match by sound of `intent`'s examples in the line (0: none); the examples
        that name what the caller already asked for do not count, as in `_example_score`."""
        sounds = phonetic.phones(norm)
        if len(sounds) > MAX_SOUND_LINE:
            return 0.0
        examples = self._examples.get(intent, ())
        theirs = [] if strict or self._mine.get(intent, False) else self._theirs(norm)
        if theirs:
            examples = [ex for ex in examples if not any(_present(w, theirs) for w in ex.words)]
        return max((sound_score(ex.sounds, sounds) for ex in examples if ex.sounds), default=0.0)

    def explained(self, intent: str, text: str) -> list[bool]:
        """For each content word of `text` in order, whether one of `intent`'s examples or
        keywords has it ("goodbye, wait, one more thing": one yes then four no, for a goodbye
        intent)."""
        words = content(self.prepare(text).split())
        if intent not in self._examples and intent in ("yes", "no"):
            return [w in _YES_NO_WORDS for w in words]
        phrases = (*self._examples[intent], *(k.phrase for k in self._keywords[intent]))
        vocab = [w for p in phrases for w in p.words]
        return [_present(w, vocab) for w in words]

    def unexplained(self, intent: str, text: str) -> int:
        """How many content words of `text` none of `intent`'s examples or keywords has."""
        return self.explained(intent, text).count(False)

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

    def rank(
        self, text: str, candidates: Sequence[str], *, strict: bool = False
    ) -> list[tuple[str, float]]:
        """Candidates with a score above 0, best first (ties: the closer example, then the
        keyword said first, then the order given); `strict`: see `score`."""
        scored = [(i, self.score(i, text, strict=strict)) for i in dict.fromkeys(candidates)]
        tied = {s for _, s in scored if s > 0 and sum(1 for _, o in scored if o == s) > 1}

        def order(p: tuple[str, float]) -> tuple[float, float, int]:
            if p[1] not in tied:
                return (-p[1], 0.0, 0)
            norm = self.prepare(text)
            place = self._keyword(p[0], norm, strict=strict)[1]
            return (-p[1], -self.affinity(p[0], text), place)

        return sorted((p for p in scored if p[1] > 0), key=order)


def _shared(
    kw: _Phrase,
    intent: str,
    examples: Mapping[str, Sequence[_Phrase]],
    keywords: Mapping[str, Sequence[_Phrase]],
) -> bool:
    """Whether another intent's examples or keywords use every content word of `kw`."""
    if not kw.words:
        return False
    for other in examples:
        if other == intent:
            continue
        pool = [w for p in (*examples[other], *keywords.get(other, ())) for w in p.words]
        if all(_present(w, pool) for w in kw.words):
            return True
    return False


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
