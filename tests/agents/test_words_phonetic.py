"""How words sound over a phone line: the phoneme key and the confusion-weighted distance.

The pairs are real: what Whisper tiny.en wrote for espeak-ng and Piper lines through G.711 in
`voicenode-bench understanding` (bench/reports/understanding/report.json).
"""

from __future__ import annotations

import pytest

from agents.words.phonetic import contained, distance, phones, similarity


def test_phones_follow_english_spelling() -> None:
    assert phones("delta dental") == "daltadantal"
    assert phones("front desk") == "frantdask"
    assert phones("checkup") == phones("chekup")  # ch is one sound, not c + h
    assert phones("accept") == phones("except")  # a vowel group is one symbol
    assert phones("knot") == phones("not")
    assert phones("phone") == phones("fone")
    assert phones("cigna") == "sagna"  # soft c
    assert phones("8351") == ""  # digits are not sounds


@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("delta dental", "melter mendel"),
        ("delta dental", "melted mental"),
        ("front desk", "front neck"),
        ("doctor patel", "doctor but el"),
        ("whitening", "why turning"),
    ],
)
def test_what_the_line_confuses_sounds_close(said: str, heard: str) -> None:
    assert similarity(phones(said), phones(heard)) >= 0.8


@pytest.mark.parametrize(
    ("term", "other"),
    [
        ("front desk", "front door"),
        ("cleaning", "calling"),
        ("cleaning", "leading"),
        ("reschedule", "recant you"),
        ("bright smile dental", "upright smile then"),
    ],
)
def test_different_words_stay_apart(term: str, other: str) -> None:
    assert similarity(phones(term), phones(other)) < 0.8


def test_telephone_confusions_cost_less_than_other_changes() -> None:
    assert distance("ta", "da") < distance("ta", "ka")  # voicing < place
    assert distance("ma", "na") < distance("ma", "sa")  # nasal for nasal
    assert distance("sa", "fa") < distance("sa", "ta")  # fricatives lose their top on the line
    assert distance("pat", "pt") < distance("pat", "pa")  # a vowel is cheap to lose
    assert distance("tab", "tab") == 0
    assert similarity("", "") == 1.0


def test_contained_finds_an_example_inside_a_longer_line() -> None:
    example = phones("i would like to book a cleaning")
    assert contained(example, phones("i would like to book a cleaning")) == 1.0
    assert contained(example, phones("i would like to work at leading")) >= 0.8
    assert contained(example, phones("is there parking near the clinic")) < 0.6
    assert contained(phones("is aetna accepted"), phones("is he eating except to that")) >= 0.85
    assert contained("", "anything") == 0.0
