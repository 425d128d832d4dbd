"""Irreversible routes: a flow ends or transfers the call on words only when it is sure.

The receptionist heard "My two thirds, can someone see me today?" (a caller whose tooth hurts)
and matched the goodbye example "that's all for today" on the one word "today": it hung up.
"""

from __future__ import annotations

import msgspec
import pytest

from agents.base import AgentContext, CallStarted, DtmfPressed, EndCall, NoInput, Transfer
from agents.catalog import SpecError, embedded_specs, parse_spec
from agents.flow import FlowAgent
from agents.flow.ending import Ending, route_ending, verdict
from agents.flow.intents import IntentMatch, IntentMatcher
from agents.flow.spec import EndingSpec, FlowSpec, IntentSpec
from agents.spec import AgentSpec
from tests.agents.test_flow_agent import FRONT_DESK, MONDAY, Caller, ctx

__all__ = ["ctx"]  # the fixture

GOODBYE_LINE = "Thanks for calling Bright Smile Dental. Have a great day!"
MAIN_NO_MATCH = (
    "Sorry, I didn't catch that. I can tell you our opening hours, book a cleaning,"
    " or put you through to our front desk."
)
INTENTS = ["book", "hours", "human", "goodbye", "change"]


@pytest.fixture(scope="module")
def flow() -> FlowSpec:
    flow = embedded_specs()["receptionist"].flow
    assert flow is not None
    return flow


@pytest.fixture(scope="module")
def matcher(flow: FlowSpec) -> IntentMatcher:
    return IntentMatcher(flow.intents, flow.match_threshold)


@pytest.fixture
def receptionist() -> AgentSpec:
    return embedded_specs()["receptionist"]


@pytest.fixture
async def caller(receptionist: AgentSpec, ctx: AgentContext) -> Caller:
    caller = Caller(FlowAgent(receptionist, ctx, today=lambda: MONDAY))
    await caller.send(CallStarted())
    return caller


# ---- the matcher ----


@pytest.mark.parametrize(
    "said",
    [
        "My two thirds, can someone see me today?",
        "My tooth hurts, can someone see me today?",
        "today",
        "Can someone see me today?",
        "Is the dentist in today?",
        "Thanks, and can I also ask about parking",
        "I need to see someone, it's urgent",
    ],
)
def test_lines_sharing_words_with_goodbye_are_not_goodbye(
    matcher: IntentMatcher, said: str
) -> None:
    found = matcher.best(said, INTENTS)
    assert found is None or found.intent != "goodbye", (said, found)
    assert matcher.score("goodbye", said) < 0.6, said


def test_a_better_intent_wins_over_a_goodbye_phrase(matcher: IntentMatcher) -> None:
    found = matcher.best("I'm done with my cleaning, when can I come back", INTENTS)
    assert found is not None and found.intent == "book"


def test_one_shared_word_is_never_enough() -> None:
    matcher = IntentMatcher({"bye": IntentSpec(examples=["that's all for today"])}, 0.6)
    assert matcher.score("bye", "can someone see me today") == 0.0
    assert matcher.score("bye", "today") == 0.0
    assert matcher.score("bye", "that's all for today") == 1.0
    # Two shared content words do count.
    two = IntentMatcher({"clean": IntentSpec(examples=["teeth cleaning"])}, 0.6)
    assert two.score("clean", "my teeth need a cleaning") > 0.6


def test_keywords_match_whole_words() -> None:
    matcher = IntentMatcher({"bye": IntentSpec(keywords=["bye"])}, 0.6)
    assert matcher.score("bye", "ok bye") == 0.8
    assert matcher.score("bye", "maybe") == 0.0
    assert matcher.score("bye", "byebye now") == 0.0
    assert matcher.score("bye", "I'm by the door") == 0.0


def test_score_margin_and_runner_up(matcher: IntentMatcher) -> None:
    found = matcher.best("Hi, I need to cancel an appointment.", INTENTS)
    assert found is not None
    assert found.intent == "change"
    assert found.runner_up == "book"  # the keyword "appointment" (shared with change)
    assert found.margin == pytest.approx(found.score - matcher.score("book", "cancel appointment"))
    alone = matcher.best("what are your hours", INTENTS)
    assert alone is not None and alone.runner_up is None and alone.margin == alone.score


def test_a_keyword_and_an_example_together_score_higher(matcher: IntentMatcher) -> None:
    assert matcher.score("goodbye", "No, that's all. Goodbye.") > matcher.score("human", "operator")
    assert matcher.score("human", "operator") == 0.8  # a keyword alone


