"""A call's template variables in its agent's texts (issue 17: a campaign contact's name,
appointment time, ...).

`with_variables(spec, variables)` returns the spec with `$name` and `${name}` replaced by the
call's values in every line the agent speaks or is prompted with: the greeting, an LLM agent's
system `prompt` and fallback line, a flow's prompts, reprompts, `say` lines, readbacks,
confirmations and webhook error lines, the voicemail message and the fixed lines
(`reprompt_line`, `action_failed_line`, `recording_disclosure`). The same syntax as the
voicemail message (`pipeline.amd.render_voicemail`). A placeholder naming no variable stays as
written (never an error), and so does `$` before anything that is not a name ("$50"). A flow's
texts use `$name`: its spec check reads `{...}` as a slot, so `${name}` is refused there. Nothing
else is touched: URLs, tool definitions, MCP servers and intents never take a value, so a
contact's variables cannot point a request anywhere. One pass: a value that itself looks like a
placeholder is not expanded again.

`with_on_machine(spec, on_machine)`: a campaign's `voicemail` choice ("hang_up" |
"leave_message") over the agent's `[amd] on_machine` for its calls; leaving a message needs the
agent's `voicemail_message` (an agent without one hangs up on a machine). `for_call` applies
both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

import msgspec

from agents.spec import AgentSpec

__all__ = ["fill", "for_call", "with_on_machine", "with_variables"]

_PLACEHOLDER: Final = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

TEXT_FIELDS: Final = frozenset(
    {
        "greeting",
        "prompt",
        "reprompt",
        "no_match",
        "invalid",
        "readback",
        "say",
        "on_error",
        "confirm_end",
        "confirm_transfer",
        "declined",
        "voicemail_message",
        "fallback_line",
        "reprompt_line",
        "action_failed_line",
        "recording_disclosure",
    }
)
"""The spec's fields (at any depth) that are lines spoken or prompts."""

_SKIPPED: Final = frozenset({"tools", "mcp", "intents"})
"""Sections never filled (requests and matching, not speech)."""


def fill(text: str, variables: Mapping[str, str]) -> str:
    """`text` with each `$name` / `${name}` of `variables` replaced; others stay as written."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = variables.get(name)
        return match.group(0) if found is None else found

    return _PLACEHOLDER.sub(value, text)


def _walk(node: object, variables: Mapping[str, str]) -> object:
    if isinstance(node, dict):
        return {
            key: (
                fill(item, variables)
                if key in TEXT_FIELDS and isinstance(item, str)
                else item
                if key in _SKIPPED
                else _walk(item, variables)
            )
            for key, item in node.items()
        }
    if isinstance(node, list):
        return [_walk(item, variables) for item in node]
    return node


def with_variables(spec: AgentSpec, variables: Mapping[str, str] | None) -> AgentSpec:
    """`spec` with the call's `variables` filled into its texts (the spec itself when none)."""
    if not variables:
        return spec
    filled = _walk(msgspec.to_builtins(spec), variables)
    return msgspec.convert(filled, AgentSpec)


OnMachine = Literal["hang_up", "leave_message"]


def with_on_machine(spec: AgentSpec, on_machine: OnMachine | None) -> AgentSpec:
    """`spec` with `on_machine` as its `[amd] on_machine` (None: the agent's own)."""
    amd = spec.amd
    if on_machine is None or on_machine == amd.on_machine:
        return spec
    if on_machine == "leave_message" and not amd.voicemail_message.strip():
        return spec  # no message to leave: the agent's own choice (hang up) stands
    return msgspec.structs.replace(spec, amd=msgspec.structs.replace(amd, on_machine=on_machine))


def for_call(
    spec: AgentSpec, variables: Mapping[str, str] | None, on_machine: OnMachine | None = None
) -> AgentSpec:
    """`spec` as one call runs it: its variables filled in, its campaign's voicemail choice."""
    return with_on_machine(with_variables(spec, variables), on_machine)
