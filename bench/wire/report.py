"""`voicenode-bench wire` reports: report.json and report.md from the steps' timelines.

Every latency is in milliseconds with n/mean/min/max/p50/p95/p99 (`bench.report.summarize`).
The issue's targets are reported as met / not met / not measured, never asserted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import STAGES, Summary, summarize, turn_stages_ms
from bench.wire.call_report import call_summary
from bench.wire.measure import (
    call_minutes,
    caller_wer,
    check_expected,
    cpu_per_call_minute,
    greeting_s,
    line_latencies,
    packet_gaps,
)
from bench.wire.runner import StepResult
from bench.wire.timeline import CallTimeline

LATE_GAP_MS = 40.0
"""A gap between received packets longer than two frames counts as late."""
NODE_STAGES = ("turn_window", "stt_wait", "agent", "tts_first", "playout")
"""The node's TurnMarks intervals that add up to its voice to voice."""

TARGETS: dict[str, tuple[str, float, str]] = {
    "v2v_p50_ms": ("voice to voice p50", 700.0, "<="),
    "v2v_p95_ms": ("voice to voice p95", 1000.0, "<="),
    "barge_in_stop_p95_ms": ("barge-in stop p95", 250.0, "<="),
    "capacity_calls": ("concurrent calls with p95 v2v <= 1500 ms", 6.0, ">="),
    "media_core_share_per_call": ("media path, share of a core per call", 0.01, "<="),
}


def _ms(values: Sequence[float]) -> Summary:
    return summarize([v * 1000.0 for v in values])


def node_stages(timelines: Sequence[CallTimeline]) -> dict[str, list[float]]:
    """The node's own per-stage latencies (ms) of every fully marked turn."""
    out: dict[str, list[float]] = {s: [] for s in STAGES}
    for tl in timelines:
        for turn in tl.node_turns:
            stages = turn_stages_ms(turn.marks)
            if stages is None:
                continue
            for s in STAGES:
                out[s].append(stages[s])
    return out


def step_summary(step: StepResult) -> dict[str, Any]:
    """The metrics of one step (report.json `steps[]`)."""
    tls = step.timelines
    lat = [t for tl in tls for t in line_latencies(tl)]
    v2v = [t.v2v_s for t in lat if t.v2v_s is not None]
    greetings = [g for tl in tls if (g := greeting_s(tl)) is not None]
    barge = [t for t in lat if t.barge_in_stop_s is not None or t.barge_in_missed]
    barge_lines = sum(1 for tl in tls for x in tl.lines if x.barge_in)
    stops = [t.barge_in_stop_s for t in lat if t.barge_in_stop_s is not None]
    gaps = [g for tl in tls for g in packet_gaps(tl)]
    errors = [caller_wer([x.text for x in tl.lines], tl.transcripts) for tl in tls]
    ref_words = sum(e.ref_words for e in errors)
    per_call_wer = [w for e in errors if (w := e.wer) is not None]
    expected = [e for tl in tls for e in check_expected(tl)]
    minutes = sum(call_minutes(tl) for tl in tls)
    stages = node_stages(tls)
    return {
        "calls": step.calls,
        "arrivals": step.arrivals,
        "completed_calls": sum(1 for t in tls if t.ended_by in ("caller", "agent")),
        "failed_calls": step.failed,
        "wall_s": round(step.wall_s, 2),
        "v2v_ms": _ms(v2v),
        "unanswered_lines": sum(1 for t in lat if t.v2v_s is None),
        "greeting_ms": _ms(greetings),
        "barge_in_stop_ms": _ms(stops),
        "barge_in": {
            "lines": barge_lines,
            "stopped": len(stops),
            "not_stopped": barge_lines - len(stops) - sum(1 for t in barge if t.barge_in_missed),
            "agent_silent_at_onset": sum(1 for t in barge if t.barge_in_missed),
        },
        "packet_gap_ms": _ms(gaps),
        "late_packet_gaps": sum(1 for g in gaps if g * 1000.0 > LATE_GAP_MS),
        "caller_wer": {
            "wer": None if ref_words == 0 else round(sum(e.errors for e in errors) / ref_words, 4),
            "ref_words": ref_words,
            "per_call": summarize(per_call_wer),
        },
        "expected_replies": {
            "matched": sum(1 for e in expected if e.ok),
            "total": len(expected),
        },
        **_cpu(step, minutes),
        "node_stages_ms": {s: summarize(v) for s, v in stages.items()},
        "wire_added_ms_mean": _wire_added(v2v, stages["voice_to_voice"]),
        "events_error": step.events_error,
        "call_details": [call_summary(tl) for tl in tls],
    }


