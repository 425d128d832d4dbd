"""Tools an agent's model may call: the built-ins (`end_call`, `transfer_call`, `send_dtmf`,
`pause_recording`, `resume_recording`), which map to call actions, and HTTP tools, which fetch
a tenant URL (through the SSRF guard, redirects not followed) and hand the response body back
to the model.

A tool call never raises: bad arguments, refused URLs, timeouts and HTTP errors all become a
`ToolResult` with `ok=False` whose text the model sees and can react to. Arguments are checked
against the tool's JSON schema (`agents.argcheck`) before anything runs: a call that does not
fit makes no request.

Every built-in and every HTTP tool not declared `read_only` has side effects
(`has_side_effects`): in a reply started before the caller's turn is surely over, its calls wait
for the endpoint (`agents/speculation.py`), and an agent with such tools does not speculate
unless `llm.speculate` asks for it.

The tools of the agent's MCP servers (`[[mcp]]`) come from `agents.mcp.McpTools`: discovered
when the call starts (`start`, `prepare`), offered as `server__tool`, run by it.

`end_call` always ends the call as `completed`: the reason the model gives is kept in the tool
call's arguments (the `tool.called` event), never in the call's end reason, which feeds
metrics labels and dispositions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any

import httpx
import msgspec

from agents.argcheck import argument_error
from agents.base import AgentContext, EndCall, RecordingControl, SendDtmf, ToolResult, Transfer
from agents.mcp import McpTools
from agents.spec import AgentSpec, ToolSpec
from agents.urlguard import UnsafeUrlError, fetch

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 4000
"""Longest tool result handed to the model (bodies are cut, with a marker)."""
MAX_RESULT_BYTES = 16_384
"""Most bytes read from an HTTP tool's response."""

_DTMF = re.compile(r"^[0-9*#A-D]{1,64}$")

CallAction = EndCall | Transfer | SendDtmf | RecordingControl
_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}, "required": []}

BUILTIN_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "end_call": (
        "Hang up the call after your reply has been spoken. Use it when the conversation is "
        "finished or the caller asks to end it.",
        {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why the call ends, in a few words."}
            },
            "required": [],
        },
    ),
    "transfer_call": (
        "Transfer the caller to a human or another number after your reply has been spoken.",
        {
            "type": "object",
            "properties": {
                "target": {
                    "type": "string",
                    "description": "Number or SIP URI; leave out to use the default desk.",
                }
            },
            "required": [],
        },
    ),
    "send_dtmf": (
        "Press keys on the phone keypad (for example to navigate a phone menu).",
        {
            "type": "object",
            "properties": {
                "digits": {
                    "type": "string",
                    "pattern": "^[0-9*#A-Da-d]+$",
                    "description": "Keys to press: 0-9, *, #, A-D.",
                }
            },
            "required": ["digits"],
        },
    ),
    "pause_recording": (
        "Stop recording the call (both sides) once your reply has been spoken, before the "
        "caller gives something sensitive such as a card number.",
        _NO_ARGUMENTS,
    ),
    "resume_recording": ("Record the call again after `pause_recording`.", _NO_ARGUMENTS),
}


def has_side_effects(tool: ToolSpec) -> bool:
    """Whether calling `tool` has effects outside the reply: every built-in does (it acts on the
    call), and every HTTP tool not declared `read_only`. Such calls wait for the endpoint in a
    speculative reply (`agents.speculation`)."""
    return tool.kind == "builtin" or not tool.read_only


@dataclasses.dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call as the model asked for it (arguments are the raw JSON text)."""

    id: str
    name: str
    arguments: str


@dataclasses.dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What running a tool call produced: the result the model sees, and the call action a
    built-in asks for (None for HTTP tools and failed calls)."""

    result: ToolResult
    action: CallAction | None = None

    def timed(self, duration_ms: float) -> ToolOutcome:
        """The same outcome with how long the tool ran on its result."""
        result = msgspec.structs.replace(self.result, duration_ms=duration_ms)
        return dataclasses.replace(self, result=result)


