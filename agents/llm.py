"""The LLM agent: streamed chat completions from any OpenAI-compatible endpoint, with tools.

One turn (`respond`) is a bounded loop of completion rounds. Each round streams text to the
caller as tokens arrive (`TextChunk` per content delta; the TTS splits clauses) and gathers
streamed tool calls; when the model called tools they are run, their results appended as
`tool` messages and the model is asked again (at most `MAX_TOOL_ROUNDS` rounds with tools, and
at most `llm.max_tool_calls` calls run per reply: later ones come back to the model refused).
Every tool call is reported as a `ToolResult`; built-ins also yield their call action after the
text of the round: `SendDtmf` right away (the model goes on), `EndCall` / `Transfer` last, and
they end the turn.

Inputs:
- `CallStarted`: speaks `spec.greeting` without a model call; without one, the model is asked
  to greet (`[the call has just connected ...]` as a bracketed user note).
- `UserSaid`: the history already ends with the caller's turn (appended if it does not).
- `DtmfPressed`: the model gets `[caller pressed keys: 123]`.
- `NoInput`: the model is asked for a short reprompt with a bracketed note (it knows what it
  last asked, so the reprompt fits the conversation); failures fall back as below.
- Assistant turns flagged `interrupted` are sent as heard, with a trailing "—".
(The messages are made in `agents/llm_messages.py`.)

Speculative replies (`may_speculate`: `llm.speculate`, by default on when no tool has side
effects): the session may start a reply while the caller pauses and hold it until the endpoint
(`agents/speculation.py`). The text streams into TTS meanwhile; a tool call with side effects
(`agents.tools.has_side_effects`) waits until the session releases the reply, and never runs if
the session drops it (cancels the reply: the HTTP stream is closed). Replies are counted used
or dropped, and a dropped one's tokens as wasted (`SpeculationLedger`).

Failures (first token later than `first_token_timeout_s` in any round, the turn past
`total_timeout_s`, HTTP errors, refused connections, malformed or dropped streams): a structured
warning is logged and, if nothing was spoken yet in this turn, `fallback_line` is spoken once.
If some text was already spoken the turn just ends there (no fallback after a partial reply,
and a tool call cut off mid-stream is dropped). `CancelledError` (barge-in) always propagates;
the HTTP stream is closed on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import openai
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)

from agents.base import (
    Agent,
    AgentContext,
    AgentInput,
    AgentOutput,
    CallStarted,
    EndCall,
    Message,
    TextChunk,
    Transfer,
)
from agents.llm_access import LlmAccess
from agents.llm_messages import CLOSING_NOTE as CLOSING_NOTE
from agents.llm_messages import DTMF_NOTE as DTMF_NOTE
from agents.llm_messages import GREET_NOTE as GREET_NOTE
from agents.llm_messages import INTERRUPTED_MARK as INTERRUPTED_MARK
from agents.llm_messages import NO_INPUT_NOTE as NO_INPUT_NOTE
from agents.llm_messages import assistant_with_calls, chat_messages
from agents.llm_round import PendingCall, Round
from agents.mcp import FILLER_LINE, with_filler
from agents.spec import AgentSpec, LlmSettings
from agents.speculation import Speculation, SpeculationLedger, confirmed, pending
from agents.tools import Toolbox, ToolCall, ToolOutcome

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4
"""Completion rounds that may end in tool calls, per turn; a model still calling tools after
that gets the fallback line (if it said nothing)."""

_EXPECTED_ERRORS = (openai.APIError, TimeoutError, ValueError)


class _TurnFailed(Exception):
    """A round could not finish (the reason is logged by the turn)."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


@dataclasses.dataclass(slots=True)
class _Budget:
    """Tool calls the reply may still run (`llm.max_tool_calls`)."""

    left: int
    filler_said: bool = False