def _cpu(step: StepResult, minutes: float) -> dict[str, Any]:
    """The node's CPU and memory in a step, and the bench process's CPU beside it."""
    share = None
    if step.cpu_s is not None and step.wall_s > 0 and step.calls:
        share = step.cpu_s / step.wall_s / step.calls
    return {
        "node": {
            "cpu_s": None if step.cpu_s is None else round(step.cpu_s, 3),
            "call_minutes": round(minutes, 3),
            "cpu_s_per_call_minute": _round(cpu_per_call_minute(step.cpu_s, minutes)),
            "core_share_per_call": _round(share, 4),
            "peak_rss_mb": None
            if step.peak_rss_bytes is None
            else round(step.peak_rss_bytes / 2**20, 1),
        },
        "bench_process": {
            "cpu_s": _round(step.bench_cpu_s),
            "cpu_s_per_call_minute": _round(cpu_per_call_minute(step.bench_cpu_s, minutes)),
        },
    }


def _wire_added(wire_s: Sequence[float], node_ms: Sequence[float]) -> float | None:
    """Mean voice to voice measured on the wire less the node's own mean (TurnMarks): what the
    transport, the network and the caller side add."""
    if not wire_s or not node_ms:
        return None
    return round(sum(wire_s) * 1000.0 / len(wire_s) - sum(node_ms) / len(node_ms), 1)


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def _target(value: float | None, limit: float, op: str, note: str = "") -> dict[str, Any]:
    met = None if value is None else (value <= limit if op == "<=" else value >= limit)
    out: dict[str, Any] = {"value": value, "limit": limit, "op": op, "met": met}
    if note:
        out["note"] = note
    return out


def wire_report(
    steps: Sequence[StepResult],
    *,
    transport: str,
    scenario: Mapping[str, Any],
    node: Mapping[str, Any],
    machine: Mapping[str, Any],
    capacity_calls: int | None,
    swept: bool,
    target_p95_ms: float,
    capacity_by_arrivals: Mapping[str, int | None] | None = None,
) -> dict[str, Any]:
    """The report.json document: the first step's metrics at the top, every step in `steps`
    (with their arrivals, burst or staggered, and the node's and the bench's CPU)."""
    summaries = [step_summary(s) for s in steps]
    head = summaries[0] if summaries else step_summary(StepResult(calls=0, timelines=[]))
    return {
        "bench": "wire",
        "transport": transport,
        "scenario": dict(scenario),
        "node": dict(node),
        "arrivals": list(dict.fromkeys(s["arrivals"] for s in summaries)),
        "calls": head["calls"],
        "v2v_ms": head["v2v_ms"],
        "greeting_ms": head["greeting_ms"],
        "barge_in_stop_ms": head["barge_in_stop_ms"],
        "packet_gap_ms": head["packet_gap_ms"],
        "caller_wer": head["caller_wer"],
        "node_process": head["node"],
        "node_stages_ms": head["node_stages_ms"],
        "wire_added_ms_mean": head["wire_added_ms_mean"],
        "capacity": {
            "swept": swept,
            "target_p95_ms": target_p95_ms,
            "calls": capacity_calls,
            "by_arrivals": dict(capacity_by_arrivals or {}),
            "by_calls": [
                {
                    "calls": s["calls"],
                    "arrivals": s["arrivals"],
                    "v2v_p50_ms": s["v2v_ms"]["p50"],
                    "v2v_p95_ms": s["v2v_ms"]["p95"],
                    "failed_calls": s["failed_calls"],
                    "node_cpu_s": s["node"]["cpu_s"],
                    "bench_cpu_s": s["bench_process"]["cpu_s"],
                }
                for s in summaries
            ],
        },
        "targets": _targets(head, capacity_calls, swept),
        "machine": dict(machine),
        "steps": summaries,
    }


def _targets(head: Mapping[str, Any], capacity_calls: int | None, swept: bool) -> dict[str, Any]:
    """Each of `TARGETS` with the value measured (the first step's; capacity from a sweep)."""
    v2v = head["v2v_ms"]
    return {
        "v2v_p50_ms": _target(v2v["p50"], *TARGETS["v2v_p50_ms"][1:]),
        "v2v_p95_ms": _target(v2v["p95"], *TARGETS["v2v_p95_ms"][1:]),
        "barge_in_stop_p95_ms": _target(
            head["barge_in_stop_ms"]["p95"], *TARGETS["barge_in_stop_p95_ms"][1:]
        ),
        "capacity_calls": _target(
            None if not swept else float(capacity_calls or 0),
            *TARGETS["capacity_calls"][1:],
            note="" if swept else "run with --sweep to measure",
        ),
        "media_core_share_per_call": _target(
            None,
            *TARGETS["media_core_share_per_call"][1:],
            note="not measurable from the wire: the node's CPU includes the models "
            "(see node.core_share_per_call)",
        ),
    }


# ---- markdown ----

_COLS = ("n", "mean", "p50", "p95", "p99", "max")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def _verdict(t: Mapping[str, Any]) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[t["met"]]


def render_markdown(report: Mapping[str, Any]) -> str:
    sc = report.get("scenario", {})
    out = [
        "# Voice node from the wire (voicenode-bench wire)",
        "",
        f"Transport `{report['transport']}`, scenario `{sc.get('name')}` "
        f"(agent `{sc.get('agent')}`, {sc.get('lines')} lines), {report['calls']} concurrent "
        f"call(s), arrivals {', '.join(report.get('arrivals', []))}; "
        f"node: {report['node'].get('mode')} {report['node'].get('url', '')}.",
        *_md_latency(report),
        *_md_node(report),
        *_md_concurrency(report["capacity"]),
        *_md_targets(report["targets"]),
        *_md_calls(report["steps"]),
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in report["machine"].items()),
    ]
    return "\n".join(out) + "\n"


