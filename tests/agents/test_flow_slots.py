"""Slot extraction on transcripts as Whisper tiny writes them: case, punctuation, homophones."""

from __future__ import annotations

import datetime

import pytest

from agents.flow.slots import (
    extract,
    extract_day,
    extract_name,
    extract_number,
    extract_time,
    extract_yes_no,
)
from agents.flow.spec import SlotSpec
from agents.words.text import normalize, word_number

MONDAY = datetime.date(2026, 5, 11)
SUNDAY = datetime.date(2026, 5, 17)


@pytest.mark.parametrize(
    ("said", "value"),
    [
        ("Two PM.", "two pm"),
        ("10 a.m. on Tuesday", "10 am on tuesday"),
        ("I'd like 2pm, thanks", "i would like 2 pm thanks"),
        ("It's 2:30pm", "it is 2:30 pm"),
        ("Bye-bye.", "bye bye"),
        ("\u201cHello\u201d \u2014 what\u2019s up?", "hello what is up"),
        ("the 3rd", "the 3"),
        # spelled several ways by the recogniser (the understanding bench's transcripts)
        ("Where's my order? It's been an hour.", "where is my order it is been an hour"),
        ("My delivery hasn't arrived yet.", "my delivery has not arrived yet"),
        ("Alright, good bye.", "all right goodbye"),
        ("All right, goodbye.", "all right goodbye"),
    ],
)
def test_normalize(said: str, value: str) -> None:
    assert normalize(said) == value


@pytest.mark.parametrize(
    ("words", "parsed"),
    [
        ("twenty five", (25, 2)),
        ("a hundred and five", (105, 4)),
        ("two hundred thirty", (230, 3)),
        ("ten thirty", (10, 1)),
        ("42 people", (42, 1)),
        ("oh five", None),
        ("and five", None),
    ],
)
def test_word_number(words: str, parsed: tuple[int, int] | None) -> None:
    assert word_number(words.split(), 0) == parsed


@pytest.mark.parametrize(
    ("said", "day"),
    [
        ("Tuesday.", "Tuesday"),
        ("tuesday", "Tuesday"),
        ("Uh, next Thursday, please.", "Thursday"),
        ("next thurs", "Thursday"),
        ("wensday please", "Wednesday"),
        ("I'm free on Fridays", "Friday"),
        ("How about tomorrow?", "Tuesday"),
        ("today", "Monday"),
        ("tonight if you can", "Monday"),
        ("the day after tomorrow", "Wednesday"),
        ("no idea", None),
        ("", None),
    ],
)
def test_day(said: str, day: str | None) -> None:
    assert extract_day(said, MONDAY) == day


def test_tomorrow_wraps_around_the_week() -> None:
    assert extract_day("tomorrow", SUNDAY) == "Monday"


@pytest.mark.parametrize(
    ("said", "time"),
    [
        ("10 am", "10 AM"),
        ("10 a.m.", "10 AM"),
        ("10am", "10 AM"),
        ("Ten thirty.", "10:30 AM"),
        ("2 pm", "2 PM"),
        ("Two PM.", "2 PM"),
        ("to pm", "2 PM"),
        ("at for thirty", "4:30 PM"),
        ("14:00", "2 PM"),
        ("10:30", "10:30 AM"),
        ("noon", "12 PM"),
        ("Around noon?", "12 PM"),
        ("at 3", "3 PM"),
        ("3", "3 PM"),
        ("two", "2 PM"),
        ("To.", "2 PM"),
        ("half past two", "2:30 PM"),
        ("quarter to three", "2:45 PM"),
        ("around four in the afternoon", "4 PM"),
        ("9:15 in the morning", "9:15 AM"),
        ("two fifteen", "2:15 PM"),
        ("eleven thirty am", "11:30 AM"),
        ("ten ten", "10:10 AM"),
        ("2.30", "2:30 PM"),
        ("nine o'clock", "9 AM"),
        ("whenever", None),
        ("", None),
    ],
)
def test_time(said: str, time: str | None) -> None:
    assert extract_time(said) == time


@pytest.mark.parametrize(
    ("said", "time"),
    [
        ("next tuesday at to pm", "2 PM"),
        ("tomorrow at ten thirty", "10:30 AM"),
        ("Wednesday, 9 a.m.", "9 AM"),
        ("I need two cleanings", None),
        ("book for three people", None),
        ("Tuesday", None),
    ],
)
def test_time_in_passing_needs_a_clear_marker(said: str, time: str | None) -> None:
    assert extract_time(said, strict=True) == time


@pytest.mark.parametrize(
    ("said", "number"),
    [
        ("42", "42"),
        ("Forty two.", "42"),
        ("four two", "42"),
        ("1 2 3 4", "1234"),
        ("twenty five people", "25"),
        ("a hundred and five", "105"),
        ("1,250", "1250"),
        ("To.", "2"),
        ("nothing", None),
    ],
)
def test_number(said: str, number: str | None) -> None:
    assert extract_number(said) == number


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("yes", "yes"),
        ("Yeah.", "yes"),
        ("Yep, that's right.", "yes"),
        ("correct", "yes"),
        ("Sure.", "yes"),
        ("uh huh", "yes"),
        ("OK.", "yes"),
        ("no", "no"),
        ("Nope.", "no"),
        ("No, that's wrong.", "no"),
        ("not correct", "no"),
        ("That is not right.", "no"),
        ("maybe", None),
        ("", None),
    ],
)
def test_yes_no(said: str, answer: str | None) -> None:
    assert extract_yes_no(said) == answer


@pytest.mark.parametrize(
    ("said", "name"),
    [
        ("My name is John Smith.", "John Smith"),
        ("my names kevin", "Kevin"),
        ("it's Jane", "Jane"),
        ("It's Mary O'Brien.", "Mary O'Brien"),
        ("John", "John"),
        ("john smith", "John Smith"),
        ("JOHN SMITH", "John Smith"),
        ("Yeah, it's Bob.", "Bob"),
        ("This is Sarah speaking.", "Sarah"),
        ("Sure, Tim.", "Tim"),
        ("my name's Anna-Lee", "Anna-Lee"),
        ("Hi, I'm Priya Patel, thanks.", "Priya Patel"),
        ("DeShawn", "DeShawn"),
        ("I want to talk to a human", None),
        ("Tuesday", None),
        ("yes", None),
        ("it's a long name with too many words", None),
        ("", None),
    ],
)
def test_name(said: str, name: str | None) -> None:
    assert extract_name(said) == name


def test_number_limits() -> None:
    party = SlotSpec(type="number", prompt="How many?", min=1, max=8)
    assert extract(party, "three", today=MONDAY) == "3"
    assert extract(party, "twelve", today=MONDAY) is None
    assert extract(party, "zero", today=MONDAY) is None


def test_in_passing_only_for_clear_types() -> None:
    name = SlotSpec(type="name", prompt="Name?")
    notes = SlotSpec(type="free_text", prompt="Anything else?")
    assert extract(name, "Bob", today=MONDAY) == "Bob"
    assert extract(name, "Bob", today=MONDAY, strict=True) is None
    assert extract(notes, "  I have   a sore tooth ", today=MONDAY) == "I have a sore tooth"
    assert extract(notes, "anything", today=MONDAY, strict=True) is None
