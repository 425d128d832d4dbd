"""`LlmAgent`s against the OpenAI-compatible `LlmDouble`: the `double` fixture and a factory of
agents on one shared HTTP client, every agent closed at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from agents.base import AgentContext
from agents.llm import LlmAgent
from agents.llm_access import LlmAccess
from agents.mcp_spec import McpServerSpec
from agents.spec import AgentSpec, LlmSettings, ToolSpec
from tests.support.llm_double import LlmDouble

PROMPT = "You are the receptionist of a dental practice."

AgentFactory = Callable[..., LlmAgent]


@pytest.fixture
async def double() -> AsyncIterator[LlmDouble]:
    """The double on a free 127.0.0.1 port, stopped after the test."""
    async with LlmDouble() as server:
        yield server


def llm_agent(
    double: LlmDouble,
    http: httpx.AsyncClient,
    *,
    prompt: str = PROMPT,
    greeting: str = "",
    tools: Sequence[ToolSpec] = (),
    mcp: Sequence[McpServerSpec] = (),
    transfer_target: str = "",
    base_url: str | None = None,
    allowlist: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    operator: bool = False,
    llm_allowlist: Sequence[str] = ("127.0.0.1",),  # the double: a tenant's endpoint
    pii: frozenset[str] = frozenset(),
    **llm: Any,
) -> LlmAgent:
    """The agent "dental" of call "call-1" (tenant "tenant-1") whose model is the double (or
    `base_url`); `llm`: the rest of its `LlmSettings` (model "test-model" unless given).
    `allowlist`: the hosts its tools may reach; `llm_allowlist`: the model's; `env`, `secrets`,
    `operator`: where its key comes from (`LlmAccess.for_agent`); `pii`: the kinds of personal
    data redacted from what the model gets (`AgentContext.pii`)."""
    llm = {"base_url": base_url or double.base_url, "model": "test-model", **llm}
    settings = LlmSettings(**llm)
    spec = AgentSpec(
        name="dental",
        kind="llm",
        prompt=prompt,
        greeting=greeting,
        llm=settings,
        tools=list(tools),
        mcp=tuple(mcp),
        transfer_target=transfer_target,
    )
    access = LlmAccess.for_agent(
        settings,
        operator_agent=operator,
        secrets=secrets or {},
        env=env or {},
        url_allowlist=llm_allowlist,
    )
    ctx = AgentContext(
        call_id="call-1",
        tenant_id="tenant-1",
        http=http,
        url_allowlist=allowlist,
        env=env or {},
        llm=access,
        pii=pii,
    )
    return LlmAgent(spec, ctx)


@asynccontextmanager
async def llm_agents(double: LlmDouble, **defaults: Any) -> AsyncIterator[AgentFactory]:
    """A factory of `llm_agent`s on one HTTP client: `defaults` for every agent, a call's own
    keywords over them. The agents are closed, then the client, on the way out."""
    agents: list[LlmAgent] = []
    async with httpx.AsyncClient() as http:

        def make(**options: Any) -> LlmAgent:
            agent = llm_agent(double, http, **{**defaults, **options})
            agents.append(agent)
            return agent

        yield make
        for agent in agents:
            await agent.aclose()