# ---- which routes end the call ----


def test_route_endings(flow: FlowSpec) -> None:
    flow_wide = {r.intent: r for r in flow.routes}
    assert route_ending(flow, flow_wide["goodbye"]) == "end"
    assert route_ending(flow, flow_wide["human"]) == "transfer"
    assert route_ending(flow, flow_wide["change"]) == "transfer"
    assert route_ending(flow, flow_wide["hours"]) is None
    anything_else = {r.intent: r for r in flow.nodes["anything_else"].routes}
    assert route_ending(flow, anything_else["no"]) == "end"  # via the goodbye node
    assert route_ending(flow, anything_else["book"]) is None  # asks for the name first
    main = {r.intent: r for r in flow.nodes["main"].routes}
    assert route_ending(flow, main["hours"]) is None


def test_verdict_needs_score_and_margin_over_rivals() -> None:
    settings = EndingSpec()
    endings: dict[str, Ending | None] = {"bye": "end", "no": "end", "book": None}
    sure = IntentMatch("bye", 0.9)
    assert verdict(settings, sure, [("bye", 0.9), ("no", 0.88)], endings) == "go"
    close = [("bye", 0.9), ("book", 0.8)]
    assert verdict(settings, sure, close, endings) == "confirm"
    weak = IntentMatch("bye", 0.8)
    assert verdict(settings, weak, [("bye", 0.8)], endings) == "confirm"
    strict = EndingSpec(unsure="no_match")
    assert verdict(strict, weak, [("bye", 0.8)], endings) == "no_match"
    assert verdict(settings, IntentMatch("book", 0.6), [], endings) == "go"
    assert verdict(settings, sure, [("bye", 0.9)], endings, unexplained=3) == "confirm"


def test_ending_settings_are_validated() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"min_score": 1.5}, EndingSpec)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"unsure": "hang_up"}, EndingSpec)


# ---- the agent ----


@pytest.mark.parametrize(
    "said",
    ["My two thirds, can someone see me today?", "My tooth hurts, can someone see me today?"],
)
async def test_the_misheard_urgent_line_does_not_end_the_call(caller: Caller, said: str) -> None:
    # The receptionist books an urgent visit ("can someone see me today" is a booking example).
    assert (await caller.say(said)).startswith("Sure, I can help you book a cleaning.")
    assert caller.actions == []
    assert not caller.agent.ended


async def test_a_clear_goodbye_still_ends_the_call(caller: Caller) -> None:
    assert await caller.say("No, that's all. Goodbye.") == GOODBYE_LINE
    assert caller.actions == [EndCall(reason="completed")]


async def test_a_goodbye_heard_only_by_sound_is_asked_about(caller: Caller) -> None:
    """espeak-ng's "All right, that's it for today, I'll call back later." as Whisper wrote it:
    it sounds like the example "I'll call back later", which is never sure enough to hang up."""
    said = await caller.say("All right, I'll see you for the May, I'll call my later.")
    assert said == "Did you want to end the call?"
    assert caller.actions == []


async def test_a_transfer_heard_only_by_sound_is_asked_about(caller: Caller) -> None:
    said = await caller.say("Can I peek to someone at the front there?")
    assert said == "Did you want me to put you through?"
    assert caller.actions == []


def test_words_the_intent_does_not_account_for(matcher: IntentMatcher) -> None:
    assert matcher.unexplained("goodbye", "No, that's all. Goodbye.") == 0
    assert matcher.unexplained("goodbye", "Goodbye, wait, one more thing.") == 4
    assert matcher.unexplained("no", "no, I have a toothache") == 2


def test_a_goodbye_followed_by_two_more_words_is_not_sure() -> None:
    settings = EndingSpec()
    endings: dict[str, Ending | None] = {"bye": "end"}
    sure, alone = IntentMatch("bye", 0.9), [("bye", 0.9)]
    assert verdict(settings, sure, alone, endings, unexplained=2, after=0) == "go"
    assert verdict(settings, sure, alone, endings, unexplained=2, after=1) == "go"
    assert verdict(settings, sure, alone, endings, unexplained=2, after=2) == "confirm"


def test_which_words_the_intent_explains(matcher: IntentMatcher) -> None:
    assert matcher.explained("goodbye", "Goodbye, wait, one more thing.") == [True] + [False] * 4
    said = matcher.explained("goodbye", "Nothing else on the beat, just teens.")
    assert said.count(True) == 2 and said[-2:] == [False, False]


