"""Turn latency reports: percentiles of the TurnMarks intervals, the node's own overhead, targets.

Pure functions over per-turn marks (seconds); everything reported is in milliseconds. Targets
are reported with pass/fail, never asserted: a benchmark measures, it does not gate.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

MARKS: Final = (
    "speech_end",
    "endpoint",
    "final_transcript",
    "agent_first_text",
    "first_tts_audio",
    "first_frame_out",
)
"""The marks of a node's turn, in pipeline order: the keys of its `turn.metrics` event (and of a
simulated call's turns). The node's own list is `pipeline.marks.MARKS`; the bench talks to the
node over the wire and keeps this copy of the vocabulary, which tests/bench/test_report.py
holds equal to it."""
STAGES: Final = {
    "turn_window": ("speech_end", "endpoint"),
    "stt_wait": ("endpoint", "final_transcript"),
    "agent": ("final_transcript", "agent_first_text"),
    "tts_first": ("agent_first_text", "first_tts_audio"),
    "playout": ("first_tts_audio", "first_frame_out"),
    "voice_to_voice": ("speech_end", "first_frame_out"),
}
"""The intervals reported, each between two MARKS: the node's TurnMarks stages
(`pipeline.marks.STAGES`, which the same test holds this equal to, in order)."""

V2V_P50_TARGET_MS = 700.0
"""Issue 2: end of caller speech to the agent's first audio frame, p50."""
OVERHEAD_TARGET_MS = 30.0
"""Issue 2: the node's own time per turn beyond model compute and the turn window."""
OVERHEAD = "overhead"
"""The derived per-turn interval: voice_to_voice - turn_window - stt_wait - tts_first."""
QUANTILES = (50.0, 95.0, 99.0)

