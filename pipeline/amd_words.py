"""The words of answering-machine detection (`pipeline.amd`): what voicemail greetings say
(what they ask for, how they open, how they sign off) and what a person answering says to the
caller (a question, what they are doing now), matched on a normalised transcript."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ANSWER_PATTERNS",
    "ANSWER_PHRASES",
    "GREETING_PATTERNS",
    "GREETING_PHRASES",
    "answer_phrase",
    "greeting_phrase",
    "normalise",
    "question",
]

GREETING_PHRASES: Final = (
    "leave a message",
    "leave your message",
    "leave me a message",
    "leave us a message",
    "leave your name",
    "after the tone",
    "after the beep",
    "at the tone",
    "at the beep",
    "not available",
    "unavailable",
    "voicemail",
    "voice mail",
    "mailbox",
    "cannot take your call",
    "cannot come to the phone",
    "unable to take your call",
    "not able to take your call",
    "cannot answer the phone",
    "record your message",
    "get back to you",
    "return your call",
    "away from the phone",
    "away from my desk",
    "you've reached",
    "you have reached",
    "thank you for calling",
    "talk to you later",
    "talk soon",
    "bye",
    "try again later",
)
"""Words of voicemail greetings (normalised: lower case, "can't"/"can not" → "cannot"): what
they ask for, how they open ("you've reached") and how they sign off ("talk to you later")."""

GREETING_PATTERNS: Final = (re.compile(r"\b(?:i|we)(?:'ll| will) (?:\w+ )?\w+ you back\b"),)
"""Sign-offs of more shapes than a phrase: "I'll call you back", "we'll ring you back"."""

ANSWER_PHRASES: Final = (
    "who is calling",
    "who's calling",
    "who is this",
    "who's this",
    "who is speaking",
    "speaking",
    "can i help you",
    "may i help you",
    "how can i help",
    "what can i do for you",
    "what's up",
    "what is up",
    "anyone there",
    "are you there",
    "go ahead",
    "hang on",
    "hold on",
)
"""Words a person answering says and a voicemail greeting does not (normalised). A greeting
phrase heard as well wins: the greeting's words are the stronger evidence. They address the
caller (a question to them, "go ahead") and wait for an answer."""

ANSWER_PATTERNS: Final = (
    re.compile(r"\bi(?:'m| am) (?:just |still )?(?:\w+ing|at work|at the office|in the car)\b"),
)
"""A person's first-person talk about what they are doing now ("I'm driving", "I'm at
work"); a greeting's "I'm away from my desk" is a greeting phrase, which wins."""


_CANNOT = re.compile(r"\bcan ?not\b|\bcan't\b")
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise(text: str) -> str:
    text = _CANNOT.sub("cannot", text.lower().replace("\u2019", "'"))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def greeting_phrase(text: str) -> str:
    """The first voicemail greeting phrase (or pattern's words) in `text`, or ""."""
    return _first_of(GREETING_PHRASES, GREETING_PATTERNS, text)


QUESTION_MIN_WORDS: Final = 3
"""A question this many words long or more is one put to the caller ("Is this about the
delivery?"); a lone "Hello?" is also what a greeting's first word is heard as, cut off."""
_SENTENCE = re.compile(r"[^.!?]*[.!?]")


def question(text: str) -> str:
    """ "question" if `text` (a transcript, punctuated) asks one of `QUESTION_MIN_WORDS` words
    or more, else ""."""
    for sentence in _SENTENCE.findall(text):
        if sentence.endswith("?") and len(normalise(sentence).split()) >= QUESTION_MIN_WORDS:
            return "question"
    return ""


def answer_phrase(text: str) -> str:
    """The first phrase (or pattern's words) of a person answering in `text`, "question" for
    a question to the caller, or ""."""
    return _first_of(ANSWER_PHRASES, ANSWER_PATTERNS, text) or question(text)


def _first_of(phrases: tuple[str, ...], patterns: tuple[re.Pattern[str], ...], text: str) -> str:
    norm = normalise(text)
    padded = f" {norm} "
    found = next((p for p in phrases if f" {p} " in padded), "")
    if found:
        return found
    return next((m.group(0) for p in patterns if (m := p.search(norm))), "")
