"""Build one call's agent from its spec."""

from __future__ import annotations

from agents.base import Agent, AgentContext
from agents.spec import AgentSpec


def build_agent(spec: AgentSpec, ctx: AgentContext) -> Agent:
    """A fresh agent for one call: a flow agent or an LLM agent, as the spec says."""
    if spec.kind == "flow":
        from agents.flow.agent import FlowAgent

        return FlowAgent(spec, ctx)
    from agents.llm import LlmAgent

    return LlmAgent(spec, ctx)
