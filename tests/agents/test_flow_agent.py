"""FlowAgent conversations: the receptionist end to end, reprompts, DTMF, transfers, limits."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import httpx
import pytest

from agents.base import (
    AgentContext,
    AgentError,
    AgentInput,
    AgentOutput,
    CallStarted,
    DtmfPressed,
    EndCall,
    Message,
    NoInput,
    TextChunk,
    Transfer,
    UserSaid,
)
from agents.catalog import embedded_specs, parse_spec
from agents.flow import FlowAgent
from agents.spec import AgentSpec, LlmSettings

MONDAY = datetime.date(2026, 5, 11)
FRONT_DESK = "sip:frontdesk@clinic.example"
HOURS = (
    "We're open Monday to Friday, 8 AM to 5 PM, and Saturday, 9 AM to 1 PM. "
    "We're closed on Sundays."
)


class Caller:
    """Drives an agent the way the call session does and keeps the history."""

    def __init__(self, agent: FlowAgent) -> None:
        self.agent = agent
        self.history: list[Message] = []
        self.actions: list[AgentOutput] = []
        self.chunks: list[str] = []

    async def send(self, event: AgentInput) -> str:
        if isinstance(event, UserSaid):
            self.history.append(Message(role="user", text=event.text))
        outs = [out async for out in self.agent.respond(self.history, event)]
        self.chunks = [o.text for o in outs if isinstance(o, TextChunk)]
        self.actions = [o for o in outs if not isinstance(o, TextChunk)]
        text = "".join(self.chunks)
        if text:
            self.history.append(Message(role="assistant", text=text))
        return text

    async def say(self, text: str) -> str:
        return await self.send(UserSaid(text))

    async def press(self, digits: str) -> str:
        return await self.send(DtmfPressed(digits))


@pytest.fixture
async def ctx() -> AsyncIterator[AgentContext]:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        yield AgentContext(call_id="call-1", tenant_id="demo", http=http)


@pytest.fixture
def receptionist() -> AgentSpec:
    return embedded_specs()["receptionist"]


@pytest.fixture
async def caller(receptionist: AgentSpec, ctx: AgentContext) -> Caller:
    caller = Caller(FlowAgent(receptionist, ctx, today=lambda: MONDAY))
    greeting = await caller.send(CallStarted())
    assert greeting == "Thanks for calling Bright Smile Dental. How can I help you today?"
    return caller


async def test_booking_a_cleaning(caller: Caller) -> None:
    said = await caller.say("hi um I'd like to book a cleaning")
    assert said == "Sure, I can help you book a cleaning. Can I have your name, please?"
    assert await caller.say("My name is Jane Doe.") == "What day would you like to come in?"
    assert await caller.say("Tuesday.") == "And what time works best for you?"
    assert await caller.say("Two PM.") == (
        "So that's a cleaning for Jane Doe on Tuesday at 2 PM. Is that right?"
    )
    assert caller.agent.slots == {"name": "Jane Doe", "day": "Tuesday", "time": "2 PM"}
    assert await caller.say("yes") == (
        "You're all set, Jane Doe. We'll see you on Tuesday at 2 PM."
        " Is there anything else I can help you with?"
    )
    assert await caller.say("No, that's all. Thanks.") == (
        "Thanks for calling Bright Smile Dental. Have a great day!"
    )
    assert caller.actions == [EndCall(reason="completed")]
    assert caller.agent.ended
    # After the end the agent stays quiet.
    assert await caller.say("hello?") == ""
    assert caller.actions == []
    assert caller.agent.slots == {"name": "Jane Doe", "day": "Tuesday", "time": "2 PM"}


async def test_chunks_are_separated_for_tts(caller: Caller) -> None:
    await caller.say("book a cleaning")
    assert caller.chunks == [
        "Sure, I can help you book a cleaning.",
        " Can I have your name, please?",
    ]


async def test_booking_in_one_breath(caller: Caller) -> None:
    said = await caller.say("Hi, can I book a cleaning for tomorrow at 10 a.m.?")
    assert said.endswith("Can I have your name, please?")
    assert await caller.say("yeah it's bob") == (
        "So that's a cleaning for Bob on Tuesday at 10 AM. Is that right?"
    )


async def test_day_and_time_in_one_answer(caller: Caller) -> None:
    await caller.say("I want to make an appointment")
    await caller.say("John Smith")
    said = await caller.say("next thursday at to pm")
    assert said == "So that's a cleaning for John Smith on Thursday at 2 PM. Is that right?"


async def test_saying_no_starts_over(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("John Smith")
    await caller.say("Tuesday")
    await caller.say("2 pm")
    said = await caller.say("no, wednesday at ten thirty")
    assert said == "No problem, let's start over. Can I have your name, please?"
    assert caller.agent.slots == {"day": "Wednesday", "time": "10:30 AM"}
    assert await caller.say("it's John Smyth") == (
        "So that's a cleaning for John Smyth on Wednesday at 10:30 AM. Is that right?"
    )
    assert (await caller.say("Yep, that's right.")).startswith("You're all set, John Smyth.")


async def test_unclear_answers_are_asked_again(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("Jane")
    said = await caller.say("purple")
    assert said == (
        "Sorry, which day was that? For example, Tuesday, or tomorrow."
        " What day would you like to come in?"
    )
    await caller.say("Friday")
    await caller.say("3 pm")
    assert await caller.say("hmm") == (
        "Sorry, was that a yes or a no? A cleaning for Jane on Friday at 3 PM?"
    )


async def test_opening_hours(caller: Caller) -> None:
    said = await caller.say("what time do you open on saturday")
    assert said == f"{HOURS} Is there anything else I can help you with?"
    assert caller.agent.node == "anything_else"
    assert await caller.say("yes") == "Sure. How can I help you today?"


async def test_hours_mid_booking_come_back_to_the_question(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("Jane")
    said = await caller.say("wait, what are your hours?")
    assert said == f"{HOURS} What day would you like to come in?"
    assert caller.agent.waiting_for == "day"
    assert await caller.say("saturday") == "And what time works best for you?"


async def test_transfer_to_a_human(caller: Caller) -> None:
    said = await caller.say("can I talk to a real person")
    assert said == "Sure, let me put you through to our front desk."
    assert caller.actions == [Transfer(target=FRONT_DESK)]
    assert await caller.say("hello?") == ""


async def test_transfer_from_the_middle_of_a_booking(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("I'd rather speak to the receptionist")
    assert caller.actions == [Transfer(target=FRONT_DESK)]


async def test_goodbye_from_anywhere(caller: Caller) -> None:
    await caller.say("book a cleaning")
    assert await caller.say("actually never mind, bye") == (
        "Thanks for calling Bright Smile Dental. Have a great day!"
    )
    assert caller.actions == [EndCall(reason="completed")]


async def test_no_input_reprompts(caller: Caller) -> None:
    assert await caller.send(NoInput(count=1)) == (
        "Are you still there? I can tell you our opening hours, book a cleaning,"
        " or put you through to our front desk."
    )
    await caller.say("book a cleaning")
    assert await caller.send(NoInput(count=1)) == (
        "Sorry, I didn't hear anything. Can I have your name, please?"
    )
    assert await caller.send(NoInput(count=2)) == (
        "Sorry, I didn't hear anything. Can I have your name, please?"
    )
    await caller.say("Jane")
    await caller.say("Monday")
    await caller.say("noon")
    assert await caller.send(NoInput(count=1)) == (
        "Should I book a cleaning for Jane on Monday at 12 PM? Please say yes or no."
    )
    assert caller.actions == []


async def test_no_match_then_give_up(caller: Caller) -> None:
    first = await caller.say("the weather is nice")
    assert first.startswith("Sorry, I didn't catch that. I can tell you our opening hours")
    await caller.say("purple monkeys")
    said = await caller.say("hmm")
    assert said == "Let me put you through to our front desk."
    assert caller.actions == [Transfer(target=FRONT_DESK)]


async def test_a_match_resets_the_miss_count(caller: Caller) -> None:
    await caller.say("the weather is nice")
    await caller.say("purple monkeys")
    await caller.say("book a cleaning")
    await caller.say("!!!")
    await caller.say("???")
    assert caller.actions == []
    assert caller.agent.waiting_for == "name"


async def test_dtmf_menu_and_operator(caller: Caller) -> None:
    assert await caller.press("1") == f"{HOURS} Is there anything else I can help you with?"
    assert (
        await caller.press("9")
        == "Sorry, I didn't catch that. Is there anything else I can help you with?"
    )
    assert await caller.say("yes") == "Sure. How can I help you today?"
    assert (await caller.press("2#")).endswith("Can I have your name, please?")
    await caller.say("Jane")
    await caller.say("Monday")
    await caller.say("9 am")
    assert (await caller.press("1")).startswith("You're all set, Jane.")
    await caller.press("0")
    assert caller.actions == [Transfer(target=FRONT_DESK)]


SURVEY = """
name = "survey"
kind = "flow"
greeting = "Hi."
[flow]
start = "ask"
[flow.slots.order]
type = "number"
prompt = "What's your order number?"
min = 1
max = 99999
[flow.slots.happy]
type = "yes_no"
prompt = "Were you happy with it?"
reprompt = "Please say yes or no."
[flow.intents.help]
keywords = ["help"]
[flow.nodes.ask]
do = [
  { ask = "order" },
  { ask = "happy" },
  { say = "Order {order}, happy: {happy}." },
  { end = "done" },
]
routes = [{ intent = "help", say = "You'll find it on your receipt." }]
"""


@pytest.fixture
async def survey(ctx: AgentContext) -> Caller:
    caller = Caller(FlowAgent(parse_spec(SURVEY, "survey.toml"), ctx))
    assert await caller.send(CallStarted()) == "Hi. What's your order number?"
    return caller


async def test_digits_fill_a_number_slot(survey: Caller) -> None:
    assert await survey.press("*") == "Sorry, I didn't catch that. What's your order number?"
    assert await survey.press("4217#") == "Were you happy with it?"
    assert await survey.send(NoInput(count=1)) == "Please say yes or no."
    assert await survey.press("2") == "Order 4217, happy: no."
    assert survey.actions == [EndCall(reason="done")]


async def test_spoken_number_and_a_route_without_goto(survey: Caller) -> None:
    assert await survey.say("where do I find that, can you help") == (
        "You'll find it on your receipt. What's your order number?"
    )
    assert await survey.say("four two one seven") == "Were you happy with it?"
    assert await survey.say("Yeah.") == "Order 4217, happy: yes."
    assert survey.agent.slots == {"order": "4217", "happy": "yes"}


async def test_number_out_of_range_is_refused(survey: Caller) -> None:
    assert await survey.say("123456") == ("Sorry, I didn't catch that. What's your order number?")
    assert survey.agent.waiting_for == "order"


LOOP = """
name = "loop"
kind = "flow"
[flow]
start = "a"
[flow.nodes.a]
do = [{ goto = "b" }]
[flow.nodes.b]
do = [{ goto = "a" }]
"""


async def test_a_flow_that_never_waits_is_an_agent_error(ctx: AgentContext) -> None:
    agent = FlowAgent(parse_spec(LOOP, "loop.toml"), ctx)
    with pytest.raises(AgentError, match="loops"):
        async for _ in agent.respond([], CallStarted()):
            pass


def test_needs_a_flow(ctx: AgentContext) -> None:
    spec = AgentSpec(name="llm", kind="llm", llm=LlmSettings())
    with pytest.raises(ValueError, match="has no `flow` section"):
        FlowAgent(spec, ctx)


async def test_calls_do_not_share_state(receptionist: AgentSpec, ctx: AgentContext) -> None:
    one = Caller(FlowAgent(receptionist, ctx, today=lambda: MONDAY))
    two = Caller(FlowAgent(receptionist, ctx, today=lambda: MONDAY))
    await one.send(CallStarted())
    await two.send(CallStarted())
    await one.say("book a cleaning")
    await one.say("Jane")
    assert one.agent.slots == {"name": "Jane"}
    assert two.agent.slots == {}
    slots = one.agent.slots
    slots["name"] = "changed"
    assert one.agent.slots == {"name": "Jane"}


async def test_confirmations_are_not_taken_for_goodbye(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("Jane")
    await caller.say("Monday at 9 am")
    assert (await caller.say("Yes, that's all correct.")).startswith("You're all set, Jane.")
    assert caller.actions == []
    assert await caller.say("I'm all set.") == (
        "Thanks for calling Bright Smile Dental. Have a great day!"
    )
    assert caller.actions == [EndCall(reason="completed")]


async def test_no_thanks_at_the_read_back_means_no(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("Jane")
    await caller.say("Monday at 9 am")
    assert await caller.say("no thanks") == (
        "No problem, let's start over. Can I have your name, please?"
    )
    assert caller.actions == []


async def test_at_the_read_back_a_yes_wins_over_goodbye(caller: Caller) -> None:
    await caller.say("book a cleaning")
    await caller.say("Jane")
    await caller.say("Monday at 9 am")
    assert (await caller.say("Yes, that's it, thank you.")).startswith("You're all set, Jane.")
    assert await caller.say("That's it, thank you.") == (
        "Thanks for calling Bright Smile Dental. Have a great day!"
    )


async def test_a_better_flow_wide_route_wins(caller: Caller) -> None:
    await caller.say("what are your hours")
    assert caller.agent.node == "anything_else"
    # "yes" matches the node's own route weakly; the hours question better.
    said = await caller.say("yes, um, what are your hours on saturday")
    assert said == f"{HOURS} Is there anything else I can help you with?"


async def test_changing_an_appointment_goes_to_the_front_desk(caller: Caller) -> None:
    said = await caller.say("Hi, I need to cancel my appointment.")
    assert said == (
        "Our front desk can help you change or cancel an appointment. Let me put you through."
    )
    assert caller.actions == [Transfer(target=FRONT_DESK)]
