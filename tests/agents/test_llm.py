"""LlmAgent against a real OpenAI-compatible streaming server (the `LlmDouble`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from agents.base import (
    AgentInput,
    AgentOutput,
    CallStarted,
    DtmfPressed,
    EndCall,
    Message,
    ModelRound,
    NoInput,
    SendDtmf,
    TextChunk,
    ToolResult,
    Transfer,
    UserSaid,
)
from agents.llm import DTMF_NOTE, GREET_NOTE, INTERRUPTED_MARK, MAX_TOOL_ROUNDS, LlmAgent
from agents.spec import ToolSpec
from tests.support.llm_agents import PROMPT, AgentFactory, llm_agents
from tests.support.llm_double import LlmDouble, Reply, Route, ScriptedToolCall

FALLBACK = "Sorry, one moment please."
DESK = "sip:desk@example.com"


@pytest.fixture
async def make_agent(double: LlmDouble) -> AsyncIterator[AgentFactory]:
    async with llm_agents(double, fallback_line=FALLBACK, transfer_target=DESK) as make:
        yield make


async def collect(
    agent: LlmAgent, event: AgentInput, history: Sequence[Message] | None = None
) -> list[AgentOutput]:
    if history is None:
        history = [Message(role="user", text=event.text)] if isinstance(event, UserSaid) else []
    return [out async for out in agent.respond(history, event) if not isinstance(out, ModelRound)]


async def rounds(agent: LlmAgent, event: AgentInput) -> list[ModelRound]:
    """The `ModelRound`s a reply reports (one per request to the model)."""
    history = [Message(role="user", text=event.text)] if isinstance(event, UserSaid) else []
    return [out async for out in agent.respond(history, event) if isinstance(out, ModelRound)]


def texts(outputs: Sequence[AgentOutput]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, TextChunk)]


def builtin(*names: str) -> list[ToolSpec]:
    return [ToolSpec(name=name) for name in names]


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "llm turn failed"]


# ---- text ----


async def test_streamed_text_arrives_as_several_chunks(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    tokens = ["We", " open", " at", " nine", "."]
    double.script(Reply(tokens=tokens))
    agent = make_agent()
    outputs = await collect(agent, UserSaid("When do you open?"))
    assert outputs == [TextChunk(t) for t in tokens]
    (request,) = double.chat_requests
    assert request["stream"] is True
    assert request["model"] == "test-model"
    assert "tools" not in request
    assert request["messages"] == [
        {"role": "system", "content": PROMPT},
        {"role": "user", "content": "When do you open?"},
    ]


async def test_greeting_is_spoken_without_a_model_call(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    agent = make_agent(greeting="Hello, Smile Dental, how can I help?")
    assert await collect(agent, CallStarted()) == [
        TextChunk("Hello, Smile Dental, how can I help?")
    ]
    assert double.requests == []


async def test_without_greeting_the_model_greets(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Hi", "!"]))
    agent = make_agent()
    assert texts(await collect(agent, CallStarted())) == ["Hi", "!"]
    assert double.chat_requests[0]["messages"][-1] == {"role": "user", "content": GREET_NOTE}


async def test_history_interrupted_turn_dtmf_and_no_input_messages(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Thanks."]), Reply(tokens=["Are you still there?"]))
    agent = make_agent()
    history = [
        Message(role="assistant", text="Hello, how can"),
        Message(role="user", text="I need an appointment"),
        Message(role="assistant", text="Sure, please enter your patient", interrupted=True),
    ]
    await collect(agent, DtmfPressed("1234"), history)
    await collect(agent, NoInput(count=1), history)
    dtmf_request, no_input_request = double.chat_requests
    assert dtmf_request["messages"][1:] == [
        {"role": "assistant", "content": "Hello, how can"},
        {"role": "user", "content": "I need an appointment"},
        {"role": "assistant", "content": "Sure, please enter your patient" + INTERRUPTED_MARK},
        {"role": "user", "content": DTMF_NOTE.format(digits="1234")},
    ]
    assert dtmf_request["messages"][-1]["content"] == "[caller pressed keys: 1234]"
    last = no_input_request["messages"][-1]
    assert last["role"] == "user"
    assert "said nothing" in last["content"]


async def test_user_turn_missing_from_history_is_added(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["Yes."]))
    agent = make_agent()
    await collect(agent, UserSaid("Are you open?"), history=[])
    assert double.chat_requests[0]["messages"][-1] == {"role": "user", "content": "Are you open?"}


async def test_api_key_comes_from_the_env_named_by_the_spec(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["a"]), Reply(tokens=["b"]), Reply(tokens=["c"]))
    env = {"LLM_KEY": "sk-test"}
    await collect(make_agent(api_key_env="LLM_KEY", env=env, operator=True), UserSaid("x"))
    await collect(make_agent(), UserSaid("x"))
    # A tenant's agent never reads the node's environment, whatever its spec names.
    await collect(make_agent(api_key_env="LLM_KEY", env=env), UserSaid("x"))
    keyed, keyless, tenant = double.requests
    assert keyed.headers["authorization"] == "Bearer sk-test"
    assert keyless.headers["authorization"] == "Bearer not-needed"
    assert tenant.headers["authorization"] == "Bearer not-needed"


async def test_api_key_comes_from_the_tenant_secret_named_by_the_spec(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["a"]))
    agent = make_agent(api_key_secret="openai", secrets={"openai": "sk-tenant"})
    await collect(agent, UserSaid("x"))
    assert double.requests[0].headers["authorization"] == "Bearer sk-tenant"


async def test_a_tenant_base_url_on_loopback_is_refused_at_request_time(
    double: LlmDouble, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the operator's allowlist a tenant's agent cannot reach a loopback endpoint,
    even though its spec names one: no request arrives, the caller hears the fallback."""
    agent = make_agent(api_key_secret="openai", secrets={"openai": "sk-tenant"}, llm_allowlist=())
    with caplog.at_level(logging.WARNING):
        outputs = await collect(agent, UserSaid("x"))
    assert texts(outputs) == [FALLBACK]
    assert double.requests == []
    assert [r.reason for r in failures(caplog)] == ["endpoint_error"]  # type: ignore[attr-defined]
    # The operator's own agent may use a local endpoint.
    double.script(Reply(tokens=["local"]))
    operator = make_agent(llm_allowlist=(), operator=True)
    assert texts(await collect(operator, UserSaid("x"))) == ["local"]


