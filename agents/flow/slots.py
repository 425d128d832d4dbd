"""Slot extraction: turn what the caller said into a slot value, or None when it is not one.

Values are strings ready to be read back by TTS and sent to webhooks:
day "Tuesday" (today/tomorrow resolved against an injected date), time "2 PM" / "10:30 AM",
number "42", digits "5551212", yes_no "yes"/"no", name "Jane Doe", free_text as said.
"""

from __future__ import annotations

import datetime
import re

from agents.flow.digits import find_digits
from agents.flow.spec import SlotSpec
from agents.words.text import HOMOPHONES, TENS, UNITS, normalize, similar, word_number

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_ABBREV = {
    "mon": 0,
    "tue": 1,
    "tues": 1,
    "wed": 2,
    "weds": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}


def extract_day(text: str, today: datetime.date) -> str | None:
    """A weekday name, "today"/"tonight", "tomorrow" or "the day after tomorrow"."""
    words = normalize(text).split()
    joined = " ".join(words)
    offset: int | None = None
    if "day after tomorrow" in joined:
        offset = 2
    elif "tomorrow" in words or "tmrw" in words:
        offset = 1
    elif "today" in words or "tonight" in words:
        offset = 0
    if offset is not None:
        return WEEKDAYS[(today.weekday() + offset) % 7].capitalize()
    for word in words:
        bare = word[:-1] if word.endswith("s") and word[:-1] in WEEKDAYS else word
        if bare in WEEKDAYS:
            return bare.capitalize()
        if bare in _DAY_ABBREV:
            return WEEKDAYS[_DAY_ABBREV[bare]].capitalize()
    for word in words:
        if len(word) >= 5:
            for day in WEEKDAYS:
                if similar(word, day, 0.8):
                    return day.capitalize()
    return None


_CLOCK = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_MORNING = ("am", "morning")
_AFTERNOON = ("pm", "afternoon", "evening", "tonight", "night")
_MINUTE_WORDS = {"oclock": 0, "hundred": 0}


def _meridiem(words: list[str], start: int) -> str | None:
    for word in words[start : start + 4]:
        if word in _MORNING:
            return "am"
        if word in _AFTERNOON:
            return "pm"
    return None


def _hour_at(words: list[str], i: int) -> int | None:
    word = words[i]
    if word.isdigit():
        return int(word) if len(word) <= 2 and int(word) <= 23 else None
    if word in UNITS and word not in ("zero", "oh") and UNITS[word] <= 12:
        return UNITS[word]
    if word in HOMOPHONES:
        nxt = words[i + 1] if i + 1 < len(words) else ""
        # "to pm", "at for thirty": trust a homophone only right before time words.
        if nxt in ("am", "pm", "oclock") or nxt in TENS or nxt in ("fifteen", "oh"):
            return HOMOPHONES[word]
        if len(words) == 1:
            return HOMOPHONES[word]
    return None


def _minutes_at(words: list[str], i: int) -> tuple[int, int] | None:
    """Minutes after an hour: "30", "thirty", "forty five", "oh five", "oclock"."""
    if i >= len(words):
        return None
    word = words[i]
    if word in _MINUTE_WORDS:
        return _MINUTE_WORDS[word], 1
    if word == "oh" and i + 1 < len(words) and words[i + 1] in UNITS:
        minute = UNITS[words[i + 1]]
        return (minute, 2) if minute < 10 else None
    if word.isdigit() and len(word) == 2 and int(word) < 60:
        return int(word), 1
    if word in TENS or word in ("fifteen", "ten", "twenty", "forty", "fifty"):
        parsed = word_number(words, i)
        if parsed and parsed[0] < 60:
            return parsed
    return None


def _format(hour: int, minute: int, meridiem: str | None) -> str:
    if meridiem is None:
        # No am/pm said: read it as business hours (1-6 afternoon, 7-11 morning, 12 noon).
        meridiem = "pm" if hour == 12 or 1 <= hour <= 6 or hour >= 13 else "am"
    if hour >= 13:
        hour, meridiem = hour - 12, "pm"
    elif hour == 0:
        hour, meridiem = 12, "am"
    clock = f"{hour}:{minute:02d}" if minute else f"{hour}"
    return f"{clock} {meridiem.upper()}"


