"""What the transcript says about the end of a turn, sans-IO: `classify_ending(text, asked)`
reads the caller's words so far (and the agent's last line, `asked`, for its question):

- INCOMPLETE (the long window): a filler, a conjunction or a word a line cannot end on ("do
  you take", "with my"), a trailing comma; a number still being read out: 3 to 9 digits, a short
  number right after "number is" or "my order number" (digits or number words: "forty-seven"),
  or fewer digits than the kind of number the line names, or the agent asked for, has (a phone
  number 10, a card 15, a zip code 5), an ID spelled in letters still short of its kind ("My
  member ID is A B"); the words with which a caller holds the line.
- OPEN (the list window, whatever the audio model says): a line that may be the first items
  of a list ("Monday, Wednesday."; after a choice question such as "What day would you like to
  come in?", "I could do Monday.", an unpunctuated "9", or choices each joined by "or": "Maybe
  3 or 4." of "Maybe three, ... or four, ... or five PM."; after an open question such as "How
  can I help you today?", one thing named: "I need a filling." of "I need a filling, ... a
  cleaning, ..."). The reply started at the pause is held meanwhile, so a caller who goes on
  ("... or Friday") has heard nothing of it.
- COMPLETE (the short window): any other line with end punctuation; NEUTRAL: the rest;
  UNHEARD: no words yet, no transcript at all or an empty one (the list window: nothing to
  judge, nothing to reply to; "At, uh, ..." decoded as ""; the detector starts each utterance
  so).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence


class Ending(enum.Enum):
    COMPLETE = "complete"
    NEUTRAL = "neutral"
    OPEN = "open"
    INCOMPLETE = "incomplete"
    UNHEARD = "unheard"
    """The recogniser heard no words of the speech yet (no transcript came in, or an empty
    one)."""


WORD = re.compile(r"[a-z0-9']+")
_FILLERS = frozenset(
    "um uh er erm hmm ah like so well and or but because cause then the a an to my your our "
    "their is at for with of in on i i'm it's its that which if when maybe".split()
)
"""Words a line does not end on: fillers, conjunctions, articles, prepositions."""
_OBJECT_WORDS = frozenset({"take", "accept", "about", "from"})
"""Words a line ends on only when a question put their object first ("Which insurance do
you take?"); otherwise more is coming ("And, uh, do you take ... Delta Dental?")."""
_WH = frozenset({"what", "which", "who", "whom", "where", "how"})
_UNITS = frozenset("zero oh one two three four five six seven eight nine".split())
_TEENS = frozenset(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
)
_TENS = frozenset("twenty thirty forty fifty sixty seventy eighty ninety".split())
_REPEATS = {"double": 2, "triple": 3}
_DIGIT_WORDS = _UNITS | _REPEATS.keys()
"""A word for one digit (the 3-9 digit rule counts only these and digits)."""
_NUMBER_WORDS = _DIGIT_WORDS | _TEENS | _TENS | {"hundred"}
_HOLDS = tuple(
    tuple(phrase.split())
    for phrase in (
        "let me think", "let me see", "let me check", "let me look", "hold on", "hang on",
        "one moment", "one second", "one sec", "just a moment", "just a second", "just a sec",
        "give me a second", "give me a moment", "bear with me",
    )
)  # fmt: skip
_HOLDS += tuple(("lemme", *hold[2:]) for hold in _HOLDS if hold[:2] == ("let", "me"))
_HOLDS += tuple(hold[1:] for hold in _HOLDS if hold[:2] == ("let", "me"))
"""Words with which a caller says more is coming ("Let me think. ... Next Tuesday"). A "let me
..." hold counts by its last two words too: Whisper hears "let" as "left" or "lit"."""
_NUMBER_LEADS = frozenset({"number", "is", "was", "id", "code"})
"""A short number right after these ("my order number is 47") is a number being read out,
which goes on in groups; other short numbers ("two people") are whole answers."""
_KINDS = {"phone": 10, "cell": 10, "mobile": 10, "telephone": 10, "card": 15, "zip": 5}
"""Numbers of a known length, by a word that names them."""
_IDS = frozenset("number id code account order member policy confirmation reference".split())
"""Words that name a number of unknown length: under 10 digits it is taken as unfinished."""
ID_DIGITS = 10
KIND_SPAN = 4
"""A kind word counts when it is among the last words before the number ("card number is")."""
_DAYS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays "
    "thursdays fridays saturdays sundays today tomorrow weekend weekends".split()
)
_TIMES = frozenset("am pm noon morning afternoon evening o'clock".split())
_SPELT_TIMES = (["a", "m"], ["p", "m"])
"""Whisper's "10 a.m." in words."""
_ARTICLES = frozenset({"a", "an", "the", "some"})
_ANSWERS = frozenset("yes no yeah yep nope nah sure correct right okay ok alright".split())
"""A line of only these answers a yes/no question: it starts no list."""
_CHOICE = re.compile(r"\b(which|when|what (days?|times?|dates?))\b|\bor (?!no\b|not\b|a no\b)")
"""A question that asks for days, times or one of several things."""
_OPEN = re.compile(
    r"\bhow (can|may) (i|we) help\b|\bwhat can (i|we) do for you\b|\banything else\b"
    r"|\bwhat (would|do) you (like|need|want)\b"
)
"""A question that leaves the caller to say what they want ("How can I help you today?", "Is
there anything else I can help you with?"): the answer may name several things."""
_REQUESTS = frozenset("want wanna need like get have".split())
"""Verbs a thing asked for comes right after ("I need a filling", "could I get an X-ray");
Whisper writes "want a" as "wanna" ("I wanna check." for "I want a checkup,")."""
_ENDS_REQUEST = frozenset({"please", "thanks", "thank"})
"""Words after a thing that close the request ("A cleaning, please.")."""
_ITEM_BREAK = re.compile(r"[,;]|[.?!…]+(?=\s|$)")
"""Where list items part: commas, and sentence ends ("p.m." inside a time is not one)."""
CHOICE_ANSWER_WORDS = 6
"""An answer to a choice question this short may be the first item of a list."""


