"""The turn-taking report: per category (and per voice) lines, premature cut-ins, missed and
false barge-ins, voice to voice; report.json and report.md.

Rates are over the lines they can happen to: premature cut-ins over the spoken turn and
barge-in lines, missed barge-ins over the barge-in lines said over the agent's speech, false
barge-ins over the backchannels said over it. Targets (issue 16) are reported, not asserted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import percentile
from bench.turn_taking import LineOutcome

PREMATURE_TARGET_PCT = 3.0
FALSE_BARGE_IN_TARGET_PCT = 5.0
CATEGORY_ORDER = (
    "hesitation",
    "numbers",
    "list",
    "question",
    "one-word",
    "backchannel",
    "barge-in",
)


def _rate(
    outcomes: Sequence[LineOutcome], of: Callable[[LineOutcome], bool], hit: str
) -> dict[str, Any]:
    pool = [o for o in outcomes if of(o)]
    n = sum(1 for o in pool if getattr(o, hit))
    return {"n": n, "of": len(pool), "pct": round(100.0 * n / len(pool), 1) if pool else None}


def _quantiles(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50.0), 1),
        "p95": round(percentile(values, 95.0), 1),
    }


def summarize(outcomes: Sequence[LineOutcome]) -> dict[str, Any]:
    """One row of the report: the counts, rates and latencies of these lines."""
    spoken = [o for o in outcomes if o.spoken]
    return {
        "lines": len(outcomes),
        "spoken": len(spoken),
        "premature_cut_ins": _rate(spoken, lambda o: o.kind != "backchannel", "premature"),
        "missed_barge_ins": _rate(
            spoken, lambda o: o.kind == "barge_in" and bool(o.over_speech), "missed_barge_in"
        ),
        "false_barge_ins": _rate(
            spoken, lambda o: o.kind == "backchannel" and bool(o.over_speech), "false_barge_in"
        ),
        "not_over_speech": sum(1 for o in spoken if o.over_speech is False),
        "v2v_ms": _quantiles([o.v2v_ms for o in spoken if o.v2v_ms is not None]),
        "node_v2v_ms": _quantiles([o.node_v2v_ms for o in spoken if o.node_v2v_ms is not None]),
        "barge_in_stop_ms": _quantiles(
            [o.stop_ms for o in spoken if o.kind == "barge_in" and o.stop_ms is not None]
        ),
        "heard_stop_ms": _quantiles(
            [o.heard_stop_ms for o in spoken if o.kind == "barge_in" and o.heard_stop_ms]
        ),
    }


def _ordered(names: set[str]) -> list[str]:
    known = [c for c in CATEGORY_ORDER if c in names]
    return known + sorted(names - set(known))


def _target(value: float | None, limit: float) -> dict[str, Any]:
    return {"limit_pct": limit, "value_pct": value, "pass": value is not None and value <= limit}


def build_report(
    outcomes: Sequence[LineOutcome],
    *,
    machine: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """report.json: the totals, per category, per voice, and every line's outcome."""
    total = summarize(outcomes)
    categories = {o.category for o in outcomes}
    voices = {o.voice for o in outcomes}
    report: dict[str, Any] = dict(extra or {})
    report |= {
        "bench": "turn_taking",
        "total": total,
        "categories": {
            c: summarize([o for o in outcomes if o.category == c]) for c in _ordered(categories)
        },
        "voices": {v: summarize([o for o in outcomes if o.voice == v]) for v in sorted(voices)},
        "targets": {
            "premature_cut_ins": _target(total["premature_cut_ins"]["pct"], PREMATURE_TARGET_PCT),
            "false_barge_ins": _target(total["false_barge_ins"]["pct"], FALSE_BARGE_IN_TARGET_PCT),
        },
        "machine": dict(machine),
        "lines": [o.as_json() for o in outcomes],
    }
    return report


def _count(rate: Mapping[str, Any]) -> str:
    if not rate["of"]:
        return "-"
    return f"{rate['n']}/{rate['of']} ({rate['pct']:.1f} %)"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


_HEAD = (
    "| {what} | lines spoken | premature cut-ins | missed barge-ins | false barge-ins "
    "| v2v p50 (ms) | v2v p95 (ms) | node v2v p50 (ms) | stop p50 (ms) "
    "| heard stop p50 / p95 (ms) |"
)


def _table(what: str, rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = [_HEAD.format(what=what), "| --- |" + " ---: |" * 9]
    for name, r in rows.items():
        out.append(
            f"| {name} | {r['spoken']} | {_count(r['premature_cut_ins'])} "
            f"| {_count(r['missed_barge_ins'])} | {_count(r['false_barge_ins'])} "
            f"| {_ms(r['v2v_ms']['p50'])} | {_ms(r['v2v_ms']['p95'])} "
            f"| {_ms(r['node_v2v_ms']['p50'])} | {_ms(r['barge_in_stop_ms']['p50'])} "
            f"| {_ms(r['heard_stop_ms']['p50'])} / {_ms(r['heard_stop_ms']['p95'])} |"
        )
    return out


def _what_failed(o: Mapping[str, Any]) -> str:
    if o["premature"]:
        return f"premature cut-in {o['cut_in_ms']:.0f} ms before the end"
    if o["missed_barge_in"]:
        return "missed barge-in"
    if o["false_barge_in"]:
        return "false barge-in"
    return ""


def _problems(report: Mapping[str, Any]) -> list[str]:
    out = []
    for o in report["lines"]:
        what = _what_failed(o)
        if what:
            out.append(f"- `{o['scenario']}` line {o['line']} ({o['voice']}): {what}: {o['text']}")
    return out


_TARGET_NAMES = {"premature_cut_ins": "premature cut-ins", "false_barge_ins": "false barge-ins"}


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: the per-category and per-voice tables, the targets, the lines that failed."""
    out = ["# Turn-taking (voicenode-bench turns --scenarios)", ""]
    files = report.get("scenarios")
    if isinstance(files, list):
        out += [
            f"{len(files)} scenario file(s), voices {', '.join(report.get('voice_names', []))}.",
            "",
        ]
    rows = dict(report["categories"]) | {"all": report["total"]}
    out += _table("category", rows) + [""] + _table("voice", report["voices"])
    out += [
        "",
        "v2v: the caller's last voiced sample to the reply's first frame out (negative: the "
        "agent spoke before the line ended); node v2v: the node's own (VAD end of speech); "
        "stop: the caller's first voiced sample to the barge-in; heard stop: to the agent's "
        "last frame before it went quiet for the caller (playout pauses at speech onset; "
        "target p95 <= 200 ms).",
        "",
        "## Targets (issue 16; reported, not asserted)",
        "",
    ]
    for name, t in report["targets"].items():
        value = "-" if t["value_pct"] is None else f"{t['value_pct']:.1f} %"
        verdict = "PASS" if t["pass"] else "FAIL"
        out.append(f"- {_TARGET_NAMES[name]}: {value} (<= {t['limit_pct']:g} %) {verdict}")
    problems = _problems(report)
    out += ["", "## Lines that failed", ""] + (problems or ["none"])
    out += ["", "## Machine", ""]
    for key, value in report["machine"].items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        out.append(f"- {key}: {value}")
    return "\n".join(out) + "\n"


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