def extract_time(text: str, *, strict: bool = False) -> str | None:
    """A time of day. `strict` (for times picked up in passing) wants a clear marker: am/pm,
    "o'clock", "h:mm", "noon", or "at <hour>"; otherwise a bare "two" or "10 30" is enough."""
    words = normalize(text).split()
    if not words:
        return None
    if "noon" in words or "midday" in words or "lunchtime" in words:
        return "12 PM"
    if "midnight" in words:
        return "12 AM"
    for i, word in enumerate(words):
        m = _CLOCK.fullmatch(word)
        if m:
            return _format(int(m.group(1)), int(m.group(2)), _meridiem(words, i + 1))
    for i, word in enumerate(words):
        if word in ("half", "quarter") and i + 2 < len(words) and words[i + 1] in ("past", "to"):
            hour = _hour_at(words, i + 2)
            if hour is not None and 1 <= hour <= 12:
                minute = 30 if word == "half" else 15
                if words[i + 1] == "to":
                    hour, minute = (hour - 2) % 12 + 1, 60 - minute
                return _format(hour, minute, _meridiem(words, i + 3))
    for i in range(len(words)):
        hour = _hour_at(words, i)
        if hour is None:
            continue
        j = i + 1
        minute = 0
        got = _minutes_at(words, j)
        if got is not None:
            minute, used = got
            j += used
        meridiem = _meridiem(words, j)
        marked = (
            meridiem is not None
            or "oclock" in words[i + 1 : j + 1]
            or (i > 0 and words[i - 1] in ("at", "around", "about", "by"))
        )
        if strict and not marked:
            continue
        if not marked and (hour > 23 or (hour > 12 and minute)):
            continue
        if meridiem is not None and hour > 12:
            continue
        return _format(hour, minute, meridiem)
    return None


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def extract_number(text: str) -> str | None:
    """A whole number: "42", "forty two", digits one by one ("four two" → "42")."""
    words = normalize(_THOUSANDS.sub("", text)).split()
    if len(words) == 1 and words[0] in HOMOPHONES:
        return str(HOMOPHONES[words[0]])
    digits = [w for w in words if w.isdigit() or (w in UNITS and UNITS[w] < 10)]
    spelled = [w for w in words if w in UNITS or w in TENS or w.isdigit() or w == "hundred"]
    if (
        len(digits) >= 2
        and len(spelled) == len(digits)
        and all(not w.isdigit() or len(w) == 1 for w in digits)
    ):
        return "".join(w if w.isdigit() else str(UNITS[w]) for w in digits)
    for i in range(len(words)):
        parsed = word_number(words, i)
        if parsed is not None:
            return str(parsed[0])
    return None


_YES = frozenset("yes yeah yep yup ya yea sure correct right absolutely definitely".split())
_YES_PHRASES = ("that is right", "sounds good", "that works", "go ahead", "uh huh", "of course")
_NO = frozenset("no nope nah negative incorrect wrong".split())
_NO_PHRASES = ("not really", "that is not", "do not", "not right", "not correct")


def extract_yes_no(text: str) -> str | None:
    """ "yes" or "no" (negations win: "not correct" is no); None when neither is said."""
    norm = normalize(text)
    words = norm.split()
    if not words:
        return None
    padded = f" {norm} "
    if words[0] in _NO or any(f" {p} " in padded for p in _NO_PHRASES):
        return "no"
    if any(w in _YES for w in words) or any(f" {p} " in padded for p in _YES_PHRASES):
        return "yes"
    if words[0] in ("ok", "okay", "perfect", "great", "fine"):
        return "yes"
    if any(w in _NO for w in words):
        return "no"
    return None


_NAME_LEADS = tuple(
    lead.split()
    for lead in (
        "my name is",
        "my names",
        "the name is",
        "name is",
        "it is",
        "its",
        "this is",
        "i am",
        "call me",
    )
)
_FILLERS = frozenset("yes yeah yep sure ok okay um uh uhm er well so hi hello hey oh".split())
_TRAILERS = frozenset("please thanks thank you here speaking".split())
_NOT_NAMES = frozenset(
    """a an the to i me my you your is it are was be and or of for on in at no not what when
    how why who book booking appointment cleaning clean talk speak human person someone time
    want need would like can could yes yeah sure okay ok hello hi bye goodbye thanks thank
    please today tomorrow morning afternoon evening am pm""".split()
    + list(WEEKDAYS)
)
_NAME_WORD = re.compile(r"^[^\W\d_][\w'\-]*$")


def extract_name(text: str, *, max_words: int = 3) -> str | None:
    """A person's name from "my name is Jane Doe", "it's Jane", "Jane Doe" (up to 3 words)."""
    raw = re.sub(r"[^\w'\-\s]", " ", text.replace("\u2019", "'")).split()
    norm: list[str] = []
    owner: list[int] = []  # raw word each normalised word came from ("it's" → "it", "is")
    for i, word in enumerate(raw):
        for part in normalize(word).split():
            norm.append(part)
            owner.append(i)
    k = 0
    while k < len(norm) and norm[k] in _FILLERS:
        k += 1
    for lead in _NAME_LEADS:
        if norm[k : k + len(lead)] == lead:
            k += len(lead)
            break
    start = owner[k] if k < len(norm) else len(raw)
    end = len(raw)
    while end > start and raw[end - 1].lower() in _TRAILERS:
        end -= 1
    name = raw[start:end]
    if not 1 <= len(name) <= max_words:
        return None
    if any(w.lower() in _NOT_NAMES or not _NAME_WORD.match(w) for w in name):
        return None
    return " ".join(w.title() if w.islower() or w.isupper() else w for w in name)


def extract_free_text(text: str) -> str | None:
    cleaned = " ".join(text.split())
    return cleaned or None


def extract(slot: SlotSpec, text: str, *, today: datetime.date, strict: bool = False) -> str | None:
    """The value of `slot` in `text`, validated against the slot's limits; None if absent.

    `strict` is for values picked up in passing (eager slots): only clear mentions count.
    """
    match slot.type:
        case "day":
            return extract_day(text, today)
        case "time":
            return extract_time(text, strict=strict)
        case "number":
            value = extract_number(text)
            if value is None:
                return None
            if slot.min is not None and int(value) < slot.min:
                return None
            if slot.max is not None and int(value) > slot.max:
                return None
            return value
        case "digits":
            fewest, most = slot.digit_limits
            return None if strict else find_digits(text, min_digits=fewest, max_digits=most)
        case "yes_no":
            return extract_yes_no(text)
        case "name":
            return None if strict else extract_name(text)
        case "free_text":
            return None if strict else extract_free_text(text)