Summary = dict[str, float | int | None]


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of `values`, linearly interpolated between order statistics
    (numpy's default: rank (n - 1) * q / 100)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarize(values: Sequence[float]) -> Summary:
    """n, mean, min, max and p50/p95/p99 of `values` (ms, rounded to 0.001); None when empty."""
    if not values:
        empty: Summary = {"n": 0, "mean": None, "min": None, "max": None}
        return empty | {f"p{q:g}": None for q in QUANTILES}
    out: Summary = {
        "n": len(values),
        "mean": _ms(float(np.mean(np.asarray(values, dtype=np.float64)))),
        "min": _ms(min(values)),
        "max": _ms(max(values)),
    }
    for q in QUANTILES:
        out[f"p{q:g}"] = _ms(percentile(values, q))
    return out


def _ms(value: float) -> float:
    return round(value, 3)


def node_overhead_ms(stages_ms: Mapping[str, float]) -> float:
    """The node's own time in a turn: voice to voice, less the turn window (a deliberate wait)
    and model compute (STT's final decode, TTS's first audio)."""
    return (
        stages_ms["voice_to_voice"]
        - stages_ms["turn_window"]
        - stages_ms["stt_wait"]
        - stages_ms["tts_first"]
    )


def turn_stages_ms(marks: Mapping[str, float]) -> dict[str, float] | None:
    """Every STAGES interval of one turn in ms, plus `overhead`; None unless all MARKS are set."""
    if any(m not in marks for m in MARKS):
        return None
    stages = {name: (marks[b] - marks[a]) * 1000.0 for name, (a, b) in STAGES.items()}
    stages[OVERHEAD] = node_overhead_ms(stages)
    return stages


@dataclass(frozen=True)
class TurnSample:
    """One answered caller turn: which run, which turn of the call, its intervals (ms)."""

    run: int
    turn: int
    stages_ms: dict[str, float]


def _target(value: float | int | None, limit: float, stat: str) -> dict[str, Any]:
    return {
        "statistic": stat,
        "limit_ms": limit,
        "value_ms": value,
        "pass": value is not None and value <= limit,
    }


def build_report(
    samples: Sequence[TurnSample],
    *,
    machine: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report.json document for these turns."""
    stages_ms = {
        stage: summarize([s.stages_ms[stage] for s in samples if stage in s.stages_ms])
        for stage in STAGES
    }
    v2v = stages_ms["voice_to_voice"]
    overhead = summarize([s.stages_ms[OVERHEAD] for s in samples if OVERHEAD in s.stages_ms])
    report: dict[str, Any] = dict(extra or {})
    report |= {
        "n_turns": len(samples),
        "v2v_ms": v2v,
        "stages_ms": stages_ms,
        "overhead_ms": overhead,
        "targets": {
            "v2v_p50_ms": _target(v2v["p50"], V2V_P50_TARGET_MS, "p50"),
            "overhead_p50_ms": _target(overhead["p50"], OVERHEAD_TARGET_MS, "p50"),
        },
        "machine": dict(machine),
        "turns": [
            {"run": s.run, "turn": s.turn, "stages_ms": {k: _ms(v) for k, v in s.stages_ms.items()}}
            for s in samples
        ],
    }
    return report


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on, including how busy the machine was."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
    }
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        info["load_avg_1m"] = None
    return info


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor()
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


_ROWS = (*STAGES, OVERHEAD)
_COLS = ("n", "mean", "p50", "p95", "p99", "max")


def _row(report: Mapping[str, Any], name: str) -> Summary:
    summary: Summary = report["overhead_ms"] if name == OVERHEAD else report["stages_ms"][name]
    return summary


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.1f}"


def _target_lines(report: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    names = {"v2v_p50_ms": "voice_to_voice p50", "overhead_p50_ms": "overhead p50"}
    rows = []
    for key, t in report["targets"].items():
        verdict = "PASS" if t["pass"] else "FAIL"
        rows.append((names.get(key, key), _cell(t["value_ms"]), f"<= {t['limit_ms']:g}", verdict))
    return rows


def render_table(report: Mapping[str, Any]) -> str:
    """A short plain-text table (ms) for the terminal."""
    head = ["stage (ms)", *_COLS]
    body = [[name, *(_cell(_row(report, name).get(c)) for c in _COLS)] for name in _ROWS]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *body]
    ]
    lines.append("")
    for name, value, limit, verdict in _target_lines(report):
        lines.append(f"target {name}: {value} ms ({limit} ms) {verdict}")
    return "\n".join(lines) + "\n"


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: the stage table, the targets and the machine."""
    out = ["# Turn latency (voicenode-bench turns)", ""]
    scenario = report.get("scenario")
    if isinstance(scenario, Mapping):
        out.append(
            f"Scenario `{scenario.get('name')}` (agent `{scenario.get('agent')}`), "
            f"{report.get('runs_requested', '?')} run(s), {report['n_turns']} answered turns."
        )
        out.append("")
    out.append("| stage (ms) | " + " | ".join(_COLS) + " |")
    out.append("| --- | " + " | ".join("---:" for _ in _COLS) + " |")
    for name in _ROWS:
        cells = " | ".join(_cell(_row(report, name).get(c)) for c in _COLS)
        out.append(f"| {name} | {cells} |")
    out += [
        "",
        "`overhead` = voice_to_voice - turn_window - stt_wait - tts_first "
        "(the node's own time beyond the turn window and model compute).",
        "",
        "## Targets (issue 2; reported, not asserted)",
        "",
        "| target | value (ms) | limit (ms) | result |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, value, limit, verdict in _target_lines(report):
        out.append(f"| {name} | {value} | {limit} | {verdict} |")
    out += ["", "## Machine", ""]
    for key, value in report["machine"].items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        out.append(f"- {key}: {value}")
    runs = report.get("runs")
    if isinstance(runs, list) and runs:
        out += ["", "## Runs", ""]
        for r in runs:
            out.append(
                f"- run {r.get('run')}: ended `{r.get('ended')}`, "
                f"{r.get('measured_turns')} measured turn(s), {r.get('wall_s')} s, "
                f"{r.get('tts_cache_hits')} TTS cache hit(s)"
            )
    return "\n".join(out) + "\n"


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write report.json and report.md into `out_dir` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    md_path = out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
