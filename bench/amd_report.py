"""The answering-machine bench's report (`bench.amd`): accuracy per class and part, decision
times, the voicemail message's start after the beep and a person's wait for the greeting, all
in stream time; report.json (with every clip) and README.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.amd import Outcome
from bench.report import percentile

TARGETS = {"accuracy": 0.95, "human_decision_p50_ms": 2500.0, "message_after_beep_ms": 500.0}


def _stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "max": round(max(values), 1),
    }


def _part(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    by_kind: dict[str, Any] = {}
    for kind in ("human", "machine"):
        rows = [o for o in outcomes if o.kind == kind]
        ok = sum(o.correct for o in rows)
        results: dict[str, int] = {}
        for o in rows:
            results[o.result] = results.get(o.result, 0) + 1
        by_kind[kind] = {
            "n": len(rows),
            "correct": ok,
            "accuracy": round(ok / len(rows), 3) if rows else None,
            "results": results,
            "decision_ms": _stats([o.decided_ms for o in rows if o.decided_ms is not None]),
        }
    ok = sum(o.correct for o in outcomes)
    humans = [o for o in outcomes if o.kind == "human"]
    machines = [o for o in outcomes if o.kind == "machine"]
    return {
        "n": len(outcomes),
        "correct": ok,
        "accuracy": round(ok / len(outcomes), 3) if outcomes else None,
        "classes": by_kind,
        "message_after_beep_ms": _stats(
            [o.message_after_beep_ms for o in machines if o.message_after_beep_ms is not None]
        ),
        "message_after_greeting_no_beep_ms": _stats(
            [
                o.message_after_greeting_ms
                for o in machines
                if o.beep_hz is None and o.message_after_greeting_ms is not None
            ]
        ),
        "greeting_gap_ms": _stats(
            [o.greeting_gap_ms for o in humans if o.greeting_gap_ms is not None]
        ),
        "reasons": _count(f"{o.kind}:{o.result}:{o.reason}" for o in outcomes),
    }


def _count(keys: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


def build_report(
    outcomes: Sequence[Outcome], *, meta: dict[str, Any], walls: dict[str, list[float]]
) -> dict[str, Any]:
    parts = {p: _part([o for o in outcomes if o.part == p]) for p in ("tune", "heldout")}
    every = _part(outcomes)
    human_p50 = every["classes"]["human"]["decision_ms"]["p50"]
    beep_max = every["message_after_beep_ms"]["max"]
    return {
        "meta": meta,
        "targets": TARGETS,
        "all": every,
        "parts": parts,
        "met": {
            "accuracy": (every["accuracy"] or 0) >= TARGETS["accuracy"],
            "human_decision_p50_ms": human_p50 is not None
            and human_p50 <= TARGETS["human_decision_p50_ms"],
            "message_after_beep_ms": beep_max is not None
            and beep_max <= TARGETS["message_after_beep_ms"],
        },
        "engine_wall_ms": {k: _stats(v) for k, v in walls.items()},
        "mistakes": [asdict(o) for o in outcomes if not o.correct],
        "clips": [asdict(o) for o in outcomes],
    }


def _row(name: str, part: dict[str, Any]) -> str:
    h, m = part["classes"]["human"], part["classes"]["machine"]
    hd, md = h["decision_ms"], m["decision_ms"]
    beep, gap = part["message_after_beep_ms"], part["greeting_gap_ms"]
    return (
        f"| {name} | {part['correct']}/{part['n']} ({100 * (part['accuracy'] or 0):.1f} %) "
        f"| {h['correct']}/{h['n']} | {m['correct']}/{m['n']} "
        f"| {hd['p50']} / {hd['p95']} | {md['p50']} / {md['p95']} "
        f"| {beep['p50']} / {beep['p95']} / {beep['max']} | {gap['p50']} / {gap['p95']} |"
    )


def render_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "| set | correct | humans | machines | human decision p50 / p95 ms "
        "| machine decision p50 / p95 ms | message after beep p50 / p95 / max ms "
        "| greeting gap p50 / p95 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        _row("tune", report["parts"]["tune"]),
        _row("held out", report["parts"]["heldout"]),
        _row("all", report["all"]),
        "",
        f"Targets met (all clips): {report['met']}. Stream time; engine jobs charged "
        f"stt {meta['stt_ms']} ms, tts {meta['tts_ms']} ms (uncached).",
        "",
    ]
    if report["mistakes"]:
        lines.append("Mistakes:")
        lines += [
            f"- {o['id']} ({o['part']}): {o['kind']} taken as {o['result']} ({o['reason']}, "
            f"{o['decided_ms']} ms)"
            for o in report["mistakes"]
        ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    js = out / "report.json"
    js.write_text(json.dumps(report, indent=1) + "\n")
    md = out / "table.md"
    md.write_text(render_markdown(report))
    return [js, md]
