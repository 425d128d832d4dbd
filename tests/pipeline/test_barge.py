"""`pipeline/barge.py`: which words said over the agent say something. The strings are what
Whisper tiny wrote for the bench's turn-taking lines (issue 16) through G.711: partials of a
hum ("Em", "Hup.", "M A can."), finals of one ("M A M", "M-H-M."), partials of real barge-ins
("Wait, what?", "It's Maria.", "2 PM", "Sorry,")."""

from __future__ import annotations

import pytest

from pipeline.barge import acknowledges, content_words, says_something
from pipeline.turn import backchannel_words, is_backchannel


@pytest.mark.parametrize(
    "partial",
    ["Wait, what?", "It's Maria.", "2 PM", "Sorry, do you take", "okay but wait", "Next Tuesday"],
)
def test_two_words_that_say_something_barge_in_at_once(partial: str) -> None:
    assert says_something(partial, agreed="")


@pytest.mark.parametrize(
    "partial", ["Em", "Hup.", "M A can.", "Type.", "Sorry,", "Actually.", "Hi, I...", "Met."]
)
def test_one_word_or_a_spelled_hum_waits_for_the_next_partial(partial: str) -> None:
    assert not says_something(partial, agreed="")


def test_one_word_two_partials_agree_on_barges_in() -> None:
    assert says_something("Actually.", agreed="Actually.")
    assert not says_something("Hup.", agreed="")  # the partial before said something else


@pytest.mark.parametrize("partial", ["M-H-M.", "I see...", "Got it.", "Okay?", "Yeah.", ""])
def test_acknowledgements_never_barge_in_by_their_words(partial: str) -> None:
    assert not says_something(partial, agreed=partial)


def test_content_words_leave_out_hums_acknowledgements_and_stray_letters() -> None:
    assert content_words("M A can.") == ["can"]
    assert content_words("Hmhm, okay, I see") == []
    assert content_words("Mm-hmm, wait") == ["wait"]


@pytest.mark.parametrize(
    "final",
    ["M A M", "M-H-M.", "M H M.", "N M M", "Hmhm.", "Mmhmm", "Em.", "Mm-hmm.", "okay", "I see"],
)
def test_a_hum_written_any_way_acknowledges(final: str) -> None:
    assert acknowledges(final)


@pytest.mark.parametrize(
    "final", ["Mm-mm.", "Uh-uh", "Wait.", "No.", "Now.", "B C", "M A can.", "mhm what about Aetna"]
)
def test_a_no_or_words_do_not(final: str) -> None:
    assert not acknowledges(final)


def test_barge_in_reads_words_as_the_backchannel_rule_does() -> None:
    """One reading of the words for both (`pipeline.turn.backchannel_words`): hyphens dropped,
    a line of single letters joined; a hum Whisper writes its own way acknowledges only here."""
    assert backchannel_words("M-H-M.") == backchannel_words("M H M.") == ["mhm"]
    assert backchannel_words("M A can.") == ["m", "a", "can"]
    assert is_backchannel("Got it, thanks.") and acknowledges("Got it, thanks.")
    assert acknowledges("Hmhm.") and not is_backchannel("Hmhm.")
    assert not is_backchannel("I see, but wait") and not acknowledges("I see, but wait")
