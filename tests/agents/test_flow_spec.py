"""Flow spec validation: every broken reference is an error that names its field."""

from __future__ import annotations

import msgspec
import pytest

from agents.catalog import SpecError, parse_spec
from agents.flow.spec import Action, FlowSpec, NodeSpec, SlotSpec, placeholders

BASE = """
name = "tiny"
kind = "flow"
[flow]
start = "main"
[flow.intents.bye]
examples = ["bye"]
[flow.slots.day]
type = "day"
prompt = "Which day?"
[flow.nodes.main]
prompt = "Hi {day}"
routes = [{ intent = "bye", goto = "main" }]
"""


def error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "tiny.toml")
    return str(info.value)


def test_base_is_valid() -> None:
    spec = parse_spec(BASE, "tiny.toml")
    assert spec.flow is not None
    assert spec.flow.start == "main"
    assert spec.flow.slots["day"].is_eager


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('goto = "main" }', 'goto = "mian" }'),
            "tiny.toml: flow.nodes.main.routes[0].goto: unknown node 'mian'; known: main",
        ),
        (('start = "main"', 'start = "begin"'), "flow.start: unknown node 'begin'"),
        (
            ('intent = "bye"', 'intent = "hello"'),
            "flow.nodes.main.routes[0].intent: unknown intent 'hello'; known: bye, no, yes",
        ),
        (("Hi {day}", "Hi {dya}"), "flow.nodes.main.prompt: unknown slot {dya}; known: day"),
        (
            ('prompt = "Hi {day}"', 'prompt = "Hi"\ncolour = "red"'),
            "tiny.toml: flow.nodes.main.colour: Object contains unknown field `colour`",
        ),
        (
            ('type = "day"', 'type = "day"\nmax_len = 3'),
            "flow.slots.day.max_len: Object contains unknown field `max_len`",
        ),
        (('type = "day"', 'type = "date"'), "flow.slots.day.type: Invalid enum value 'date'"),
        (
            ('type = "day"', 'type = "number"\nmin = "one"'),
            "flow.slots.day.min: Expected `float | null`, got `str`",
        ),
        (
            ('type = "day"', 'type = "day"\nmin = 1'),
            "flow.slots.day: `min`/`max` apply to number slots only",
        ),
        (
            ('kind = "flow"', 'kind = "flow"\ngreting = "hi"'),
            "tiny.toml: greting: Object contains unknown field `greting`",
        ),
        (
            ('kind = "flow"', 'kind = "flow"\n[turn]\nsilence_ms = 5'),
            "turn.silence_ms: Expected `int` >= 100",
        ),
        (("[flow]\n", "[flow]\nmatch_threshold = 2\n"), "flow.match_threshold: Expected"),
    ],
)
def test_errors_name_the_field(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in BASE
    assert message in error(BASE.replace(old, new))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[flow.nodes.b]\ndo = [{ say = "x", end = true }]\n',
            "flow.nodes.b.do[0]: an action sets exactly one of say, ask, goto, transfer, end,"
            " webhook, clear, recording (got say, end)",
        ),
        ("[flow.nodes.b]\ndo = [{}]\n", "flow.nodes.b.do[0]: an action sets exactly one"),
        (
            '[flow.nodes.b]\ndo = [{ ask = "time" }, { end = true }]\n',
            "flow.nodes.b.do[0].ask: unknown slot 'time'; known: day",
        ),
        ('[flow.nodes.b]\ndo = [{ say = "x" }]\n', "flow.nodes.b: the node never moves on"),
        ("[flow.nodes.b]\ndo = [{ end = false }]\n", "flow.nodes.b.do[0].end: use `end = true`"),
        (
            '[flow.nodes.b]\ndo = [{ webhook = "crm" }, { end = true }]\n',
            "flow.nodes.b.do[0].webhook: unknown webhook 'crm'; known: none defined",
        ),
        (
            '[flow.nodes.b]\ndo = [{ clear = ["day", "x"] }, { end = true }]\n',
            "flow.nodes.b.do[0].clear[1]: unknown slot 'x'",
        ),
        ("[flow.nodes.Bad-Name]\ndo = [{ end = true }]\n", "flow.nodes.Bad-Name: names are"),
        ('[flow.webhooks.crm]\nurl = "ftp://x"\n', "flow.webhooks.crm.url: must be an http://"),
        (
            '[flow.webhooks.crm]\nurl = "https://x.example"\nslots = ["nope"]\n',
            "flow.webhooks.crm.slots[0]: unknown slot 'nope'",
        ),
        ('[flow.dtmf]\n"1" = "hours"\n', "flow.dtmf.1: unknown intent 'hours'"),
        ('[flow.dtmf]\n"x" = "bye"\n', "flow.dtmf.x: keys are digits, '*' and '#'"),
        ("[flow.intents.empty]\n", "flow.intents.empty: needs `examples` or `keywords`"),
        (
            '[[flow.routes]]\nintent = "bye"\n[[flow.routes]]\nintent = "bye"\n',
            "flow.routes[1].intent: intent 'bye' is routed twice",
        ),
        (
            '[[flow.routes]]\nintent = "yes"\ngoto = "gone"\n',
            "flow.routes[0].goto: unknown node 'gone'",
        ),
        (
            'give_up = [{ transfer = "" }]\n',
            'transfer_target: must be set, the flow has `transfer = ""` actions',
        ),
    ],
)
def test_flow_errors(extra: str, message: str) -> None:
    if extra.startswith("give_up"):
        text = BASE.replace("[flow]\n", "[flow]\n" + extra)
    else:
        text = BASE + extra
    assert message in error(text)


def test_many_problems_are_summarised() -> None:
    text = BASE.replace('goto = "main" }', 'goto = "a" }').replace('start = "main"', 'start = "b"')
    text += '[flow.nodes.c]\ndo = [{ ask = "x" }, { goto = "d" }, { webhook = "e" }]\n'
    message = error(text)
    assert "flow.start: unknown node 'b'" in message
    assert message.endswith("(and 3 more)")


def test_not_toml() -> None:
    assert error(BASE + "x = ").startswith("tiny.toml: not valid TOML:")


def test_flow_agent_needs_a_flow() -> None:
    assert "a flow agent needs a `flow` section" in error('name = "x"\nkind = "flow"\n')


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValueError, match=r"flow.start: unknown node 'nowhere'"):
        FlowSpec(start="nowhere", nodes={"main": NodeSpec(prompt="Hi")})
    with pytest.raises(msgspec.ValidationError, match=r"flow.nodes.main.do\[0\].ask"):
        msgspec.convert(
            {"start": "main", "nodes": {"main": {"do": [{"ask": "x"}], "prompt": "?"}}},
            FlowSpec,
        )


def test_defaults_and_helpers() -> None:
    flow = FlowSpec(
        start="main",
        nodes={"main": NodeSpec(do=[Action(say="Hi {who}"), Action(transfer="")])},
        slots={"who": SlotSpec(type="name", prompt="Who?")},
    )
    assert flow.uses_default_transfer()
    assert not flow.slots["who"].is_eager
    assert SlotSpec(type="time", prompt="When?").is_eager
    assert not SlotSpec(type="time", prompt="When?", eager=False).is_eager
    assert Action(ask="who").verbs == ["ask"]
    assert placeholders("{name} on {day} at {time}") == ["name", "day", "time"]
