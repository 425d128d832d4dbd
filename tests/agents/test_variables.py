"""A call's template variables in its agent's texts (`agents.variables`): `$name` and
`${name}` filled in the greeting, an LLM agent's prompt and a flow's lines; placeholders
naming no variable, and `$` before a non-name, stay as written; URLs and tool definitions are
never filled; one pass only. And a campaign's voicemail choice over the agent's own."""

from __future__ import annotations

import msgspec

from agents.catalog import embedded_specs, parse_spec
from agents.variables import fill, for_call, with_on_machine, with_variables

VARIABLES = {"name": "Ann Lee", "appointment_time": "Tuesday at 3 PM"}


def test_placeholders_are_filled_and_unknown_ones_stay() -> None:
    text = "Hi $name, your visit is ${appointment_time}; $other and ${nope} stay, $5 too, $$."
    assert fill(text, VARIABLES) == (
        "Hi Ann Lee, your visit is Tuesday at 3 PM; $other and ${nope} stay, $5 too, $$."
    )
    assert fill("$name", {"name": "$appointment_time"}) == "$appointment_time"  # one pass


def test_an_llm_agents_prompt_greeting_and_lines_are_filled_but_not_its_urls() -> None:
    spec = parse_spec(
        'name = "reminder"\nkind = "llm"\n'
        'prompt = "You remind $name of the visit on ${appointment_time}."\n'
        'greeting = "Hello $name, this is Bright Smile about $unknown."\n'
        "[[tools]]\n"
        'name = "lookup"\nkind = "http"\ndescription = "Look up $name"\n'
        'url = "https://api.example.com/$name"\n'
        '[llm]\nbase_url = "https://llm.example.com/$name"\nmodel = "m"\n'
        'fallback_line = "Sorry $name, say that again?"\n',
        "reminder.toml",
    )
    filled = with_variables(spec, VARIABLES)
    assert filled.prompt == "You remind Ann Lee of the visit on Tuesday at 3 PM."
    assert filled.greeting == "Hello Ann Lee, this is Bright Smile about $unknown."
    assert filled.llm is not None and spec.llm is not None
    assert filled.llm.fallback_line == "Sorry Ann Lee, say that again?"
    assert filled.llm.base_url == spec.llm.base_url
    assert filled.tools == spec.tools  # a tool's URL and description: requests, not speech


def test_a_flows_prompts_and_lines_are_filled() -> None:
    """A flow writes `$name` (its check reads `{...}` as a slot, so not `${name}`)."""
    spec = parse_spec(
        'name = "confirm"\ngreeting = "Hi $name."\n'
        '[amd]\nvoicemail_message = "Hi $name, call us about ${appointment_time}."\n'
        '[flow]\nstart = "ask"\n'
        '[flow.nodes.ask]\nprompt = "Can you make $appointment_time?"\n'
        'routes = [{ intent = "yes", say = "See you $appointment_time, $name.", '
        "do = [{ end = true }] }]\n"
        '[flow.intents.yes]\nexamples = ["yes $name"]\n',
        "confirm.toml",
    )
    filled = with_variables(spec, VARIABLES)
    assert filled.greeting == "Hi Ann Lee."
    assert filled.amd.voicemail_message == "Hi Ann Lee, call us about Tuesday at 3 PM."
    assert filled.flow is not None and spec.flow is not None
    ask = filled.flow.nodes["ask"]
    assert ask.prompt == "Can you make Tuesday at 3 PM?"
    assert ask.routes[0].say == "See you Tuesday at 3 PM, Ann Lee."
    assert filled.flow.intents == spec.flow.intents  # matching is not speech


def test_no_variables_leave_the_spec_as_it_is() -> None:
    spec = embedded_specs()["receptionist"]
    assert with_variables(spec, None) is spec
    assert with_variables(spec, {}) is spec
    assert with_variables(spec, VARIABLES) == spec  # it names none of them


def test_a_campaigns_voicemail_choice_overrides_the_agents_own() -> None:
    spec = parse_spec(
        'name = "r"\nkind = "flow"\n[amd]\nvoicemail_message = "Hi $name, call us."\n'
        '[flow]\nstart = "a"\n[flow.nodes.a]\nprompt = "Hello?"\n',
        "r.toml",
    )
    assert spec.amd.on_machine == "hang_up"
    assert with_on_machine(spec, None) is spec
    assert with_on_machine(spec, "hang_up") is spec
    leaving = for_call(spec, {"name": "Ann"}, "leave_message")
    assert leaving.amd.on_machine == "leave_message"
    assert leaving.amd.voicemail_message == "Hi Ann, call us."
    silent = msgspec.structs.replace(
        spec, amd=msgspec.structs.replace(spec.amd, voicemail_message="")
    )
    assert with_on_machine(silent, "leave_message").amd.on_machine == "hang_up"  # nothing to say
