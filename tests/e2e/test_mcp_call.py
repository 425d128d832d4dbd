"""An LLM agent calls tools on a real MCP server (the `mcp` SDK's, started here) in a
real-audio call: the server gets the validated arguments and the result reaches the model and
the caller; a slow tool makes the agent say the filler first; a server that vanished between
two calls fails the second cleanly and the call goes on to its end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence

import httpx
import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents.base import AgentContext, AgentInput, AgentOutput, Message, TextChunk, UserSaid
from agents.llm import LlmAgent
from agents.llm_access import LlmAccess
from agents.mcp import DISCOVERY, FILLER_LINE
from agents.spec import AgentSpec
from pipeline.engines import Engines
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.mcp_server import RunningMcp, serve_mcp
from tests.support.speech import heard_of, telephone, transcribe, words
from voicenode.simulate import SimulationResult, simulate
from voicenode.tracing import CallTracer

pytestmark = pytest.mark.slow
Say = Callable[[str], npt.NDArray[np.int16]]
FILLER = TextChunk(f" {FILLER_LINE} ")
ANSWER_WORDS = {"tuesday", "thirty", "moss", "moment", "check", "ready"}


def mcp_spec(double: LlmDouble, mcp: RunningMcp) -> AgentSpec:
    return msgspec.convert(
        {
            "name": "assistant",
            "kind": "llm",
            "greeting": "Hello, this is the clinic assistant.",
            "prompt": "You answer questions for a dental clinic. Be brief.",
            "llm": {"base_url": double.base_url, "model": "test"},
            "tools": [{"name": "end_call"}],
            "mcp": [
                {
                    "name": "crm",
                    "url": mcp.url,
                    "allowed_tools": ["next_appointment", "slow_lookup"],
                    "read_only_tools": ["next_appointment", "slow_lookup"],
                }
            ],
        },
        AgentSpec,
    )


class _Agent(LlmAgent):
    """The LLM agent; the test's hands on its server: the slow tool is let go once the filler
    was said, and the server is stopped before the caller's third turn."""

    mcp: RunningMcp
    turns = 0

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        if isinstance(event, UserSaid):
            self.turns += 1
            if self.turns == 3:
                await self.mcp.stop()
        async with contextlib.aclosing(super().respond(history, event)) as outputs:
            async for out in outputs:
                if out == FILLER:
                    self.mcp.backend.release_slow.set()
                yield out


def tool_messages(double: LlmDouble, request: int) -> list[str]:
    messages = double.turn_requests[request]["messages"]
    return [m["content"] for m in messages if m["role"] == "tool"]


async def test_mcp_tools_in_a_real_audio_call(engines: Engines, say: Say) -> None:
    appointment = ScriptedToolCall("crm__next_appointment", {"last_name": "Lee"}, id="c1")
    DISCOVERY.clear()
    async with LlmDouble(per_turn=True) as double, serve_mcp() as mcp, httpx.AsyncClient() as http:
        double.script(
            Reply(tool_calls=[appointment]),
            Reply(
                tokens=[
                    "Your ",
                    "next ",
                    "visit ",
                    "is ",
                    "Tuesday ",
                    "at ",
                    "ten thirty ",
                    "with ",
                    "doctor ",
                    "Moss.",
                ]
            ),
            Reply(tool_calls=[ScriptedToolCall("crm__slow_lookup", {"query": "x-ray"}, id="c2")]),
            Reply(tokens=["Your ", "x-ray ", "results ", "are ", "ready."]),
            Reply(tool_calls=[ScriptedToolCall("crm__next_appointment", {"last_name": "Kim"})]),
            Reply(
                tokens=["Sorry, ", "I ", "can't ", "check ", "that ", "now. ", "Goodbye!"],
                tool_calls=[ScriptedToolCall("end_call", {}, id="c4")],
            ),
        )
        spec = mcp_spec(double, mcp)
        ctx = AgentContext(
            call_id="mcp-1",
            tenant_id="demo",
            http=http,
            url_allowlist=("127.0.0.1",),  # `analytics.url_allowlist`: the test's servers
            llm=LlmAccess(url_allowlist=("127.0.0.1",)),
        )
        agent = _Agent(spec, ctx)
        agent.mcp = mcp
        lines = [
            say("When is my next appointment? My name is Lee."),
            say("Do you have my x-ray results?"),
            say("And my wife's appointment?"),
        ]
        result = await simulate(engines, spec, lines, agent=agent)
        await agent.aclose()
    DISCOVERY.clear()

    turns = [(t.role, t.text) for t in result.turns]
    assert result.ended is not None and result.ended.reason == "completed", turns
    # The server got the validated arguments (the defaults filled in by the SDK's schema).
    assert mcp.backend.calls == [
        ("next_appointment", {"last_name": "Lee", "limit": 1}),
        ("slow_lookup", {"query": "x-ray"}),
    ]
    # The results reached the model; the vanished server came back as a failure.
    assert tool_messages(double, 1) == ["Lee: Tuesday 10:30 with Dr. Moss"]
    assert tool_messages(double, 3) == ["found x-ray"]
    assert tool_messages(double, 5) == ["the tool failed: its server could not be reached"]
    agents = [t.text for t in result.turns if t.role == "agent"]
    # (a call may take over a second under load: the filler may come first)
    assert agents[1].removeprefix(FILLER_LINE).lstrip().startswith("Your next visit"), turns
    assert FILLER_LINE in agents[2] and agents[2].rstrip().endswith("results are ready."), turns
    assert agents[2].index(FILLER_LINE) < agents[2].index("Your x-ray"), turns
    assert agents[3].removeprefix(FILLER_LINE).lstrip().startswith("Sorry, I can't"), turns
    # ... and the caller: the agent's audio transcribes back.
    heard = words(await transcribe(engines, telephone(result.agent_audio)))
    assert len(heard_of(ANSWER_WORDS, heard)) >= 4, heard
    # The call's trace: each MCP call is a span of its own inside the turn that made it.
    spans = trace_of(result)
    (root,) = [s for s in spans if s.name == "call"]
    turns_ = [s for s in spans if s.name == "turn" and parent_of(spans, s) is root]
    mcp_calls = [s for s in spans if s.name == "mcp_call"]
    assert [(s.attributes or {}).get("voicenode.tool") for s in mcp_calls] == [
        "crm__next_appointment",
        "crm__slow_lookup",
        "crm__next_appointment",
    ]
    for span in mcp_calls:
        parent = parent_of(spans, span)
        assert parent is not None and parent in turns_, "an MCP call outside its turn"
        assert (span.attributes or {})["voicenode.mcp_server"] == "crm"
        assert span.start_time is not None and span.end_time is not None
        assert span.end_time > span.start_time  # it ran for a while: a span with a duration
        assert parent.start_time is not None and span.start_time >= parent.start_time
    assert [(s.attributes or {})["voicenode.tool_ok"] for s in mcp_calls] == [True, True, False]


def trace_of(result: SimulationResult) -> list[ReadableSpan]:
    """The call's events, as they came (at their clock times), through the node's tracer."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    now = [result.event_times[0]]
    tracer = CallTracer(
        provider.get_tracer("test"),
        lambda info: None,
        monotonic=lambda: now[0],
        wall_ns=lambda: int(now[0] * 1e9),
    )
    for event, at in zip(result.events, result.event_times, strict=True):
        now[0] = at
        tracer.on_call_event(result.call.info, event)
    tracer.close()
    return list(exporter.get_finished_spans())


def parent_of(spans: list[ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    return None if span.parent is None else by_id.get(span.parent.span_id)