class Toolbox:
    """The tools of one agent: their schemas for the model and how to run a call of each."""

    def __init__(self, spec: AgentSpec, ctx: AgentContext) -> None:
        self._spec = spec
        self._ctx = ctx
        self._tools: dict[str, ToolSpec] = {}
        for tool in spec.tools:
            if tool.kind == "builtin" and tool.name not in BUILTIN_SCHEMAS:
                raise ValueError(
                    f"unknown built-in tool {tool.name!r} (one of {', '.join(BUILTIN_SCHEMAS)})"
                )
            if tool.kind == "http" and not tool.url:
                raise ValueError(f"HTTP tool {tool.name!r} needs a url")
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name!r} is listed twice")
            self._tools[tool.name] = tool
        self._mcp = McpTools(spec.mcp, ctx, spec.name)

    def __bool__(self) -> bool:
        return bool(self._tools) or bool(self._mcp)

    @property
    def side_effects(self) -> bool:
        """Some tool of the agent has side effects (`has_side_effects`; MCP tools not among
        their server's `read_only_tools`)."""
        tools = any(has_side_effects(tool) for tool in self._tools.values())
        return tools or self._mcp.side_effects

    def acts(self, call: ToolCall) -> bool:
        """Whether running `call` may have side effects (a tool the agent lacks: no, it is not
        run)."""
        tool = self._tools.get(call.name)
        if tool is None:
            return self._mcp.acts(call.name)
        return has_side_effects(tool)

    def start(self) -> None:
        """Start discovering the MCP servers' tools (`agents.mcp`)."""
        self._mcp.start()

    async def prepare(self) -> bool:
        """Wait for the MCP tools' discovery; True when some MCP tools joined the schemas."""
        await self._mcp.prepare()
        return bool(self._mcp.schemas())

    async def aclose(self) -> None:
        await self._mcp.aclose()

    def is_mcp(self, call: ToolCall) -> bool:
        """`call` is to an MCP tool (slow ones get a spoken filler, `agents.mcp.with_filler`)."""
        return call.name not in self._tools and self._mcp.owns(call.name)

    @staticmethod
    def _parameters(tool: ToolSpec) -> dict[str, Any]:
        if tool.kind == "builtin":
            return BUILTIN_SCHEMAS[tool.name][1]
        return dict(tool.parameters) or {"type": "object", "properties": {}}

    def refused(self, call: ToolCall, reason: str) -> ToolOutcome:
        """The outcome of a call that is not run (the model sees `reason`)."""
        return self._failed(call.name, {}, f"error: {reason}")

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI `tools` entries (function tools) for every tool of the agent."""
        out: list[dict[str, Any]] = []
        for tool in self._tools.values():
            if tool.kind == "builtin":
                default_description, parameters = BUILTIN_SCHEMAS[tool.name]
                description = tool.description or default_description
            else:
                description = tool.description
                parameters = self._parameters(tool)
            function: dict[str, Any] = {"name": tool.name, "parameters": parameters}
            if description:
                function["description"] = description
            out.append({"type": "function", "function": function})
        return out + self._mcp.schemas()

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one tool call. Never raises (except `CancelledError`)."""
        try:
            parsed = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            return self._failed(call.name, {}, "error: the arguments are not valid JSON")
        if not isinstance(parsed, dict):
            return self._failed(call.name, {}, "error: the arguments must be a JSON object")
        arguments: dict[str, Any] = parsed
        tool = self._tools.get(call.name)
        if tool is None and self._mcp.owns(call.name):
            return ToolOutcome(await self._mcp.run(call.name, arguments))
        if tool is None:
            return self._failed(call.name, arguments, f"error: there is no tool {call.name!r}")
        if (problem := argument_error(self._parameters(tool), arguments)) is not None:
            log.info("tool call refused", extra=self._log_fields(tool.name, error="arguments"))
            return self._failed(tool.name, arguments, f"error: {problem}")
        if tool.kind == "builtin":
            return self._run_builtin(tool.name, arguments)
        return await self._run_http(tool, arguments)

    def _run_builtin(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        if name == "end_call":
            return ToolOutcome(
                ToolResult(name=name, arguments=arguments, result="the call will end"),
                EndCall(reason="completed"),
            )
        if name == "transfer_call":
            target = arguments.get("target")
            if not isinstance(target, str) or not target.strip():
                target = self._spec.transfer_target
            target = target.strip()
            if not target:
                return self._failed(name, arguments, "error: no transfer target is configured")
            return ToolOutcome(
                ToolResult(name=name, arguments=arguments, result="the caller will be transferred"),
                Transfer(target=target),
            )
        if name in ("pause_recording", "resume_recording"):
            pause = name == "pause_recording"
            return ToolOutcome(
                ToolResult(
                    name=name,
                    arguments=arguments,
                    result="the recording pauses" if pause else "the recording goes on",
                ),
                RecordingControl(pause=pause),
            )
        # send_dtmf
        digits = arguments.get("digits")
        if not isinstance(digits, str) or not _DTMF.fullmatch(digits.strip().upper()):
            return self._failed(
                name, arguments, "error: digits must be 1-64 of 0-9, *, #, A-D (e.g. '1#')"
            )
        digits = digits.strip().upper()
        return ToolOutcome(
            ToolResult(name=name, arguments=arguments, result=f"pressed {digits}"),
            SendDtmf(digits=digits),
        )

    async def _run_http(self, tool: ToolSpec, arguments: dict[str, Any]) -> ToolOutcome:
        params: dict[str, str] | None = None
        body: Any = None
        if tool.method == "GET":
            params = {
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in arguments.items()
            }
        else:
            body = arguments
        try:
            response = await fetch(
                self._ctx.http,
                tool.method,
                tool.url,
                allowlist=self._ctx.url_allowlist,
                params=params,
                json=body,
                timeout_s=tool.timeout_s,
                max_bytes=MAX_RESULT_BYTES,
            )
        except UnsafeUrlError as exc:
            self._warn(tool.name, exc)
            return self._failed(tool.name, arguments, "error: the tool's URL is not allowed")
        except httpx.TimeoutException as exc:
            self._warn(tool.name, exc)
            return self._failed(
                tool.name, arguments, f"error: no answer within {tool.timeout_s:g} s"
            )
        except httpx.HTTPError as exc:
            self._warn(tool.name, exc)
            return self._failed(tool.name, arguments, "error: the tool could not be reached")
        text = response.text
        if response.truncated or len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + " …[truncated]"
        if not response.ok:
            log.warning(
                "tool call failed",
                extra=self._log_fields(tool.name, error=f"http_{response.status_code}"),
            )
            return self._failed(tool.name, arguments, f"error: HTTP {response.status_code}: {text}")
        return ToolOutcome(ToolResult(name=tool.name, arguments=arguments, result=text))

    def _failed(self, name: str, arguments: dict[str, Any], message: str) -> ToolOutcome:
        return ToolOutcome(ToolResult(name=name, arguments=arguments, result=message, ok=False))

    def _warn(self, name: str, exc: BaseException) -> None:
        log.warning("tool call failed", extra=self._log_fields(name, error=type(exc).__name__))

    def _log_fields(self, name: str, **fields: object) -> dict[str, object]:
        return {
            "call_id": self._ctx.call_id,
            "tenant_id": self._ctx.tenant_id,
            "tool": name,
            **fields,
        }
