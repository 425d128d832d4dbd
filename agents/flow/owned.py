"""The caller's things: words of a line that name something the caller already has or did.

"my pizza", "our order": a word right after a possessive is the caller's. "I ordered", "we
already booked": a verb in the past tense after "I" or "we" is something the caller has done,
so what it names is theirs as much as "my order" is (a question about it, not a new request);
so is the object of a request they already made ("I placed an order", "we made an appointment").
The matcher (`agents.flow.intents`) keeps such a keyword from deciding an intent that asks for
something new, and takes it as evidence for the intent about the caller's thing of that kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agents.words.text import similar, stem

POSSESSIVES = frozenset({"my", "our", "his", "her", "their"})
"""Words before a keyword that make it something the caller has ("your" is the business's)."""
SUBJECTS = frozenset({"i", "we"})
"""Who did it, for a past-tense verb to be the caller's own doing ("it arrived" is not)."""
BETWEEN = frozenset({"already", "just", "have", "had", "recently", "also"})
"""Words that may stand between the subject and the verb ("I have already ordered")."""
DID = frozenset({"placed", "made", "put", "set", "booked", "scheduled", "ordered", "reserved"})
"""Verbs of a request the caller already made, whose object is theirs ("I placed an order",
"we made an appointment"); not wishes ("I wanted a large pepperoni" is a new order)."""
ARTICLES = frozenset({"a", "an", "the"})
PARTICLES = frozenset({"in", "up", "through"})
"""Between such a verb and its object ("I put in an order", "I set up an appointment")."""


def _subject_before(tokens: Sequence[str], i: int) -> bool:
    """Whether the caller ("I", "we") did what `tokens[i]` says ("I have already ordered")."""
    j = i - 1
    while j >= 0 and tokens[j] in BETWEEN:
        j -= 1
    return j >= 0 and tokens[j] in SUBJECTS


def _done(tokens: Sequence[str], i: int) -> bool:
    """Whether `tokens[i]` is a past-tense verb of the caller's ("I ordered", "we just booked")."""
    word = tokens[i]
    return word.endswith("ed") and stem(word) != word and _subject_before(tokens, i)


def owned_at(tokens: Sequence[str], i: int) -> bool:
    """Whether the word at `tokens[i]` names the caller's thing: after a possessive, or a verb
    of something they already did."""
    if not 0 <= i < len(tokens):
        return False
    return (i > 0 and tokens[i - 1] in POSSESSIVES) or _done(tokens, i) or _done_to(tokens, i)


def _done_to(tokens: Sequence[str], i: int) -> bool:
    """Whether `tokens[i]` is the object of a request the caller already made: "I placed an
    order", "we made an appointment", "I put in an order" (the order is theirs already)."""
    j = i - 1
    if j < 1 or tokens[j] not in ARTICLES:
        return False
    j -= 1
    if j > 0 and tokens[j] in PARTICLES:
        j -= 1
    return tokens[j] in DID and _subject_before(tokens, j)


def done_words(tokens: Sequence[str]) -> list[str]:
    """The stems of the line's words that name what the caller already did or asked for ("I
    ordered", "I placed an order"), not what they merely have ("my receptionist")."""
    return [stem(t) for i, t in enumerate(tokens) if _done(tokens, i) or _done_to(tokens, i)]


def owned_words(tokens: Sequence[str]) -> list[str]:
    """The stems of the line's words that name the caller's things."""
    return [stem(t) for i, t in enumerate(tokens) if owned_at(tokens, i)]


def example_things(texts: Sequence[str], stopwords: frozenset[str]) -> set[str]:
    """The things an intent's examples (normalised) say are the caller's ("my order": order)."""
    things: set[str] = set()
    for text in texts:
        tokens = text.split()
        things |= {stem(t) for p, t in zip(tokens, tokens[1:], strict=False) if p == "my"}
    return things - stopwords


def topics(intent: str, things: set[str], keywords: Mapping[str, Sequence[str]]) -> list[str]:
    """Keyword words of the other intents (`keywords`: intent → its keywords' words) that have
    one of `things` among their keywords: what the caller's thing of that kind may be called
    ("my pizza" for status, whose examples say "my order", order's keyword)."""
    out: list[str] = []
    for other, pool in keywords.items():
        if other != intent and any(_near(t, pool) for t in things):
            out += pool
    return out


def _near(word: str, pool: Sequence[str]) -> bool:
    return any(similar(word, other) for other in pool)
