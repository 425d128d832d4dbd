"""The caller's things (`agents.flow.owned`): words after a possessive, and past-tense verbs of
the caller's own doing ("I ordered forty minutes ago", "I placed an order": the order is
theirs, not a new one)."""

from __future__ import annotations

import pytest

from agents.flow.intents import STOPWORDS
from agents.flow.owned import example_things, owned_at, owned_words, topics


@pytest.mark.parametrize(
    ("said", "word"),
    [
        ("where is my order", "order"),
        ("has our pizza left", "pizza"),
        ("i ordered forty minutes ago", "ordered"),
        ("we already booked a cleaning", "booked"),
        ("i have just ordered", "ordered"),
        ("i placed an order about an hour ago", "order"),
        ("we made an appointment last week", "appointment"),
        ("i put in an order for delivery", "order"),
    ],
)
def test_the_callers_things(said: str, word: str) -> None:
    tokens = said.split()
    assert owned_at(tokens, tokens.index(word))


@pytest.mark.parametrize(
    ("said", "word"),
    [
        ("i want to order a pizza", "order"),
        ("can i get it delivered", "delivered"),  # not the caller's doing
        ("it never arrived", "arrived"),
        ("i need a cleaning", "need"),  # not a past tense
        ("your order", "order"),  # the business's
        ("ordered", "ordered"),  # nobody did it
        ("i want to place an order", "order"),  # a new one
        ("i wanted a large pepperoni", "pepperoni"),  # a wish, not a request made
        ("they placed an order", "order"),  # not the caller's
        ("an order", "order"),
    ],
)
def test_not_the_callers_things(said: str, word: str) -> None:
    tokens = said.split()
    assert not owned_at(tokens, tokens.index(word))


def test_outside_the_line_is_nothing() -> None:
    assert not owned_at(["my"], 1)
    assert not owned_at(["my", "order"], -1)


def test_owned_words_are_stemmed() -> None:
    assert owned_words("i ordered and my pizzas are late".split()) == ["order", "pizza"]


def test_things_and_topics() -> None:
    things = example_things(["where is my order", "my food is late", "status"], STOPWORDS)
    assert things == {"order", "food"}
    pools = {"order": ["order", "pizza"], "status": ["status"], "hours": ["open"]}
    assert topics("status", things, pools) == ["order", "pizza"]
    assert topics("order", things, pools) == []
