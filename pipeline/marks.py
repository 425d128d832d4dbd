"""TurnMarks: per turn, monotonic timestamps of each stage from end of speech to first frame out,
exported as Prometheus histograms (process-wide, default registry)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Histogram

from pipeline.events import TurnMetrics

MARKS: Final = (
    "speech_end",
    "endpoint",
    "final_transcript",
    "agent_first_text",
    "first_tts_audio",
    "first_frame_out",
)
"""In pipeline order. Intervals between consecutive marks are the per-stage latencies."""

STAGES: Final = {
    "turn_window": ("speech_end", "endpoint"),
    "stt_wait": ("endpoint", "final_transcript"),
    "agent": ("final_transcript", "agent_first_text"),
    "tts_first": ("agent_first_text", "first_tts_audio"),
    "playout": ("first_tts_audio", "first_frame_out"),
    "voice_to_voice": ("speech_end", "first_frame_out"),
}

_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
)

STAGE_SECONDS = Histogram(
    "voicenode_turn_stage_seconds",
    "Per-turn latency of each pipeline stage (TurnMarks intervals)",
    ["stage"],
    buckets=_BUCKETS,
)


class TurnMarks:
    """Timestamps (clock seconds) of one turn's stages; each mark is set once."""

    __slots__ = ("stamps", "turn")

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.stamps: dict[str, float] = {}

    def mark(self, name: str, at: float) -> None:
        if name not in MARKS:
            raise ValueError(f"unknown turn mark {name!r}")
        self.stamps.setdefault(name, at)

    def intervals(self) -> dict[str, float]:
        """Seconds per stage, for the stages whose two marks are both set."""
        out: dict[str, float] = {}
        for stage, (a, b) in STAGES.items():
            if a in self.stamps and b in self.stamps:
                out[stage] = self.stamps[b] - self.stamps[a]
        return out

    def relative(self, origin: float) -> dict[str, float]:
        return {k: round(v - origin, 4) for k, v in self.stamps.items()}

    @property
    def voice_to_voice_s(self) -> float | None:
        return self.intervals().get("voice_to_voice")

    def observe(self) -> None:
        """Record this turn in the Prometheus histograms."""
        for stage, seconds in self.intervals().items():
            STAGE_SECONDS.labels(stage).observe(max(0.0, seconds))

    def metrics(self, origin: float) -> TurnMetrics:
        """The turn's event: marks relative to `origin` (the call's start) and voice-to-voice."""
        v2v = self.voice_to_voice_s
        return TurnMetrics(
            turn=self.turn,
            marks=self.relative(origin),
            voice_to_voice_ms=round(v2v * 1000, 1) if v2v is not None else None,
        )