# ---- built-in tools ----


async def test_end_call_comes_after_the_text(double: LlmDouble, make_agent: AgentFactory) -> None:
    double.script(
        Reply(
            tokens=["Goodbye", ", have a nice day", "."],
            tool_calls=[ScriptedToolCall("end_call", {"reason": "caller said bye"})],
        )
    )
    agent = make_agent(tools=builtin("end_call", "transfer_call"))
    outputs = await collect(agent, UserSaid("That's all, bye."))
    assert outputs[:3] == [TextChunk("Goodbye"), TextChunk(", have a nice day"), TextChunk(".")]
    assert isinstance(outputs[3], ToolResult) and outputs[3].name == "end_call"
    # The model's reason stays in the tool call; the call ends as `completed` (a fixed set).
    assert outputs[3].arguments == {"reason": "caller said bye"}
    assert outputs[4:] == [EndCall(reason="completed")]
    assert len(double.chat_requests) == 1  # ending the call ends the turn
    names = [tool["function"]["name"] for tool in double.chat_requests[0]["tools"]]
    assert names == ["end_call", "transfer_call"]


async def test_transfer_call_defaults_to_the_spec_target(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(
        Reply(tokens=["Connecting you now."], tool_calls=[ScriptedToolCall("transfer_call")])
    )
    agent = make_agent(tools=builtin("transfer_call"))
    outputs = await collect(agent, UserSaid("Can I talk to a person?"))
    assert texts(outputs) == ["Connecting you now."]
    assert outputs[-1] == Transfer(target=DESK)


async def test_transfer_call_with_an_explicit_target(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    call = ScriptedToolCall("transfer_call", {"target": "+15550100"}, fragments=5)
    double.script(Reply(tool_calls=[call]))
    agent = make_agent(tools=builtin("transfer_call"))
    outputs = await collect(agent, UserSaid("Billing please."))
    assert outputs[-1] == Transfer(target="+15550100")
    assert texts(outputs) == []


async def test_send_dtmf_then_the_model_goes_on(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(
        Reply(tool_calls=[ScriptedToolCall("send_dtmf", {"digits": "12#"}, id="call_dtmf")]),
        Reply(tokens=["I pressed", " it."]),
    )
    agent = make_agent(tools=builtin("send_dtmf"))
    outputs = await collect(agent, UserSaid("Press one two hash."))
    assert [o for o in outputs if not isinstance(o, ToolResult)] == [
        SendDtmf(digits="12#"),
        TextChunk("I pressed"),
        TextChunk(" it."),
    ]
    second = double.chat_requests[1]["messages"]
    assert second[-1] == {"role": "tool", "tool_call_id": "call_dtmf", "content": "pressed 12#"}


async def test_several_tool_calls_in_one_round(double: LlmDouble, make_agent: AgentFactory) -> None:
    double.script(
        Reply(
            tokens=["Pressing one, then goodbye."],
            tool_calls=[
                ScriptedToolCall("end_call", id="call_a"),
                ScriptedToolCall("send_dtmf", {"digits": "1"}, id="call_b", fragments=2),
            ],
        )
    )
    agent = make_agent(tools=builtin("end_call", "send_dtmf"))
    outputs = await collect(agent, UserSaid("Press one and hang up."))
    assert [o for o in outputs if not isinstance(o, ToolResult)] == [
        TextChunk("Pressing one, then goodbye."),
        SendDtmf(digits="1"),
        EndCall(),
    ]
    assert [o.name for o in outputs if isinstance(o, ToolResult)] == ["end_call", "send_dtmf"]


async def test_invalid_dtmf_digits_are_reported_to_the_model(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(
        Reply(tool_calls=[ScriptedToolCall("send_dtmf", {"digits": "12x"})]),
        Reply(tokens=["Sorry."]),
    )
    agent = make_agent(tools=builtin("send_dtmf"))
    outputs = await collect(agent, UserSaid("Press twelve x."))
    assert not any(isinstance(o, SendDtmf) for o in outputs)
    (result,) = [o for o in outputs if isinstance(o, ToolResult)]
    assert result.ok is False
    assert double.chat_requests[1]["messages"][-1]["content"].startswith("error: arguments.digits")


async def test_too_many_tool_rounds_end_in_the_fallback(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    loop_call = Reply(tool_calls=[ScriptedToolCall("no_such_tool")])
    double.script(*[loop_call] * (MAX_TOOL_ROUNDS + 1))
    agent = make_agent(tools=builtin("end_call"))
    outputs = await collect(agent, UserSaid("hi"))
    assert len(double.chat_requests) == MAX_TOOL_ROUNDS + 1
    assert outputs[-1] == TextChunk(FALLBACK)
    assert all(not o.ok for o in outputs if isinstance(o, ToolResult))


# ---- HTTP tools ----


def hours_tool(double: LlmDouble) -> ToolSpec:
    return ToolSpec(
        name="opening_hours",
        description="Opening hours for a day.",
        kind="http",
        url=double.url("/tools/hours"),
        parameters={"type": "object", "properties": {"day": {"type": "string"}}},
    )


async def test_http_tool_result_is_fed_back_to_the_model(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.routes["/tools/hours"] = Route(body=b'{"monday": "9:00-17:00"}')
    double.script(
        Reply(
            tokens=["Let me check."],
            tool_calls=[ScriptedToolCall("opening_hours", {"day": "monday"}, id="call_h")],
        ),
        Reply(tokens=["On Monday", " we open at nine."]),
    )
    agent = make_agent(tools=[hours_tool(double)], allowlist=["127.0.0.1"])
    outputs = await collect(agent, UserSaid("When are you open on Monday?"))

    assert texts(outputs) == ["Let me check.", "On Monday", " we open at nine."]
    (result,) = [o for o in outputs if isinstance(o, ToolResult)]
    assert result.duration_ms is not None and result.duration_ms >= 0  # the agent timed it
    assert msgspec.structs.replace(result, duration_ms=None) == ToolResult(
        name="opening_hours", arguments={"day": "monday"}, result='{"monday": "9:00-17:00"}'
    )
    (tool_request,) = [r for r in double.requests if r.path == "/tools/hours"]
    assert tool_request.method == "POST"
    assert tool_request.json() == {"day": "monday"}

    first, second = double.chat_requests
    assert first["tools"][0]["function"]["name"] == "opening_hours"
    assert second["messages"][-2] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "call_h",
                "type": "function",
                "function": {"name": "opening_hours", "arguments": '{"day": "monday"}'},
            }
        ],
    }
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_h",
        "content": '{"monday": "9:00-17:00"}',
    }


async def test_http_tool_to_a_private_address_is_refused(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.routes["/tools/hours"] = Route(body=b"{}")
    double.script(
        Reply(tool_calls=[ScriptedToolCall("opening_hours", {"day": "monday"})]),
        Reply(tokens=["I can't check right now."]),
    )
    agent = make_agent(tools=[hours_tool(double)])  # 127.0.0.1 is not allow-listed
    outputs = await collect(agent, UserSaid("Hours?"))
    (result,) = [o for o in outputs if isinstance(o, ToolResult)]
    assert result.ok is False
    assert all(r.path != "/tools/hours" for r in double.requests)
    assert double.chat_requests[1]["messages"][-1]["content"] == (
        "error: the tool's URL is not allowed"
    )
    assert texts(outputs) == ["I can't check right now."]


# ---- failures ----


async def test_slow_first_token_speaks_the_fallback(
    double: LlmDouble, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()
    double.script(Reply(tokens=["too late"], before_first=never))
    agent = make_agent(first_token_timeout_s=0.05)
    outputs = await collect(agent, UserSaid("my secret words"))
    assert outputs == [TextChunk(FALLBACK)]
    (record,) = failures(caplog)
    assert record.reason == "first_token_timeout"  # type: ignore[attr-defined]
    assert record.call_id == "call-1"  # type: ignore[attr-defined]
    assert "secret" not in record.getMessage()


async def test_no_response_headers_in_time_speaks_the_fallback(
    double: LlmDouble, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()
    double.script(Reply(tokens=["too late"], before_headers=never))
    agent = make_agent(first_token_timeout_s=0.05)
    assert await collect(agent, UserSaid("hello")) == [TextChunk(FALLBACK)]
    (record,) = failures(caplog)
    assert record.reason == "first_token_timeout"  # type: ignore[attr-defined]


async def test_http_500_speaks_the_fallback(
    double: LlmDouble, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    double.script(Reply(status=500))
    agent = make_agent()
    assert await collect(agent, UserSaid("hello")) == [TextChunk(FALLBACK)]
    (record,) = failures(caplog)
    assert record.status_code == 500  # type: ignore[attr-defined]
    assert record.fallback is True  # type: ignore[attr-defined]


async def test_connection_refused_speaks_the_fallback(make_agent: AgentFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent = make_agent(base_url=f"http://127.0.0.1:{port}/v1")
    assert await collect(agent, UserSaid("hello")) == [TextChunk(FALLBACK)]


async def test_malformed_stream_speaks_the_fallback(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["never heard"], malformed_after=0))
    agent = make_agent()
    assert await collect(agent, UserSaid("hello")) == [TextChunk(FALLBACK)]


async def test_dropped_stream_before_any_text_speaks_the_fallback(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tokens=["a", "b"], drop_after=0))
    agent = make_agent()
    assert await collect(agent, UserSaid("hello")) == [TextChunk(FALLBACK)]


async def test_dropped_stream_after_text_ends_the_turn_without_fallback(
    double: LlmDouble, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # What the caller already heard stays; a "sorry, trouble" line after half a reply would
    # be worse than stopping, so the turn just ends (and a warning is logged).
    double.script(Reply(tokens=["We open", " at nine", " on weekdays"], drop_after=2))
    agent = make_agent()
    outputs = await collect(agent, UserSaid("Hours?"))
    assert outputs == [TextChunk("We open"), TextChunk(" at nine")]
    (record,) = failures(caplog)
    assert record.reason == "stream_error"  # type: ignore[attr-defined]
    assert record.fallback is False  # type: ignore[attr-defined]


async def test_total_timeout_after_text_ends_the_turn_without_fallback(
    double: LlmDouble, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    never = asyncio.Event()
    double.script(Reply(tokens=["Let me see"], before_done=never))
    agent = make_agent(total_timeout_s=0.5)
    outputs = await collect(agent, UserSaid("Hours?"))
    assert outputs == [TextChunk("Let me see")]
    (record,) = failures(caplog)
    assert record.reason == "total_timeout"  # type: ignore[attr-defined]


async def test_the_fallback_is_spoken_once_per_turn(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(status=500), Reply(status=500), Reply(tokens=["Back."]))
    agent = make_agent()
    assert await collect(agent, UserSaid("one")) == [TextChunk(FALLBACK)]
    assert await collect(agent, UserSaid("two")) == [TextChunk(FALLBACK)]
    assert await collect(agent, UserSaid("three")) == [TextChunk("Back.")]


# ---- cancellation (barge-in) ----


async def test_cancellation_mid_stream_propagates_and_closes_the_stream(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    hold = asyncio.Event()
    double.script(Reply(tokens=["Our hours", " are"], before_done=hold))
    agent = make_agent()
    got: list[AgentOutput] = []
    second_chunk = asyncio.Event()

    async def consume() -> None:
        async for out in agent.respond([Message(role="user", text="Hours?")], UserSaid("Hours?")):
            got.append(out)
            if len(got) == 2:
                second_chunk.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        await second_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):
        await double.client_gone.wait()
    assert got == [TextChunk("Our hours"), TextChunk(" are")]  # no fallback on cancel
    assert double.finished_streams == 0


async def test_closing_the_generator_mid_stream_closes_the_stream(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    hold = asyncio.Event()
    double.script(Reply(tokens=["Hello", " there"], before_done=hold))
    agent = make_agent()
    async with contextlib.aclosing(
        agent.respond([Message(role="user", text="Hi")], UserSaid("Hi"))
    ) as replies:
        async for out in replies:
            assert out == TextChunk("Hello")
            break
    async with asyncio.timeout(10):
        await double.client_gone.wait()


async def test_at_most_max_tool_calls_run_per_reply(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    """A model talked into calling a tool over and over (issue 12 item 10): only
    `llm.max_tool_calls` calls run per reply; the others come back to it refused."""
    double.routes["/tools/hours"] = Route(body=b"Nine to five.")
    burst = [ScriptedToolCall("opening_hours", {}, id=f"call_{i}") for i in range(5)]
    double.script(
        Reply(tool_calls=burst[:3]),
        Reply(tool_calls=burst[3:]),
        Reply(tokens=["We open at nine."]),
    )
    agent = make_agent(tools=[hours_tool(double)], allowlist=["127.0.0.1"], max_tool_calls=2)
    outputs = await collect(agent, UserSaid("When are you open?"))
    assert texts(outputs) == ["We open at nine."]
    assert len([r for r in double.requests if r.path == "/tools/hours"]) == 2
    results = [o for o in outputs if isinstance(o, ToolResult)]
    assert [r.ok for r in results] == [True, True, False, False, False]
    refused = [m for m in double.chat_requests[2]["messages"] if m["role"] == "tool"][2:]
    assert all(m["content"].startswith("error: at most 2 tool calls") for m in refused)


async def test_each_request_to_the_model_is_reported_with_its_timing(
    double: LlmDouble, make_agent: AgentFactory
) -> None:
    double.script(Reply(tool_calls=[ScriptedToolCall("end_call")]))
    agent = make_agent(tools=[ToolSpec(name="end_call")])
    first, *rest = await rounds(agent, UserSaid("that's all"))
    assert rest == []  # end_call ends the reply after its round
    assert first.ok and first.first_token_ms is not None
    assert first.duration_ms >= first.first_token_ms >= 0
    double.script(Reply(status=500))
    (failed,) = await rounds(agent, UserSaid("hello"))
    assert not failed.ok and failed.first_token_ms is None
