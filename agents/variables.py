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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from agents.spec import AgentSpec

__all__ = ["fill", "with_variables"]

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
