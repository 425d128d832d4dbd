"""One streamed completion of the LLM agent: the text and tool calls it produced, and its
timing as a `ModelRound` (for traces)."""

from __future__ import annotations

import dataclasses
import time

from agents.base import ModelRound
from agents.speculation import Speculation
from agents.tools import ToolCall


@dataclasses.dataclass(slots=True)
class PendingCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclasses.dataclass(slots=True)
class Round:
    """What one streamed completion produced."""

    text: list[str] = dataclasses.field(default_factory=list)
    calls: dict[int, PendingCall] = dataclasses.field(default_factory=dict)
    speculation: Speculation | None = None
    """The reply's record while it is speculative: it counts the streamed deltas (tokens)."""
    started: float = dataclasses.field(default_factory=time.monotonic)
    first_at: float | None = None

    def delta(self) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        if self.speculation is not None:
            self.speculation.tokens += 1

    def report(self, *, ok: bool = True) -> ModelRound:
        """The round as a `ModelRound` (timed now)."""
        first = None if self.first_at is None else (self.first_at - self.started) * 1000
        return ModelRound(
            duration_ms=round((time.monotonic() - self.started) * 1000, 1),
            first_token_ms=None if first is None else round(first, 1),
            ok=ok,
        )

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(
                id=pending.id or f"call_{index}", name=pending.name, arguments=pending.arguments
            )
            for index, pending in sorted(self.calls.items())
            if pending.name
        ]
