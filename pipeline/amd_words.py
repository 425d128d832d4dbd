"""The words of answering-machine detection (`pipeline.amd`): what voicemail greetings say
(what they ask for, how they open, how they sign off) and what a person answering says to the
caller (a question, what they are doing now), matched on a normalised transcript."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ANSWER_PATTERNS",
    "ANSWER_PHRASES",
    "CALLER_PHRASES",
    "GREETING_PATTERNS",
    "GREETING_PHRASES",
    "INTERJECTIONS",
    "OPENERS",
    "answer_phrase",
    "greeting_phrase",
    "interjection",
    "normalise",
    "person_cues",
    "question",
    "short_answer",
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
    "thanks for calling",
    "talk to you later",
    "talk soon",
    "catch you later",
    "bye",
    "try again later",
    "you know what to do",
    "drop me a line",
    "state your name",
    "we're closed",
    "we are closed",
    "currently closed",
    "business hours",
    "office hours",
    "has been forwarded",
    "messaging system",
)
"""Words of voicemail greetings (normalised: lower case, "can't"/"can not" → "cannot"): what
they ask for, how they open ("you've reached"), how they sign off ("talk to you later", "you
know what to do") and what a business's or carrier's recording says ("we're closed", "office
hours", "has been forwarded")."""

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

CALLER_PHRASES: Final = frozenset(
    {
        "who is calling",
        "who's calling",
        "who is this",
        "who's this",
        "who is speaking",
        "can i help you",
        "may i help you",
        "how can i help",
        "what can i do for you",
        "anyone there",
        "are you there",
    }
)
"""The answer phrases that are a person's on their own: a question put to the caller about who
they are or what they want. Heard, they decide "human" at once, while the person may still be
talking. Not "go ahead" ("go ahead and leave a message"), "what's up" ("Hey, what's up, it's
Danny..."), "hang on" or "hold on" ("please hold on"), which greetings say too."""

INTERJECTIONS: Final = frozenset(
    {"oh", "yeah", "yes", "yep", "yup", "um", "uh", "huh", "mm", "mhm", "hm", "hmm"}
)
"""A person answering opens with them ("Oh hi, yeah, ...", "Yes, speaking", "Mm-hm, hello?");
a recorded greeting opens with a greeting and a name, not a reply. Normalised ("Mm-hm" is
"mm hm")."""
INTERJECTION_WORDS: Final = 3
"""Within this many first words of the far end's first utterance."""

OPENERS: Final = INTERJECTIONS | {"hello", "hi", "hey", "hiya", "speaking"}
"""The words of a whole short answer ("Hello?", "Yeah, hello?")."""

ANSWER_PATTERNS: Final = (
    re.compile(
        r"\bi(?:'m| am) (?:just |still )?(?:\w+ing|at work|at the office|in (?:the|a|my) \w+)\b"
    ),
)
"""A person's first-person talk about what they are doing now or where they are ("I'm
driving", "I'm at work", "I'm in the kitchen"); a greeting's "I'm away from my desk" is a
greeting phrase, which wins."""


_CANNOT = re.compile(r"\bcan ?not\b|\bcan't\b")
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise(text: str) -> str:
    text = _CANNOT.sub("cannot", text.lower().replace("\u2019", "'"))
    return " ".join(_NOT_WORD.sub(" ", text).split())


SIGN_OFF_AFTER_WORDS: Final = 2
"""A lone sign-off ("bye") counts only after this many words: it ends a greeting ("It's Nina.
Bye."). Whisper tiny hears a person's lone "Hi." as "Bye." (the AMD bench's third round)."""


def greeting_phrase(text: str) -> str:
    """The first voicemail greeting phrase (or pattern's words) in `text`, or ""."""
    found = _first_of(GREETING_PHRASES, GREETING_PATTERNS, text)
    if found == "bye" and normalise(text).split().index("bye") < SIGN_OFF_AFTER_WORDS:
        rest = tuple(p for p in GREETING_PHRASES if p != "bye")
        return _first_of(rest, GREETING_PATTERNS, text)
    return found


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
    a question to the caller, the interjection they opened with, or ""."""
    return _first_of(ANSWER_PHRASES, ANSWER_PATTERNS, text) or question(text) or interjection(text)


def person_cues(text: str) -> frozenset[str]:
    """Every kind of a person's answer in `text` (the transcript of the first words on):
    "caller" (a `CALLER_PHRASES` question), "phrase" (another answer phrase), "doing" (what
    they are doing now), "question", "interjection"."""
    norm = normalise(text)
    padded = f" {norm} "
    found = {
        "caller" if p in CALLER_PHRASES else "phrase" for p in ANSWER_PHRASES if f" {p} " in padded
    }
    if any(p.search(norm) for p in ANSWER_PATTERNS):
        found.add("doing")
    if question(text):
        found.add("question")
    if interjection(text):
        found.add("interjection")
    return frozenset(found)


def interjection(text: str) -> str:
    """The interjection ("oh", "yeah") among the first `INTERJECTION_WORDS` words, or ""."""
    return next((w for w in normalise(text).split()[:INTERJECTION_WORDS] if w in INTERJECTIONS), "")


def short_answer(text: str) -> bool:
    """`text` is a whole short answer: only `OPENERS` words ("Hello?", "Yeah, hello?",
    "Hi."). Taken so only from a transcript that heard everything said so far
    (`pipeline.amd`): a greeting's "Hello! You've reached ..." goes on."""
    words = normalise(text).split()
    return bool(words) and all(w in OPENERS for w in words)


def _first_of(phrases: tuple[str, ...], patterns: tuple[re.Pattern[str], ...], text: str) -> str:
    norm = normalise(text)
    padded = f" {norm} "
    found = next((p for p in phrases if f" {p} " in padded), "")
    if found:
        return found
    return next((m.group(0) for p in patterns if (m := p.search(norm))), "")
