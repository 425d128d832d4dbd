"""Toolbox: built-in tool schemas and actions, HTTP tools against a local server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from agents.base import AgentContext, EndCall, RecordingControl, SendDtmf, Transfer
from agents.spec import AgentSpec, LlmSettings, ToolSpec
from agents.tools import MAX_RESULT_CHARS, Toolbox, ToolCall
from tests.support.llm_double import LlmDouble, Route


@pytest.fixture
async def double() -> AsyncIterator[LlmDouble]:
    async with LlmDouble() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def toolbox(
    tools: Sequence[ToolSpec],
    http: httpx.AsyncClient,
    *,
    allowlist: Sequence[str] = ("127.0.0.1",),
    transfer_target: str = "sip:desk@example.com",
) -> Toolbox:
    spec = AgentSpec(
        name="t",
        kind="llm",
        llm=LlmSettings(),
        tools=list(tools),
        transfer_target=transfer_target,
    )
    ctx = AgentContext(call_id="c", tenant_id="t", http=http, url_allowlist=allowlist)
    return Toolbox(spec, ctx)


def call(name: str, arguments: str = "{}") -> ToolCall:
    return ToolCall(id="call_1", name=name, arguments=arguments)


# ---- built-ins ----


async def test_builtin_schemas(http: httpx.AsyncClient) -> None:
    box = toolbox(
        [
            ToolSpec(name="end_call"),
            ToolSpec(name="transfer_call", description="Send to billing."),
            ToolSpec(name="send_dtmf"),
        ],
        http,
    )
    schemas = box.schemas()
    assert [s["type"] for s in schemas] == ["function"] * 3
    by_name = {s["function"]["name"]: s["function"] for s in schemas}
    assert by_name["transfer_call"]["description"] == "Send to billing."
    assert by_name["send_dtmf"]["parameters"]["required"] == ["digits"]
    assert "target" in by_name["transfer_call"]["parameters"]["properties"]
    assert by_name["end_call"]["description"]


async def test_unknown_builtin_is_refused_at_construction(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="unknown built-in"):
        toolbox([ToolSpec(name="format_disk")], http)


async def test_end_call_maps_to_the_action(http: httpx.AsyncClient) -> None:
    box = toolbox([ToolSpec(name="end_call")], http)
    assert (await box.run(call("end_call"))).action == EndCall(reason="completed")
    outcome = await box.run(call("end_call", '{"reason": "done"}'))
    # The model's words stay in the tool call; the call's end reason is a fixed value.
    assert outcome.action == EndCall(reason="completed")
    assert outcome.result.ok and outcome.result.arguments == {"reason": "done"}


async def test_transfer_call_target(http: httpx.AsyncClient) -> None:
    box = toolbox([ToolSpec(name="transfer_call")], http)
    assert (await box.run(call("transfer_call"))).action == Transfer("sip:desk@example.com")
    outcome = await box.run(call("transfer_call", '{"target": "+15550100"}'))
    assert outcome.action == Transfer("+15550100")


async def test_transfer_call_without_any_target_fails(http: httpx.AsyncClient) -> None:
    box = toolbox([ToolSpec(name="transfer_call")], http, transfer_target="")
    outcome = await box.run(call("transfer_call"))
    assert outcome.action is None
    assert not outcome.result.ok


@pytest.mark.parametrize(
    ("digits", "expected"), [("123", "123"), ("*9#", "*9#"), ("abcd", "ABCD"), ("0", "0")]
)
async def test_send_dtmf_valid(http: httpx.AsyncClient, digits: str, expected: str) -> None:
    box = toolbox([ToolSpec(name="send_dtmf")], http)
    outcome = await box.run(call("send_dtmf", f'{{"digits": "{digits}"}}'))
    assert outcome.action == SendDtmf(expected)


@pytest.mark.parametrize(
    "arguments", ['{"digits": "12x"}', '{"digits": ""}', "{}", '{"digits": 5}']
)
async def test_send_dtmf_invalid(http: httpx.AsyncClient, arguments: str) -> None:
    box = toolbox([ToolSpec(name="send_dtmf")], http)
    outcome = await box.run(call("send_dtmf", arguments))
    assert outcome.action is None
    assert not outcome.result.ok


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("end_call", "{not json", "not valid JSON"),
        ("end_call", "[1, 2]", "JSON object"),
        ("delete_everything", "{}", "no tool"),
    ],
)
async def test_bad_calls_become_failed_results(
    http: httpx.AsyncClient, name: str, arguments: str, message: str
) -> None:
    box = toolbox([ToolSpec(name="end_call")], http)
    outcome = await box.run(call(name, arguments))
    assert outcome.action is None
    assert not outcome.result.ok
    assert message in outcome.result.result


# ---- HTTP tools ----


def http_tool(url: str, *, method: str = "POST") -> ToolSpec:
    return ToolSpec(name="lookup", kind="http", url=url, method=method)  # type: ignore[arg-type]


async def test_http_tool_without_parameters_gets_an_empty_object_schema(
    http: httpx.AsyncClient,
) -> None:
    (schema,) = toolbox([http_tool("http://example.com/x")], http).schemas()
    assert schema["function"]["parameters"] == {"type": "object", "properties": {}}


async def test_http_post_tool(double: LlmDouble, http: httpx.AsyncClient) -> None:
    double.routes["/lookup"] = Route(body=b'{"balance": 12}')
    box = toolbox([http_tool(double.url("/lookup"))], http)
    outcome = await box.run(call("lookup", '{"account": "A-1"}'))
    assert outcome.result.ok
    assert outcome.result.result == '{"balance": 12}'
    assert outcome.result.arguments == {"account": "A-1"}
    (request,) = double.requests
    assert request.method == "POST"
    assert request.json() == {"account": "A-1"}


async def test_http_get_tool_sends_query_parameters(
    double: LlmDouble, http: httpx.AsyncClient
) -> None:
    double.routes["/lookup"] = Route(body=b"ok")
    box = toolbox([http_tool(double.url("/lookup"), method="GET")], http)
    outcome = await box.run(call("lookup", '{"day": "monday", "n": 2}'))
    assert outcome.result.result == "ok"
    (request,) = double.requests
    assert request.method == "GET"
    assert request.query == {"day": ["monday"], "n": ["2"]}


async def test_http_error_status_is_a_failed_result(
    double: LlmDouble, http: httpx.AsyncClient
) -> None:
    double.routes["/lookup"] = Route(status=500, body=b"database down")
    outcome = await toolbox([http_tool(double.url("/lookup"))], http).run(call("lookup"))
    assert not outcome.result.ok
    assert outcome.result.result == "error: HTTP 500: database down"


async def test_redirects_are_not_followed(double: LlmDouble, http: httpx.AsyncClient) -> None:
    double.routes["/lookup"] = Route(
        status=302, headers={"location": "http://169.254.169.254/latest/meta-data/"}
    )
    outcome = await toolbox([http_tool(double.url("/lookup"))], http).run(call("lookup"))
    assert not outcome.result.ok
    assert outcome.result.result.startswith("error: HTTP 302")
    assert len(double.requests) == 1


async def test_long_bodies_are_truncated(double: LlmDouble, http: httpx.AsyncClient) -> None:
    double.routes["/lookup"] = Route(body=b"x" * 100_000)
    outcome = await toolbox([http_tool(double.url("/lookup"))], http).run(call("lookup"))
    assert outcome.result.ok
    assert outcome.result.result.endswith("[truncated]")
    assert len(outcome.result.result) <= MAX_RESULT_CHARS + 20


async def test_private_url_is_refused_without_allowlist(
    double: LlmDouble, http: httpx.AsyncClient
) -> None:
    double.routes["/lookup"] = Route(body=b"secret")
    box = toolbox([http_tool(double.url("/lookup"))], http, allowlist=())
    outcome = await box.run(call("lookup"))
    assert not outcome.result.ok
    assert "not allowed" in outcome.result.result
    assert double.requests == []


async def test_timeout_is_a_failed_result() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        box = toolbox([http_tool("http://127.0.0.1:9/lookup")], http)
        outcome = await box.run(call("lookup"))
    assert not outcome.result.ok
    assert "no answer within 5 s" in outcome.result.result


async def test_unreachable_host_is_a_failed_result(http: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = toolbox([http_tool(f"http://127.0.0.1:{port}/lookup")], http)
    outcome = await box.run(call("lookup"))
    assert not outcome.result.ok
    assert "could not be reached" in outcome.result.result


# ---- arguments are checked against the tool's schema before any request (issue 12 item 10) ----

BOOKING_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "party": {"type": "integer", "minimum": 1, "maximum": 12},
        "area": {"type": "string", "enum": ["inside", "terrace"]},
    },
    "required": ["date", "party"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"party": 2}', "arguments.date is required"),
        ('{"date": "tomorrow", "party": 2}', "arguments.date does not have the expected form"),
        ('{"date": "2025-05-01", "party": "two"}', "arguments.party must be integer"),
        ('{"date": "2025-05-01", "party": 99}', "arguments.party must be at most 12"),
        ('{"date": "2025-05-01", "party": true}', "arguments.party must be integer"),
        ('{"date": "2025-05-01", "party": 2, "area": "roof"}', "arguments.area must be one of"),
        ('{"date": "2025-05-01", "party": 2, "url": "http://x"}', "arguments.url is not an arg"),
    ],
)
async def test_arguments_that_break_the_schema_make_no_request(
    double: LlmDouble, http: httpx.AsyncClient, arguments: str, problem: str
) -> None:
    double.routes["/book"] = Route(body=b"booked")
    tool = ToolSpec(name="book", kind="http", url=double.url("/book"), parameters=BOOKING_SCHEMA)
    outcome = await toolbox([tool], http).run(call("book", arguments))
    assert outcome.result.ok is False
    assert outcome.result.result.startswith(f"error: {problem}"), outcome.result.result
    assert double.requests == []


async def test_arguments_that_fit_the_schema_are_sent(
    double: LlmDouble, http: httpx.AsyncClient
) -> None:
    double.routes["/book"] = Route(body=b"booked")
    tool = ToolSpec(name="book", kind="http", url=double.url("/book"), parameters=BOOKING_SCHEMA)
    outcome = await toolbox([tool], http).run(
        call("book", '{"date": "2025-05-01", "party": 2.0, "area": "terrace"}')
    )
    assert outcome.result.ok and outcome.result.result == "booked"
    (request,) = double.requests
    assert request.json() == {"date": "2025-05-01", "party": 2.0, "area": "terrace"}


async def test_the_recording_built_ins_pause_and_resume_the_recording(
    http: httpx.AsyncClient,
) -> None:
    box = toolbox([ToolSpec(name="pause_recording"), ToolSpec(name="resume_recording")], http)
    assert {s["function"]["name"] for s in box.schemas()} >= {"pause_recording", "resume_recording"}
    paused = await box.run(call("pause_recording"))
    assert paused.result.ok and paused.action == RecordingControl(pause=True, reason="agent")
    resumed = await box.run(call("resume_recording"))
    assert resumed.result.ok and resumed.action == RecordingControl(pause=False, reason="agent")
