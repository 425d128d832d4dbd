"""Varied mock-LLM replies: what a receptionist model might say, different every time.

`VariedReplies(seed)` builds each reply from two sentences drawn from a dental-clinic
vocabulary (an opening sentence and a follow-up question), 20 to 30 words in all, and never
repeats a reply within one generator (a repeat is redrawn). Seeded `random.Random`: the same
seed gives the same replies in the same order, so runs are reproducible while no TTS cache can
serve a reply it saw before.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from bench.mock_llm import Reply, tokens_of

__all__ = ["MAX_WORDS", "MIN_WORDS", "VariedReplies", "varied_reply_source"]

MIN_WORDS: Final = 20
MAX_WORDS: Final = 30

_ACKS: Final = (
    "Sure,",
    "Of course,",
    "Certainly,",
    "Absolutely,",
    "No problem,",
    "Thanks for asking,",
    "Happy to help,",
    "Right,",
)
_FIRST: Final = (
    "I can {verb} a {visit} with {doctor} {when}",
    "{doctor} has an opening {when} for a {visit}",
    "we could fit in a {visit} {when} with {doctor}",
    "I see {doctor} is free {when} for a {visit}",
    "let me {verb} a {visit} for you {when} with {doctor}",
)
_SECOND: Final = (
    "Would {time} suit you, or is {time2} better for your schedule?",
    "Could you confirm your {detail} so I can hold the slot?",
    "Should I send a reminder to your {detail} the day before?",
    "Do you prefer {time} or would {time2} work more easily for you?",
    "May I have your {detail} to finish the booking today?",
    "Is there anything the {staff} should know before the {visit}?",
)
_VERB: Final = ("book", "schedule", "arrange", "set up", "reserve", "pencil in")
_VISIT: Final = (
    "cleaning",
    "checkup",
    "filling",
    "consultation",
    "whitening session",
    "crown fitting",
    "x-ray appointment",
    "root canal review",
    "hygiene visit",
    "braces adjustment",
)
_DOCTOR: Final = (
    "Doctor Patel",
    "Doctor Nguyen",
    "Doctor Garcia",
    "Doctor Okafor",
    "Doctor Lindqvist",
    "our hygienist Maria",
    "Doctor Rossi",
    "Doctor Kim",
)
_WHEN: Final = (
    "on Monday morning",
    "next Tuesday afternoon",
    "this Wednesday",
    "on Thursday after lunch",
    "on Friday morning",
    "early next week",
    "later this week",
    "on Saturday before noon",
)
_TIME: Final = (
    "nine in the morning",
    "half past ten",
    "eleven fifteen",
    "two in the afternoon",
    "a quarter to four",
    "four thirty",
    "eight forty five",
    "one o'clock",
)
_DETAIL: Final = (
    "phone number",
    "date of birth",
    "email address",
    "insurance provider",
    "full name",
    "home address",
)
_STAFF: Final = ("dentist", "hygienist", "front desk", "dental team")


class VariedReplies:
    """A reply generator: `next()` is a new two-sentence reply of 20 to 30 words."""

    def __init__(self, seed: int | None = None, max_tries: int = 1000) -> None:
        self._rng = random.Random(seed)
        self._seen: set[str] = set()
        self._max_tries = max_tries

    def next(self) -> str:
        """A reply not given before by this generator (RuntimeError if none is found in
        `max_tries` draws: the vocabulary allows millions, so it means a bug)."""
        for _ in range(self._max_tries):
            text = self._draw()
            words = len(text.split())
            if MIN_WORDS <= words <= MAX_WORDS and text not in self._seen:
                self._seen.add(text)
                return text
        raise RuntimeError("no new reply in the vocabulary")

    def _draw(self) -> str:
        r = self._rng
        times = r.sample(_TIME, 2)
        fill = {
            "verb": r.choice(_VERB),
            "visit": r.choice(_VISIT),
            "doctor": r.choice(_DOCTOR),
            "when": r.choice(_WHEN),
            "time": times[0],
            "time2": times[1],
            "detail": r.choice(_DETAIL),
            "staff": r.choice(_STAFF),
        }
        first = f"{r.choice(_ACKS)} {r.choice(_FIRST).format(**fill)}."
        second = r.choice(_SECOND).format(**fill)
        return f"{first} {second}"


def varied_reply_source(seed: int | None = None) -> Callable[[], Reply]:
    """An `LlmDouble` `reply_source`: each request gets a new reply from `VariedReplies`."""
    replies = VariedReplies(seed)
    return lambda: Reply(tokens=tokens_of(replies.next()))
