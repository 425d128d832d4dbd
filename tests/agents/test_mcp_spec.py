"""`[[mcp]]` tables: parsing, validation, the tenant check, and stdio for operator agents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.base import AgentContext
from agents.catalog import SpecError, parse_spec
from agents.llm_access import LlmAccess
from agents.mcp import DiscoveryCache, McpTools
from agents.mcp_spec import McpServerSpec, secret_names, tenant_problem

EXAMPLE = """
name = "dental"
kind = "llm"
prompt = "You are the receptionist of Smile Dental."

[llm]
base_url = "https://api.example.com/v1"
api_key_secret = "openai"

[[mcp]]
name = "crm"                                  # the model sees crm__find_customer, ...
url = "https://mcp.example.com/mcp"           # streamable HTTP
headers = { Authorization = "crm-token" }     # header → the NAME of a tenant secret
allowed_tools = ["find_customer", "next_appointment", "book"]   # or ["*"]; no default
read_only_tools = ["find_customer", "next_appointment"]         # may run speculatively
timeout_s = 10.0                              # discovery, or one call, connecting included
max_result_chars = 4000                       # longer results are cut for the model
"""


def test_the_documented_example_parses() -> None:
    spec = parse_spec(EXAMPLE, "dental.toml")
    (server,) = spec.mcp
    assert server.name == "crm"
    assert server.headers == {"Authorization": "crm-token"}
    assert server.side_effects  # `book` may act
    assert server.read_only("find_customer") and not server.read_only("book")
    assert not server.allows("delete_customer")
    assert secret_names(spec.mcp) == ["crm-token"]


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def spec_with(**server: Any) -> str:
    server.setdefault("name", "crm")
    table = "\n".join(f"{key} = {_toml(value)}" for key, value in server.items())
    return f'name = "a"\nkind = "llm"\n[llm]\n[[mcp]]\n{table}\n'


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ({"url": "https://x/mcp"}, "allowed_tools"),
        ({"url": "https://x/mcp", "allowed_tools": []}, "allowed_tools is empty"),
        ({"allowed_tools": ["*"]}, "give one of `url`"),
        ({"url": "https://x", "command": ["srv"], "allowed_tools": ["*"]}, "give one of"),
        ({"url": "ftp://x/mcp", "allowed_tools": ["*"]}, "http(s)"),
        ({"url": "https://x", "allowed_tools": ["a"], "read_only_tools": ["b"]}, "not in allowed"),
        ({"name": "a__b", "url": "https://x", "allowed_tools": ["*"]}, "mcp"),
        ({"url": "https://x", "allowed_tools": ["*"], "headers": {"X": "no spaces"}}, "headers"),
        ({"url": "https://x", "allowed_tools": ["*"], "retries": 3}, "retries"),
    ],
)
def test_bad_servers_are_refused(server: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(spec_with(**server), "a.toml")


def test_a_server_name_used_twice_is_refused() -> None:
    text = spec_with(url="https://x/mcp", allowed_tools=["*"])
    text += '[[mcp]]\nname = "crm"\nurl = "https://y/mcp"\nallowed_tools = ["*"]\n'
    with pytest.raises(SpecError, match="named twice: crm"):
        parse_spec(text, "a.toml")


async def test_tenant_agents_get_no_stdio_and_a_guarded_url() -> None:
    stdio = McpServerSpec(name="local", command=["srv"], allowed_tools=["*"])
    assert "stdio servers are for the operator's agent files" in (
        await tenant_problem(stdio, allowlist=()) or ""
    )
    private = McpServerSpec(name="crm", url="http://127.0.0.1:9/mcp", allowed_tools=["*"])
    assert "url: refused" in (await tenant_problem(private, allowlist=()) or "")
    assert await tenant_problem(private, allowlist=("127.0.0.1",)) is None


async def test_operator_agents_run_stdio_servers() -> None:
    script = Path(__file__).parents[1] / "support" / "mcp_stdio_server.py"
    server = McpServerSpec(
        name="local", command=[sys.executable, str(script)], allowed_tools=["*"], timeout_s=30
    )
    async with httpx.AsyncClient() as http:
        for operator in (True, False):
            access = LlmAccess(operator_agent=operator)
            ctx = AgentContext(call_id="c", tenant_id="t", http=http, llm=access)
            tools = McpTools([server], ctx, "dental", DiscoveryCache())
            await tools.prepare()
            if not operator:
                assert tools.schemas() == []  # never started for a tenant's agent
                continue
            assert [s["function"]["name"] for s in tools.schemas()] == ["local__hello"]
            result = await tools.run("local__hello", {"name": "Ada"})
            assert result.ok and result.result == "hello Ada"
            await tools.aclose()
