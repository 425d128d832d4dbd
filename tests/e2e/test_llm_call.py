"""An LLM agent in a real-audio call, against an OpenAI-compatible streaming server double.

The double speaks real HTTP + SSE. Streamed text goes clause by clause to TTS and the caller
hears it; tool calls run (an HTTP tool, then end_call); a slow first token and an HTTP 500
each make the agent speak its fallback line instead of leaving dead air.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from agents.base import AgentContext
from agents.llm import LlmAgent
from agents.spec import AgentSpec
from pipeline.engines import Engines
from tests.support.llm_double import LlmDouble, Reply, Route, ScriptedToolCall
from tests.support.speech import heard_of, telephone, transcribe, words
from voicenode.simulate import simulate

pytestmark = pytest.mark.slow
Say = Callable[[str], npt.NDArray[np.int16]]
FALLBACK = "Sorry, I'm having trouble right now. Could you say that again?"
REPLY_WORDS = {"open", "monday", "friday", "morning", "until", "evening"}
"""Key words of the streamed reply (the agent's voice is deterministic; 4 of 6 must be heard)."""


def llm_spec(double: LlmDouble, **llm: object) -> AgentSpec:
    return msgspec.convert(
        {
            "name": "assistant",
            "kind": "llm",
            "greeting": "Hello, this is the clinic assistant.",
            "prompt": "You answer questions for a dental clinic. Be brief.",
            "llm": {"base_url": double.base_url, "model": "test", "fallback_line": FALLBACK, **llm},
            "tools": [
                {"name": "end_call"},
                {
                    "name": "opening_hours",
                    "kind": "http",
                    "method": "GET",
                    "url": double.url("/hours"),
                    "description": "The clinic's opening hours",
                },
            ],
        },
        AgentSpec,
    )


async def test_streamed_reply_tool_call_and_end_call(engines: Engines, say: Say) -> None:
    async with LlmDouble(per_turn=True) as double, httpx.AsyncClient() as http:
        double.routes["/hours"] = Route(body=b"Monday to Friday, 8 am to 5 pm")
        double.script(
            Reply(tool_calls=[ScriptedToolCall("opening_hours", {}, id="call_h")]),
            Reply(
                tokens=[
                    "We are ",
                    "open ",
                    "Monday ",
                    "to ",
                    "Friday, ",
                    "from ",
                    "eight ",
                    "in the morning ",
                    "until ",
                    "five ",
                    "in the evening.",
                ]
            ),
            Reply(
                tokens=["Thanks ", "for ", "calling, ", "goodbye!"],
                tool_calls=[ScriptedToolCall("end_call", {}, id="call_e")],
            ),
        )
        spec = llm_spec(double)
        ctx = AgentContext(
            call_id="llm-1", tenant_id="demo", http=http, url_allowlist=("127.0.0.1",)
        )
        agent = LlmAgent(spec, ctx)
        lines = [say("What are your opening hours?"), say("Great, thank you, goodbye.")]
        result = await simulate(engines, spec, lines, agent=agent)

    assert result.ended is not None and result.ended.reason == "completed", [
        (t.role, t.text, t.interrupted) for t in result.turns
    ]
    agents = [t.text for t in result.turns if t.role == "agent"]
    users = [t.text for t in result.turns if t.role == "user"]
    assert words(users[0]) & {"hours", "opening"}, users
    assert agents[1].startswith("We are open Monday to Friday")
    # The HTTP tool ran and its result went back to the model.
    # (turn_requests: a request made at a pause the caller went on past is left out)
    tool_msgs = [m for m in double.turn_requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs and "Monday to Friday" in tool_msgs[0]["content"]
    # The caller's words reached the model.
    assert words(double.turn_requests[0]["messages"][-1]["content"]) & {"hours", "opening"}
    # The streamed reply was spoken: its audio transcribes back.
    heard = words(await transcribe(engines, telephone(result.agent_audio)[: 16000 * 20]))
    assert len(heard_of(REPLY_WORDS, heard)) >= 4, heard


async def test_slow_first_token_and_server_error_speak_the_fallback_line(
    engines: Engines, say: Say
) -> None:
    never = asyncio.Event()  # the slow model never sends its first token
    async with LlmDouble(per_turn=True) as double, httpx.AsyncClient() as http:
        double.script(Reply(tokens=["too late"], before_first=never), Reply(status=500))
        spec = llm_spec(double, first_token_timeout_s=1.0)
        ctx = AgentContext(
            call_id="llm-2", tenant_id="demo", http=http, url_allowlist=("127.0.0.1",)
        )
        agent = LlmAgent(spec, ctx)
        lines = [say("Do you take new patients?"), say("Are you still there?")]
        result = await simulate(engines, spec, lines, agent=agent)
        never.set()

    agents = [t.text for t in result.turns if t.role == "agent"]
    assert agents[1:] == [FALLBACK, FALLBACK], agents
    assert len(double.turn_requests) == 2
    greeting_s = 3.0
    fallback_audio = result.agent_audio[int(greeting_s * 16000) : int((greeting_s + 4) * 16000)]
    heard = words(await transcribe(engines, fallback_audio))
    assert heard & {"sorry", "trouble"}, heard