def number_digits(tokens: Sequence[str]) -> int:
    """How many digits a number read out as `tokens` has: "4111" 4, "forty seven" 2, "four
    hundred twelve" 3, "double five" 2, "oh nine" 2, "nineteen" 2."""
    count, joins, repeat = 0, "", 1
    for w in tokens:
        if w in _REPEATS:
            repeat = _REPEATS[w]
            continue
        if w.isdigit():
            count, joins = count + len(w) * repeat, ""
        elif w == "hundred":
            count, joins = count + (2 if count else 3), "hundred"  # "four" (1) "hundred" (3)
        elif w in _TENS:
            count, joins = count + (0 if joins == "hundred" else 2), "tens"
        elif w in _TEENS:
            count, joins = count + (0 if joins == "hundred" else 2), ""
        else:  # a unit: the last digit of "forty seven" or "four hundred two", or a digit
            count, joins = count + (0 if joins else repeat), ""
        repeat = 1
    return count


def _tail(words: Sequence[str], vocabulary: frozenset[str]) -> int:
    """How many of the last words are a number (digits, or words in `vocabulary`)."""
    n = 0
    for w in reversed(words):
        if not (w.isdigit() or w in vocabulary):
            break
        n += 1
    return n


def _kind_digits(before: Sequence[str], asked: str) -> int | None:
    """The digits the number being read out should have, by the word that names its kind just
    before it ("the card number is"), else by the agent's question when the line is little more
    than the number ("It's 4111 ..."); `ID_DIGITS` for a number of unknown length; None: no kind
    named."""
    named = list(before[-KIND_SPAN:])
    if len(before) < KIND_SPAN and not any(w in _KINDS or w in _IDS for w in named):
        named += WORD.findall(last_question(asked))
    for w in named:
        if w in _KINDS:
            return _KINDS[w]
    return ID_DIGITS if any(w in _IDS for w in named) else None


