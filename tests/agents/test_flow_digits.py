"""Digit strings from speech: however the recogniser wrote a number, one digit string."""

from __future__ import annotations

import pytest

from agents.flow.digits import digits_to_numbers, find_digits, group_digits, spoken_groups


@pytest.mark.parametrize(
    "heard",
    [
        "five five five one two one two",
        "5 5 5 1212",
        "555-1212",
        "555 1212.",
        "Five, five, five. One, two, one, two.",
        "double five five, twelve twelve",
        "my number is five five five, one two one two please",
        "five five five one two one two, dash, nothing else",
    ],
)
def test_a_phone_number_however_written_is_one_digit_string(heard: str) -> None:
    assert find_digits(heard) == "5551212"


def test_oh_is_zero_inside_a_run_only() -> None:
    assert find_digits("oh, it is four one five, five five five, oh one nine nine") == "4155550199"
    assert find_digits("oh one two three") == "0123"  # starts a run of digits: zero
    assert find_digits("oh hello there") is None


def test_double_triple_and_tens() -> None:
    assert find_digits("triple seven double oh one") == "777001"
    assert find_digits("order twenty one thirty five") == "2135"
    assert find_digits("one eight hundred five five five one two one two") == "18005551212"


def test_homophones_count_only_between_digits() -> None:
    assert find_digits("five five to one two") == "55212"
    assert find_digits("I want to book for two", min_digits=3) is None


def test_the_longest_run_wins_and_limits_apply() -> None:
    assert find_digits("it is order 7 3 9 2 please, table 5") == "7392"
    assert find_digits("seven three", min_digits=4) is None
    assert find_digits("4111 1111 1111 1111", max_digits=16) == "4111111111111111"
    assert find_digits("4111 1111 1111 1111 2", max_digits=16) is None


def test_a_line_without_a_number() -> None:
    assert find_digits("can someone see me today") is None
    assert find_digits("one more thing", min_digits=3) is None


@pytest.mark.parametrize(
    ("digits", "groups"),
    [
        ("5551212", ["555", "1212"]),
        ("4155550199", ["415", "555", "0199"]),
        ("14155550199", ["1", "415", "555", "0199"]),
        ("4111111111111111", ["4111", "1111", "1111", "1111"]),
        ("7392", ["7392"]),
        ("12345", ["123", "45"]),
        ("123456789", ["123", "456", "789"]),
    ],
)
def test_groups_a_person_reads(digits: str, groups: list[str]) -> None:
    assert group_digits(digits) == groups
    assert "".join(group_digits(digits)) == digits


def test_spoken_groups_read_one_digit_at_a_time() -> None:
    assert spoken_groups("5551212") == "5 5 5, 1 2 1 2"


def test_digits_to_numbers_for_comparing_transcripts() -> None:
    assert digits_to_numbers("Call five five five, one two one two.") == "call 5551212"
    assert digits_to_numbers("555-1212") == "5551212"
    assert digits_to_numbers("one more thing") == "one more thing"
    assert digits_to_numbers("one more thing", singles=True) == "1 more thing"
    assert digits_to_numbers("at two PM", singles=True) == "at 2 pm"