@pytest.mark.parametrize(
    "said",
    [
        "Nothing else on the beat, just teens.",  # espeak's "...on the pizza, just cheese."
        "Nothing else on the pizza, just cheese.",
    ],
)
async def test_a_line_that_shares_only_a_goodbye_phrase_is_asked_about(
    caller: Caller, said: str
) -> None:
    assert await caller.say(said) == "Did you want to end the call?"
    assert caller.actions == []


@pytest.mark.parametrize(
    "said",
    ["Bye, Tom.", "No, nothing else. Bye.", "Nothing else, thanks.", "Actually never mind, bye."],
)
async def test_short_goodbyes_still_end_the_call(caller: Caller, said: str) -> None:
    assert await caller.say(said) == GOODBYE_LINE
    assert caller.actions == [EndCall(reason="completed")]


async def test_goodbye_then_more_is_confirmed_first(caller: Caller) -> None:
    """A turn taken back and joined ("Goodbye." + "wait, one more thing") is not a sure bye."""
    said = await caller.say("Goodbye, wait, one more thing.")
    assert said == "Did you want to end the call?"
    assert caller.actions == []
    assert await caller.say("No.") == "Okay. How can I help you today?"


async def test_an_unsure_transfer_is_confirmed_first(caller: Caller) -> None:
    assert await caller.say("operator") == "Did you want me to put you through?"
    assert caller.actions == []
    assert await caller.say("yes please") == "Sure, let me put you through to our front desk."
    assert caller.actions == [Transfer(target=FRONT_DESK)]


async def test_no_at_the_confirmation_goes_back_to_the_question(caller: Caller) -> None:
    await caller.say("what are your hours")
    assert caller.agent.node == "anything_else"
    assert await caller.say("No, I have a toothache") == "Did you want to end the call?"
    assert await caller.say("no") == "Okay. Is there anything else I can help you with?"
    assert caller.actions == []
    assert await caller.say("book a cleaning") == (
        "Sure, I can help you book a cleaning. Can I have your name, please?"
    )


async def test_another_line_at_the_confirmation_is_handled_as_such(caller: Caller) -> None:
    assert await caller.say("operator") == "Did you want me to put you through?"
    said = await caller.say("what are your hours")
    assert said.startswith("We're open Monday to Friday")
    assert caller.actions == []
    assert caller.agent.node == "anything_else"


async def test_confirmation_by_keys_and_silence(caller: Caller) -> None:
    assert await caller.say("operator") == "Did you want me to put you through?"
    assert await caller.send(NoInput(count=1)) == "Did you want me to put you through?"
    assert await caller.send(DtmfPressed("2")) == "Okay. How can I help you today?"
    assert await caller.say("operator") == "Did you want me to put you through?"
    await caller.send(DtmfPressed("1"))
    assert caller.actions == [Transfer(target=FRONT_DESK)]


async def test_the_confirmation_survives_checkpoint_and_restore(caller: Caller) -> None:
    await caller.say("operator")
    saved = caller.agent.checkpoint()
    await caller.say("no")
    caller.agent.restore(saved)
    await caller.say("yes")
    assert caller.actions == [Transfer(target=FRONT_DESK)]


UNSURE_IS_NO_MATCH = """
name = "desk"
kind = "flow"
[flow]
start = "main"
ending = { unsure = "no_match" }
no_match = "Sorry?"
[flow.intents.bye]
keywords = ["bye"]
examples = ["goodbye"]
[flow.nodes.main]
prompt = "Yes?"
routes = [{ intent = "bye", say = "Bye.", do = [{ end = true }] }]
"""


async def test_unsure_as_no_match(ctx: AgentContext) -> None:
    caller = Caller(FlowAgent(parse_spec(UNSURE_IS_NO_MATCH, "desk.toml"), ctx))
    assert await caller.send(CallStarted()) == "Yes?"
    assert await caller.say("ok bye then, what about tomorrow") == "Sorry? Yes?"
    assert caller.actions == []
    assert await caller.say("Goodbye.") == "Bye."
    assert caller.actions == [EndCall(reason="completed")]


def test_ending_lines_are_checked_for_unknown_slots() -> None:
    spec = UNSURE_IS_NO_MATCH.replace(
        'ending = { unsure = "no_match" }', 'ending = { confirm_end = "Bye, {nme}?" }'
    )
    with pytest.raises(SpecError, match=r"flow.ending.confirm_end: unknown slot \{nme\}"):
        parse_spec(spec, "desk.toml")
