"""What a call session reports as it runs: a tagged union the control API forwards
(data channel, WebSocket, analytics). Sent through a non-blocking callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from pipeline.amd import AmdDecision, AmdEvidence


class StateChanged(msgspec.Struct, frozen=True, tag="state"):
    state: str
    """listening | user_speaking | thinking | agent_speaking | ended"""


class Transcript(msgspec.Struct, frozen=True, tag="transcript", kw_only=True):
    role: Literal["user", "agent"]
    text: str
    final: bool
    interrupted: bool = False
    turn: int = 0


class TurnMetrics(msgspec.Struct, frozen=True, tag="turn", kw_only=True):
    """Per-turn latency: marks are seconds since the turn's speech end (negative: before it)."""

    turn: int
    marks: dict[str, float]
    voice_to_voice_ms: float | None = None


class ToolCalled(msgspec.Struct, frozen=True, tag="tool", kw_only=True):
    name: str
    arguments: dict[str, Any]
    result: str
    ok: bool
    duration_ms: float | None = None
    """How long the tool ran (MCP and HTTP tools, built-ins), when the agent timed it."""


class ModelCalled(msgspec.Struct, frozen=True, tag="model", kw_only=True):
    """One request to the agent's model ended (LLM agents): for traces."""

    duration_ms: float
    first_token_ms: float | None = None
    ok: bool = True


class DtmfReceived(msgspec.Struct, frozen=True, tag="dtmf"):
    digits: str


class CallEnded(msgspec.Struct, frozen=True, tag="ended", kw_only=True):
    reason: str
    """completed | hangup | transferred | no_input | max_duration | failed; an outbound call
    screened as an answering machine (`[amd]`): machine (hung up on) | voicemail (message left)"""
    duration_s: float
    slots: dict[str, str] = msgspec.field(default_factory=dict)


class AmdDetected(msgspec.Struct, frozen=True, tag="amd", kw_only=True):
    """An outbound call's answering-machine detection decided (`pipeline/screening.py`)."""

    result: str
    """human | machine | unknown"""
    reason: str
    """beep | greeting_phrase | answer_phrase | long_greeting | short_greeting | deadline |
    silence"""
    decided_ms: float
    """From the answer."""
    evidence: AmdEvidence

    @classmethod
    def of(cls, decision: AmdDecision) -> AmdDetected:
        return cls(
            result=decision.result,
            reason=decision.reason,
            decided_ms=decision.decided_ms,
            evidence=decision.evidence,
        )


CallEvent = (
    StateChanged
    | Transcript
    | TurnMetrics
    | ToolCalled
    | ModelCalled
    | DtmfReceived
    | AmdDetected
    | CallEnded
)
EventCallback = Callable[[CallEvent], None]
