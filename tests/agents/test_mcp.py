"""MCP tools (`agents/mcp.py`) against a real MCP server made with the same SDK (`mcp_server`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest

from agents.base import AgentContext
from agents.llm_access import LlmAccess
from agents.mcp import DISCOVERY, DiscoveryCache, McpTools
from agents.mcp_spec import McpServerSpec
from agents.spec import AgentSpec, LlmSettings
from agents.tools import Toolbox, ToolCall
from tests.support.mcp_server import BIG, RunningMcp, serve_mcp

ALLOWED = ["next_appointment", "slow_lookup", "broken", "dump"]

MakeToolbox = Callable[..., Toolbox]


@pytest.fixture
async def mcp() -> AsyncIterator[RunningMcp]:
    async with serve_mcp() as running:
        yield running


def server_spec(url: str, **fields: Any) -> McpServerSpec:
    fields.setdefault("allowed_tools", ALLOWED)
    return McpServerSpec(name="crm", url=url, **fields)


def agent_spec(*servers: McpServerSpec) -> AgentSpec:
    return AgentSpec(name="dental", kind="llm", llm=LlmSettings(), mcp=servers)


@pytest.fixture
async def make_toolbox() -> AsyncIterator[MakeToolbox]:
    boxes: list[Toolbox] = []
    DISCOVERY.clear()  # each test discovers afresh
    async with httpx.AsyncClient() as http:

        def make(
            *servers: McpServerSpec,
            allowlist: Sequence[str] = ("127.0.0.1",),
            secrets: dict[str, str] | None = None,
            operator: bool = False,
        ) -> Toolbox:
            access = LlmAccess(operator_agent=operator, secrets=secrets or {})
            ctx = AgentContext(
                call_id="call-1",
                tenant_id="tenant-1",
                http=http,
                url_allowlist=allowlist,
                llm=access,
            )
            box = Toolbox(agent_spec(*servers), ctx)
            boxes.append(box)
            return box

        yield make
        for box in boxes:
            await box.aclose()
    DISCOVERY.clear()


def call(name: str, arguments: dict[str, Any] | str) -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id="call_1", name=name, arguments=text)


def names(box: Toolbox) -> list[str]:
    return [entry["function"]["name"] for entry in box.schemas()]


async def test_discovered_tools_are_namespaced_with_their_schemas(
    mcp: RunningMcp, make_toolbox: MakeToolbox
) -> None:
    box = make_toolbox(server_spec(mcp.url))
    assert await box.prepare()
    assert sorted(names(box)) == sorted(f"crm__{tool}" for tool in ALLOWED)  # not `book`
    (entry,) = [
        e["function"] for e in box.schemas() if e["function"]["name"].endswith("next_appointment")
    ]
    assert entry["description"] == "Find a customer's next appointment by last name."
    assert entry["parameters"]["properties"]["last_name"]["type"] == "string"
    assert entry["parameters"]["required"] == ["last_name"]


async def test_a_call_reaches_the_server_with_its_arguments(
    mcp: RunningMcp, make_toolbox: MakeToolbox
) -> None:
    box = make_toolbox(server_spec(mcp.url))
    await box.prepare()
    outcome = await box.run(call("crm__next_appointment", {"last_name": "Lee", "limit": 2}))
    assert outcome.result.ok
    assert outcome.result.name == "crm__next_appointment"
    assert outcome.result.result == "Lee: Tuesday 10:30 with Dr. Moss"
    assert outcome.action is None
    assert mcp.backend.calls == [("next_appointment", {"last_name": "Lee", "limit": 2})]


async def test_bad_arguments_are_refused_before_the_server(
    mcp: RunningMcp, make_toolbox: MakeToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    box = make_toolbox(server_spec(mcp.url))
    await box.prepare()
    caplog.set_level(logging.INFO, logger="agents.mcp")
    wrong_type = await box.run(call("crm__next_appointment", {"last_name": 42}))
    missing = await box.run(call("crm__next_appointment", {}))
    assert not wrong_type.result.ok and not missing.result.ok
    assert wrong_type.result.result == "error: arguments.last_name must be string"
    assert missing.result.result == "error: arguments.last_name is required"
    assert mcp.backend.calls == []
    assert [r.getMessage() for r in caplog.records].count("mcp call refused") == 2


async def test_tools_not_allowed_are_not_offered_or_run(
    mcp: RunningMcp, make_toolbox: MakeToolbox
) -> None:
    box = make_toolbox(server_spec(mcp.url, allowed_tools=["next_appointment"]))
    await box.prepare()
    assert names(box) == ["crm__next_appointment"]
    outcome = await box.run(call("crm__book", {"day": "monday"}))
    assert not outcome.result.ok
    assert outcome.result.result == "error: there is no tool 'crm__book'"
    assert mcp.backend.calls == []

    everything = make_toolbox(server_spec(mcp.url, allowed_tools=["*"]))
    await everything.prepare()
    assert "crm__book" in names(everything)


async def test_a_failing_tool_comes_back_as_a_failure(
    mcp: RunningMcp, make_toolbox: MakeToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    box = make_toolbox(server_spec(mcp.url))
    await box.prepare()
    outcome = await box.run(call("crm__broken", {"reason": "maintenance"}))
    assert not outcome.result.ok
    assert outcome.result.result.startswith("the tool failed: ")
    assert mcp.backend.calls == [("broken", {"reason": "maintenance"})]
    (record,) = [r for r in caplog.records if r.getMessage() == "mcp call failed"]
    assert record.__dict__["error"] == "tool_error"
    assert record.__dict__["mcp_server"] == "crm"


async def test_long_results_are_cut(mcp: RunningMcp, make_toolbox: MakeToolbox) -> None:
    box = make_toolbox(server_spec(mcp.url, max_result_chars=100))
    await box.prepare()
    outcome = await box.run(call("crm__dump", {}))
    assert outcome.result.ok
    assert outcome.result.result == BIG[:100] + " …[truncated]"


async def test_a_slow_tool_times_out(mcp: RunningMcp, make_toolbox: MakeToolbox) -> None:
    box = make_toolbox(server_spec(mcp.url, timeout_s=4.0))  # discovery too: a bound, not a wait
    assert await box.prepare()
    outcome = await box.run(call("crm__slow_lookup", {"query": "x-ray"}))
    assert not outcome.result.ok
    assert outcome.result.result == "the tool failed: no answer within 4 s"
    assert mcp.backend.slow_started.is_set()


async def test_a_server_that_vanishes_fails_the_next_call_cleanly(
    mcp: RunningMcp, make_toolbox: MakeToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    box = make_toolbox(server_spec(mcp.url))
    await box.prepare()
    first = await box.run(call("crm__next_appointment", {"last_name": "Lee"}))
    assert first.result.ok
    await mcp.stop()
    second = await box.run(call("crm__next_appointment", {"last_name": "Kim"}))
    assert not second.result.ok
    assert second.result.result == "the tool failed: its server could not be reached"
    (record,) = [r for r in caplog.records if r.getMessage() == "mcp call failed"]
    assert record.__dict__["error"] == "ConnectError"
    assert mcp.url not in caplog.text


async def test_header_secrets_reach_the_server_and_no_log(
    mcp: RunningMcp, make_toolbox: MakeToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = server_spec(mcp.url, headers={"Authorization": "crm-token"})
    box = make_toolbox(spec, secrets={"crm-token": "Bearer s3cret-value"})
    await box.prepare()
    outcome = await box.run(call("crm__next_appointment", {"last_name": "Lee"}))
    assert outcome.result.ok
    assert mcp.backend.headers
    assert all(h.get("authorization") == "Bearer s3cret-value" for h in mcp.backend.headers)
    assert "s3cret-value" not in caplog.text

    unstored = make_toolbox(spec, secrets={})
    await unstored.prepare()  # the tools as discovered (and cached) with the secret
    sent = len(mcp.backend.headers)
    refused = await unstored.run(call("crm__next_appointment", {"last_name": "Lee"}))
    assert refused.result.result == "the tool failed: no stored secret for the header Authorization"
    assert len(mcp.backend.headers) == sent  # nothing was sent without it


async def test_private_address_refused_unless_allowlisted(
    mcp: RunningMcp, make_toolbox: MakeToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    box = make_toolbox(server_spec(mcp.url), allowlist=())
    assert not await box.prepare()
    assert names(box) == []
    (record,) = [r for r in caplog.records if r.getMessage() == "mcp discovery failed"]
    assert record.__dict__["error"] == "McpFailed"
    assert mcp.backend.headers == []  # nothing reached the server

    allowed = make_toolbox(server_spec(mcp.url), allowlist=("127.0.0.0/8",))
    assert await allowed.prepare()


async def test_stdio_servers_are_for_operator_agents(make_toolbox: MakeToolbox) -> None:
    spec = McpServerSpec(name="local", command=["/bin/false"], allowed_tools=["*"])
    box = make_toolbox(spec, operator=False)
    assert not await box.prepare()  # refused before anything is started


async def test_discovery_is_cached_for_its_ttl(mcp: RunningMcp) -> None:
    now = [0.0]
    cache = DiscoveryCache(ttl_s=300.0, clock=lambda: now[0])
    servers = [server_spec(mcp.url)]
    async with httpx.AsyncClient() as http:
        ctx = AgentContext(
            call_id="call-1", tenant_id="tenant-1", http=http, url_allowlist=["127.0.0.1"]
        )

        async def discovered() -> list[str]:
            tools = McpTools(servers, ctx, "dental", cache)
            await tools.prepare()
            return [entry["function"]["name"] for entry in tools.schemas()]

        first = await discovered()
        assert first
        await mcp.stop()
        now[0] = 299.0
        assert await discovered() == first  # from the cache: the server is gone
        now[0] = 301.0
        assert await discovered() == []


async def test_read_only_tools_may_run_speculatively(
    mcp: RunningMcp, make_toolbox: MakeToolbox
) -> None:
    box = make_toolbox(server_spec(mcp.url, read_only_tools=["next_appointment"]))
    assert box.side_effects  # the other allowed tools may act
    await box.prepare()
    assert not box.acts(call("crm__next_appointment", {}))
    assert box.acts(call("crm__broken", {}))

    lookups = make_toolbox(server_spec(mcp.url, read_only_tools=["*"]))
    assert not lookups.side_effects
