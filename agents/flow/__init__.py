"""The flow agent: a deterministic dialog graph with intents, slots and actions.

`FlowAgent` lives in `agents.flow.agent`; it is imported lazily here because `agents.spec`
imports `agents.flow.spec` (and the agent module imports `agents.spec`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.flow.agent import FlowAgent

__all__ = ["FlowAgent"]


def __getattr__(name: str) -> Any:
    if name == "FlowAgent":
        from agents.flow.agent import FlowAgent

        return FlowAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
