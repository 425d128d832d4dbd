"""A call's latency summary for `call.ended` (`control_api.analytics.events`), from the
`TurnMetrics` of its turns: voice-to-voice percentiles and each mark's median, and a turn's
milliseconds per stage (`pipeline.marks.STAGES`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import msgspec

from pipeline.events import TurnMetrics
from pipeline.marks import STAGES


class LatencySummary(msgspec.Struct, frozen=True, kw_only=True):
    """The call's per-turn latency (from its TurnMarks)."""

    turns: int = 0
    """Turns with latency marks."""
    voice_to_voice_ms_p50: float | None = None
    voice_to_voice_ms_p95: float | None = None
    voice_to_voice_ms_max: float | None = None
    marks_p50_s: dict[str, float] = msgspec.field(default_factory=dict)
    """Median of each mark (seconds since the caller's speech ended) over the turns."""


def summarise_latency(turns: Sequence[TurnMetrics]) -> LatencySummary:
    if not turns:
        return LatencySummary()
    v2v = sorted(t.voice_to_voice_ms for t in turns if t.voice_to_voice_ms is not None)
    marks: dict[str, list[float]] = {}
    for turn in turns:
        for name, value in turn.marks.items():
            marks.setdefault(name, []).append(value)

    def pick(q: float) -> float | None:
        if not v2v:
            return None
        return round(v2v[min(len(v2v) - 1, int(q * len(v2v)))], 1)

    return LatencySummary(
        turns=len(turns),
        voice_to_voice_ms_p50=round(statistics.median(v2v), 1) if v2v else None,
        voice_to_voice_ms_p95=pick(0.95),
        voice_to_voice_ms_max=round(v2v[-1], 1) if v2v else None,
        marks_p50_s={k: round(statistics.median(v), 3) for k, v in sorted(marks.items())},
    )


def stages_ms(marks: dict[str, float]) -> dict[str, float]:
    """Milliseconds per stage of a turn's marks, for the stages whose two marks are set."""
    return {
        stage: round((marks[b] - marks[a]) * 1000, 1)
        for stage, (a, b) in STAGES.items()
        if a in marks and b in marks
    }