def _md_table(first: str, rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A table of summaries (`_COLS`), one row per entry of `rows`."""
    out = [
        f"| {first} | " + " | ".join(_COLS) + " |",
        "| --- | " + " | ".join("---:" for _ in _COLS) + " |",
    ]
    for name, row in rows.items():
        out.append(f"| {name} | " + " | ".join(_cell(row.get(c)) for c in _COLS) + " |")
    return out


def _md_latency(report: Mapping[str, Any]) -> list[str]:
    names = {
        "v2v_ms": "voice to voice",
        "greeting_ms": "time to greeting",
        "barge_in_stop_ms": "barge-in stop",
        "packet_gap_ms": "gap between received packets",
    }
    wer = report["caller_wer"]
    return [
        "",
        "## Latency measured on the wire (ms)",
        "",
        *_md_table("metric", {name: report[key] for key, name in names.items()}),
        "",
        f"Caller transcript WER (node's transcripts vs the scenario): {_cell(wer['wer'])} "
        f"over {wer['ref_words']} words.",
    ]


def _md_node(report: Mapping[str, Any]) -> list[str]:
    proc = report["node_process"]
    return [
        "",
        "## Node",
        "",
        f"- CPU seconds per call-minute: {_cell(proc['cpu_s_per_call_minute'])}",
        f"- share of a core per call (whole node): {_cell(proc['core_share_per_call'])}",
        f"- peak RSS: {_cell(proc['peak_rss_mb'])} MB",
        "",
        "Per-stage latency from the node's TurnMarks (ms):",
        "",
        *_md_table("stage", report["node_stages_ms"]),
        "",
        "What the wire adds (mean voice to voice measured here less the node's own): "
        f"{_cell(report['wire_added_ms_mean'])} ms.",
    ]


def _md_concurrency(cap: Mapping[str, Any]) -> list[str]:
    out = [
        "",
        "## Concurrency",
        "",
        "| calls | arrivals | v2v p50 | v2v p95 | failed | node CPU s | bench CPU s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in cap["by_calls"]:
        out.append(
            f"| {row['calls']} | {row.get('arrivals', '-')} | {_cell(row['v2v_p50_ms'])} "
            f"| {_cell(row['v2v_p95_ms'])} | {row['failed_calls']} "
            f"| {_cell(row.get('node_cpu_s'))} | {_cell(row.get('bench_cpu_s'))} |"
        )
    out += ["", "Bench CPU: the callers (and the mock LLM when run here), one process."]
    if cap["swept"]:
        by = "".join(f", {a}: {_cell(n)}" for a, n in cap.get("by_arrivals", {}).items())
        target = cap["target_p95_ms"]
        out += ["", f"Capacity (p95 v2v <= {target:g} ms): {_cell(cap['calls'])} calls{by}."]
    return out


def _md_targets(targets: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = [
        "",
        "## Targets (reported, not asserted)",
        "",
        "| target | value | limit | result |",
        "| --- | ---: | ---: | --- |",
    ]
    for key, t in targets.items():
        name = TARGETS[key][0]
        note = f" ({t['note']})" if t.get("note") else ""
        out.append(
            f"| {name} | {_cell(t['value'])} | {t['op']} {t['limit']:g} | {_verdict(t)}{note} |"
        )
    return out


def _md_calls(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    out = ["", "## Calls", ""]
    for step in steps:
        for c in step["call_details"]:
            out.append(
                f"- step {step['calls']}, call {c['call']}: ended by {c['ended_by'] or '?'}"
                f"{' (' + c['error'] + ')' if c['error'] else ''}, {c['lines_spoken']} lines, "
                f"v2v {c['v2v_ms']} ms, WER {_cell(c['caller_wer'])}"
            )
    return out


def render_summary(report: Mapping[str, Any]) -> str:
    """A few lines for the terminal."""
    v = report["v2v_ms"]
    lines = [
        f"voice to voice ms: p50 {_cell(v['p50'])}  p95 {_cell(v['p95'])}  p99 {_cell(v['p99'])}"
        f"  (n {v['n']})",
        f"greeting ms p50 {_cell(report['greeting_ms']['p50'])}; barge-in stop ms p95 "
        f"{_cell(report['barge_in_stop_ms']['p95'])}; packet gap ms p99 "
        f"{_cell(report['packet_gap_ms']['p99'])}; caller WER {_cell(report['caller_wer']['wer'])}",
    ]
    for key, t in report["targets"].items():
        name, value = TARGETS[key][0], _cell(t["value"])
        lines.append(f"target {name}: {value} ({t['op']} {t['limit']:g}) {_verdict(t)}")
    return "\n".join(lines) + "\n"


def write_wire_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    md_path = out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