class LlmAgent(Agent):
    """An agent backed by an OpenAI-compatible chat-completions endpoint.

    `client` may be shared by several agents (the node's, per endpoint); without one the agent
    makes its own (retries off: the timeouts are the agent's) and closes it in `aclose`.
    """

    def __init__(
        self, spec: AgentSpec, ctx: AgentContext, *, client: openai.AsyncOpenAI | None = None
    ) -> None:
        if spec.llm is None:
            raise ValueError("an llm agent needs an `llm` section")
        self._spec = spec
        self._settings: LlmSettings = spec.llm
        self._ctx = ctx
        self._toolbox = Toolbox(spec, ctx)
        self._tools = cast(list[ChatCompletionToolUnionParam], self._toolbox.schemas())
        self._owns_client = client is None
        if client is None:
            access = ctx.llm or LlmAccess(url_allowlist=tuple(ctx.url_allowlist))
            client = access.open_client(self._settings, self._settings.total_timeout_s)
        self._client = client
        self._ledger = SpeculationLedger()

    @property
    def _too_many(self) -> str:
        return f"at most {self._settings.max_tool_calls} tool calls per reply; this one was not run"

    @property
    def may_speculate(self) -> bool:
        """`llm.speculate`; unset, when none of the agent's tools has side effects."""
        if self._settings.speculate is not None:
            return self._settings.speculate
        return not self._toolbox.side_effects

    def restore(self, checkpoint: object) -> None:
        """Nothing to undo: the agent keeps no state besides the history, which the session
        keeps. The session restores when it drops a speculative reply: it is counted here."""
        self._ledger.settle()

    async def aclose(self) -> None:
        self._ledger.settle()
        await self._toolbox.aclose()
        if self._owns_client:
            await self._client.close()

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        self._toolbox.start()  # MCP tools' discovery, awaited by the first model request
        if isinstance(event, CallStarted) and self._spec.greeting:
            yield TextChunk(self._spec.greeting)
            return
        speculation = self._ledger.begin()
        try:
            async with contextlib.aclosing(self._turn(history, event, speculation)) as outputs:
                async for out in outputs:
                    yield out
        except BaseException:  # cancelled (barge-in, the caller went on) or closed
            self._ledger.end(speculation, finished=False)
            raise
        self._ledger.end(speculation, finished=True)

    async def _turn(
        self, history: Sequence[Message], event: AgentInput, speculation: Speculation | None
    ) -> AsyncGenerator[AgentOutput, None]:
        """One reply (see the module's docstring); `speculation`: the reply is held."""
        messages = chat_messages(self._spec, history, event, pii=self._ctx.pii)
        if await self._toolbox.prepare():
            self._tools = cast(list[ChatCompletionToolUnionParam], self._toolbox.schemas())
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._settings.total_timeout_s
        spoke = False
        rounds = 0
        budget = _Budget(self._settings.max_tool_calls)
        try:
            while True:
                rounds += 1
                current = Round(speculation=speculation)
                try:
                    async with contextlib.aclosing(self._stream(messages, current, deadline)) as s:
                        async for token in s:
                            spoke = True
                            yield TextChunk(token)
                except _TurnFailed:
                    yield current.report(ok=False)
                    raise
                yield current.report()
                calls = current.tool_calls()
                if not calls:
                    return
                if rounds > MAX_TOOL_ROUNDS:
                    raise _TurnFailed("too_many_tool_rounds")
                said = "".join(current.text)
                messages.append(assistant_with_calls(said, calls))
                if said and not said[-1].isspace() and self._held_for_endpoint(calls):
                    yield TextChunk(" ")  # the round's words are whole: synthesized meanwhile
                final: EndCall | Transfer | None = None
                async for out in self._run_calls(calls, messages, deadline, budget):
                    if isinstance(out, EndCall | Transfer):
                        final = final or out
                    else:
                        yield out
                if final is not None:
                    yield final
                    return
        except _TurnFailed as failure:
            self._warn(failure.reason, failure.cause, spoke, rounds, loop.time() - started)
            if not spoke:
                yield TextChunk(self._settings.fallback_line)

    def _held_for_endpoint(self, calls: Sequence[ToolCall]) -> bool:
        """The reply is held and some of `calls` must wait for the endpoint."""
        return pending() and any(self._toolbox.acts(call) for call in calls)

    async def _run_calls(
        self,
        calls: Sequence[ToolCall],
        messages: list[ChatCompletionMessageParam],
        deadline: float,
        budget: _Budget,
    ) -> AsyncGenerator[AgentOutput, None]:
        """Run one round's tool calls in order (those past the reply's budget come back
        refused), appending each result to `messages`. Yields each `ToolResult`, a `SendDtmf`
        right after its result, and every `EndCall`/`Transfer` action (the caller acts on the
        first, after the round)."""
        for call in calls:
            if budget.left <= 0:
                outcome = self._toolbox.refused(call, self._too_many)
            else:
                budget.left -= 1
                if self._toolbox.acts(call):
                    await confirmed()  # in a speculative reply: once the endpoint confirms it
                ran: ToolOutcome | None = None
                started = time.monotonic()
                async for ran in self._run_one(call, deadline, budget):
                    if ran is None:
                        yield TextChunk(f" {FILLER_LINE} ")  # a slow MCP call, once a reply
                assert ran is not None
                took = round((time.monotonic() - started) * 1000, 1)
                outcome = ran.timed(took)
            self._log_tool(call.name, outcome.result.ok)
            yield outcome.result
            if outcome.action is not None:
                yield outcome.action
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": outcome.result.result}
            )

    async def _run_one(
        self, call: ToolCall, deadline: float, budget: _Budget
    ) -> AsyncGenerator[ToolOutcome | None, None]:
        """Run `call` by the turn's deadline: its outcome, after None when the filler is due (an
        MCP call still running after `agents.mcp.FILLER_AFTER_S`, the reply's first)."""
        try:
            if budget.filler_said or not self._toolbox.is_mcp(call):
                async with asyncio.timeout_at(deadline):
                    outcome = await self._toolbox.run(call)
                yield outcome  # (no timeout scope across a yield)
                return
            async with contextlib.aclosing(with_filler(self._toolbox.run(call), deadline)) as steps:
                async for step in steps:
                    budget.filler_said = budget.filler_said or step is None
                    yield step
        except TimeoutError as exc:
            raise _TurnFailed("total_timeout", exc) from exc

    async def _stream(
        self, messages: list[ChatCompletionMessageParam], into: Round, deadline: float
    ) -> AsyncGenerator[str, None]:
        """One completion round: yield content deltas, gather tool calls into `into`. Raises
        `_TurnFailed` for every failure but cancellation. No timeout scope is held across a
        `yield` (the consumer's awaits must not be cancelled by our deadlines)."""
        loop = asyncio.get_running_loop()
        first_deadline = min(deadline, loop.time() + self._settings.first_token_timeout_s)
        got_first = False
        try:
            async with asyncio.timeout_at(first_deadline):
                stream = await self._client.chat.completions.create(
                    model=self._settings.model,
                    messages=messages,
                    tools=self._tools or openai.omit,
                    temperature=self._settings.temperature,
                    max_tokens=self._settings.max_tokens,
                    stream=True,
                )
        except TimeoutError as exc:
            reason = "total_timeout" if first_deadline >= deadline else "first_token_timeout"
            raise _TurnFailed(reason, exc) from exc
        except _EXPECTED_ERRORS as exc:
            raise _TurnFailed("endpoint_error", exc) from exc
        except Exception as exc:
            raise _TurnFailed("unexpected_error", exc) from exc
        try:
            while True:
                limit = deadline if got_first else first_deadline
                try:
                    async with asyncio.timeout_at(limit):
                        chunk: ChatCompletionChunk = await stream.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    first = not got_first and first_deadline < deadline
                    reason = "first_token_timeout" if first else "total_timeout"
                    raise _TurnFailed(reason, exc) from exc
                except _EXPECTED_ERRORS as exc:
                    raise _TurnFailed("stream_error", exc) from exc
                except Exception as exc:
                    raise _TurnFailed("unexpected_error", exc) from exc
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta.content or delta.tool_calls:
                        got_first = True
                        into.delta()
                    for call_delta in delta.tool_calls or ():
                        pending = into.calls.setdefault(call_delta.index, PendingCall())
                        if call_delta.id:
                            pending.id = call_delta.id
                        if call_delta.function is not None:
                            pending.name += call_delta.function.name or ""
                            pending.arguments += call_delta.function.arguments or ""
                    if delta.content:
                        into.text.append(delta.content)
                        yield delta.content
        finally:
            await stream.close()

    def _fields(self, **fields: Any) -> dict[str, Any]:
        return {
            "call_id": self._ctx.call_id,
            "tenant_id": self._ctx.tenant_id,
            "agent": self._spec.name,
            "model": self._settings.model,
            **fields,
        }

    def _warn(
        self, reason: str, cause: BaseException | None, spoke: bool, rounds: int, elapsed: float
    ) -> None:
        unexpected = cause is not None and not isinstance(cause, _EXPECTED_ERRORS)
        status = getattr(cause, "status_code", None)
        log.warning(
            "llm turn failed",
            extra=self._fields(
                reason=reason,
                error=type(cause).__name__ if cause is not None else None,
                status_code=status,
                spoke_before_failure=spoke,
                fallback=not spoke,
                rounds=rounds,
                elapsed_s=round(elapsed, 3),
            ),
            exc_info=cause if unexpected else None,
        )

    def _log_tool(self, name: str, ok: bool) -> None:
        log.info("tool ran", extra=self._fields(tool=name, ok=ok))