def _unfinished_number(words: Sequence[str], asked: str) -> bool:
    """A number being read out that is still short (`classify_ending`)."""
    n = _tail(words, _NUMBER_WORDS)
    if n == 0:
        return False
    digits = number_digits(words[-n:])
    kind = _kind_digits(words[:-n], asked)
    if kind is not None:  # (a 5-digit zip code is whole; a 12-digit card number is not)
        return digits < kind
    lead = words[-n - 1] if n < len(words) else ""
    plain = _tail(words, _DIGIT_WORDS)  # digits and digit words only ("ten thirty" is a time)
    plain_digits = sum(len(w) if w.isdigit() else 1 for w in words[len(words) - plain :])
    return 3 <= plain_digits < 10 or (digits < 10 and lead in _NUMBER_LEADS)


def _unfinished_code(words: Sequence[str], asked: str) -> bool:
    """An ID spelled out in letters and digits, still short of its kind ("My member ID is A B,
    ... seven seven, ... three": Whisper wrote "My number ID is a B." at the first pause)."""
    n = 0
    while n < len(words) and (len(words[-n - 1]) == 1 or words[-n - 1] in _DIGIT_WORDS):
        n += 1
    tail = words[len(words) - n :]
    if not any(w.isalpha() and w not in _DIGIT_WORDS for w in tail):
        return False  # (digits alone: `_unfinished_number`)
    kind = _kind_digits(words[: len(words) - n], asked)
    return kind is not None and n < kind


def _unfinished_words(stripped: str, words: Sequence[str]) -> bool:
    last = words[-1]
    if last in _FILLERS or stripped.endswith((",", "-", "...", "…")):
        return True
    if last in _OBJECT_WORDS:  # "Which insurance do you take?" is whole; "do you take" is not
        fronted = stripped.endswith("?") and any(w in _WH for w in words[:-3])
        return not fronted
    return any(tuple(words[-len(hold) :]) == hold for hold in _HOLDS)


def _item(words: Sequence[str], *, first: bool) -> str:
    """What kind of list item a comma-separated part of the line is, by its end ("Monday": a
    day, "ten" or "2 PM": a time, "a checkup": a thing); "" for none."""
    if not words:
        return ""
    last = words[-1]
    if last in _DAYS:
        return "day"
    if last.isdigit() or last in _NUMBER_WORDS or last in _TIMES or words[-2:] in _SPELT_TIMES:
        return "time"
    scope = words[:1] if first else words[-3:]
    return "thing" if any(w in _ARTICLES for w in scope) else ""


def is_enumeration(text: str) -> bool:
    """The line so far is a list of like items not yet closed by "and"/"or" ("Monday,
    Wednesday.", "Nine, ten.", "a cleaning, a checkup."; not "Monday, or Friday."). An item
    Whisper wrote as a sentence of its own after a pause counts too ("... on Monday? Tuesday.")."""
    parts = [WORD.findall(p) for p in _ITEM_BREAK.split(text.lower())]
    parts = [p for p in parts if p]
    if len(parts) < 2 or parts[-1][0] in ("and", "or") or len(parts[-1]) > 3:
        return False
    kind = _item(parts[-1], first=True)
    return kind != "" and kind == _item(parts[-2], first=False)


def asks_for_choice(asked: str) -> bool:
    """The agent's last question asks for days, times or one of several things ("What day
    would you like to come in?", "Which works better, Monday or Tuesday?"); not a yes/no
    question ("Is that right? Please say yes or no.")."""
    return _CHOICE.search(last_question(asked)) is not None


def last_question(line: str) -> str:
    """The last question in an agent's line, lower case ("" when it asks none)."""
    questions = re.findall(r"[^.?!]*\?", line.lower())
    return questions[-1].strip() if questions else ""


def _or_items(text: str) -> list[tuple[bool, list[str]]]:
    """The line's items, split at commas, sentence ends and each "or", each with whether an
    "or" led it: "Maybe 3, or 4." [(False, [maybe, 3]), (True, [4])]."""
    items: list[tuple[bool, list[str]]] = []
    for part in _ITEM_BREAK.split(text.lower()):
        led = False
        words: list[str] = []
        for w in [*WORD.findall(part), "or"]:
            if w != "or":
                words.append(w)
                continue
            if words:
                items.append((led, words))
            led, words = True, []
    return items


def is_or_chain(text: str) -> bool:
    """The line so far is like items each joined by its own "or" ("Maybe 3 or 4.", "Monday,
    or Wednesday."): a caller offering choices one "or" at a time ("Maybe three, ... or four,
    ... or five PM.") may go on. Not a list that "or" closes after items without one
    ("Monday, Wednesday, or Friday."), nor one with "and" in it."""
    items = _or_items(text)
    if len(items) < 2 or items[0][0] or not all(led for led, _ in items[1:]):
        return False
    first = items[0][1]
    kind = _item(first, first=False)
    if kind == "" or len(first) > CHOICE_ANSWER_WORDS or any("and" in w for _, w in items):
        return False
    return all(len(w) <= 3 and _item(w, first=True) == kind for _, w in items[1:])


def names_one_thing(words: Sequence[str]) -> bool:
    """The line names one thing: an article and at most two words after it, alone or right
    after a request ("A checkup.", "I need a filling.", "could I get an X-ray"; "I wanna
    check.", Whisper's "wanna" for "want a"). Not a thing an action is done to ("I'd like to
    book a cleaning."), nor a request closed by "please"."""
    for i in range(max(0, len(words) - 3), len(words) - 1):
        if words[i] not in _ARTICLES and words[i] != "wanna":
            continue
        lead, thing = words[: i + (words[i] == "wanna")], words[i + 1 :]
        if len(thing) > 2 or any(w in _ENDS_REQUEST or w in _ARTICLES for w in thing):
            continue
        return not lead or lead[-1] in _REQUESTS
    return False


def asks_openly(asked: str) -> bool:
    """The agent's last question leaves the caller to say what they want ("How can I help
    you today?", "Is there anything else I can help you with?")."""
    return _OPEN.search(last_question(asked)) is not None


def _may_be_a_list(text: str, words: Sequence[str], asked: str) -> bool:
    if is_enumeration(text):
        return True
    if all(w in _ANSWERS for w in words):
        return False
    if asks_for_choice(asked):  # a day, a time, or the first of them ("or" each: "Maybe 3 or 4")
        if is_or_chain(text):
            return True
        return len(words) <= CHOICE_ANSWER_WORDS and not ({"and", "or"} & set(words))
    return len(words) <= CHOICE_ANSWER_WORDS and asks_openly(asked) and names_one_thing(words)


def classify_ending(text: str, asked: str = "") -> Ending:
    """How the transcript so far ends: a complete sentence, one that may be a list's first
    items, an unfinished one, or unclear. `asked`: the agent's last line (its question)."""
    stripped = text.strip()
    words = WORD.findall(stripped.lower())
    if not words:
        return Ending.UNHEARD
    if _unfinished_words(stripped, words) or _unfinished_number(words, asked):
        return Ending.INCOMPLETE
    if _unfinished_code(words, asked):
        return Ending.INCOMPLETE
    if _may_be_a_list(stripped, words, asked):  # (punctuated or not: "9" may be "9, 10, or 11")
        return Ending.OPEN
    if not stripped.endswith((".", "?", "!")):
        return Ending.NEUTRAL
    return Ending.COMPLETE
